//! `agentguard doctor`: what this host supports, found by doing it, and what that means
//! for each feature.
mod bpf;
mod host;

use anyhow::Result;
use serde::Serialize;

use crate::cli::{DoctorArgs, DoctorFormat};
use bpf::Kind;

/// One thing tried, or not tried and why.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    /// Stable, for programs: `bpf_lsm_program`.
    pub id: &'static str,
    /// For a person: "BPF LSM program".
    pub name: &'static str,
    pub status: ProbeStatus,
    /// What happened, or why it was not tried.
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeStatus {
    Ok,
    Failed,
    /// Needs what doctor does not have (root): not a failure of the host.
    NotTried,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Works,
    Degraded,
    Unavailable,
    /// What it needs could not be tried (doctor without root).
    Unchecked,
}

#[derive(Debug, Clone, Serialize)]
pub struct Feature {
    /// Stable, for programs: `enforce_bpf_lsm`.
    pub id: &'static str,
    pub name: &'static str,
    pub status: Status,
    /// Works: how; degraded: what is lost; unavailable: why; unchecked: what was not tried.
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub version: u32,
    /// Whether doctor ran as root: without it, what needs root is not tried.
    pub root: bool,
    pub probes: Vec<Probe>,
    pub features: Vec<Feature>,
}

pub fn run(args: DoctorArgs) -> Result<i32> {
    if !args.tls.is_empty() {
        return Ok(tls_files(&args.tls));
    }
    let r = examine();
    match args.format {
        DoctorFormat::Json => println!("{}", serde_json::to_string_pretty(&r)?),
        DoctorFormat::Text => print!("{}", text(&r)),
    }
    Ok(i32::from(
        r.features.iter().any(|f| f.status != Status::Works),
    ))
}

/// `doctor --tls FILE...`: the TLS functions of each file, by offset, and how they were
/// found; where BoringSSL's signature was searched, what it found, as an entry for the
/// table of known builds. 1 when a file has none, or the table and the signature disagree.
fn tls_files(files: &[std::path::PathBuf]) -> i32 {
    let mut code = 0;
    for f in files {
        match crate::sensor::tls_functions(f, true) {
            Ok(t) => {
                let at: Vec<String> = t
                    .found
                    .iter()
                    .map(|(n, o, _)| format!("{n} at {o:#x}"))
                    .collect();
                println!("{}: {}", f.display(), at.join(", "));
                println!("  found by: {}", t.how.as_deref().unwrap_or("its symbols"));
                if t.disagree {
                    println!(
                        "  the signature finds them elsewhere: the table is wrong for this build"
                    );
                    code = 1;
                }
                match t.entry {
                    Some(e) => println!("  the signature finds, as an entry for src/sensor/boring_builds.toml:\n\n{e}"),
                    None if t.known => println!("  the signature finds nothing"),
                    None => {}
                }
            }
            Err(e) => {
                println!("{}: no TLS functions to probe: {e:#}", f.display());
                code = 1;
            }
        }
    }
    code
}

const AS_ROOT: &str = "run doctor as root (sudo agentguard doctor): agentguard itself runs as root";

/// A probe's outcome: what it found, or why it failed, or why it was not tried.
enum Tried {
    Ok(String),
    Failed(String),
    NotTried(String),
}

impl Tried {
    fn ok(&self) -> bool {
        matches!(self, Tried::Ok(_))
    }
    fn untried(&self) -> bool {
        matches!(self, Tried::NotTried(_))
    }
    fn why(&self) -> &str {
        match self {
            Tried::Ok(_) => "",
            Tried::Failed(s) | Tried::NotTried(s) => s,
        }
    }
    fn from(r: Result<String>) -> Tried {
        match r {
            Ok(s) => Tried::Ok(s),
            Err(e) => Tried::Failed(format!("{e:#}")),
        }
    }
}

fn feature(
    id: &'static str,
    name: &'static str,
    status: Status,
    detail: String,
    fix: Option<String>,
) -> Feature {
    Feature {
        id,
        name,
        status,
        detail,
        fix,
    }
}

const BTF_FIX: &str = "a kernel with CONFIG_DEBUG_INFO_BTF=y (BTF at /sys/kernel/btf/vmlinux)";
const LSM_FIX: &str = "add bpf to the kernel's lsm= list (GRUB_CMDLINE_LINUX in /etc/default/grub, update-grub, reboot; CONFIG_BPF_LSM=y), or use --backend landlock";

/// What each probe found on this host.
struct Probed {
    root: bool,
    caps: Tried,
    btf: Tried,
    lsm_list: Tried,
    /// Landlock's ABI version, 0 without Landlock.
    landlock: i64,
    landlock_t: Tried,
    cgroup_t: Tried,
    tp: Tried,
    up: Tried,
    fe: Tried,
    lsm: Tried,
    cg: Tried,
    multi: Tried,
}

/// Every probe, then the features they support.
pub fn examine() -> Report {
    let p = probe_host();
    Report {
        version: 2,
        root: p.root,
        probes: probes(&p),
        features: features(&p),
    }
}

fn probe_host() -> Probed {
    crate::sensor::capture_libbpf();
    let root = nix::unistd::Uid::effective().is_root();
    let untried = || {
        Tried::NotTried("not tried: loading BPF programs needs root (CAP_BPF, CAP_PERFMON)".into())
    };
    let cgroup = host::cgroup2();
    let cg_root = cgroup.as_ref().ok().cloned();
    let landlock = host::landlock_abi();
    let try_prog = |k: Kind| -> Tried {
        if root {
            Tried::from(bpf::probe(k, cg_root.as_deref()))
        } else {
            untried()
        }
    };
    let multi = if !root {
        untried()
    } else if crate::sensor::kernel_has_uprobe_multi() {
        Tried::Ok("the kernel makes them".into())
    } else {
        Tried::Failed("not supported by this kernel (6.6 and later): plain uprobes are used".into())
    };
    Probed {
        root,
        caps: Tried::from(host::capabilities()),
        btf: Tried::from(host::btf()),
        lsm_list: Tried::from(host::lsm_list()),
        landlock: landlock.as_ref().ok().copied().unwrap_or(0),
        landlock_t: match &landlock {
            Ok(v) => Tried::Ok(format!("ABI {v}")),
            Err(e) => Tried::Failed(format!("{e:#}")),
        },
        cgroup_t: match &cgroup {
            Ok(p) => Tried::Ok(format!("mounted at {}", p.display())),
            Err(e) => Tried::Failed(format!("{e:#}")),
        },
        tp: try_prog(Kind::Tracepoint),
        up: try_prog(Kind::Uprobe),
        fe: try_prog(Kind::Fentry),
        lsm: try_prog(Kind::Lsm),
        cg: try_prog(Kind::Cgroup),
        multi,
    }
}

fn probes(p: &Probed) -> Vec<Probe> {
    let Probed {
        caps,
        btf,
        lsm_list,
        landlock_t,
        cgroup_t,
        tp,
        up,
        fe,
        lsm,
        cg,
        multi,
        ..
    } = p;
    let probe = |id, name, t: &Tried, fix: Option<&str>| {
        let (status, detail) = match t {
            Tried::Ok(s) => (ProbeStatus::Ok, s.clone()),
            Tried::Failed(s) => (ProbeStatus::Failed, s.clone()),
            Tried::NotTried(s) => (ProbeStatus::NotTried, s.clone()),
        };
        let fix = match status {
            ProbeStatus::Ok => None,
            ProbeStatus::NotTried => Some(AS_ROOT.to_string()),
            ProbeStatus::Failed => fix.map(str::to_string),
        };
        Probe {
            id,
            name,
            status,
            detail,
            fix,
        }
    };
    vec![
        probe("capabilities", "capabilities", caps, Some(AS_ROOT)),
        probe("btf", "BTF", btf, Some(BTF_FIX)),
        probe("tracepoint", "tracepoint (tp_btf)", tp, Some(BTF_FIX)),
        probe("uprobe", "uprobe", up, None),
        probe(
            "uprobe_multi",
            "multi-uprobe links",
            multi,
            Some("Linux 6.6 or later (plain uprobes work meanwhile)"),
        ),
        probe("fentry", "fentry", fe, None),
        probe("bpf_lsm_program", "BPF LSM program", lsm, Some(LSM_FIX)),
        probe(
            "bpf_lsm_active",
            "BPF LSM in the active list",
            lsm_list,
            Some(LSM_FIX),
        ),
        probe(
            "cgroup2",
            "cgroup v2",
            cgroup_t,
            Some("mount -t cgroup2 none /sys/fs/cgroup"),
        ),
        probe("cgroup_program", "cgroup program (connect4)", cg, None),
        probe(
            "landlock",
            "Landlock",
            landlock_t,
            Some("boot with landlock in the lsm= list (CONFIG_SECURITY_LANDLOCK=y)"),
        ),
    ]
}

fn features(p: &Probed) -> Vec<Feature> {
    let mut features = Vec::new();
    let record_ok = p.tp.ok() && p.btf.ok();
    features.push(if record_ok {
        feature(
            "record",
            "record",
            Status::Works,
            "the sensor's tracepoints load and fire".into(),
            None,
        )
    } else if p.tp.untried() {
        feature(
            "record",
            "record",
            Status::Unchecked,
            format!(
                "{}; BTF: {}",
                p.tp.why(),
                if p.btf.ok() { "present" } else { p.btf.why() }
            ),
            Some(AS_ROOT.into()),
        )
    } else {
        feature(
            "record",
            "record",
            Status::Unavailable,
            format!("tracepoints with BTF: {}{}", p.tp.why(), p.btf.why()),
            Some(BTF_FIX.into()),
        )
    });
    features.push(feature(
        "diff",
        "diff",
        Status::Works,
        "reads files only".into(),
        None,
    ));
    features.push(if record_ok {
        feature(
            "watch",
            "watch",
            Status::Works,
            "live and replayed".into(),
            None,
        )
    } else if p.tp.untried() {
        feature(
            "watch",
            "watch",
            Status::Unchecked,
            "--replay of a kept event log works; live watching needs record, not tried".into(),
            Some(AS_ROOT.into()),
        )
    } else {
        feature(
            "watch",
            "watch",
            Status::Degraded,
            "live watching needs record; --replay of a kept event log works".into(),
            Some(BTF_FIX.into()),
        )
    });
    features.extend(enforce_features(p));
    features.push(llm_feature(p, record_ok));
    features.push(egress_feature(p, record_ok));
    features
}

fn enforce_features(p: &Probed) -> [Feature; 2] {
    let Probed {
        lsm,
        lsm_list,
        landlock,
        landlock_t,
        cg,
        ..
    } = p;
    [
        match &lsm {
        Tried::Ok(_) => feature("enforce_bpf_lsm", "enforce (BPF LSM)", Status::Works, "LSM programs load, attach and fire".into(), None),
        Tried::NotTried(why) => feature(
            "enforce_bpf_lsm",
            "enforce (BPF LSM)",
            Status::Unchecked,
            format!(
                "{why}; bpf is {} the active LSM list",
                if lsm_list.ok() { "in" } else { "not in" }
            ),
            Some(AS_ROOT.into()),
        ),
        Tried::Failed(why) if lsm_list.ok() => feature(
            "enforce_bpf_lsm",
            "enforce (BPF LSM)",
            Status::Unavailable,
            format!("{why}; \"bpf\" is in the active LSM list, yet programs are refused (a kernel or sandbox policy)"),
            Some("use --backend landlock".into()),
        ),
        Tried::Failed(why) => feature("enforce_bpf_lsm", "enforce (BPF LSM)", Status::Unavailable, why.clone(), Some(LSM_FIX.into())),
    },
        match (*landlock, cg) {
        (0, _) => feature(
            "enforce_landlock",
            "enforce (Landlock)",
            Status::Unavailable,
            format!("Landlock: {}", landlock_t.why()),
            Some("boot with landlock in the lsm= list (CONFIG_SECURITY_LANDLOCK=y)".into()),
        ),
        (v, Tried::NotTried(why)) => feature(
            "enforce_landlock",
            "enforce (Landlock)",
            Status::Unchecked,
            format!("Landlock ABI {v} is there; the cgroup programs that enforce connections: {why}"),
            Some(AS_ROOT.into()),
        ),
        (v, Tried::Failed(why)) => feature(
            "enforce_landlock",
            "enforce (Landlock)",
            Status::Degraded,
            format!("files by hierarchy work (ABI {v}); outbound connections are not enforced: cgroup programs: {why}"),
            None,
        ),
        (v, Tried::Ok(_)) if v < 2 => feature(
            "enforce_landlock",
            "enforce (Landlock)",
            Status::Degraded,
            format!("ABI {v}: renames and links across directories cannot be restricted (ABI 2)"),
            Some("Linux 5.19 or later".into()),
        ),
        (v, Tried::Ok(_)) => feature(
            "enforce_landlock",
            "enforce (Landlock)",
            Status::Works,
            format!("files by hierarchy (ABI {v}), connections by address and port (cgroup programs); rules are widened to hierarchies, reported before the start"),
            None,
        ),
    },
    ]
}

fn llm_feature(p: &Probed, record_ok: bool) -> Feature {
    let Probed {
        root, up, multi, ..
    } = p;
    let (llm_status, llm_detail, llm_fix) = if !*root {
        (
            Status::Unchecked,
            format!("uprobes and the sensor: {}", up.why()),
            Some(AS_ROOT.to_string()),
        )
    } else {
        match (up.ok(), record_ok) {
            (true, true) if multi.ok() => (
                Status::Works,
                "TLS plaintext through uprobes (multi-uprobe links), plain HTTP through the sensor"
                    .into(),
                None,
            ),
            (true, true) => (
                Status::Works,
                "TLS plaintext through plain uprobes, plain HTTP through the sensor".into(),
                None,
            ),
            (false, true) => (
                Status::Degraded,
                format!("plain HTTP only: TLS is not visible: uprobes: {}", up.why()),
                None,
            ),
            _ => (
                Status::Unavailable,
                "needs record".into(),
                Some(BTF_FIX.into()),
            ),
        }
    };
    feature(
        "llm_visibility",
        "LLM visibility",
        llm_status,
        llm_detail,
        llm_fix,
    )
}

fn egress_feature(p: &Probed, record_ok: bool) -> Feature {
    let Probed { tp, lsm, .. } = p;
    let (eg_status, eg_detail, eg_fix) = match (tp, lsm) {
        (Tried::NotTried(why), _) | (_, Tried::NotTried(why)) => (Status::Unchecked, why.clone(), Some(AS_ROOT.to_string())),
        _ if record_ok && lsm.ok() => (Status::Works, "names recorded, and enforced in the kernel (BPF LSM)".into(), None),
        _ if record_ok => (Status::Degraded, "names are recorded, learned and diffed; enforcing host rules needs BPF LSM (the Landlock backend allows by address only)".into(), Some(LSM_FIX.to_string())),
        _ => (Status::Unavailable, "needs record".into(), Some(BTF_FIX.to_string())),
    };
    feature(
        "egress_by_name",
        "egress by name",
        eg_status,
        eg_detail,
        eg_fix,
    )
}

fn text(r: &Report) -> String {
    let mut s = String::from("agentguard doctor: what this host supports, tried\n");
    if !r.root {
        s.push_str("(not root: what needs root was not tried; run sudo agentguard doctor)\n");
    }
    s.push('\n');
    for p in &r.probes {
        let st = match p.status {
            ProbeStatus::Ok => "ok",
            ProbeStatus::Failed => "no",
            ProbeStatus::NotTried => "--",
        };
        s.push_str(&format!("  {st:<4} {:<28} {}\n", p.name, p.detail));
        if let (Some(fix), ProbeStatus::Failed) = (&p.fix, p.status) {
            s.push_str(&format!("  {:<4} {:<28} fix: {fix}\n", "", ""));
        }
    }
    s.push_str("\nfeatures:\n");
    for f in &r.features {
        let st = match f.status {
            Status::Works => "works",
            Status::Degraded => "degraded",
            Status::Unavailable => "unavailable",
            Status::Unchecked => "unchecked",
        };
        s.push_str(&format!("  {:<20} {:<12} {}\n", f.name, st, f.detail));
        if let Some(fix) = &f.fix {
            s.push_str(&format!("  {:<20} {:<12} fix: {fix}\n", "", ""));
        }
    }
    s
}

/// Whether BPF LSM programs load, attach and fire here (enforce --backend auto asks).
pub fn lsm_available() -> Result<()> {
    crate::sensor::capture_libbpf();
    bpf::probe(Kind::Lsm, None).map(|_| ())
}
