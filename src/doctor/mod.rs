//! `agentguard doctor`: what this host supports, found by doing it, and what that means
//! for each feature.
mod bpf;
mod host;

use anyhow::Result;
use serde::Serialize;

use crate::cli::{DoctorArgs, DoctorFormat};
use bpf::Kind;

/// One thing tried.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    pub name: &'static str,
    pub ok: bool,
    /// What happened (or why not).
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Works,
    Degraded,
    Unavailable,
}

#[derive(Debug, Clone, Serialize)]
pub struct Feature {
    pub name: &'static str,
    pub status: Status,
    /// Degraded: what is lost; unavailable: why, and the fix.
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub version: u32,
    pub probes: Vec<Probe>,
    pub features: Vec<Feature>,
}

pub fn run(args: DoctorArgs) -> Result<i32> {
    let r = examine();
    match args.format {
        DoctorFormat::Json => println!("{}", serde_json::to_string_pretty(&r)?),
        DoctorFormat::Text => print!("{}", text(&r)),
    }
    Ok(i32::from(
        r.features.iter().any(|f| f.status != Status::Works),
    ))
}

/// Every probe, then the features they support.
pub fn examine() -> Report {
    crate::sensor::capture_libbpf();
    let root = nix::unistd::Uid::effective().is_root();
    let caps = host::capabilities();
    let btf = host::btf();
    let cgroup = host::cgroup2();
    let cg_root = cgroup.as_ref().ok().cloned();
    let lsm_list = host::lsm_list();
    let landlock = host::landlock_abi();
    let try_prog = |k: Kind| -> Result<String> {
        if !root {
            anyhow::bail!("not tried: needs root");
        }
        bpf::probe(k, cg_root.as_deref())
    };
    let tp = try_prog(Kind::Tracepoint);
    let up = try_prog(Kind::Uprobe);
    let fe = try_prog(Kind::Fentry);
    let lsm = try_prog(Kind::Lsm);
    let cg = try_prog(Kind::Cgroup);
    let multi = crate::sensor::kernel_has_uprobe_multi();

    let probe = |name, r: &Result<String>| Probe {
        name,
        ok: r.is_ok(),
        detail: match r {
            Ok(s) => s.clone(),
            Err(e) => format!("{e:#}"),
        },
    };
    let probes = vec![
        probe("capabilities", &caps),
        probe("BTF", &btf),
        probe("tracepoint (tp_btf)", &tp),
        probe("uprobe", &up),
        Probe {
            name: "multi-uprobe links",
            ok: multi,
            detail: if multi {
                "a program of that type loads".into()
            } else {
                "not supported by this kernel (6.6 and later): plain uprobes are used".into()
            },
        },
        probe("fentry", &fe),
        probe("BPF LSM program", &lsm),
        probe("BPF LSM in the active list", &lsm_list),
        probe(
            "cgroup v2",
            &cgroup
                .as_ref()
                .map(|p| format!("mounted at {}", p.display()))
                .map_err(|e| anyhow::anyhow!("{e:#}")),
        ),
        probe("cgroup program (connect4)", &cg),
        probe(
            "Landlock",
            &landlock
                .as_ref()
                .map(|v| format!("ABI {v}"))
                .map_err(|e| anyhow::anyhow!("{e:#}")),
        ),
    ];

    let why = |r: &Result<String>| match r {
        Ok(_) => String::new(),
        Err(e) => format!("{e:#}"),
    };
    let mut features = Vec::new();
    let record_ok = tp.is_ok() && btf.is_ok();
    features.push(Feature {
        name: "record",
        status: if record_ok { Status::Works } else { Status::Unavailable },
        detail: if record_ok {
            "the sensor's tracepoints load and fire".into()
        } else if !root {
            "needs root (CAP_BPF and CAP_PERFMON): run doctor as root to check".into()
        } else {
            format!("tracepoints with BTF: {}{}; fix: a kernel with CONFIG_DEBUG_INFO_BTF and BTF at /sys/kernel/btf/vmlinux", why(&tp), why(&btf))
        },
    });
    features.push(Feature {
        name: "diff",
        status: Status::Works,
        detail: "reads files only".into(),
    });
    features.push(Feature {
        name: "watch",
        status: if record_ok {
            Status::Works
        } else {
            Status::Degraded
        },
        detail: if record_ok {
            "live and replayed".into()
        } else {
            "live watching needs record; --replay of a kept event log works".into()
        },
    });
    let lsm_ok = lsm.is_ok();
    features.push(Feature {
        name: "enforce (BPF LSM)",
        status: if lsm_ok { Status::Works } else { Status::Unavailable },
        detail: if lsm_ok {
            "LSM programs load, attach and fire".into()
        } else {
            let listed = lsm_list.as_ref().map(|s| s.contains("bpf")).unwrap_or(false);
            format!(
                "{}; {}",
                why(&lsm),
                if listed {
                    "\"bpf\" is in the active LSM list, yet programs are refused (a kernel or sandbox policy): use --backend landlock".to_string()
                } else {
                    "fix: add bpf to the kernel's lsm= list (GRUB_CMDLINE_LINUX, update-grub, reboot; CONFIG_BPF_LSM=y), or use --backend landlock".to_string()
                }
            )
        },
    });
    let ll = landlock.as_ref().ok().copied().unwrap_or(0);
    let (ll_status, ll_detail) = match (ll, cg.is_ok()) {
        (0, _) => (
            Status::Unavailable,
            format!("Landlock: {}; fix: boot with landlock in the lsm= list (CONFIG_SECURITY_LANDLOCK=y)", landlock.as_ref().err().map(|e| format!("{e:#}")).unwrap_or_default()),
        ),
        (_, false) => (
            Status::Degraded,
            format!("files by hierarchy work (ABI {ll}); outbound connections are not enforced: cgroup programs: {}", why(&cg)),
        ),
        (v, true) if v < 2 => (
            Status::Degraded,
            format!("ABI {v}: renames and links across directories cannot be restricted (ABI 2)"),
        ),
        (v, true) => (
            Status::Works,
            format!("files by hierarchy (ABI {v}), connections by address and port (cgroup programs); rules are widened to hierarchies, reported before the start"),
        ),
    };
    features.push(Feature {
        name: "enforce (Landlock)",
        status: ll_status,
        detail: ll_detail,
    });
    features.push(Feature {
        name: "LLM visibility",
        status: match (up.is_ok(), record_ok) {
            (true, true) => Status::Works,
            (false, true) => Status::Degraded,
            _ => Status::Unavailable,
        },
        detail: match (up.is_ok(), record_ok) {
            (true, true) if multi => {
                "TLS plaintext through uprobes (multi-uprobe links), plain HTTP through the sensor"
                    .into()
            }
            (true, true) => {
                "TLS plaintext through plain uprobes, plain HTTP through the sensor".into()
            }
            (false, true) => format!("plain HTTP only: TLS is not visible: uprobes: {}", why(&up)),
            _ => "needs record".into(),
        },
    });
    features.push(Feature {
        name: "egress by name",
        status: match (record_ok, lsm_ok) {
            (true, true) => Status::Works,
            (true, false) => Status::Degraded,
            _ => Status::Unavailable,
        },
        detail: match (record_ok, lsm_ok) {
            (true, true) => "names recorded, and enforced in the kernel (BPF LSM)".into(),
            (true, false) => "names are recorded, learned and diffed; enforcing host rules needs BPF LSM (the Landlock backend allows by address only)".into(),
            _ => "needs record".into(),
        },
    });
    Report {
        version: 1,
        probes,
        features,
    }
}

fn text(r: &Report) -> String {
    let mut s = String::from("agentguard doctor: what this host supports, tried\n\n");
    for p in &r.probes {
        s.push_str(&format!(
            "  {:<4} {:<28} {}\n",
            if p.ok { "ok" } else { "no" },
            p.name,
            p.detail
        ));
    }
    s.push_str("\nfeatures:\n");
    for f in &r.features {
        let st = match f.status {
            Status::Works => "works",
            Status::Degraded => "degraded",
            Status::Unavailable => "unavailable",
        };
        s.push_str(&format!("  {:<20} {:<12} {}\n", f.name, st, f.detail));
    }
    s
}

/// Whether BPF LSM programs load, attach and fire here (enforce --backend auto asks).
pub fn lsm_available() -> Result<()> {
    crate::sensor::capture_libbpf();
    bpf::probe(Kind::Lsm, None).map(|_| ())
}
