//! Profiles on replayed event streams: no root, no BPF.
use std::collections::BTreeSet;
use std::path::Path;

use super::matcher::{Matcher, Verdict};
use super::merge::merge;
use super::*;
use crate::event::{self, Dns, Event, Exec, File, FileOp, Flag, Kind, Net, NetOp};
use crate::tree::Tree;

fn ev(pid: u32, kind: Kind) -> Event {
    Event {
        ts: "2026-11-26T12:00:00Z".parse().unwrap(),
        pid,
        tid: pid,
        ppid: 1,
        exe: "/bin/sh".into(),
        kind,
        cause: None,
    }
}

pub(super) fn open(path: &str, access: Vec<Access>) -> Kind {
    Kind::File(File::opened(path, access))
}

fn failed_open(path: &str) -> Kind {
    Kind::File(File {
        op: FileOp::Open,
        path: path.into(),
        resolved: false,
        target: None,
        access: vec![Access::Read],
        flags: 0,
        mode: None,
        truncated: false,
        error: Some(crate::event::Errno::ENOENT),
    })
}

pub(super) fn exec(path: &str) -> Kind {
    Kind::Exec(Exec {
        path: path.into(),
        argv: vec![path.into()],
        argv_truncated: false,
        cwd: "/".into(),
        invoked_as: None,
        script: None,
        via_fd: false,
        unlinked: false,
        error: None,
    })
}

fn run(id: &str, started: &str) -> RunInfo {
    RunInfo {
        id: id.into(),
        command: "agent".into(),
        started: started.into(),
        seconds: 0.5,
        exit: Some(0),
        lost_events: 0,
        procs_untracked: 0,
        running: 0,
        decode_errors: 0,
        cwd: None,
        home: None,
        llm_calls: None,
        tls_unread: Vec::new(),
    }
}

pub(super) fn vars() -> Vars {
    Vars {
        home: Some("/home/ann".into()),
        cwd: Some("/home/ann/work".into()),
    }
}

/// An event into the run's tree, then the builder, as the pipeline does.
fn add(b: &mut Builder, tree: &mut Tree, e: &Event) {
    tree.update(e);
    b.add(e, tree);
}

/// The profile of one run of a stream.
pub(super) fn profile(id: &str, started: &str, stream: &[Kind]) -> Profile {
    let mut b = Builder::new(vars());
    let mut tree = Tree::default();
    tree.add_root(10, "");
    b.add_root();
    for k in stream {
        add(&mut b, &mut tree, &ev(10, k.clone()));
    }
    b.finish(run(id, started))
}

/// What a small agent does, with the variation of real runs: a random temp file, one of
/// several documents, a pid under /proc.
fn agent_run(i: u32) -> Vec<Kind> {
    let docs = ["a.md", "b.md", "c.md", "d.md", "e.md", "f.md"];
    let tmp = format!("/tmp/tmp{:08x}", 0x9a1b2c3d_u32.wrapping_mul(i + 7))
        .replace(|c: char| c.is_ascii_uppercase(), "x");
    vec![
        exec("/usr/bin/python3.11"),
        open("/etc/hosts", vec![Access::Read]),
        open(
            &format!("/home/ann/work/docs/{}", docs[(i as usize) % 6]),
            vec![Access::Read],
        ),
        open(
            &format!("/home/ann/work/docs/{}", docs[(i as usize + 2) % 6]),
            vec![Access::Read],
        ),
        open(
            &format!("{tmp}/out.txt"),
            vec![Access::Write, Access::Create],
        ),
        open(&format!("/proc/{}/status", 4000 + i), vec![Access::Read]),
        open("/usr/lib/x86_64-linux-gnu/libssl.so.3", vec![Access::Read]),
        failed_open("/nonexistent"),
        Kind::Net(Net {
            op: NetOp::Connect,
            family: crate::event::Family::Inet,
            proto: Proto::Tcp,
            addr: "127.0.0.1".into(),
            port: 8080,
            mapped: false,
            name: None,
            error: None,
        }),
        Kind::Dns(Dns {
            names: vec!["api.example.com".into()],
            qtypes: vec!["A".into()],
            server: "127.0.0.53:53".into(),
            answer: false,
            addrs: vec![],
            error: None,
            id: None,
        }),
    ]
}

fn run_profile(i: u32) -> Profile {
    profile(
        &format!("run-{i}"),
        &format!("2026-11-26T12:00:{:02}Z", i),
        &agent_run(i),
    )
}

pub(super) fn text(p: &Profile) -> String {
    p.to_toml().unwrap()
}

#[test]
fn one_run_aggregates_with_variables_and_shapes() {
    let p = run_profile(1);
    assert_eq!((p.runs, p.run_info.len()), (1, 1));
    let paths: Vec<&str> = p.file.iter().map(|f| f.path.0.as_str()).collect();
    assert!(paths.contains(&"${CWD}/docs/b.md"), "{paths:?}");
    assert!(
        paths.contains(&"/tmp/tmp*/out.txt"),
        "random temp dirs are patterns: {paths:?}"
    );
    assert!(paths.contains(&"/proc/*/status"), "{paths:?}");
    assert!(
        paths.contains(&"/usr/lib/x86_64-linux-gnu/libssl.so.*"),
        "{paths:?}"
    );
    assert!(
        !paths.iter().any(|p| p.contains("nonexistent")),
        "failures are not behaviour a profile admits"
    );
    let tmp = p
        .file
        .iter()
        .find(|f| f.path.0 == "/tmp/tmp*/out.txt")
        .unwrap();
    assert_eq!(tmp.examples.len(), 1, "the literal it replaced is kept");
    assert_eq!(tmp.literals, 1);
    assert!(tmp.examples[0].starts_with("/tmp/tmp"));
    assert!(p.file.iter().all(|f| f.learned && f.seen == vec![0]));
    assert_eq!(p.net.len(), 2);
    assert_eq!(p.dns[0].name.0, "api.example.com");
}

#[test]
fn round_trip_parse_write_parse() {
    let p = merge(&[
        (run_profile(1), "1".into()),
        (run_profile(2), "2".into()),
        (run_profile(3), "3".into()),
    ])
    .unwrap();
    let t = text(&p);
    let back = Profile::parse(&t, Path::new("x.toml")).unwrap();
    assert_eq!(back, p);
    assert_eq!(text(&back), t);
    assert!(t.starts_with("# agentguard profile"));
}

#[test]
fn merge_laws_hold() {
    let (a, b, c) = (run_profile(1), run_profile(2), run_profile(3));
    let m = |x: &Profile, y: &Profile| {
        merge(&[(x.clone(), "x".into()), (y.clone(), "y".into())]).unwrap()
    };
    assert_eq!(text(&m(&a, &b)), text(&m(&b, &a)), "commutative");
    assert_eq!(
        text(&m(&m(&a, &b), &c)),
        text(&m(&a, &m(&b, &c))),
        "associative"
    );
    let ab = m(&a, &b);
    assert_eq!(text(&m(&ab, &ab)), text(&ab), "idempotent");
    assert_eq!(
        text(&m(&ab, &a)),
        text(&ab),
        "a run already merged counts once"
    );
    let abc = m(&ab, &c);
    assert_eq!(abc.runs, 3);
    let hosts = abc.file.iter().find(|f| f.path.0 == "/etc/hosts").unwrap();
    assert_eq!((hosts.seen.clone(), hosts.count), (vec![0, 1, 2], 3));
}

#[test]
fn partly_shared_runs_are_refused() {
    let m = |x: &Profile, y: &Profile| {
        merge(&[(x.clone(), "x.toml".into()), (y.clone(), "y.toml".into())])
    };
    let ab = m(&run_profile(1), &run_profile(2)).unwrap();
    let bc = m(&run_profile(2), &run_profile(3)).unwrap();
    let e = format!("{:#}", m(&ab, &bc).unwrap_err());
    assert!(
        e.contains("share 1 of their runs") && e.contains("run-2"),
        "{e}"
    );
}

#[test]
fn a_directory_whose_files_vary_collapses_on_evidence() {
    let one = run_profile(1);
    assert!(
        one.file.iter().all(|f| f.path.0 != "${CWD}/docs/*"),
        "one run is no evidence of variation"
    );
    let p = merge(
        &(1..=4)
            .map(|i| (run_profile(i), i.to_string()))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let docs = p
        .file
        .iter()
        .find(|f| f.path.0 == "${CWD}/docs/*")
        .expect("docs/ collapsed");
    assert_eq!(docs.seen, vec![0, 1, 2, 3]);
    assert_eq!(docs.literals, 6, "{docs:?}");
    assert_eq!(
        docs.examples.len(),
        crate::profile::learn::EXAMPLES,
        "a bounded sample: {docs:?}"
    );
    // A directory read the same way in every run stays literal.
    let stable: Vec<Profile> = (1..=3)
        .map(|i| {
            profile(
                &format!("s{i}"),
                &format!("2026-11-26T12:00:0{i}Z"),
                &[
                    open("/srv/a/x", vec![Access::Read]),
                    open("/srv/a/y", vec![Access::Read]),
                    open("/srv/a/z", vec![Access::Read]),
                ],
            )
        })
        .collect();
    let s = merge(
        &stable
            .into_iter()
            .map(|p| (p, String::new()))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    assert_eq!(
        s.file.iter().map(|f| f.path.0.as_str()).collect::<Vec<_>>(),
        vec!["/srv/a/x", "/srv/a/y", "/srv/a/z"]
    );
}

#[test]
fn directories_of_varying_directories_collapse_to_double_star() {
    let run_i = |i: u32| {
        let mut s = Vec::new();
        for d in 0..4 {
            for f in 0..3 {
                if (d + f + i).is_multiple_of(2) {
                    s.push(open(&format!("/srv/cache/d{d}/f{f}"), vec![Access::Read]));
                }
            }
        }
        profile(&format!("r{i}"), &format!("2026-11-26T12:00:0{i}Z"), &s)
    };
    let p = merge(
        &(0..3)
            .map(|i| (run_i(i), String::new()))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let paths: Vec<&str> = p.file.iter().map(|f| f.path.0.as_str()).collect();
    assert!(paths.contains(&"/srv/cache/**"), "{paths:?}");
}

#[test]
fn protected_paths_are_never_generalised_nor_admitted_by_learning() {
    let stream = vec![
        open("/home/ann/.ssh/id_ed25519", vec![Access::Read]),
        open("/home/ann/.aws/credentials", vec![Access::Read]),
        open("/home/ann/.bashrc", vec![Access::Write, Access::Append]),
        open("/home/ann/work/.git/hooks/pre-commit", vec![Access::Write]),
    ];
    let p = profile("p1", "2026-11-26T12:00:00Z", &stream);
    assert!(
        p.file.iter().all(|f| f.protected && f.replaced.is_empty()),
        "{:#?}",
        p.file
    );
    let m = Matcher::new(&p, &vars()).unwrap();
    let read = BTreeSet::from([Access::Read]);
    assert_eq!(
        m.file("/home/ann/.ssh/id_ed25519", &read),
        Verdict::Protected
    );
    // Only a hand-written rule admits one.
    let mut hand = p.clone();
    hand.file.push(FileEntry {
        allowed: None,
        path: PathPat("${HOME}/.ssh/id_ed25519".into()),
        access: read.clone(),
        learned: false,
        protected: false,
        seen: vec![],
        count: 0,
        replaced: vec![],
        examples: vec![],
        literals: 0,
        read: Vec::new(),
    });
    let m = Matcher::new(&hand, &vars()).unwrap();
    assert_eq!(m.file("/home/ann/.ssh/id_ed25519", &read), Verdict::Covered);
    assert_eq!(
        m.file("/home/ann/.aws/credentials", &read),
        Verdict::Protected
    );
}

#[test]
fn a_learned_pattern_never_admits_a_protected_path() {
    // Collapsing ${CWD}/* must not let the checkout's .env through.
    let p = merge(
        &(1..=4)
            .map(|i| (run_profile(i), String::new()))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let mut p2 = p.clone();
    p2.file.push(FileEntry {
        allowed: None,
        path: PathPat("${CWD}/**".into()),
        access: BTreeSet::from([Access::Read]),
        learned: true,
        protected: false,
        seen: vec![0],
        count: 1,
        replaced: vec![],
        examples: vec![],
        literals: 0,
        read: Vec::new(),
    });
    let m = Matcher::new(&p2, &vars()).unwrap();
    assert_eq!(
        m.file("/home/ann/work/.env", &BTreeSet::from([Access::Read])),
        Verdict::Protected
    );
    assert_eq!(
        m.file("/home/ann/work/notes.txt", &BTreeSet::from([Access::Read])),
        Verdict::Covered
    );
}

#[test]
fn hand_written_rules_survive_a_merge() {
    let mut a = run_profile(1);
    a.include.push("python".into());
    a.file.push(FileEntry {
        allowed: None,
        path: PathPat("/opt/models/**".into()),
        access: BTreeSet::from([Access::Read]),
        learned: false,
        protected: false,
        seen: vec![],
        count: 0,
        replaced: vec![],
        examples: vec![],
        literals: 0,
        read: Vec::new(),
    });
    a.net.push(NetEntry {
        allowed: None,
        op: NetDir::Connect,
        proto: Proto::Tcp,
        addr: Some(AddrPat("10.0.0.0/8".into())),
        host: None,
        private: false,
        addresses: vec![],
        port: PortPat { lo: 8000, hi: 8100 },
        learned: false,
        seen: vec![],
        count: 0,
        failed: 0,
        sent: Vec::new(),
        received: Vec::new(),
    });
    let a = Profile::parse(&text(&a), Path::new("a.toml")).unwrap();
    let m = merge(&[
        (a, "a".into()),
        (run_profile(2), "b".into()),
        (run_profile(3), "c".into()),
    ])
    .unwrap();
    assert_eq!(m.include, vec!["python"]);
    let hand: Vec<_> = m.file.iter().filter(|f| !f.learned).collect();
    assert_eq!(hand.len(), 1);
    assert_eq!(hand[0].path.0, "/opt/models/**");
    let t = text(&m);
    assert!(
        t.contains("addr = \"10.0.0.0/8\"\nport = \"8000-8100\"\n"),
        "{t}"
    );
    let mm = Matcher::new(&m, &vars()).unwrap();
    assert!(mm.net(NetDir::Connect, Proto::Tcp, "10.2.3.4", 8080));
    assert!(!mm.net(NetDir::Connect, Proto::Tcp, "10.2.3.4", 9000));
    assert!(mm.net(NetDir::Connect, Proto::Tcp, "127.0.0.1", 8080));
}

#[test]
fn a_baseline_covers_a_new_run_with_new_random_names() {
    let base = merge(
        &(1..=3)
            .map(|i| (run_profile(i), String::new()))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let base = include::resolve(&base, Path::new("b.toml")).unwrap();
    let m = Matcher::new(&base, &vars()).unwrap();
    for k in agent_run(9) {
        let ok = match &k {
            Kind::File(f) if f.error.is_none() => {
                m.file(&f.path, &f.access.iter().copied().collect()) == Verdict::Covered
            }
            Kind::Exec(x) => m.exec(&x.path) == Verdict::Covered,
            Kind::Dns(d) => d.names.iter().all(|n| m.dns(n)),
            Kind::Net(n) => m.net(NetDir::Connect, n.proto, &n.addr, n.port),
            _ => true,
        };
        assert!(ok, "not covered: {k:?}");
    }
    assert_ne!(
        m.file("/etc/shadow", &BTreeSet::from([Access::Read])),
        Verdict::Covered
    );
    assert!(!m.dns("evil.example.net"));
}

#[test]
fn flags_describe_ptrace_targets_stably() {
    let mut b = Builder::new(Vars::default());
    let mut tree = Tree::default();
    tree.add_root(10, "");
    b.add_root();
    add(&mut b, &mut tree, &ev(10, Kind::Fork { child: 11 }));
    for pid in [4242, 11] {
        add(
            &mut b,
            &mut tree,
            &ev(
                11,
                Kind::Flag(Flag {
                    flag: event::FlagKind::Ptrace,
                    detail: format!("PTRACE_ATTACH pid {pid}"),
                    error: None,
                }),
            ),
        );
    }
    let p = b.finish(run("x", "2026-11-26T12:00:00Z"));
    let details: Vec<&str> = p.flag.iter().map(|f| f.detail.as_str()).collect();
    assert_eq!(
        details,
        vec![
            "PTRACE_ATTACH (a process of the tree)",
            "PTRACE_ATTACH (a process outside the tree)"
        ]
    );
    let m = Matcher::new(&p, &Vars::default()).unwrap();
    assert!(m.flag(
        event::FlagKind::Ptrace,
        "PTRACE_ATTACH (a process of the tree)"
    ));
    assert!(!m.flag(
        event::FlagKind::Ptrace,
        "PTRACE_SEIZE (a process of the tree)"
    ));
}

#[test]
fn invalid_profiles_name_file_line_and_field() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/invalid_profiles");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        n += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        // Each fixture says, on its first line, what the error must contain.
        let want: Vec<&str> = text
            .lines()
            .next()
            .unwrap()
            .trim_start_matches("# expect:")
            .split('|')
            .map(str::trim)
            .collect();
        let err = match Profile::parse(&text, &path)
            .and_then(|p| include::resolve(&p, &path))
            .and_then(|p| Matcher::new(&p, &Vars::default()).map(|_| p))
        {
            Ok(_) => panic!("{} was accepted", path.display()),
            Err(e) => format!("{e:#}"),
        };
        assert!(
            err.contains(path.file_name().unwrap().to_str().unwrap()),
            "{}: error does not name the file: {err}",
            path.display()
        );
        for w in want {
            assert!(
                err.contains(w),
                "{}: error {err:?} lacks {w:?}",
                path.display()
            );
        }
    }
    assert!(n >= 8, "fixtures missing");
}

#[test]
fn saving_to_a_fifo_writes_through_it_rather_than_replacing_it() {
    // A FIFO in a directory of this test's own stands for any non-regular target
    // (`-o /dev/stdout`): the test never touches the host's devices.
    use std::os::unix::fs::FileTypeExt;
    let dir = std::env::temp_dir().join(format!("ag-fifo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("out.toml");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let p = run_profile(1);
    p.save(&fifo).unwrap();
    let got = reader.join().unwrap();
    let kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(kind.is_fifo(), "the FIFO was replaced: {kind:?}");
    assert_eq!(got, p.to_toml().unwrap(), "the reader got the profile");
}

/// The tree may write where -o points, and agentguard saves as root after it ran: a
/// symbolic link planted at the temporary name or at the profile's own name is never
/// written through.
#[test]
fn saving_follows_no_symbolic_link_the_tree_could_plant() {
    let dir = std::env::temp_dir().join(format!("ag-link-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let victim = dir.join("victim");
    std::fs::write(&victim, "untouched").unwrap();
    let out = dir.join("out.toml");
    std::os::unix::fs::symlink(&victim, dir.join("out.toml.tmp")).unwrap();
    let p = run_profile(1);
    p.save(&out).unwrap();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
    // A link at the profile's name: replaced by the profile, its target untouched.
    let out2 = dir.join("out2.toml");
    std::os::unix::fs::symlink(&victim, &out2).unwrap();
    p.save(&out2).unwrap();
    let kind = std::fs::symlink_metadata(&out2).unwrap().file_type();
    let victim_text = std::fs::read_to_string(&victim).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(kind.is_file(), "{kind:?}");
    assert_eq!(victim_text, "untouched");
}

fn answer(name: &str, addr: &str) -> Kind {
    Kind::Dns(Dns {
        names: vec![name.into()],
        qtypes: vec!["A".into()],
        server: "127.0.0.53:53".into(),
        answer: true,
        addrs: vec![event::DnsAddr {
            addr: addr.into(),
            ttl: 300,
        }],
        error: None,
        id: None,
    })
}

fn connect(addr: &str, port: u16) -> Kind {
    Kind::Net(Net {
        op: NetOp::Connect,
        family: crate::event::Family::Inet,
        proto: Proto::Tcp,
        addr: addr.into(),
        port,
        mapped: false,
        name: None,
        error: None,
    })
}

/// A stream through the name table record keeps (names.rs), then into a profile.
fn named_profile(id: &str, stream: &[Kind]) -> Profile {
    let mut names = crate::names::Names::default();
    let mut b = Builder::new(vars());
    let mut tree = Tree::default();
    tree.add_root(10, "");
    b.add_root();
    for k in stream {
        let mut e = ev(10, k.clone());
        names.observe(&mut e);
        add(&mut b, &mut tree, &e);
    }
    b.finish(run(id, "2026-11-26T12:00:00Z"))
}

#[test]
fn connections_to_resolved_addresses_are_learned_by_name_with_their_addresses() {
    let a = named_profile(
        "a",
        &[
            answer("api.example.com", "10.1.2.3"),
            connect("10.1.2.3", 443),
            connect("10.9.9.9", 5432),
        ],
    );
    let b = named_profile(
        "b",
        &[
            answer("api.example.com", "10.4.5.6"),
            connect("10.4.5.6", 443),
        ],
    );
    let m = merge(&[(a, "a".into()), (b, "b".into())]).unwrap();
    let t = text(&m);
    assert!(
        t.contains(
            "host = \"api.example.com\"\nport = 443\naddresses = [\"10.1.2.3\", \"10.4.5.6\"]"
        ),
        "{t}"
    );
    assert!(
        t.contains("addr = \"10.9.9.9\""),
        "an unnamed address stays one: {t}"
    );
    // The name covers an address it was never seen at; another name is not covered.
    let mm = Matcher::new(&m, &vars()).unwrap();
    assert!(mm.host_strength(Proto::Tcp, "api.example.com", 443, "10.7.7.7") > 0);
    assert_eq!(
        mm.host_strength(Proto::Tcp, "evil.example.net", 443, "10.7.7.7"),
        0
    );
    assert_eq!(
        mm.host_strength(Proto::Tcp, "api.example.com", 80, "10.7.7.7"),
        0
    );
    // A round trip keeps the evidence.
    assert_eq!(Profile::parse(&t, Path::new("m.toml")).unwrap(), m);
}

/// A connect refused by a policy (EPERM: enforce denied it) is not learned, so merging an
/// enforced run into its baseline does not allow what was denied; one that failed for
/// other reasons (ECONNREFUSED) is intent, and is.
#[test]
fn a_denied_connection_is_not_learned_a_refused_one_is() {
    let mut denied = connect("203.0.113.9", 443);
    let mut refused = connect("127.0.0.1", 9);
    if let Kind::Net(n) = &mut denied {
        n.error = Some(crate::event::Errno::EPERM);
    }
    if let Kind::Net(n) = &mut refused {
        n.error = Some(crate::event::Errno::ECONNREFUSED);
    }
    let p = named_profile("a", &[denied, refused]);
    let addrs: Vec<String> = p
        .net
        .iter()
        .filter_map(|e| e.addr.as_ref().map(|a| a.0.clone()))
        .collect();
    assert_eq!(addrs, vec!["127.0.0.1"], "{:?}", p.net);
}

#[test]
fn a_name_with_newlines_stays_on_one_line_of_the_profile() {
    // A file name the tree chose must not become lines of its own in the written TOML
    // (a `.pth` file, a shell profile: anything that runs lines it does not understand).
    let name = "/tmp/x\nimport os; os.system('id')\n\"\"\"\n[[exec]]\npath = \"/bin/sh\"";
    let p = profile(
        "r1",
        "2026-11-26T12:00:00Z",
        &[open(name, vec![Access::Read])],
    );
    let t = text(&p);
    assert!(
        !t.lines()
            .any(|l| l.starts_with("import") || l.starts_with("path = \"/bin/sh\"")),
        "{t}"
    );
    let back = Profile::parse(&t, Path::new("p.toml")).unwrap();
    assert!(
        back.file.iter().any(|f| f.path.0.contains("os.system")),
        "{t}"
    );
}

/// `show`: each destination's port once, "1 literal", the tool calls and LLM APIs, and
/// paths aligned however long an access list is.
#[test]
fn show_prints_every_section_once_and_aligned() {
    let mut stream = agent_run(1);
    stream.push(open(
        "/home/ann/work/out.db",
        vec![
            Access::Read,
            Access::Write,
            Access::Create,
            Access::Truncate,
            Access::Chmod,
        ],
    ));
    stream.push(Kind::ToolCall(crate::event::ToolCall {
        id: "c1".into(),
        name: "read_file".into(),
        arguments: "{}".into(),
        api: "openai.chat".into(),
        host: "api.example.com".into(),
        steered: None,
        reported: false,
    }));
    let p = profile("run-1", "2026-11-26T12:00:01Z", &stream);
    let s = crate::baseline::describe(&p, "p.toml", 3);
    assert!(s.contains("127.0.0.1:8080\n"), "{s}");
    assert!(!s.contains(":8080:8080"), "{s}");
    assert!(s.contains("<- 1 literal: "), "{s}");
    assert!(
        s.contains("tool calls (1):") && s.contains("read_file   (1 call)"),
        "{s}"
    );
    // Every file line's path starts in one column.
    let cols: std::collections::BTreeSet<usize> = s
        .lines()
        .filter(|l| l.contains(" /") && (l.contains("read") || l.contains("write")))
        .map(|l| l.find(" /").unwrap())
        .collect();
    assert_eq!(cols.len(), 1, "{s}");
}

#[test]
fn a_name_with_a_star_is_never_learned_as_a_wildcard() {
    let p = named_profile(
        "r",
        &[
            answer("*.com", "203.0.113.9"),
            connect("203.0.113.9", 443),
            answer("api.example.com", "203.0.113.10"),
        ],
    );
    assert!(
        p.dns.iter().all(|d| !d.name.0.contains('*')),
        "{}",
        text(&p)
    );
    assert!(
        p.net
            .iter()
            .all(|n| n.host.as_ref().is_none_or(|h| !h.0.contains('*'))),
        "{}",
        text(&p)
    );
    // What it connected to is learned by address instead.
    assert!(
        p.net
            .iter()
            .any(|n| n.addr.as_ref().is_some_and(|a| a.0 == "203.0.113.9")),
        "{}",
        text(&p)
    );
    // /etc/shadow's backup is as secret as /etc/shadow.
    assert!(protected::protects("/etc/shadow-", Some(Access::Read)));
}

/// Kernel-counted bytes join what the run did with the file or destination, per run, and
/// survive a merge; a file the run was not seen opening adds none.
#[test]
fn volumes_are_learned_per_run_and_merged() {
    let io = |path: Option<&str>, name: Option<&str>, read: u64, written: u64| {
        Kind::Io(event::Io {
            path: path.map(String::from),
            proto: name.map(|_| event::Proto::Tcp),
            addr: if name.is_some() {
                "1.2.3.4".into()
            } else {
                String::new()
            },
            port: if name.is_some() { 443 } else { 0 },
            name: name.map(String::from),
            read,
            written,
        })
    };
    let one = |id: &str, rows: u64, sent: u64| {
        let tree = Tree::default();
        let mut b = Builder::new(vars());
        let connect = Net {
            op: NetOp::Connect,
            family: crate::event::Family::Inet,
            proto: event::Proto::Tcp,
            addr: "1.2.3.4".into(),
            port: 443,
            mapped: false,
            name: Some("api.example.com".into()),
            error: None,
        };
        b.add(
            &ev(5, open("/home/ann/work/data/a.csv", vec![Access::Read])),
            &tree,
        );
        b.add(&ev(5, Kind::Net(connect.clone())), &tree);
        b.add(
            &ev(5, io(Some("/home/ann/work/data/a.csv"), None, rows, 0)),
            &tree,
        );
        b.add(
            &ev(5, io(Some("/home/ann/work/data/a.csv"), None, 5, 0)),
            &tree,
        );
        b.add(&ev(5, io(None, Some("api.example.com"), 70, sent)), &tree);
        // Never opened in this run (inherited): no entry, no volume.
        assert!(b
            .add(&ev(5, io(Some("/etc/inherited"), None, 9, 0)), &tree)
            .is_empty());
        b.finish(run(id, "2026-11-26T12:00:00Z"))
    };
    let a = one("a", 1000, 300);
    let f = a
        .file
        .iter()
        .find(|e| e.path.0 == "${CWD}/data/a.csv")
        .unwrap();
    assert_eq!(f.read, vec![1005]);
    assert!(a.file.iter().all(|e| !e.path.0.contains("inherited")));
    let n = a.net.iter().find(|e| e.host.is_some()).unwrap();
    assert_eq!((n.sent.clone(), n.received.clone()), (vec![300], vec![70]));
    let b = one("b", 4000, 900);
    let m = merge(&[(a, "a".into()), (b, "b".into())]).unwrap();
    let f = m
        .file
        .iter()
        .find(|e| e.path.0 == "${CWD}/data/a.csv")
        .unwrap();
    assert_eq!(
        (f.seen.clone(), f.read.clone()),
        (vec![0, 1], vec![1005, 4005])
    );
    let n = m.net.iter().find(|e| e.host.is_some()).unwrap();
    assert_eq!(n.sent, vec![300, 900]);
    // Merged again with itself: the same runs, the same volumes.
    let again = merge(&[(m.clone(), "m".into()), (m.clone(), "m2".into())]).unwrap();
    assert_eq!(again, m);
    // And it reads back.
    let text = m.to_toml().unwrap();
    assert_eq!(Profile::parse(&text, Path::new("m.toml")).unwrap(), m);
}

/// An endpoint after whose request the connection switched protocols is learned so, in
/// any one run, and stays so through a merge and a round trip through the file.
#[test]
fn an_endpoint_that_switched_protocols_is_learned_to_switch() {
    let http = |method: &str, path: &str, status: u16| {
        Kind::Http(event::Http {
            method: method.into(),
            host: "svc:8080".into(),
            path: path.into(),
            transport: "tcp".into(),
            status,
            sent: 80,
            received: 40,
            api: None,
        })
    };
    let one = |id: &str, ws: u16| {
        let mut b = Builder::new(vars());
        let tree = Tree::default();
        for k in [
            http("GET", "/ws", ws),
            http("GET", "/api/items/7", 101),
            http("CONNECT", "up.example:443", 200),
            http("CONNECT", "other.example:443", 407),
        ] {
            b.add(&ev(5, k), &tree);
        }
        b.finish(run(id, "2026-12-06T12:00:00Z"))
    };
    let switching = |p: &Profile| {
        let mut v: Vec<_> = p
            .http
            .iter()
            .filter(|e| e.switches)
            .map(|e| format!("{} {}", e.method, e.path))
            .collect();
        v.sort();
        v
    };
    let a = one("a", 200);
    assert_eq!(
        switching(&a),
        ["CONNECT /up.example:443", "GET /api/items/{id}"]
    );
    let m = merge(&[(a, "a".into()), (one("b", 101), "b".into())]).unwrap();
    let want = ["CONNECT /up.example:443", "GET /api/items/{id}", "GET /ws"];
    assert_eq!(switching(&m), want);
    let back: Profile = toml::from_str(&text(&m)).unwrap();
    assert_eq!(switching(&back), want);
    assert!(text(&m).contains("switches = true"));
}

#[test]
fn a_run_records_how_much_of_its_llm_traffic_was_seen() {
    use crate::event::{LlmRequest, Tls, TlsStatus};
    let mut b = Builder::new(vars());
    let tree = crate::tree::Tree::default();
    let at = |exe: &str, kind| Event {
        ts: "2026-12-03T10:00:00.000000000Z".parse().unwrap(),
        pid: 5,
        tid: 5,
        ppid: 1,
        exe: exe.into(),
        kind,
        cause: None,
    };
    b.add(&at("/usr/bin/python3", start(None)), &tree);
    for _ in 0..2 {
        b.add(
            &at(
                "/usr/bin/python3",
                Kind::LlmRequest(LlmRequest {
                    api: "openai.chat".into(),
                    host: "api.test".into(),
                    method: "POST".into(),
                    path: "/v1/chat/completions".into(),
                    transport: "tls".into(),
                    model: String::new(),
                    stream: false,
                    tools: Vec::new(),
                    headers: Vec::new(),
                    body: None,
                    exchange: 0,
                }),
            ),
            &tree,
        );
    }
    let tls = |status, library: &str| {
        Kind::Tls(Tls {
            status,
            library: library.into(),
            detail: String::new(),
        })
    };
    b.add(
        &at(
            "/usr/bin/curl",
            tls(TlsStatus::Uncovered, "/usr/lib/libgnutls.so.30"),
        ),
        &tree,
    );
    b.add(&at("/usr/bin/node", tls(TlsStatus::Unparsed, "")), &tree);
    b.add(&at("/usr/bin/nc", tls(TlsStatus::Unseen, "")), &tree);
    let p = b.finish(run("r1", "2026-12-03T10:00:00Z"));
    let r = &p.run_info[0];
    assert_eq!(r.llm_calls, Some(2));
    assert_eq!(
        r.tls_unread,
        [
            "/usr/bin/curl: /usr/lib/libgnutls.so.30",
            "/usr/bin/node: HTTP/2"
        ]
    );
    // Through the profile's text and back.
    let back = Profile::parse(&p.to_toml().unwrap(), std::path::Path::new("p.toml")).unwrap();
    assert_eq!(back.run_info[0], *r);
}

/// The recording's hook socket, named in its start event, is never learned (a new name every
/// run); a socket merely named like one is the tree's, and learned.
#[test]
fn only_the_hook_socket_the_start_event_names_is_left_out() {
    let hook = "@agentguard-hook-rec-7-0123456789abcdef0123456789abcdef";
    let lookalike = "@agentguard-hook-rec-7-fedcba9876543210fedcba9876543210";
    let send = |addr: &str| {
        let mut k = connect(addr, 0);
        if let Kind::Net(n) = &mut k {
            (n.family, n.proto) = (crate::event::Family::Unix, Proto::Dgram);
        }
        ev(5, k)
    };
    let mut b = Builder::new(vars());
    let tree = Tree::default();
    b.add(&ev(5, start(Some(hook))), &tree);
    assert!(b.add(&send(hook), &tree).is_empty());
    assert!(!b.add(&send(lookalike), &tree).is_empty());
    let p = b
        .finish(run("x", "2026-12-07T10:00:00Z"))
        .to_toml()
        .unwrap();
    assert!(p.contains(lookalike) && !p.contains(hook), "{p}");
}

/// A recording's start event, naming its hook socket if it has one.
fn start(hook: Option<&str>) -> Kind {
    Kind::Start {
        command: "agent".into(),
        run: None,
        cwd: None,
        home: None,
        llm: true,
        hook: hook.map(String::from),
    }
}
