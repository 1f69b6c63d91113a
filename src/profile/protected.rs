//! The protected set: paths that learning never admits and never generalises. Seeing one
//! during training is a finding to review; only a rule written by hand admits it.
use std::sync::OnceLock;

use globset::{GlobSet, GlobSetBuilder};

/// Credentials, shell start-up files, VCS hooks, agent configuration, system secrets and
/// persistence points, process memory and raw devices. `**/` matches any home or checkout.
pub const PROTECTED: &[&str] = &[
    // private keys and cloud credentials
    "**/.ssh/**",
    "**/.aws/**",
    "**/.config/gcloud/**",
    "**/.azure/**",
    "**/.kube/config",
    "**/.docker/config.json",
    "**/.gnupg/**",
    "**/.netrc",
    "**/.git-credentials",
    "**/.npmrc",
    "**/.pypirc",
    "**/.env",
    "**/.env.*",
    "/etc/ssh/ssh_host_*_key",
    // shell start-up files
    "**/.bashrc",
    "**/.bash_profile",
    "**/.bash_login",
    "**/.bash_logout",
    "**/.profile",
    "**/.zshrc",
    "**/.zshenv",
    "**/.zprofile",
    "**/.zlogin",
    "**/.config/fish/**",
    "/etc/profile",
    "/etc/profile.d/**",
    "/etc/bash.bashrc",
    "/etc/environment",
    "/etc/ld.so.preload",
    // version control hooks and configuration
    "**/.git/hooks/**",
    "**/.git/config",
    // agent configuration
    "**/.mcp.json",
    "**/.claude/**",
    "**/.claude.json",
    "**/.cursor/**",
    "**/.codex/**",
    "**/.continue/**",
    "**/.config/github-copilot/**",
    // system secrets and persistence
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/sudoers",
    "/etc/sudoers.d/**",
    "/etc/crontab",
    "/etc/cron.*/**",
    "/var/spool/cron/**",
    "/etc/systemd/**",
    "/usr/lib/systemd/system/**",
    "/lib/systemd/system/**",
    "**/.config/systemd/**",
    // process memory and raw devices
    "/proc/*/mem",
    "/proc/kcore",
    "/dev/mem",
    "/dev/kmem",
    "/dev/port",
    "/dev/sd*",
    "/dev/vd*",
    "/dev/xvd*",
    "/dev/nvme*",
    "/dev/dm-*",
    "/dev/mapper/**",
];

fn set() -> &'static GlobSet {
    static SET: OnceLock<GlobSet> = OnceLock::new();
    SET.get_or_init(|| {
        let mut b = GlobSetBuilder::new();
        for p in PROTECTED {
            b.add(super::pattern::glob(p).expect("the protected set's patterns are valid"));
        }
        b.build().expect("the protected set compiles")
    })
}

/// Whether an absolute path (variables expanded) is protected.
pub fn is_protected(path: &str) -> bool {
    set().is_match(path)
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
