//! The protected set: paths that learning never admits and never generalises. Seeing one
//! during training is a finding to review; only a rule written by hand admits it.
use std::sync::OnceLock;

use globset::{GlobSet, GlobSetBuilder};

use crate::event::Access;

/// (pattern, category): credentials, shell start-up files, VCS hooks, agent configuration,
/// system secrets and persistence points, process memory and raw devices. `**/` matches any
/// home or checkout.
pub const PROTECTED: &[(&str, &str)] = &[
    // private keys and cloud credentials
    ("**/.ssh/**", "credentials"),
    ("**/.aws/**", "credentials"),
    ("**/.config/gcloud/**", "credentials"),
    ("**/.azure/**", "credentials"),
    ("**/.kube/config", "credentials"),
    ("**/.docker/config.json", "credentials"),
    ("**/.gnupg/**", "credentials"),
    ("**/.netrc", "credentials"),
    ("**/.git-credentials", "credentials"),
    ("**/.npmrc", "credentials"),
    ("**/.pypirc", "credentials"),
    ("**/.env", "credentials"),
    ("**/.env.*", "credentials"),
    ("/etc/ssh/ssh_host_*_key", "credentials"),
    // shell and interpreter history: typed secrets
    ("**/.bash_history", "shell history"),
    ("**/.zsh_history", "shell history"),
    ("**/.python_history", "shell history"),
    ("**/.psql_history", "shell history"),
    ("**/.mysql_history", "shell history"),
    // shell start-up files
    ("**/.bashrc", "a shell start-up file"),
    ("**/.bash_profile", "a shell start-up file"),
    ("**/.bash_login", "a shell start-up file"),
    ("**/.bash_logout", "a shell start-up file"),
    ("**/.profile", "a shell start-up file"),
    ("**/.zshrc", "a shell start-up file"),
    ("**/.zshenv", "a shell start-up file"),
    ("**/.zprofile", "a shell start-up file"),
    ("**/.zlogin", "a shell start-up file"),
    ("**/.config/fish/**", "a shell start-up file"),
    ("/etc/profile", "a shell start-up file"),
    ("/etc/profile.d/**", "a shell start-up file"),
    ("/etc/bash.bashrc", "a shell start-up file"),
    ("/etc/environment", "a shell start-up file"),
    ("/etc/ld.so.preload", "a shell start-up file"),
    // version control hooks and configuration
    ("**/.git/hooks/**", "version control hooks"),
    ("**/.git/config", "version control hooks"),
    // agent configuration
    ("**/.mcp.json", "agent configuration"),
    ("**/.claude/**", "agent configuration"),
    ("**/.claude.json", "agent configuration"),
    ("**/.cursor/**", "agent configuration"),
    ("**/.codex/**", "agent configuration"),
    ("**/.continue/**", "agent configuration"),
    ("**/.config/github-copilot/**", "agent configuration"),
    // system secrets, and persistence points
    ("/etc/shadow", "a system secret"),
    ("/etc/gshadow", "a system secret"),
    ("/etc/sudoers", "a persistence point"),
    ("/etc/sudoers.d/**", "a persistence point"),
    ("/etc/crontab", "a persistence point"),
    ("/etc/cron.*/**", "a persistence point"),
    ("/var/spool/cron/**", "a persistence point"),
    ("/etc/systemd/**", "a persistence point"),
    ("/usr/lib/systemd/system/**", "a persistence point"),
    ("/lib/systemd/system/**", "a persistence point"),
    ("**/.config/systemd/**", "a persistence point"),
    // process memory and raw devices
    ("/proc/*/mem", "process memory or a raw device"),
    ("/proc/kcore", "process memory or a raw device"),
    ("/dev/mem", "process memory or a raw device"),
    ("/dev/kmem", "process memory or a raw device"),
    ("/dev/port", "process memory or a raw device"),
    ("/dev/sd*", "process memory or a raw device"),
    ("/dev/vd*", "process memory or a raw device"),
    ("/dev/xvd*", "process memory or a raw device"),
    ("/dev/nvme*", "process memory or a raw device"),
    ("/dev/dm-*", "process memory or a raw device"),
    ("/dev/mapper/**", "process memory or a raw device"),
];

fn set() -> &'static GlobSet {
    static SET: OnceLock<GlobSet> = OnceLock::new();
    SET.get_or_init(|| {
        let mut b = GlobSetBuilder::new();
        for (p, _) in PROTECTED {
            b.add(super::pattern::glob(p).expect("the protected set's patterns are valid"));
        }
        b.build().expect("the protected set compiles")
    })
}

/// What a protected path is protected from. Secrets (credentials, history, process memory,
/// raw devices) from every access: reading one is the harm. Persistence points (shell
/// start-up files, VCS hooks and configuration, agent configuration, sudoers, cron,
/// systemd) from writes only: git reads .git/config and bash its .bashrc on every run,
/// and changing them is the harm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    All,
    Writes,
}

/// The accesses a `Guard::Writes` path is protected from.
pub const WRITES: &[Access] = &[
    Access::Write,
    Access::Append,
    Access::Create,
    Access::Truncate,
    Access::Delete,
    Access::Rename,
    Access::Chmod,
    Access::Mkdir,
    Access::Link,
    Access::Symlink,
];

impl Guard {
    pub fn of(category: &str) -> Guard {
        match category {
            "credentials"
            | "shell history"
            | "a system secret"
            | "process memory or a raw device" => Guard::All,
            _ => Guard::Writes,
        }
    }

    /// Whether it protects `a` (an exec is an access outside the file set: `None`).
    pub fn covers(self, a: Option<Access>) -> bool {
        match (self, a) {
            (Guard::All, _) => true,
            (Guard::Writes, Some(a)) => WRITES.contains(&a),
            (Guard::Writes, None) => false,
        }
    }
}

/// Whether an absolute path (variables expanded) is protected from some access.
#[cfg(test)]
pub fn is_protected(path: &str) -> bool {
    set().is_match(super::pattern::subject(path))
}

/// How a path is protected: from everything if any pattern that matches it says so.
pub fn guard(path: &str) -> Option<Guard> {
    let m = set().matches(super::pattern::subject(path));
    if m.is_empty() {
        None
    } else if m.iter().any(|i| Guard::of(PROTECTED[*i].1) == Guard::All) {
        Some(Guard::All)
    } else {
        Some(Guard::Writes)
    }
}

/// Whether `access` on `path` (None: exec) is protected.
pub fn protects(path: &str, access: Option<Access>) -> bool {
    guard(path).is_some_and(|g| g.covers(access))
}

/// What kind of protected path this is ("credentials", "a shell start-up file", ...).
pub fn category(path: &str) -> Option<&'static str> {
    set()
        .matches(super::pattern::subject(path))
        .first()
        .map(|i| PROTECTED[*i].1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_persistence_are_protected_ordinary_files_are_not() {
        for p in [
            "/home/ann/.ssh/id_ed25519",
            "/root/.aws/credentials",
            "/home/ann/.bashrc",
            "/srv/app/.env",
            "/srv/app/.env.production",
            "/srv/app/.git/hooks/pre-commit",
            "/srv/app/.mcp.json",
            "/etc/shadow",
            "/etc/sudoers.d/90-agent",
            "/etc/cron.d/job",
            "/proc/1/mem",
            "/dev/sda1",
        ] {
            assert!(is_protected(p), "{p}");
        }
        for p in [
            "/etc/hosts",
            "/home/ann/project/main.py",
            "/srv/app/.envrc.md",
            "/proc/1/status",
            "/dev/null",
            "/srv/app/.git/HEAD",
        ] {
            assert!(!is_protected(p), "{p}");
        }
    }

    #[test]
    fn secrets_are_guarded_from_reading_persistence_points_from_writing() {
        for p in [
            "/home/ann/.ssh/id_ed25519",
            "/srv/app/.env",
            "/etc/shadow",
            "/proc/1/mem",
        ] {
            assert_eq!(guard(p), Some(Guard::All), "{p}");
            assert!(protects(p, Some(Access::Read)) && protects(p, None), "{p}");
        }
        for p in [
            "/home/ann/.bashrc",
            "/srv/app/.git/config",
            "/srv/app/.git/hooks/pre-commit",
            "/srv/app/.mcp.json",
            "/etc/sudoers",
            "/etc/systemd/system/x.service",
        ] {
            assert_eq!(guard(p), Some(Guard::Writes), "{p}");
            assert!(
                !protects(p, Some(Access::Read)) && !protects(p, None),
                "{p}"
            );
            assert!(
                protects(p, Some(Access::Write)) && protects(p, Some(Access::Rename)),
                "{p}"
            );
        }
        assert_eq!(guard("/etc/hosts"), None);
    }
}
