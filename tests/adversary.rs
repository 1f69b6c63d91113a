//! The adversarial suite, record side: each case of tests/adversary/adversary.c (a real
//! program doing what a prompt-injected agent might, to get around agentguard) run under
//! record, and what the sensor reported checked. The enforce side runs in the VM
//! (tests/vm/adversary.sh). README, "Adversarial cases", keeps the table of both.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

use crate::util::*;

/// The adversary, built once with the system's C compiler.
pub fn adversary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/adversary/adversary.c");
        let out = process_dir().join("adversary.bin");
        let ok = ["cc", "clang", "gcc"].iter().any(|cc| {
            Command::new(cc)
                .args(["-O1", "-o"])
                .arg(&out)
                .arg(&src)
                .arg("-lpthread")
                .status()
                .is_ok_and(|s| s.success())
        });
        assert!(
            ok,
            "no C compiler built {} (scripts/setup.sh installs clang)",
            src.display()
        );
        out
    })
}

/// One case under record: its stdout and the events.
fn case(d: &Path, args: &[&str]) -> (String, Run) {
    let mut cmd = vec![adversary().to_str().unwrap()];
    cmd.extend_from_slice(args);
    let r = record(d, &[], &cmd);
    assert_ne!(r.code(), Some(2), "{args:?}: {}", r.stderr());
    (String::from_utf8_lossy(&r.output.stdout).into_owned(), r)
}

fn opened(r: &Run, path: &str) -> Option<Value> {
    r.kind("file")
        .into_iter()
        .find(|e| e["op"] == "open" && e["path"] == path && e.get("error").is_none())
        .cloned()
}

fn flagged(r: &Run, flag: &str) -> Option<Value> {
    r.kind("flag")
        .into_iter()
        .find(|e| e["flag"] == flag)
        .cloned()
}

#[test]
fn every_adversarial_case_is_recorded() {
    let d = scratch("adversary");
    let f = d.join("secret.txt");
    std::fs::write(&f, "secret\n").unwrap();
    let fs = f.to_str().unwrap();
    let ds = d.to_str().unwrap();

    // Opens the sensor sees only as a flag: io_uring operations bypass syscalls.
    let (o, r) = case(&d, &["io_uring_open", fs]);
    assert!(o.contains("io_uring_open ok"), "{o}");
    assert!(
        flagged(&r, "io_uring").is_some(),
        "io_uring set-up not flagged"
    );
    assert!(
        r.stderr().contains("io_uring operations are not visible"),
        "{}",
        r.stderr()
    );

    let (o, r) = case(&d, &["openat2", fs]);
    assert!(o.contains("openat2 ok"), "{o}");
    assert!(opened(&r, fs).is_some(), "openat2 open not recorded");

    let (_, r) = case(&d, &["open_by_handle_at", fs]);
    assert!(flagged(&r, "open_by_handle").is_some());
    assert!(
        opened(&r, fs).is_some(),
        "the handle's file is named by the kernel"
    );

    let (_, r) = case(&d, &["execveat_fd", "/usr/bin/true"]);
    let x = r
        .kind("exec")
        .into_iter()
        .find(|e| e["path"] == "/usr/bin/true")
        .cloned()
        .unwrap();
    assert_eq!(x["via_fd"], true, "{x}");

    let (_, r) = case(&d, &["exec_memfd", "/usr/bin/true"]);
    assert!(flagged(&r, "memfd_create").is_some());
    assert!(
        r.kind("exec").iter().any(|e| e["unlinked"] == true),
        "exec of a memfd not marked"
    );

    let link = d.join("sl");
    let (_, r) = case(&d, &["symlink_read", fs, link.to_str().unwrap()]);
    assert!(
        opened(&r, fs).is_some(),
        "a symlink's open is recorded as its target"
    );

    let hard = d.join("hl");
    let (_, r) = case(&d, &["hardlink_read", fs, hard.to_str().unwrap()]);
    assert!(
        r.kind("file")
            .iter()
            .any(|e| e["op"] == "link" && e["path"] == fs),
        "the hard link to the file is recorded"
    );

    let moved = d.join("moved.txt");
    std::fs::write(d.join("a.txt"), "a").unwrap();
    let a = d.join("a.txt");
    let (_, r) = case(
        &d,
        &[
            "rename_after_open",
            a.to_str().unwrap(),
            moved.to_str().unwrap(),
        ],
    );
    assert!(opened(&r, a.to_str().unwrap()).is_some());
    assert!(r
        .kind("file")
        .iter()
        .any(|e| e["op"] == "rename" && e["target"] == moved.to_str().unwrap()));

    let (_, r) = case(&d, &["fchdir_relative", ds, "secret.txt"]);
    assert!(
        opened(&r, fs).is_some(),
        "a relative open after fchdir is resolved"
    );

    // Longer than 256 bytes: whole. Longer than 4,096: marked truncated, never silent.
    let (_, r) = case(&d, &["long_path", ds, "3"]);
    let comp = "d".repeat(200);
    let p3 = format!("{ds}/{comp}/{comp}/{comp}/leaf");
    assert!(
        opened(&r, &p3).is_some(),
        "a 600-byte path is recorded whole"
    );
    let (_, r) = case(&d, &["long_path", ds, "25"]);
    assert!(
        r.kind("file")
            .iter()
            .any(|e| e["truncated"] == true && e["path"].as_str().unwrap().ends_with("/leaf")),
        "a 5,000-byte path is marked truncated"
    );

    let (_, r) = case(&d, &["non_utf8", ds]);
    assert!(
        opened(&r, &format!("{ds}/\\xff\\xfe-name")).is_some(),
        "bytes escaped as \\xNN"
    );

    let (_, r) = case(&d, &["v4mapped_connect", "127.0.0.1:1"]);
    assert!(r
        .kind("net")
        .iter()
        .any(|e| e["addr"] == "127.0.0.1" && e["mapped"] == true && e["port"] == 1));
    let (_, r) = case(&d, &["v4compat_connect", "127.0.0.1:1"]);
    assert!(
        r.kind("net")
            .iter()
            .any(|e| e["addr"] == "::7f00:1" && e["port"] == 1),
        "{:?}",
        r.kind("net")
    );

    for (c, op) in [("udp_sendto", "sendto"), ("udp_sendmsg", "sendmsg")] {
        let (_, r) = case(&d, &[c, "127.0.0.1:9"]);
        assert!(
            r.kind("net")
                .iter()
                .any(|e| e["op"] == op && e["addr"] == "127.0.0.1" && e["port"] == 9),
            "{c}"
        );
    }
    // A descriptor received over a unix socket: flagged, with its file.
    let (o, r) = case(&d, &["scm_rights", fs]);
    assert!(o.contains("scm_rights ok"), "{o}");
    let f = flagged(&r, "fd_received").expect("SCM_RIGHTS flagged");
    assert!(f["detail"].as_str().unwrap().contains(fs), "{f}");
    // A destination in a sendmmsg's last message is a destination.
    let (o, r) = case(&d, &["udp_mmsg", "127.0.0.1:9"]);
    assert!(o.contains("udp_mmsg ok"), "{o}");
    assert!(
        r.kind("net")
            .iter()
            .any(|e| e["op"] == "sendmsg" && e["addr"] == "127.0.0.1" && e["port"] == 10),
        "{:?}",
        r.kind("net")
    );
    let (_, r) = case(&d, &["unix_connect", "@agentguard-adversary"]);
    assert!(r
        .kind("net")
        .iter()
        .any(|e| e["family"] == "unix" && e["addr"] == "@agentguard-adversary"));
    let sock = d.join("sock");
    let (_, r) = case(&d, &["unix_connect", sock.to_str().unwrap()]);
    assert!(r
        .kind("net")
        .iter()
        .any(|e| e["family"] == "unix" && e["addr"] == sock.to_str().unwrap()));
    // Through a symlink: recorded as the socket the kernel reached (its bound name), which
    // is what enforce checks, not the name the program passed.
    let (real, link) = (d.join("real.sock"), d.join("link.sock"));
    let (o, r) = case(
        &d,
        &[
            "unix_symlink",
            real.to_str().unwrap(),
            link.to_str().unwrap(),
        ],
    );
    assert!(o.contains("unix_symlink ok"), "{o}");
    let connects: Vec<_> = r
        .kind("net")
        .into_iter()
        .filter(|e| e["family"] == "unix" && e["op"] == "connect")
        .collect();
    assert!(
        connects.iter().any(|e| e["addr"] == real.to_str().unwrap()),
        "{connects:?}"
    );
    assert!(
        !connects.iter().any(|e| e["addr"] == link.to_str().unwrap()),
        "{connects:?}"
    );
    // An abstract name with a NUL inside is that whole name, not the part before it.
    let (o, r) = case(&d, &["unix_nul", "@agentguard-adversary"]);
    assert!(o.contains("unix_nul ok"), "{o}");
    assert!(
        r.kind("net")
            .iter()
            .any(|e| e["op"] == "connect" && e["addr"] == "@agentguard-adversary\\x00x"),
        "{:?}",
        r.kind("net")
    );

    // Leaving the tree's lineage does not leave the recording.
    for c in ["setsid_double_fork", "subreaper", "thread_open"] {
        let (o, r) = case(&d, &[c, fs]);
        assert!(o.contains(&format!("{c} ok")), "{c}: {o}");
        assert!(opened(&r, fs).is_some(), "{c}: the open is recorded");
    }
    let (_, r) = case(&d, &["vfork_exec", "/usr/bin/true"]);
    assert!(r.kind("exec").iter().any(|e| e["path"] == "/usr/bin/true"));
    let cg = crate::adversary_cgroup_root();
    let (o, r) = case(&d, &["clone3_cgroup", cg.to_str().unwrap(), fs]);
    assert!(o.contains("clone3_cgroup ok"), "{o}");
    assert!(
        opened(&r, fs).is_some(),
        "a child started in another cgroup stays in scope"
    );
    assert!(
        flagged(&r, "cgroup").is_some(),
        "clone3 into a cgroup flagged"
    );

    // What reaches past the tree is flagged, whatever the profile.
    let (o, r) = case(&d, &["tiocsti", "-"]);
    assert!(o.contains("tiocsti "), "{o}");
    let t = flagged(&r, "terminal").expect("TIOCSTI flagged");
    assert!(t["detail"].as_str().unwrap().contains("TIOCSTI"), "{t}");
    for (c, what) in [
        ("raw_socket", "inet, raw"),
        ("packet_socket", "packet, raw"),
    ] {
        let (o, r) = case(&d, &[c, "127.0.0.1:9"]);
        assert!(o.contains(&format!("{c} ok")), "{c}: {o}");
        let f = flagged(&r, "socket").unwrap_or_else(|| panic!("{c} not flagged"));
        assert!(f["detail"].as_str().unwrap().contains(what), "{f}");
    }
    // AF_UNSPEC on an IPv4 socket is AF_INET to the kernel: recorded with its address.
    let (_, r) = case(&d, &["udp_unspec", "127.0.0.1:9"]);
    assert!(
        r.kind("net")
            .iter()
            .any(|e| e["op"] == "sendto" && e["addr"] == "127.0.0.1" && e["port"] == 9),
        "{:?}",
        r.kind("net")
    );
    let node = d.join("mem");
    let (_, r) = case(&d, &["mknod_mem", node.to_str().unwrap()]);
    let f = flagged(&r, "device").expect("mknod of a device flagged");
    assert!(
        f["detail"]
            .as_str()
            .unwrap()
            .contains("character device 1:1"),
        "{f}"
    );
    let _ = std::fs::remove_file(&node);
    let (_, r) = case(&d, &["setxattr_security", fs]);
    assert!(flagged(&r, "xattr").is_some(), "security.* xattr flagged");
    // Changes without an open: owner (by path and by descriptor) and truncate(2), each
    // a file entry with the right enforce checks it under.
    let victim = d.join("victim.txt");
    std::fs::write(&victim, "x").unwrap();
    let vs = victim.to_str().unwrap();
    for (c, op, access) in [
        ("chown", "chown", "chmod"),
        ("fchown", "chown", "chmod"),
        ("truncate", "truncate", "truncate"),
        ("utimes", "utimes", "times"),
    ] {
        let (o, r) = case(&d, &[c, vs]);
        assert!(o.contains(&format!("{c} ok")), "{o}");
        assert!(
            r.kind("file").iter().any(|e| e["op"] == op
                && e["path"] == vs
                && e["access"].as_array().unwrap().iter().any(|a| a == access)),
            "{c}: {:?}",
            r.kind("file")
        );
    }
    // A detached copy of the mount: the open's path would be /secret.txt, so it is a
    // flag naming what it is, not a file entry a profile could learn.
    let (o, r) = case(&d, &["detached_read", ds, "secret.txt"]);
    assert!(o.contains("detached_read ok"), "{o}");
    assert!(flagged(&r, "mount").is_some(), "open_tree flagged");
    let f = flagged(&r, "detached_path").expect("the detached open flagged");
    assert!(f["detail"].as_str().unwrap().contains("/secret.txt"), "{f}");
    assert!(
        opened(&r, "/secret.txt").is_none(),
        "learned as a file entry"
    );

    let mut outsider = Command::new("/bin/sleep").arg("30").spawn().unwrap();
    let pid = outsider.id().to_string();
    let (_, r) = case(&d, &["ptrace_outside", &pid]);
    let p = flagged(&r, "ptrace").expect("ptrace flagged");
    assert!(
        p["detail"].as_str().unwrap().contains("PTRACE_ATTACH"),
        "{p}"
    );
    let (_, r) = case(&d, &["proc_mem_write", &pid]);
    assert!(r
        .kind("file")
        .iter()
        .any(|e| e["path"] == format!("/proc/{pid}/mem")
            && e["access"].as_array().unwrap().iter().any(|a| a == "write")));
    let (o, r) = case(&d, &["signal_outside", &pid]);
    assert!(o.contains("signal_outside ok"), "{o}");
    let f = flagged(&r, "signal").expect("a signal outside the tree flagged");
    assert!(
        f["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("pid {pid}")),
        "{f}"
    );
    let _ = outsider.kill();
    let _ = outsider.wait();
}

#[test]
fn a_pid_reused_after_a_tracked_process_exits_is_not_in_scope() {
    // A child of the tree exits; an unrelated process is then started with its pid
    // (clone3's set_tid, so the host-wide ns_last_pid is left alone). What the stranger
    // does is not the tree's. The tree waits on a FIFO until the stranger has run.
    let d = scratch("adversary-pid-reuse");
    let (pf, go) = (fifo(&d, "pid"), fifo(&d, "go"));
    let rec = Started::new(
        Command::new(BIN)
            .args(["record", "-q", "-o"])
            .arg(d.join("run.toml"))
            .arg("--events")
            .arg(d.join("run.jsonl"))
            .args([
                "--",
                "/bin/sh",
                "-c",
                &format!(
                    "/bin/sh -c 'echo $$ > {}'; read x < {}",
                    pf.display(),
                    go.display()
                ),
            ])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let p: u32 = await_line(&pf, 60).trim().parse().unwrap();
    // The child is gone (reaped by the tree's shell) before its pid can be taken.
    let t = std::time::Instant::now();
    while Path::new(&format!("/proc/{p}")).exists() {
        assert!(t.elapsed().as_secs() < 30, "pid {p} never exited");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let out = Command::new(adversary())
        .args([
            "exec_as_pid",
            &p.to_string(),
            "/usr/bin/cat",
            "/etc/hostname",
        ])
        .output()
        .unwrap();
    let so = String::from_utf8_lossy(&out.stdout);
    assert!(
        so.contains("exec_as_pid ok"),
        "the stranger did not run as pid {p}: {so}"
    );
    send_line(&go, "go", 30);
    let out = rec.wait_with_output();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = read_outputs(out, &d.join("run.toml"), &d.join("run.jsonl"));
    assert!(
        r.events
            .iter()
            .any(|e| e["kind"] == "exit" && e["pid"] == p),
        "the tree's child {p} was recorded"
    );
    assert!(
        !r.events.iter().any(|e| e["pid"] == p
            && e["kind"] != "exit"
            && e["kind"] != "fork"
            && e.get("path")
                .is_some_and(|x| x == "/usr/bin/cat" || x == "/etc/hostname")),
        "the stranger with pid {p} was recorded as the tree"
    );
    assert!(
        opened(&r, "/etc/hostname").is_none(),
        "the stranger's open was recorded"
    );
}

/// Records `args` of the adversary with agentguard on a terminal: a pseudo-terminal this
/// test holds, as the controlling terminal of agentguard's own session. Returns what
/// reached that terminal, agentguard's pid, its output and the terminal's name.
fn on_terminal(d: &Path, args: &[&str]) -> (Vec<u8>, i32, std::process::Output, PathBuf) {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let pty = nix::pty::openpty(None, None).unwrap();
    let outer = nix::unistd::ttyname(&pty.slave).unwrap();
    let slave = pty.slave.as_raw_fd();
    let io = || std::process::Stdio::from(pty.slave.try_clone().unwrap());
    let mut cmd = Command::new(BIN);
    cmd.args(["record", "-q", "-o"])
        .arg(d.join("run.toml"))
        .arg("--events")
        .arg(d.join("run.jsonl"))
        .arg("--")
        .arg(adversary())
        .args(args)
        .stdin(io())
        .stdout(io())
        .stderr(std::process::Stdio::piped());
    // SAFETY: two system calls in the child before exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::setsid();
            libc::ioctl(slave, libc::TIOCSCTTY, 0);
            Ok(())
        });
    }
    let child = cmd.spawn().unwrap();
    let guard = child.id() as i32;
    // Only agentguard and its tree may hold the terminal now: the command's copies too.
    drop(cmd);
    drop(pty.slave);
    // Everything the tree wrote, until the last holder of the terminal is gone (EIO).
    let mut m = std::fs::File::from(pty.master);
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = m.read(&mut buf) {
        if n == 0 {
            break;
        }
        text.extend_from_slice(&buf[..n]);
    }
    (text, guard, child.wait_with_output().unwrap(), outer)
}

#[test]
fn the_tree_gets_a_terminal_and_a_session_of_its_own() {
    // The tree pushes a newline into the terminal on its standard input (TIOCSTI) and
    // says which terminal and session it has: not the user's, not agentguard's. The push
    // is recorded as a flag.
    let d = scratch("adversary-pty");
    let (text, guard, out, outer) = on_terminal(&d, &["tiocsti", "-"]);
    let text = String::from_utf8_lossy(&text);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = text
        .lines()
        .find(|l| l.starts_with("tty="))
        .unwrap_or_else(|| panic!("no tty line in {text:?}"));
    let tty = line
        .split_whitespace()
        .next()
        .unwrap()
        .trim_start_matches("tty=");
    let sid: i32 = line.rsplit("sid=").next().unwrap().trim().parse().unwrap();
    assert!(
        tty.starts_with("/dev/pts/"),
        "the tree has no terminal: {text:?}"
    );
    assert_ne!(Path::new(tty), outer, "the tree holds the user's terminal");
    assert_ne!(sid, guard, "the tree shares agentguard's session");
    assert!(text.contains("tiocsti ok"), "{text:?}");
    let r = read_outputs(out, &d.join("run.toml"), &d.join("run.jsonl"));
    assert!(flagged(&r, "terminal").is_some(), "TIOCSTI not flagged");
}

#[test]
fn sequences_that_act_beyond_the_screen_do_not_reach_the_users_terminal() {
    // The tree prints an OSC 52 (set the clipboard to a command the user pastes later),
    // a DCS request the terminal would answer, and a title report request, between
    // ordinary text: only the text reaches the user's terminal.
    let d = scratch("adversary-osc");
    let (text, _, out, _) = on_terminal(&d, &["escapes", "-"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&text);
    assert!(
        text.contains("before") && text.contains("after"),
        "{text:?}"
    );
    for bad in ["\x1b]52", "ZWNobyBwd25lZA", "\x1bP", "\x1b[21t"] {
        assert!(
            !text.contains(bad),
            "{bad:?} reached the terminal: {text:?}"
        );
    }
    assert!(
        text.contains("\x1b[1mbold"),
        "ordinary sequences pass: {text:?}"
    );
}
