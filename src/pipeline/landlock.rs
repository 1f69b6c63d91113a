//! Landlock reports no denials: a file operation or exec of the tree that failed with
//! EACCES under it is one (connections are reported by the cgroup programs), and so is a
//! call that the seccomp filter or Landlock's signal scope refused with EPERM.
use crate::event::{Access, Deny, DenyOp, Errno, Event, FileOp, FlagKind, Kind};

/// The denial a failed call under Landlock stands for, if it stands for one.
pub fn denial(ev: &Event) -> Option<Event> {
    let (op, object, access) = match &ev.kind {
        Kind::File(f) if f.error == Some(Errno::EACCES) => {
            let op = match f.op {
                FileOp::Open => DenyOp::Open,
                _ => DenyOp::Path,
            };
            (op, f.path.clone(), f.access.clone())
        }
        Kind::Exec(x) if x.error == Some(Errno::EACCES) => (DenyOp::Exec, x.path.clone(), vec![]),
        // What the seccomp filter (enforce/seccomp.rs) and Landlock's signal scope refuse:
        // the sensor flags the call, with its error.
        Kind::Flag(f) if f.error == Some(Errno::EPERM) => {
            let op = flag_op(f.flag)?;
            let reason = if f.flag == FlagKind::Signal {
                "Landlock: a signal to a process outside the tree (EPERM)"
            } else {
                "seccomp: a call that reaches past the tree (EPERM)"
            };
            return Some(deny_event(ev, op, f.detail.clone(), vec![], reason));
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

/// The operation a flagged call refused with EPERM was, named as the BPF LSM backend
/// names it; None for flags that seccomp and Landlock do not refuse.
fn flag_op(f: FlagKind) -> Option<DenyOp> {
    Some(match f {
        FlagKind::Terminal => DenyOp::Ioctl,
        FlagKind::Device => DenyOp::Mknod,
        FlagKind::Socket => DenyOp::Socket,
        FlagKind::Mount => DenyOp::Mount,
        FlagKind::Signal => DenyOp::Signal,
        FlagKind::ModuleLoad => DenyOp::ModuleLoad,
        FlagKind::Bpf => DenyOp::Bpf,
        _ => return None,
    })
}

fn deny_event(ev: &Event, op: DenyOp, object: String, access: Vec<Access>, reason: &str) -> Event {
    Event {
        kind: Kind::Deny(Deny {
            op,
            object,
            access,
            reason: reason.into(),
            enforced: true,
        }),
        cause: ev.cause.clone(),
        ..ev.clone()
    }
}
