//! The guard: the kernel side of enforcement (BPF LSM, or Landlock's cgroup programs for
//! connections), behind one interface, and the watchdog that holds the tree's cgroup.
use std::mem::MaybeUninit;

use anyhow::Result;
use libbpf_rs::OpenObject;

use crate::enforce::{
    egress::Egress, endpoint::Endpoints, lsm::Lsm, watchdog::Watchdog, Backend, Setup,
};
use crate::sensor::Sensor;

/// The kernel side of enforcement: the backend's programs, and the HTTP endpoint check
/// both backends share. Their denials are read with the sensor's.
pub struct Guard<'a> {
    backend: Kernel<'a>,
    http: Endpoints<'a>,
}

enum Kernel<'a> {
    Lsm(Lsm<'a>),
    Egress(Egress<'a>),
}

impl Guard<'_> {
    pub fn denials(&self) -> Vec<&dyn libbpf_rs::MapCore> {
        let backend = match &self.backend {
            Kernel::Lsm(l) => l.denials(),
            Kernel::Egress(e) => e.denials(),
        };
        vec![backend, self.http.denials()]
    }

    /// Denial reports the guard's rings had no room for, so far.
    pub fn denials_lost(&self) -> u64 {
        let backend = match &self.backend {
            Kernel::Lsm(l) => l.denials_lost(),
            Kernel::Egress(e) => e.denials_lost(),
        };
        backend + self.http.denials_lost()
    }

    /// The HTTPS request check on a file the sensor probes for TLS plaintext.
    pub fn attach_tls(&self, path: &std::path::Path) -> anyhow::Result<Vec<libbpf_rs::Link>> {
        self.http.attach_tls(path)
    }
}

/// Storage the guard's BPF objects live in, for as long as the session.
pub struct Objects {
    lsm: MaybeUninit<OpenObject>,
    egress: MaybeUninit<OpenObject>,
    http: MaybeUninit<OpenObject>,
}

impl Objects {
    pub fn new() -> Objects {
        Objects {
            lsm: MaybeUninit::uninit(),
            egress: MaybeUninit::uninit(),
            http: MaybeUninit::uninit(),
        }
    }
}

/// The watchdog, started first of all: before any BPF object exists, so the watchdog holds
/// none of them, and before any other descriptor, so that agentguard's end of its pipe is
/// the first one a dying agentguard closes, ahead of the BPF links that enforce the tree.
/// The error is what to say; the command is then not started.
pub fn watchdog(setup: &Setup) -> Result<Watchdog> {
    let w = Watchdog::start(setup.max_tasks)
        .map_err(|e| anyhow::anyhow!("{e:#}\nagentguard: the command was not started"))?;
    // Said under -q too: a limit that is not there is a degradation.
    if let Some(why) = &w.unlimited {
        eprintln!("agentguard: --max-tasks is not applied: {why}; the tree's forks are not limited in number");
    }
    Ok(w)
}

/// Loads the backend's programs onto the tree's cgroup.
pub fn load<'a>(
    objects: &'a mut Objects,
    setup: &Setup,
    sensor: &Sensor,
    watchdog: &Watchdog,
) -> Result<Guard<'a>> {
    let backend = match &setup.backend {
        Backend::Lsm => Kernel::Lsm(Lsm::load(
            &mut objects.lsm,
            sensor.procs_fd(),
            &setup.compiled,
            setup.opts,
            &watchdog.cgroup,
        )?),
        Backend::Landlock(_) => Kernel::Egress(Egress::load(
            &mut objects.egress,
            &setup.compiled,
            &watchdog.cgroup,
            setup.opts.audit,
        )?),
    };
    let http = Endpoints::load(
        &mut objects.http,
        &setup.http,
        &watchdog.cgroup,
        setup.opts.audit,
    )?;
    Ok(Guard { backend, http })
}

/// What enforcement says before the start (the Landlock backend said it already).
pub fn announce(setup: &Setup, quiet: bool) {
    if quiet || matches!(setup.backend, Backend::Landlock(_)) {
        return;
    }
    let mode = if setup.opts.audit {
        "auditing (denying nothing)"
    } else {
        "enforcing"
    };
    eprintln!(
        "agentguard: {mode} {} ({} path rules, {} network rules, {} host rules) with BPF LSM",
        setup.profile_name,
        setup.compiled.rules.len(),
        setup.compiled.net.len(),
        setup.compiled.names.len()
    );
}
