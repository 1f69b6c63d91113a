//! `--user`: the command runs as another user, as `runuser` would start it, so that an
//! agent that refuses root (Claude Code's --dangerously-skip-permissions) can be recorded
//! and enforced from a root agentguard, and ${HOME} in its profile is that user's home.
use std::ffi::CString;

use anyhow::{bail, Context, Result};
use nix::unistd::{Gid, Uid, User};

/// A user to become, resolved before the fork (the child only makes system calls).
pub struct RunAs {
    pub name: String,
    pub uid: Uid,
    pub gid: Gid,
    pub groups: Vec<Gid>,
    pub home: String,
}

impl RunAs {
    /// A user by name or number, from the passwd database.
    pub fn resolve(spec: &str) -> Result<RunAs> {
        let user = match spec.parse::<u32>() {
            Ok(uid) => User::from_uid(Uid::from_raw(uid)),
            Err(_) => User::from_name(spec),
        }
        .with_context(|| format!("--user {spec}: reading the passwd database"))?;
        let Some(user) = user else {
            bail!("--user {spec}: no such user in the passwd database");
        };
        let name = CString::new(user.name.as_bytes())
            .with_context(|| format!("--user {spec}: its name has a NUL byte"))?;
        let groups = nix::unistd::getgrouplist(&name, user.gid)
            .with_context(|| format!("--user {spec}: its groups"))?;
        Ok(RunAs {
            name: user.name,
            uid: user.uid,
            gid: user.gid,
            groups,
            home: user.dir.display().to_string(),
        })
    }

    /// The environment the command gets: agentguard's, with HOME, USER and LOGNAME the
    /// user's.
    pub fn environment(&self) -> Result<Vec<CString>> {
        let mut env: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| !matches!(k.as_str(), "HOME" | "USER" | "LOGNAME"))
            .collect();
        env.push(("HOME".into(), self.home.clone()));
        env.push(("USER".into(), self.name.clone()));
        env.push(("LOGNAME".into(), self.name.clone()));
        env.into_iter()
            .map(|(k, v)| {
                CString::new(format!("{k}={v}")).context("an environment variable has a NUL byte")
            })
            .collect()
    }

    /// In the child, before exec: groups, then group, then user (after the user, the
    /// others could no longer be set). Async-signal-safe: three system calls.
    pub fn become_user(&self) -> nix::Result<()> {
        nix::unistd::setgroups(&self.groups)?;
        nix::unistd::setgid(self.gid)?;
        nix::unistd::setuid(self.uid)
    }
}
