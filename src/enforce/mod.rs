//! `agentguard enforce`: a saved profile enforced in the kernel through BPF LSM.
pub mod compile;
pub mod lsm;
pub mod watchdog;

use anyhow::Result;

use crate::cli::{EnforceArgs, OnDeny};
use crate::profile::{include, Profile, Vars};

/// What record needs to enforce as well as record.
pub struct Setup {
    pub compiled: compile::Compiled,
    pub opts: lsm::Options,
    pub profile_name: String,
}

pub fn run(args: EnforceArgs) -> Result<i32> {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("agentguard: enforce loads BPF LSM programs: run it as root");
        return Ok(2);
    }
    let profile = Profile::load(&args.profile)?;
    let resolved = include::resolve(&profile, &args.profile)?;
    let vars = match args.run.pid {
        Some(pid) => Vars::for_pid(pid),
        None => Vars::from_env(),
    };
    let compiled = match compile::compile(&resolved, &vars) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("agentguard: {}: {e:#}\nagentguard: the profile cannot be enforced exactly; the command was not started", args.profile.display());
            return Ok(2);
        }
    };
    let setup = Setup {
        compiled,
        opts: lsm::Options {
            audit: args.audit,
            kill_on_deny: args.on_deny == OnDeny::Kill,
        },
        profile_name: args.profile.display().to_string(),
    };
    crate::record::run(args.run, Some(setup))
}
