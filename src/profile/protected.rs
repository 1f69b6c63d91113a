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
    ("**/.config/gh/hosts.yml", "credentials"),
    ("**/.config/git/credentials", "credentials"),
    ("**/.pgpass", "credentials"),
    ("**/.my.cnf", "credentials"),
    ("**/.vault-token", "credentials"),
    ("**/.cache/huggingface/token", "credentials"),
    ("**/.terraform.d/credentials.tfrc.json", "credentials"),
    ("/etc/ssl/private/**", "credentials"),
    ("/etc/letsencrypt/**", "credentials"),
    ("/etc/kubernetes/**", "credentials"),
    ("/var/run/secrets/**", "credentials"),
    ("/run/secrets/**", "credentials"),
    // shell and interpreter history: typed secrets
    ("**/.bash_history", "shell history"),
    ("**/.zsh_history", "shell history"),
    ("**/.python_history", "shell history"),
    ("**/.psql_history", "shell history"),
    ("**/.mysql_history", "shell history"),
    ("**/.local/share/fish/fish_history", "shell history"),
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
    ("**/.bash_aliases", "a shell start-up file"),
    ("**/.config/fish/**", "a shell start-up file"),
    ("**/.config/autostart/**", "a shell start-up file"),
    ("/etc/profile", "a shell start-up file"),
    ("/etc/profile.d/**", "a shell start-up file"),
    ("/etc/bash.bashrc", "a shell start-up file"),
    ("/etc/environment", "a shell start-up file"),
    ("/etc/ld.so.preload", "a shell start-up file"),
    // version control hooks and configuration
    ("**/.git/hooks/**", "version control hooks"),
    ("**/.git/config", "version control hooks"),
    ("**/.git/modules/*/hooks/**", "version control hooks"),
    ("**/.git/modules/*/config", "version control hooks"),
    // core.hooksPath and core.fsmonitor run programs in every repository
    ("**/.gitconfig", "version control hooks"),
    ("**/.config/git/config", "version control hooks"),
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
    // the backups passwd and friends keep of them
    ("/etc/shadow-", "a system secret"),
    ("/etc/gshadow-", "a system secret"),
    ("/etc/sudoers", "a persistence point"),
    ("/etc/sudoers.d/**", "a persistence point"),
    ("/etc/crontab", "a persistence point"),
    ("/etc/cron.*/**", "a persistence point"),
    ("/var/spool/cron/**", "a persistence point"),
    ("/etc/systemd/**", "a persistence point"),
    ("/etc/passwd", "a persistence point"),
    ("/etc/group", "a persistence point"),
    ("/etc/pam.d/**", "a persistence point"),
    ("/etc/ld.so.conf.d/**", "a persistence point"),
    ("/etc/init.d/**", "a persistence point"),
    ("/etc/rc.local", "a persistence point"),
    ("**/.local/share/systemd/**", "a persistence point"),
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
    ("/dev/md*", "process memory or a raw device"),
    ("/dev/mmcblk*", "process memory or a raw device"),
    ("/dev/loop*", "process memory or a raw device"),
    ("/dev/nbd*", "process memory or a raw device"),
    ("/dev/sr*", "process memory or a raw device"),
    ("/dev/hd*", "process memory or a raw device"),
    ("/dev/zd*", "process memory or a raw device"),
    ("/dev/rbd*", "process memory or a raw device"),
    ("/dev/disk/**", "process memory or a raw device"),
];

/// The protected set as it is checked: each pattern with its category and guard, then the
/// directories above the patterns (`**/.git`, `**/.git/hooks`, `**/.ssh`, `/etc/sudoers.d`),
/// guarded as entries: `mv .git/hooks .git/h0; mv h .git/hooks` would otherwise swap a
/// protected directory for one of the tree's, since a rename is checked on the entry it
/// moves and `**/.git/hooks/**` matches only what lies beneath.
pub fn rules() -> &'static [(String, &'static str, Guard)] {
    static RULES: OnceLock<Vec<(String, &'static str, Guard)>> = OnceLock::new();
    RULES.get_or_init(|| {
        let mut v: Vec<(String, &'static str, Guard)> = PROTECTED
            .iter()
            .map(|(p, c)| (p.to_string(), *c, Guard::of(c)))
            .collect();
        for (p, c) in PROTECTED {
            let comps: Vec<&str> = p.split('/').collect();
            // `dir/**` protects what is beneath dir: dir itself is an entry to guard too.
            let tail = comps.last() == Some(&"**");
            let body = if tail {
                &comps[..comps.len() - 1]
            } else {
                &comps[..]
            };
            // Every prefix that names a directory above: not "" (/) nor "**" alone.
            let last = if tail { body.len() } else { body.len() - 1 };
            for k in 2..=last {
                let a = body[..k].join("/");
                if a.is_empty() || a == "**" || v.iter().any(|(x, _, _)| *x == a) {
                    continue;
                }
                v.push((a, c, Guard::Entry));
            }
        }
        v
    })
}

fn set() -> &'static GlobSet {
    static SET: OnceLock<GlobSet> = OnceLock::new();
    SET.get_or_init(|| {
        let mut b = GlobSetBuilder::new();
        for (p, _, _) in rules() {
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
    /// A directory above protected paths: not to be moved, removed or replaced.
    Entry,
}

/// The accesses a `Guard::Entry` directory is protected from.
pub const ENTRY: &[Access] = &[
    Access::Delete,
    Access::Rename,
    Access::Create,
    Access::Link,
    Access::Symlink,
    Access::Times,
];

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
    Access::Times,
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
            (Guard::Entry, Some(a)) => ENTRY.contains(&a),
            (Guard::Writes | Guard::Entry, None) => false,
        }
    }
}

/// How a path is protected: from everything if any pattern that matches it says so.
pub fn guard(path: &str) -> Option<Guard> {
    let m = set().matches(super::pattern::subject(path));
    let has = |g: Guard| m.iter().any(|i| rules()[*i].2 == g);
    // Writes covers what Entry does.
    [Guard::All, Guard::Writes, Guard::Entry]
        .into_iter()
        .find(|g| has(*g))
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
        .map(|i| rules()[*i].1)
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
            assert!(guard(p).is_some(), "{p}");
        }
        for p in [
            "/etc/hosts",
            "/home/ann/project/main.py",
            "/srv/app/.envrc.md",
            "/proc/1/status",
            "/dev/null",
            "/srv/app/.git/HEAD",
        ] {
            assert_eq!(guard(p), None, "{p}");
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

    #[test]
    fn the_directories_above_protected_paths_cannot_be_moved_or_replaced() {
        for p in [
            "/srv/app/.git/hooks",
            "/srv/app/.git",
            "/home/ann/.ssh",
            "/etc/sudoers.d",
            "/etc",
        ] {
            assert_eq!(guard(p), Some(Guard::Entry), "{p}");
            for a in [
                Access::Rename,
                Access::Delete,
                Access::Create,
                Access::Symlink,
            ] {
                assert!(protects(p, Some(a)), "{p} {a:?}");
            }
            for a in [Access::Read, Access::List, Access::Mkdir] {
                assert!(!protects(p, Some(a)), "{p} {a:?}");
            }
        }
        // What lies beneath keeps its own guard.
        assert_eq!(guard("/srv/app/.git/hooks/pre-commit"), Some(Guard::Writes));
        assert_eq!(guard("/srv/app/.git/HEAD"), None);
    }
}
