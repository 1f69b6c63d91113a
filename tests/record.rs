use std::net::{TcpListener, UdpSocket};
use std::process::Command;

use crate::util::*;

#[test]
fn a_shell_pipeline_execs_with_argv() {
    let d = scratch("pipeline");
    let r = record(&d, &[], &strs(&sh("echo hello | tr a-z A-Z | wc -c")));
    assert_eq!(r.code(), Some(0), "{}", r.stderr());
    let argvs = r.argvs();
    assert!(
        argvs.contains(&vec!["tr".to_string(), "a-z".into(), "A-Z".into()]),
        "{argvs:?}"
    );
    assert!(
        argvs.contains(&vec!["wc".to_string(), "-c".into()]),
        "{argvs:?}"
    );
    let tr = r
        .kind("exec")
        .into_iter()
        .find(|e| e["argv"][0] == "tr")
        .unwrap();
    assert!(tr["path"].as_str().unwrap().ends_with("/tr"), "{tr}");
    assert_eq!(tr["exe"], tr["path"]);
    // Every process of the pipeline was a child of the shell, and every one ended.
    let sh_pid = r
        .kind("exec")
        .iter()
        .find(|e| e["argv"][0] == "/bin/sh")
        .unwrap()["pid"]
        .clone();
    assert_eq!(tr["ppid"], sh_pid);
    // dash forks for each element of the pipeline, the builtin echo too.
    assert_eq!(r.kind("fork").len(), 3);
    assert_eq!(r.kind("exit").len(), 4);
    assert!(r.profile.contains("[[exec]]"), "{}", r.profile);
    assert!(
        r.stderr().contains("processes           4"),
        "{}",
        r.stderr()
    );
}

#[test]
fn a_relative_open_after_chdir_is_resolved_by_the_kernel() {
    let d = scratch("chdir");
    std::fs::create_dir_all(d.join("sub/deeper")).unwrap();
    std::fs::write(d.join("data.txt"), "x").unwrap();
    std::os::unix::fs::symlink(d.join("data.txt"), d.join("sub/link")).unwrap();
    let script = format!(
        "cd {}/sub/deeper && cat ../../data.txt ../link > /dev/null",
        d.display()
    );
    let r = record(&d, &[], &strs(&sh(&script)));
    assert_eq!(r.code(), Some(0), "{}", r.stderr());
    // Both the `..` path and the symlink arrive as the file itself.
    let opens = r.files(&d.join("data.txt"));
    assert_eq!(opens.len(), 2, "{:#?}", r.kind("file"));
    for o in opens {
        assert_eq!(o["resolved"], true);
        assert_eq!(o["access"], serde_json::json!(["read"]));
        assert_eq!(
            o["pid"],
            r.kind("exec")
                .iter()
                .find(|e| e["argv"][0] == "cat")
                .unwrap()["pid"]
        );
    }
    let cat = r
        .kind("exec")
        .into_iter()
        .find(|e| e["argv"][0] == "cat")
        .unwrap();
    assert_eq!(cat["cwd"], d.join("sub/deeper").to_str().unwrap());
}

#[test]
fn a_write_is_told_apart_from_a_read() {
    let d = scratch("rw");
    std::fs::write(d.join("in.txt"), "x").unwrap();
    let script = format!(
        "cat {0}/in.txt > {0}/out.txt; echo more >> {0}/out.txt",
        d.display()
    );
    let r = record(&d, &[], &strs(&sh(&script)));
    assert_eq!(r.code(), Some(0), "{}", r.stderr());
    let read = r.files(&d.join("in.txt"));
    assert_eq!(read[0]["access"], serde_json::json!(["read"]));
    let writes: Vec<_> = r
        .files(&d.join("out.txt"))
        .iter()
        .map(|e| e["access"].clone())
        .collect();
    assert_eq!(
        writes,
        vec![
            serde_json::json!(["write", "create", "truncate"]),
            serde_json::json!(["write", "append"])
        ]
    );
    let entry = format!("path = \"{}/out.txt\"\naccess = [\"write\", \"append\", \"create\", \"truncate\"]\nlearned = true\nseen = [0]\ncount = 2\n", d.display());
    assert!(r.profile.contains(&entry), "{}", r.profile);
}

#[test]
fn a_failed_open_has_its_errno_and_unlink_rename_mkdir_chmod_are_seen() {
    let d = scratch("errno");
    let script = format!(
        "cat {0}/missing.txt; mkdir {0}/m; echo x > {0}/a; mv {0}/a {0}/b; chmod 600 {0}/b; rm {0}/b; rmdir {0}/m",
        d.display()
    );
    let r = record(&d, &[], &strs(&sh(&script)));
    assert_eq!(r.code(), Some(0), "{}", r.stderr());
    let missing = r.files(&d.join("missing.txt"));
    assert_eq!(missing[0]["error"], "ENOENT");
    assert_eq!(missing[0].get("resolved"), None);
    let ops = |p: &str| -> Vec<String> {
        r.files(&d.join(p))
            .iter()
            .map(|e| e["op"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(
        ops("m").contains(&"mkdir".to_string()) && ops("m").contains(&"rmdir".to_string()),
        "{:?}",
        ops("m")
    );
    let rename = r
        .files(&d.join("a"))
        .into_iter()
        .find(|e| e["op"] == "rename")
        .unwrap();
    assert_eq!(rename["target"], d.join("b").to_str().unwrap());
    assert!(
        ops("b").contains(&"chmod".to_string()) && ops("b").contains(&"unlink".to_string()),
        "{:?}",
        ops("b")
    );
    let chmod = r
        .files(&d.join("b"))
        .into_iter()
        .find(|e| e["op"] == "chmod")
        .unwrap();
    assert_eq!(chmod["mode"], 0o600);
    // Failures are events, not profile entries.
    assert!(
        !r.profile
            .contains(&format!("path = \"{}/missing.txt\"", d.display())),
        "{}",
        r.profile
    );
}

#[test]
fn connects_to_loopback_over_ipv4_ipv6_and_mapped() {
    let d = scratch("net");
    let l4 = TcpListener::bind("127.0.0.1:0").unwrap();
    let l6 = TcpListener::bind("[::1]:0").unwrap();
    let (p4, p6) = (
        l4.local_addr().unwrap().port(),
        l6.local_addr().unwrap().port(),
    );
    let l4m = TcpListener::bind("127.0.0.1:0").unwrap();
    let pm = l4m.local_addr().unwrap().port();
    let code = format!(
        "import socket\n\
         socket.create_connection(('127.0.0.1', {p4})).close()\n\
         socket.create_connection(('::1', {p6})).close()\n\
         s = socket.socket(socket.AF_INET6); s.connect(('::ffff:127.0.0.1', {pm})); s.close()\n\
         u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.sendto(b'x', ('127.0.0.1', 9))\n\
         s = socket.socket(socket.AF_UNIX)\n\
         try: s.connect('\\0agentguard-test-abstract')\n\
         except OSError: pass\n"
    );
    let r = record(&d, &[], &[python(), "-c", &code]);
    assert_eq!(r.code(), Some(0), "{}", r.stderr());
    let nets = r.kind("net");
    let find = |addr: &str, port: u16| {
        nets.iter()
            .find(|e| e["addr"] == addr && e["port"] == port)
            .copied()
    };
    let v4 = find("127.0.0.1", p4).expect("the IPv4 connect");
    assert_eq!(
        (
            v4["op"].as_str(),
            v4["proto"].as_str(),
            v4["family"].as_str()
        ),
        (Some("connect"), Some("tcp"), Some("inet"))
    );
    assert!(v4.get("error").is_none());
    let v6 = find("::1", p6).expect("the IPv6 connect");
    assert_eq!(v6["family"], "inet6");
    let mapped = find("127.0.0.1", pm).expect("the v4-mapped connect");
    assert_eq!(
        (mapped["family"].as_str(), mapped["mapped"].as_bool()),
        (Some("inet6"), Some(true))
    );
    let udp = find("127.0.0.1", 9).expect("the UDP sendto");
    assert_eq!(
        (udp["op"].as_str(), udp["proto"].as_str()),
        (Some("sendto"), Some("udp"))
    );
    let unix = nets
        .iter()
        .find(|e| e["family"] == "unix")
        .expect("the unix connect");
    assert_eq!(unix["addr"], "@agentguard-test-abstract");
    assert_eq!(unix["error"], "ECONNREFUSED");
    drop((l4, l6, l4m));
}

/// A socket() refused before any address (a sandbox of the tree's own, here its file limit)
/// is recorded with its error: no connect follows to say the tree meant to reach out. A
/// successful one is not an event (its connect is), and a refused one teaches the profile
/// no destination.
#[test]
fn a_refused_socket_is_recorded_with_its_error() {
    let d = scratch("net-refused");
    let code = "import os, resource, socket\n\
         resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))\n\
         s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n\
         fds = []\n\
         while True:\n\
         \x20   try: fds.append(os.open('/dev/null', os.O_RDONLY))\n\
         \x20   except OSError: break\n\
         try: socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n\
         except OSError as e: print(e.errno)\n";
    let r = record(&d, &[], &[python(), "-c", code]);
    assert_eq!(r.code(), Some(0), "{}", r.stderr());
    let out = String::from_utf8_lossy(&r.output.stdout);
    assert_eq!(out.trim(), libc::EMFILE.to_string(), "{}", r.stderr());
    let refused: Vec<_> = r
        .kind("net")
        .into_iter()
        .filter(|e| e["op"] == "socket")
        .collect();
    let [one] = refused.as_slice() else {
        panic!("one refused socket: {:#?}", r.kind("net"))
    };
    assert_eq!(
        (
            one["family"].as_str(),
            one["proto"].as_str(),
            one["error"].as_str()
        ),
        (Some("inet"), Some("tcp"), Some("EMFILE"))
    );
    assert!(!r.profile.contains("[[net]]"), "{}", r.profile);
}

#[test]
fn dns_query_names_are_seen_on_sendto_and_on_a_connected_socket() {
    let d = scratch("dns");
    // The test's own listener on port 53 of a loopback address, so the queries reach it
    // and nothing else (not a resolver the host may run on 127.0.0.1:53).
    let server = (1..=60)
        .find_map(|n| UdpSocket::bind(format!("127.0.83.{n}:53")).ok())
        .expect("a free port 53 on some 127.0.83.x");
    let at = server.local_addr().unwrap().ip().to_string();
    let code = format!(
        "import socket, struct\n\
        def q(name, qtype):\n    \
            body = b''.join(bytes([len(p)]) + p.encode() for p in name.split('.')) + b'\\0'\n    \
            return struct.pack('>HHHHHH', 7, 0x100, 1, 0, 0, 0) + body + struct.pack('>HH', qtype, 1)\n\
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
        u.sendto(q('api.example.test', 1), ('{at}', 53))\n\
        c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
        c.connect(('{at}', 53))\n\
        c.send(q('Other.Example.test', 28))\n"
    );
    let r = record(&d, &[], &[python(), "-c", &code]);
    assert_eq!(r.code(), Some(0), "{}", r.stderr());
    // Both queries reached this listener.
    server
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    for _ in 0..2 {
        let mut buf = [0u8; 512];
        server
            .recv_from(&mut buf)
            .expect("a query reached the listener");
    }
    let dns = r.kind("dns");
    let names: Vec<_> = dns
        .iter()
        .map(|e| {
            (
                e["names"][0].as_str().unwrap(),
                e["qtypes"][0].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![("api.example.test", "A"), ("other.example.test", "AAAA")]
    );
    assert!(dns.iter().all(|e| e["server"] == format!("{at}:53")));
    assert!(
        r.profile.contains("name = \"api.example.test\""),
        "{}",
        r.profile
    );
    assert!(
        r.stderr().contains("DNS names           2"),
        "{}",
        r.stderr()
    );
}

#[test]
fn a_double_fork_daemon_stays_in_scope_until_it_exits() {
    let d = scratch("daemon");
    let marker = d.join("daemon-was-here");
    // The daemon writes only once the tree's root has exited (dead or a zombie), so the
    // recording must have waited for it.
    let code = format!(
        "import os, time\n\
         root = os.getpid()\n\
         def alive(p):\n    \
             try: return open('/proc/%d/stat' % p).read().rsplit(')', 1)[1].split()[0] != 'Z'\n    \
             except OSError: return False\n\
         if os.fork() == 0:\n    \
             os.setsid()\n    \
             if os.fork() == 0:\n        \
                 while alive(root): time.sleep(0.01)\n        \
                 open('{}', 'w').write('x')\n        \
                 os._exit(0)\n    \
             os._exit(0)\n\
         os.wait()\n",
        marker.display()
    );
    let r = record(&d, &[], &[python(), "-c", &code]);
    assert_eq!(r.code(), Some(0), "{}", r.stderr());
    assert!(marker.exists(), "record must wait for the daemon");
    let w = r.files(&marker);
    assert_eq!(
        w.len(),
        1,
        "the daemon's write was recorded: {:#?}",
        r.kind("fork")
    );
    let daemon = w[0]["pid"].as_u64().unwrap();
    let root = r.kind("exec")[0]["pid"].as_u64().unwrap();
    // The daemon was reparented away from its dead parent, and is still in the tree.
    assert_ne!(w[0]["ppid"].as_u64().unwrap(), root);
    assert!(r.kind("fork").iter().any(|e| e["child"] == daemon));
    assert!(r.kind("exit").iter().any(|e| e["pid"] == daemon));
}

#[test]
fn a_threads_activity_is_attributed_to_its_process() {
    let d = scratch("thread");
    let f = d.join("from-thread");
    let code = format!(
        "import threading\n\
         t = threading.Thread(target=lambda: open('{}', 'w').write('x'))\n\
         t.start(); t.join()\n",
        f.display()
    );
    let r = record(&d, &[], &[python(), "-c", &code]);
    assert_eq!(r.code(), Some(0), "{}", r.stderr());
    let w = r.files(&f);
    assert_eq!(w.len(), 1);
    let root = r.kind("exec")[0]["pid"].clone();
    assert_eq!(w[0]["pid"], root);
    assert_ne!(w[0]["tid"], root, "the thread's own id is kept too");
    assert!(r.kind("fork").is_empty(), "a thread is not a new process");
}

#[test]
fn a_process_outside_the_tree_is_absent() {
    let d = scratch("outside");
    let outside = d.join("outside-marker");
    let inside = d.join("inside-marker");
    std::fs::write(&outside, "x").unwrap();
    std::fs::write(&inside, "x").unwrap();
    // The stranger reads its file before, during and after the tree's run: it reads it
    // again once the tree has started, and only then lets the tree finish (a FIFO).
    let started = d.join("tree-started");
    let saw = fifo(&d, "stranger-saw");
    let mut stranger = Command::new("/bin/sh")
        .args([
            "-c",
            &format!(
                "while [ ! -e {started} ]; do cat {o} > /dev/null; sleep 0.02; done; \
                 cat {o} > /dev/null; cat {o} > /dev/null; echo saw > {saw}",
                started = started.display(),
                o = outside.display(),
                saw = saw.display()
            ),
        ])
        .spawn()
        .unwrap();
    let r = record(
        &d,
        &[],
        &strs(&sh(&format!(
            ": > {}; for i in 1 2 3; do cat {} > /dev/null; done; read x < {}",
            started.display(),
            inside.display(),
            saw.display()
        ))),
    );
    stranger.wait().unwrap();
    assert_eq!(r.code(), Some(0), "{}", r.stderr());
    assert_eq!(r.files(&inside).len(), 3);
    assert!(
        r.files(&outside).is_empty(),
        "a process outside the tree was recorded"
    );
    let root = r.kind("exec")[0]["pid"].as_u64().unwrap();
    let tree: std::collections::HashSet<u64> = std::iter::once(root)
        .chain(r.kind("fork").iter().map(|e| e["child"].as_u64().unwrap()))
        .collect();
    assert!(r
        .events
        .iter()
        .all(|e| e["kind"] == "lost" || tree.contains(&e["pid"].as_u64().unwrap())));
}

#[test]
fn the_exit_code_passes_through() {
    let d = scratch("exit");
    assert_eq!(record(&d, &[], &strs(&sh("exit 7"))).code(), Some(7));
    let killed = record(&d, &[], &strs(&sh("kill -9 $$")));
    assert_eq!(killed.code(), Some(137));
    assert_eq!(killed.kind("exit")[0]["signal"], 9);
    let missing = record(&d, &["-q"], &["/nonexistent/agent"]);
    assert_eq!(missing.code(), Some(127));
    assert!(
        missing.stderr().contains("cannot run `/nonexistent/agent`"),
        "{}",
        missing.stderr()
    );
}

#[test]
fn flagged_kinds_are_reported() {
    let d = scratch("flags");
    let mut outsider = Command::new("sleep").arg("30").spawn().unwrap();
    let code = format!(
        "import ctypes, os\n\
         libc = ctypes.CDLL(None, use_errno=True)\n\
         libc.syscall.restype = ctypes.c_long\n\
         # PTRACE_SEIZE a process outside the tree, then let it go\n\
         assert libc.ptrace(0x4206, {pid}, 0, 0) == 0, ctypes.get_errno()\n\
         libc.ptrace(17, {pid}, 0, 0)\n\
         params = ctypes.create_string_buffer(120)\n\
         fd = libc.syscall(425, 4, params)\n\
         # Linux AIO: a context (io_setup), whose io_submit reads are not counted\n\
         ctx = ctypes.c_ulong(0)\n\
         assert libc.syscall(206, 8, ctypes.byref(ctx)) == 0, ctypes.get_errno()\n\
         os.setuid(0)\n\
         m = os.memfd_create('payload')\n\
         os.write(m, open('/bin/true', 'rb').read())\n\
         if os.fork() == 0:\n    \
             os.execve(m, ['payload'], {{}})\n\
         os.wait()\n",
        pid = outsider.id()
    );
    let r = record(&d, &[], &[python(), "-c", &code]);
    outsider.kill().unwrap();
    outsider.wait().unwrap();
    assert_eq!(r.code(), Some(0), "{}", r.stderr());
    let flags: Vec<String> = r
        .kind("flag")
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["flag"].as_str().unwrap(),
                e["detail"].as_str().unwrap()
            )
        })
        .collect();
    let has = |s: &str| flags.iter().any(|f| f.contains(s));
    assert!(
        has(&format!("ptrace PTRACE_SEIZE pid {}", outsider.id())),
        "{flags:#?}"
    );
    assert!(has("io_uring io_uring_setup(4 entries)"), "{flags:#?}");
    assert!(has("aio io_setup(8 events)"), "{flags:#?}");
    assert!(has("setuid setuid to 0"), "{flags:#?}");
    assert!(has("memfd_create memfd_create(\"payload\""), "{flags:#?}");
    let exec = r
        .kind("exec")
        .into_iter()
        .find(|e| e["argv"][0] == "payload")
        .expect("the memfd exec");
    assert_eq!(
        (exec["via_fd"].as_bool(), exec["unlinked"].as_bool()),
        (Some(true), Some(true)),
        "{exec}"
    );
    assert!(
        r.stderr().contains("set up io_uring") && r.stderr().contains("set up Linux AIO"),
        "the user is told: {}",
        r.stderr()
    );
    assert!(
        r.profile
            .contains("PTRACE_SEIZE (a process outside the tree)"),
        "{}",
        r.profile
    );
    assert!(r.profile.contains("flag = \"exec_fd\""), "{}", r.profile);
}

#[test]
fn a_flood_that_overflows_the_ring_buffer_is_counted_not_hidden() {
    // Loss is forced, not hoped for: agentguard is stopped (SIGSTOP) so nothing reads the
    // 1 MiB ring buffer while the tree runs an open storm, and continued once it is over.
    let d = scratch("flood");
    let (up, go, done) = (fifo(&d, "up"), fifo(&d, "go"), fifo(&d, "done"));
    let storm = 50_000u64;
    let script = format!(
        "echo up > {up}; read x < {go}; TMPDIR={d} {BIN} __storm open {storm} > /dev/null; echo done > {done}",
        d = d.display(),
        up = up.display(),
        go = go.display(),
        done = done.display()
    );
    let rec = Started::new(
        Command::new(BIN)
            .args(["record", "--ring-buffer-mb", "1", "-o"])
            .arg(d.join("run.toml"))
            .arg("--events")
            .arg(d.join("run.jsonl"))
            .args(["--", "/bin/sh", "-c", &script])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let ag = nix::unistd::Pid::from_raw(rec.id() as i32);
    // The tree runs, so it is in scope and agentguard is reading the ring buffer.
    await_line(&up, 60);
    nix::sys::signal::kill(ag, nix::sys::signal::Signal::SIGSTOP).unwrap();
    send_line(&go, "go", 10);
    await_line(&done, 300);
    nix::sys::signal::kill(ag, nix::sys::signal::Signal::SIGCONT).unwrap();
    let out = rec.wait_with_output();
    let r = read_outputs(out, &d.join("run.toml"), &d.join("run.jsonl"));
    assert_eq!(r.code(), Some(0), "{}", r.stderr());
    let lost = r.kind("lost");
    assert!(
        !lost.is_empty(),
        "a 1 MiB ring buffer nobody reads must lose events in a {storm} open storm"
    );
    let n = lost.last().unwrap()["lost"].as_u64().unwrap();
    let opens = r
        .kind("file")
        .iter()
        .filter(|e| e["op"] == "open" && e["path"].as_str().unwrap().contains("agentguard-storm"))
        .count() as u64;
    assert!(
        n > 0 && opens + n >= storm,
        "delivered {opens} + lost {n} must account for every one of {storm} opens"
    );
    assert!(
        r.stderr().contains("warning: events were lost"),
        "{}",
        r.stderr()
    );
    assert!(
        r.profile.contains(&format!("lost_events = {n}")),
        "{}",
        r.profile
    );
}

/// `--events -`: the events reach standard output while the tree still runs (it waits on a
/// FIFO until the test has read its exec there), each line whole JSON; the command's own
/// output goes to --output-log.
#[test]
fn events_stream_to_standard_output_as_they_happen() {
    use std::io::BufRead;
    let d = scratch("stream");
    let go = fifo(&d, "go");
    let (prof, log) = (d.join("run.toml"), d.join("command.log"));
    let script = format!("echo said by the tree; cat {}", go.display());
    let mut child = Command::new(BIN)
        .args(["record", "-q", "-o"])
        .arg(&prof)
        .args(["--events", "-", "--output-log"])
        .arg(&log)
        .args(["--", "/bin/sh", "-c", &script])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = std::io::BufReader::new(child.stdout.take().unwrap());
    let child = Started::new(child);
    // Read on a thread: a stream that never comes is a failure after a minute, not a hang.
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for l in out.lines() {
            let l = l.unwrap();
            let _ = tx.send(l.clone());
            lines.push(l);
        }
        lines
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = rx
            .recv_timeout(left)
            .expect("no exec of cat streamed while the tree ran");
        let ev: serde_json::Value = serde_json::from_str(&line).unwrap();
        if ev["kind"] == "exec" && ev["argv"][0] == "cat" {
            break;
        }
    }
    // The tree is still waiting: only now does it end.
    send_line(&go, "done", 30);
    let status = child.wait_with_output().status;
    assert_eq!(status.code(), Some(0));
    let lines = reader.join().unwrap();
    for l in &lines {
        serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("{e}: {l}"));
    }
    assert!(
        lines.iter().any(|l| l.contains("\"kind\":\"exit\"")),
        "{lines:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "said by the tree\ndone\n"
    );
    assert!(prof.exists());
}

/// A reader of `--events -` that reads nothing while the tree runs holds nothing up. The
/// tree writes far more lines than a pipe holds, then runs `agentguard hook`, which waits
/// for the recording's answer: the session must be going on (not stuck writing to the
/// pipe) to give it. Only then does the reader read, and it gets every line.
#[test]
fn a_stream_reader_that_reads_nothing_for_a_while_holds_nothing_up() {
    use std::io::Read;
    let d = scratch("stream-slow");
    let done = fifo(&d, "done");
    let prof = d.join("run.toml");
    let script = format!(
        "import json, os, subprocess\n\
         for _ in range(5000):\n\
         \x20   os.close(os.open('/etc/hostname', os.O_RDONLY))\n\
         report = {{'hook_event_name': 'PreToolUse', 'tool_name': 'Bash', 'tool_use_id': 'toolu_slow', 'tool_input': {{}}}}\n\
         r = subprocess.run([{BIN:?}, 'hook'], input=json.dumps(report).encode(), capture_output=True)\n\
         open({:?}, 'w').write('answered\\n' if not r.stderr else r.stderr.decode().replace('\\n', ' ') + '\\n')\n",
        done.display().to_string()
    );
    let mut child = Command::new(BIN)
        .args(["record", "-q", "-o"])
        .arg(&prof)
        .args(["--events", "-", "--output-log"])
        .arg(d.join("command.log"))
        .args(["--", python(), "-c", &script])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let child = Started::new(child);
    // Nobody reads until the hook has had its answer, or given up on it.
    assert_eq!(await_line(&done, 120), "answered");
    let mut text = String::new();
    out.read_to_string(&mut text).unwrap();
    let o = child.wait_with_output();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    // More than a pipe holds went through while the reader read nothing.
    assert!(text.len() > 1 << 20, "{} bytes", text.len());
    let end = lines.last().unwrap();
    assert_eq!(end["kind"], "end", "{end}");
    assert_eq!(end["events"], lines.len() as u64 - 1);
    assert!(
        lines
            .iter()
            .any(|e| e["kind"] == "llm.tool_call" && e["id"] == "toolu_slow"),
        "the report was taken"
    );
}

/// A reader of `--events -` that goes away is a write error said at the end: agentguard
/// does not die of SIGPIPE, the tree runs on watched, and the profile is written.
#[test]
fn a_stream_reader_that_goes_away_ends_in_an_error_not_an_unwatched_tree() {
    use std::io::BufRead;
    let d = scratch("stream-gone");
    let go = fifo(&d, "go");
    let prof = d.join("run.toml");
    let script = format!("cat {}; cat /etc/hostname", go.display());
    let mut child = Command::new(BIN)
        .args(["record", "-o"])
        .arg(&prof)
        .args(["--events", "-", "--output-log"])
        .arg(d.join("command.log"))
        .args(["--", "/bin/sh", "-c", &script])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let child = Started::new(child);
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert!(first.contains("\"kind\":\"start\""), "{first}");
    drop(out);
    send_line(&go, "done", 30);
    let o = child.wait_with_output();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{:?}: {err}", o.status);
    assert!(err.contains("writing the event log"), "{err}");
    let profile = std::fs::read_to_string(&prof).unwrap();
    assert!(profile.contains("/etc/hostname"), "{profile}");
}

/// Outputs are checked and inputs parsed before the command starts: a recording is never
/// lost after the run.
#[test]
fn a_bad_output_or_input_fails_before_the_command_runs() {
    let d = scratch("before-start");
    let mark = d.join("ran");
    let cmd = format!("touch {}", mark.display());
    let bad_baseline = d.join("bad.toml");
    std::fs::write(&bad_baseline, "version = 1\nruns = \"many\"\n").unwrap();
    let nowhere = d.join("no/such/dir/x.toml");
    let nowhere_events = d.join("no/such/dir/x.jsonl");
    let prof = d.join("run.toml");
    let cases: Vec<(Vec<&std::ffi::OsStr>, &str)> = vec![
        // The stream and the profile cannot share standard output, nor the stream and the
        // command's output (/dev/stdout is the same pipe).
        (
            vec!["--events".as_ref(), "-".as_ref()],
            "name the profile with -o",
        ),
        (
            vec![
                "--events".as_ref(),
                "/dev/stdout".as_ref(),
                "-o".as_ref(),
                prof.as_os_str(),
                "--output-log".as_ref(),
                "/dev/stdout".as_ref(),
            ],
            "standard output too",
        ),
        (vec!["-o".as_ref(), nowhere.as_os_str()], "no/such/dir"),
        (
            vec!["--events".as_ref(), nowhere_events.as_os_str()],
            "no/such/dir",
        ),
        (
            vec!["--merge-into".as_ref(), bad_baseline.as_os_str()],
            "bad.toml",
        ),
        (
            vec!["--baseline".as_ref(), bad_baseline.as_os_str()],
            "bad.toml",
        ),
    ];
    for (args, names) in cases {
        let out = Command::new(BIN)
            .arg("record")
            .args(&args)
            .args(["--", "/bin/sh", "-c", &cmd])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(names), "{args:?}: {err}");
        assert!(!mark.exists(), "{args:?}: the command ran: {err}");
    }
}

/// `--user`: the command runs as that user, with its groups and HOME, and the profile's
/// ${HOME} is that user's home; a user that does not exist is an error before anything runs.
#[test]
fn a_command_runs_as_the_user_asked_for_with_its_home() {
    let d = scratch("user");
    if let Some(why) = unreachable_by_others(&d.join("who")) {
        return skip("record::a_command_runs_as_the_user_asked_for", &why);
    }
    let nobody = 65534;
    std::os::unix::fs::chown(&*d, Some(nobody), Some(nobody)).unwrap();
    let out = d.join("who");
    let script = format!(
        "id -u > {0}; id -G >> {0}; echo $HOME $USER >> {0}",
        out.display()
    );
    let run = record(&d, &["--user", "nobody"], &strs(&sh(&script)));
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    let who = std::fs::read_to_string(&out).unwrap();
    assert_eq!(who, "65534\n65534\n/nonexistent nobody\n");
    assert!(
        run.profile.contains("home = \"/nonexistent\""),
        "{}",
        run.profile
    );
    // The file the tree wrote is its user's.
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&out).unwrap().uid(), nobody);

    let out = std::process::Command::new(BIN)
        .args(["record", "-q", "--user", "no-such-user-here", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--user no-such-user-here: no such user"));
}
