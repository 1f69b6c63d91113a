//! The protected set: paths that learning never admits and never generalises. Seeing one
//! during training is a finding to review; only a rule written by hand admits it.
use std::sync::OnceLock;

use globset::{GlobSet, GlobSetBuilder};

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
    // system secrets and persistence
    ("/etc/shadow", "a system secret or persistence point"),
    ("/etc/gshadow", "a system secret or persistence point"),
    ("/etc/sudoers", "a system secret or persistence point"),
    ("/etc/sudoers.d/**", "a system secret or persistence point"),
    ("/etc/crontab", "a system secret or persistence point"),
    ("/etc/cron.*/**", "a system secret or persistence point"),
    ("/var/spool/cron/**", "a system secret or persistence point"),
    ("/etc/systemd/**", "a system secret or persistence point"),
    (
        "/usr/lib/systemd/system/**",
        "a system secret or persistence point",
    ),
    (
        "/lib/systemd/system/**",
        "a system secret or persistence point",
    ),
    (
        "**/.config/systemd/**",
        "a system secret or persistence point",
    ),
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

/// Whether an absolute path (variables expanded) is protected.
pub fn is_protected(path: &str) -> bool {
    set().is_match(super::pattern::subject(path))
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
}
