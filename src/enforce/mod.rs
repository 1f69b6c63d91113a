//! `agentguard enforce`: a saved profile enforced in the kernel, through BPF LSM (exact) or,
//! where that is unavailable, Landlock for files and cgroup programs for connections.
pub mod admit;
pub mod compile;
pub mod egress;
pub mod endpoint;
pub mod landlock;
pub mod lsm;
pub mod needs;
pub mod seccomp;
pub mod watchdog;

use std::os::fd::OwnedFd;

/// Which mechanism enforces.
pub enum Backend {
    Lsm,
    /// The ruleset the command restricts itself with before exec.
    Landlock(OwnedFd),
}

/// What a session needs to enforce as well as follow (cmd/enforce.rs makes it).
pub struct Setup {
    pub compiled: compile::Compiled,
    pub opts: lsm::Options,
    pub profile_name: String,
    pub backend: Backend,
    /// With --deny-at above `new`: the profile as written, rating what the tree does, and
    /// the level below which uncovered behaviour was admitted (reported as ALLOWED).
    pub admitting: Option<(crate::diff::Checker, crate::diff::rules::Severity)>,
    /// The tree cgroup's pids.max (--max-tasks).
    pub max_tasks: u32,
    /// Plain HTTP requests, checked by endpoint under either backend.
    pub http: endpoint::Policy,
}

/// A counter the BPF side adds to in its mapped `.bss`: read as volatile, since the kernel
/// changes it under us (0 when the object has no `.bss`, which a load would have refused).
fn lost(counter: Option<&u64>) -> u64 {
    // SAFETY: a reference into the skeleton's mapping, valid and aligned while it lives.
    counter.map_or(0, |c| unsafe { std::ptr::read_volatile(c) })
}
