//! `agentguard enforce`: a saved profile compiled for the backend this kernel allows (BPF
//! LSM, exact; or Landlock for files and cgroup programs for connections), checked for what
//! it needs to run its own programs, then enforced on the tree by a session.
use anyhow::{bail, Result};

use crate::cli::{Backend as Choice, EnforceArgs, OnDeny};
use crate::enforce::{admit, compile, endpoint, landlock, lsm, needs, Backend, Setup};
use crate::profile::{include, Profile, Vars};

pub fn run(args: EnforceArgs) -> Result<i32> {
    if !nix::unistd::Uid::effective().is_root() {
        bail!("enforce loads BPF programs: run it as root");
    }
    let profile = Profile::load(&args.profile)?;
    let resolved = include::resolve(&profile, &args.profile)?;
    let (vars, _) = crate::session::run_vars(&args.run)?;
    let name = args.profile.display().to_string();
    let use_lsm = match args.backend {
        Choice::BpfLsm => true,
        Choice::Landlock => false,
        Choice::Auto => match crate::doctor::lsm_available() {
            Ok(()) => true,
            Err(why) => {
                eprintln!(
                    "agentguard: BPF LSM is unavailable here ({why:#}): enforcing with Landlock and cgroup programs instead (--backend bpf-lsm to require BPF LSM)"
                );
                false
            }
        },
    };
    // --deny-at: what the table rates below the level joins the profile, as kernel rules.
    let admitting = match args.deny_at.level() {
        Some(level) => Some((
            crate::diff::Checker::new(&profile, &args.profile, vars.clone())?,
            level,
        )),
        None => None,
    };
    let effective = match &admitting {
        Some((checker, level)) => {
            let a = admit::widen(&resolved, checker, &vars, *level);
            if !args.run.quiet {
                eprintln!(
                    "agentguard: --deny-at {}: denied is what diff rates {} or above; admitted beyond {name}, and reported as ALLOWED when it happens:",
                    level.name(),
                    level.name()
                );
                for l in &a.lines {
                    eprintln!("agentguard:   {l}");
                }
            }
            for n in &a.narrowed {
                eprintln!("agentguard:   not admitted: {n}");
            }
            a.profile
        }
        None => resolved.clone(),
    };
    let compiled = match compile::compile(&effective, &vars) {
        Ok(c) => c,
        // Landlock widens what BPF LSM cannot check exactly; BPF LSM refuses it.
        Err(e) if use_lsm => {
            bail!("{name}: {e:#}\nagentguard: the profile cannot be enforced exactly; the command was not started");
        }
        Err(_) => compile::compile_net(&effective)?,
    };
    // What the kernel needs to run the profile's own programs, found before the start
    // rather than as the first exec's EPERM.
    let missing = needs::missing(&resolved, &vars)?;
    if !missing.is_empty() {
        for m in &missing {
            eprintln!("agentguard: {name}: {m}");
        }
        bail!("the profile cannot run its own programs; the command was not started");
    }
    // Plain HTTP by endpoint: what the level denies of what the profile does not cover.
    let mut http = endpoint::policy(&effective, args.deny_at.level());
    if args.run.pid.is_some() {
        http.adopt_unseen = true;
        eprintln!(
            "agentguard: {name}: narrowed: --pid: TLS connections the tree made before agentguard attached are checked by destination only, not by endpoint"
        );
    }
    for n in &http.narrowed {
        eprintln!("agentguard: {name}: narrowed: {n}");
    }
    if args.run.llm.no_llm {
        // The HTTPS check rides on the TLS probes that --no-llm leaves off.
        eprintln!(
            "agentguard: {name}: narrowed: --no-llm: HTTPS requests are checked by destination only, not by endpoint (the TLS probes are off)"
        );
    }
    let opts = lsm::Options {
        audit: args.audit,
        kill_on_deny: args.on_deny == OnDeny::Kill,
    };
    let backend = if use_lsm {
        Backend::Lsm
    } else {
        match landlock_backend(&args, &effective, &vars, &compiled, &name) {
            Ok(b) => b,
            Err(why) => {
                bail!("{why:#}\nagentguard: the command was not started");
            }
        }
    };
    let setup = Setup {
        compiled,
        opts,
        profile_name: name,
        backend,
        admitting,
        max_tasks: args.max_tasks,
        http,
    };
    crate::session::run(args.run, Some(setup))
}

/// The Landlock ruleset, after saying what it does not cover and which rules it widened
/// or narrowed: never a silent degradation.
fn landlock_backend(
    args: &EnforceArgs,
    p: &Profile,
    vars: &Vars,
    c: &compile::Compiled,
    name: &str,
) -> Result<Backend> {
    if args.run.pid.is_some() {
        anyhow::bail!("--pid cannot be enforced with Landlock: a Landlock ruleset applies to a process from when it restricts itself, so a running tree cannot be put under one (BPF LSM can)");
    }
    if args.audit {
        anyhow::bail!("--audit needs BPF LSM: Landlock has no complain mode");
    }
    if args.on_deny == OnDeny::Kill {
        anyhow::bail!("--on-deny kill needs BPF LSM: under Landlock a denied call fails with EACCES (files) or EPERM (connections)");
    }
    let plan = landlock::plan(p, vars);
    let ruleset = landlock::ruleset(&plan)?;
    let mut not = vec![
        "unix sockets are checked by the name the program passes, not the socket a symlink there leads to".to_string(),
        "chmod, chown, a file's times and extended attributes (not restricted; file capabilities are: CAP_SETFCAP is dropped)".to_string(),
    ];
    if !c.names.is_empty() {
        not.push(format!(
            "{} host rules: connections by name are denied (allowed by address only)",
            c.names.len()
        ));
    }
    if args.run.quiet {
        // Quiet, not silent: what Landlock changes is said in one line.
        eprintln!(
            "agentguard: enforcing {name} with Landlock: {} rules widened, {} narrowed, {} things not covered (without -q: which)",
            plan.widened.len(),
            plan.narrowed.len(),
            not.len()
        );
        return Ok(Backend::Landlock(ruleset));
    }
    eprintln!(
        "agentguard: enforcing {name} with Landlock ({} file grants) and cgroup programs ({} network rules)",
        plan.grants.len(),
        c.net.len()
    );
    eprintln!(
        "agentguard: and a seccomp filter: clone3 (ENOSYS: clone is used instead), terminal input injection, raw, packet and other socket families, TCP Fast Open, kernel TLS, device nodes, mounts, kernel modules, bpf() and kexec fail with EPERM; signals outside the tree are refused by Landlock; the tree runs without CAP_NET_ADMIN and CAP_SETFCAP"
    );
    eprintln!("agentguard: not covered by Landlock: {}", not.join("; "));
    for w in &plan.widened {
        eprintln!("agentguard: widened: {w}");
    }
    for n in &plan.narrowed {
        eprintln!("agentguard: narrowed: {n}");
    }
    Ok(Backend::Landlock(ruleset))
}
