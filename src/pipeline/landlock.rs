//! Landlock reports no denials: a file operation or exec of the tree that failed with
//! EACCES under it is one (connections are reported by the cgroup programs), and so is a
//! call that the seccomp filter or Landlock's signal scope refused with EPERM.
use crate::event::{Access, Deny, Event, FileOp, FlagKind, Kind};

/// The denial a failed call under Landlock stands for, if it stands for one.
pub fn denial(ev: &Event) -> Option<Event> {
    let (op, object, access) = match &ev.kind {
        Kind::File(f) if f.error.as_deref() == Some("EACCES") => {
            let op = match f.op {
                FileOp::Open => "open",
                _ => "path",
            };
            (op, f.path.clone(), f.access.clone())
        }
        Kind::Exec(x) if x.error.as_deref() == Some("EACCES") => ("exec", x.path.clone(), vec![]),
        // What the seccomp filter (enforce/seccomp.rs) and Landlock's signal scope refuse:
        // the sensor flags the call, with its error.
        Kind::Flag(f)
            if f.error.as_deref() == Some("EPERM")
                && matches!(
                    f.flag,
                    FlagKind::Terminal
                        | FlagKind::Socket
                        | FlagKind::Device
                        | FlagKind::Mount
                        | FlagKind::Signal
                        | FlagKind::ModuleLoad
                        | FlagKind::Bpf
                ) =>
        {
            let reason = if f.flag == FlagKind::Signal {
                "Landlock: a signal to a process outside the tree (EPERM)"
            } else {
                "seccomp: a call that reaches past the tree (EPERM)"
            };
            return Some(deny_event(
                ev,
                crate::diff::rules::flag_name(f.flag),
                f.detail.clone(),
                vec![],
                reason,
            ));
        }
        _ => return None,
    };
    Some(deny_event(
        ev,
        op,
        object,
        access,
        "Landlock: outside what the profile allows (EACCES)",
    ))
}

fn deny_event(ev: &Event, op: &str, object: String, access: Vec<Access>, reason: &str) -> Event {
    Event {
        kind: Kind::Deny(Deny {
            op: op.into(),
            object,
            access,
            reason: reason.into(),
            enforced: true,
        }),
        cause: ev.cause.clone(),
        ..ev.clone()
    }
}
