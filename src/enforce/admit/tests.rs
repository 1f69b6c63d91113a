use std::collections::BTreeSet;

use super::*;
use crate::enforce::compile::{self, kernel_model};
use crate::profile::matcher::{Matcher, Verdict};

fn vars() -> Vars {
    Vars {
        home: Some("/home/ann".into()),
        cwd: Some("/home/ann/work".into()),
    }
}

const BASELINE: &str = r#"
version = 1
[[file]]
path = "/etc/hostname"
access = ["read"]
learned = true
[[file]]
path = "/usr/share/agent/prompts/*.txt"
access = ["read"]
learned = true
replaced = [{ path = "/usr/share/agent/prompts/a.txt", access = ["read"], seen = [], count = 1 }]
[[file]]
path = "${CWD}/out.md"
access = ["write", "create"]
learned = true
[[exec]]
path = "/usr/bin/cat"
learned = true
[[net]]
op = "connect"
proto = "tcp"
addr = "10.0.0.1"
port = 443
learned = true
"#;

/// Small deterministic generator: no dependency for a test's inputs.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// What the table says enforce must do: admit what the baseline covers and what it rates
/// below the level.
fn table_admits(c: &Checker, what: &What, level: Severity) -> bool {
    match c.rate(what) {
        None => true,
        Some((r, _)) => r.id == rules::RARE.id || r.severity < level,
    }
}

/// For generated operations, three answers agree: the severity table (what `diff` says),
/// the user-space matcher on the widened profile, and the kernel's decision on the rules
/// compiled from it (the model the VM tests hold the kernel to).
#[test]
fn enforce_admits_exactly_what_diff_rates_below_the_level() {
    let base = Profile::parse(BASELINE, Path::new("b.toml")).unwrap();
    let checker = Checker::new(&base, Path::new("b.toml"), vars()).unwrap();
    let progs = programs(rules::SYSTEM_BIN);
    assert!(
        progs.iter().any(|p| p.ends_with("/ls"))
            && progs
                .iter()
                .any(|p| p.ends_with("/sh") || p.ends_with("/dash")),
        "the system's programs are listed: {progs:?}"
    );
    let words = [
        "etc", "hostname", "passwd", "shadow", "usr", "share", "agent", "prompts", "b.txt", "home",
        "ann", "work", ".ssh", "id_rsa", ".env", ".git", "hooks", "tmp", "var", "out.md", "notes",
        ".bashrc", "lib", "dev", "null", "tty", "pts", "0", "sda",
    ];
    let accesses = [
        vec![Access::Read],
        vec![Access::List],
        vec![Access::Write],
        vec![Access::Read, Access::Write],
        vec![Access::Create, Access::Write],
        vec![Access::Delete],
        vec![Access::Mkdir],
        vec![Access::Times],
    ];
    let elsewhere = [
        "/tmp/payload",
        "/home/ann/work/run.sh",
        "/opt/tool/bin/frob",
        "/home/ann/.ssh/evil",
    ];
    let mut rng = Lcg(11);
    let mut seen_levels = BTreeSet::new();
    for level in [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ] {
        let w = widen(&base, &checker, &vars(), level);
        let m = Matcher::new(&w.profile, &vars()).unwrap();
        let k = compile::compile(&w.profile, &vars()).unwrap();
        let (mut admitted, mut denied) = (0, 0);
        // The devices every program uses, with each access, then generated operations.
        let devices = [
            "/dev/null",
            "/dev/tty",
            "/dev/pts/0",
            "/dev/sda",
            "/dev/pts/0/x",
        ];
        let fixed = devices
            .iter()
            .flat_map(|d| accesses.iter().map(move |a| (d.to_string(), a.clone())));
        let generated = (0..3000).map(|_| {
            let depth = 1 + rng.next(5);
            let path: String = (0..depth)
                .map(|_| format!("/{}", words[rng.next(words.len())]))
                .collect();
            (path, accesses[rng.next(accesses.len())].clone())
        });
        let ops: Vec<(String, Vec<Access>)> = fixed.chain(generated).collect();
        for (path, access) in ops {
            let access: BTreeSet<Access> = access.into_iter().collect();
            let what = What::File {
                path: path.clone(),
                access: access.clone(),
            };
            let table = table_admits(&checker, &what, level);
            let user = m.file(&path, &access) == Verdict::Covered;
            let kernel = kernel_model(&k, &path, compile::access_bits(&access));
            assert_eq!(
                (table, table),
                (user, kernel),
                "{path} {access:?} at {level:?}: {:?}",
                checker.rate(&what)
            );
            if table {
                admitted += 1;
            } else {
                denied += 1;
            }
        }
        for prog in progs.iter().map(String::as_str).chain(elsewhere) {
            let what = What::Exec { path: prog.into() };
            let table = table_admits(&checker, &what, level);
            let user = m.exec_hit(prog).verdict == Verdict::Covered;
            let kernel = kernel_model(&k, prog, compile::EXEC);
            assert_eq!((table, table), (user, kernel), "exec {prog} at {level:?}");
        }
        for (addr, port, proto) in [
            ("10.0.0.1", 443, Proto::Tcp),
            ("10.0.0.1", 22, Proto::Tcp),
            ("203.0.113.9", 443, Proto::Tcp),
            ("203.0.113.9", 53, Proto::Udp),
            ("/run/docker.sock", 0, Proto::Stream),
        ] {
            let what = What::Net {
                op: NetDir::Connect,
                proto,
                addr: addr.into(),
                port,
            };
            let table = table_admits(&checker, &what, level);
            let user = m.net_strength(NetDir::Connect, proto, addr, port) > 0;
            // A unix destination is matched by exact path at every level (`narrowed`).
            if addr.starts_with('/') && level == Severity::Critical {
                assert!(!user && w.narrowed.iter().any(|n| n.contains("net-new-unix")));
                continue;
            }
            assert_eq!(table, user, "connect {addr}:{port} at {level:?}");
        }
        assert!(
            denied > 0 && (admitted > 0 || level == Severity::Low),
            "{level:?}: {admitted} admitted, {denied} denied"
        );
        seen_levels.insert(format!("{level:?}:{admitted}"));
    }
    // Each level admits more than the one below it.
    assert_eq!(seen_levels.len(), 4, "{seen_levels:?}");
}

#[test]
fn what_each_level_admits_is_said_by_rule() {
    let base = Profile::parse(BASELINE, Path::new("b.toml")).unwrap();
    let checker = Checker::new(&base, Path::new("b.toml"), vars()).unwrap();
    let low = widen(&base, &checker, &vars(), Severity::Low);
    assert!(
        low.lines.is_empty() && low.profile == base,
        "{:?}",
        low.lines
    );
    let medium = widen(&base, &checker, &vars(), Severity::Medium)
        .lines
        .join("\n");
    assert!(
        medium.contains("read-known-dir (low): reads of new files in the 2 directories"),
        "{medium}"
    );
    assert!(medium.contains("exec-coreutil (low): "), "{medium}");
    assert!(!medium.contains("medium)"), "{medium}");
    let high = widen(&base, &checker, &vars(), Severity::High)
        .lines
        .join("\n");
    for want in [
        "read-new (medium): reads anywhere outside the protected set",
        "write-workspace (medium): writes in ${CWD}, /tmp, /var/tmp, /dev/shm, /run/user",
        "exec-new (medium): ",
    ] {
        assert!(high.contains(want), "{want} in {high}");
    }
    assert!(
        !high.contains("exec-shell") && !high.contains("(high)"),
        "{high}"
    );
}

/// A home directory beneath /tmp (as in tests and some containers): writes in /tmp are not
/// admitted as a whole, since that would admit the home directory, and the report says so.
#[test]
fn a_temp_directory_that_holds_home_is_not_admitted() {
    let vars = Vars {
        home: Some("/tmp/h".into()),
        cwd: Some("/tmp/h/work".into()),
    };
    let base = Profile::parse(BASELINE, Path::new("b.toml")).unwrap();
    let checker = Checker::new(&base, Path::new("b.toml"), vars.clone()).unwrap();
    let w = widen(&base, &checker, &vars, Severity::High);
    assert!(
        w.narrowed
            .iter()
            .any(|n| n.contains("not in /tmp: the home directory")),
        "{:?}",
        w.narrowed
    );
    let m = Matcher::new(&w.profile, &vars).unwrap();
    let write = BTreeSet::from([Access::Write]);
    assert_eq!(
        m.file("/tmp/h/.cache/x", &write),
        Verdict::Uncovered(write.clone())
    );
    assert_eq!(m.file("/tmp/h/work/x", &write), Verdict::Covered);
    assert_eq!(m.file("/var/tmp/x", &write), Verdict::Covered);
}

/// A rule `allow` wrote (a directory, say) admits what it names, but the protected set wins
/// over it, in the matcher and in the kernel alike, unless it was allowed with --protected.
#[test]
fn the_protected_set_wins_over_an_allowed_rule_unless_allowed_as_protected() {
    let read = BTreeSet::from([Access::Read]);
    for protected in [false, true] {
        let text = format!(
            "version = 1\n[[file]]\npath = \"${{CWD}}/*\"\naccess = [\"read\"]\n\
             allowed = {{ by = \"ann\", at = \"2026-12-05T00:00:00Z\", reason = \"r\", \
             finding = \"read-new, medium\", run = \"run.jsonl\", protected = {protected} }}\n"
        );
        let p = Profile::parse(&text, Path::new("b.toml")).unwrap();
        let m = Matcher::new(&p, &vars()).unwrap();
        let k = compile::compile(&p, &vars()).unwrap();
        for (path, plain) in [
            ("/home/ann/work/notes.md", true),
            ("/home/ann/work/.env", false),
        ] {
            let want = plain || protected;
            assert_eq!(
                m.file(path, &read) == Verdict::Covered,
                want,
                "matcher: {path}, protected = {protected}"
            );
            assert_eq!(
                kernel_model(&k, path, compile::access_bits(&read)),
                want,
                "kernel: {path}, protected = {protected}"
            );
        }
    }
}

/// Every shipped abstraction, all at once and with --deny-at's widening, fits what the
/// kernel holds under one directory or name: a profile that includes them runs under BPF
/// LSM (the limit is checked only as the rules are loaded, in the VM).
#[test]
fn the_shipped_abstractions_fit_the_kernels_rules_per_directory() {
    let names: Vec<String> = crate::profile::include::SHIPPED
        .iter()
        .map(|(n, _)| format!("{n:?}"))
        .collect();
    let text = format!("version = 1\ninclude = [{}]\n", names.join(", "));
    let p = Profile::parse(&text, Path::new("all.toml")).unwrap();
    let resolved = crate::profile::include::resolve(&p, Path::new("all.toml")).unwrap();
    let checker = Checker::new(&p, Path::new("all.toml"), vars()).unwrap();
    for level in [Severity::Critical, Severity::High, Severity::Medium] {
        let w = widen(&resolved, &checker, &vars(), level);
        let k = compile::compile(&w.profile, &vars()).unwrap();
        let mut per: std::collections::HashMap<String, usize> = Default::default();
        for r in &k.rules {
            *per.entry(format!("{:?}", r.anchor)).or_default() += 1;
        }
        let (worst, n) = per.iter().max_by_key(|(_, n)| **n).unwrap();
        assert!(
            *n <= crate::enforce::lsm::DIR_RULES,
            "{n} rules under {worst} at {level:?}"
        );
    }
}

/// The program list resolves only symbolic links: the same list as resolving every name
/// of every program directory (on this machine's, and on a made one where a directory
/// links to another, a link chains to a link, a link dangles, and a file is not executable).
#[test]
fn the_program_list_is_every_name_resolved() {
    use std::os::unix::fs::{symlink, PermissionsExt};
    let every_name = |bins: &[&str]| -> Vec<String> {
        let mut out = std::collections::BTreeSet::new();
        for d in bins {
            for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
                if let Ok(real) = std::fs::canonicalize(e.path()) {
                    if is_executable(&real) {
                        out.insert(real.to_str().unwrap().to_string());
                    }
                }
            }
        }
        out.into_iter().collect()
    };
    assert_eq!(programs(rules::SYSTEM_BIN), every_name(rules::SYSTEM_BIN));
    let d = std::env::temp_dir().join(format!("ag-programs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    let (usr, other) = (d.join("usr-bin"), d.join("opt"));
    std::fs::create_dir_all(&usr).unwrap();
    std::fs::create_dir_all(&other).unwrap();
    let exe = |p: &Path, mode: u32| {
        std::fs::write(p, "").unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    exe(&usr.join("tool"), 0o755);
    exe(&usr.join("data"), 0o644);
    exe(&other.join("real"), 0o700);
    symlink(other.join("real"), usr.join("link")).unwrap();
    symlink(usr.join("link"), usr.join("chain")).unwrap();
    symlink(d.join("gone"), usr.join("dangling")).unwrap();
    symlink("usr-bin", d.join("bin")).unwrap();
    let bin = d.join("bin");
    let bins = [usr.to_str().unwrap(), bin.to_str().unwrap()];
    let got = programs(&bins);
    let want = every_name(&bins);
    std::fs::remove_dir_all(&d).unwrap();
    assert_eq!(got, want);
    assert_eq!(got.len(), 2, "{got:?}");
}
