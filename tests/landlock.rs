//! The Landlock backend, on this machine (Landlock and cgroup programs work here; BPF LSM
//! does not): real processes, real denials.
use std::net::TcpListener;
use std::process::Command;

use crate::util::*;

fn profile(d: &std::path::Path, port: u16) -> std::path::PathBuf {
    let p = d.join("p.toml");
    std::fs::write(
        &p,
        format!(
            r#"version = 1
include = ["locale"]

[[exec]]
path = "/usr/bin/{{bash,cat}}"

[[file]]
path = "/usr/lib/x86_64-linux-gnu/*"
access = ["read"]

[[file]]
path = "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
access = ["read"]

[[file]]
path = "/etc/{{ld.so.cache,nsswitch.conf,passwd,group}}"
access = ["read"]

[[file]]
path = "/dev/null"
access = ["read", "write"]

[[file]]
path = "{d}/data/*"
access = ["read"]

[[file]]
path = "{d}/out/*"
access = ["write", "create", "truncate"]

[[net]]
op = "connect"
proto = "tcp"
addr = "127.0.0.1"
port = {port}
"#,
            d = d.display()
        ),
    )
    .unwrap();
    p
}

#[test]
fn landlock_denies_what_the_profile_does_not_allow_and_reports_widened_rules() {
    let d = scratch("landlock");
    std::fs::create_dir_all(d.join("data")).unwrap();
    std::fs::create_dir_all(d.join("out")).unwrap();
    std::fs::write(d.join("data/ok.txt"), "allowed\n").unwrap();
    std::fs::write(d.join("secret.txt"), "secret\n").unwrap();
    let ok = TcpListener::bind("127.0.0.1:0").unwrap();
    let no = TcpListener::bind("127.0.0.1:0").unwrap();
    let fresh = TcpListener::bind("127.0.0.1:0").unwrap();
    let (okp, nop, freshp) = (
        ok.local_addr().unwrap().port(),
        no.local_addr().unwrap().port(),
        fresh.local_addr().unwrap().port(),
    );
    let p = profile(&d, okp);
    let script = format!(
        "cat {d}/data/ok.txt; cat {d}/secret.txt || echo READ-DENIED; \
         cat {d}/secret.txt 2>/dev/null; cat {d}/secret.txt 2>/dev/null; \
         echo hi > {d}/out/x.txt && echo WROTE; (echo no > {d}/y.txt) 2>/dev/null || echo WRITE-DENIED; \
         /usr/bin/id || echo EXEC-DENIED; \
         (exec 3<>/dev/tcp/127.0.0.1/{okp}) && echo CONNECTED; \
         (exec 3<>/dev/tcp/127.0.0.1/{nop}) 2>/dev/null || echo CONNECT-DENIED; \
         /usr/bin/bash -c 'exec 3<>/dev/tcp/127.0.0.1/{freshp}' 2>/dev/null || echo FRESH-DENIED",
        d = d.display()
    );
    let out = Command::new(BIN)
        .args([
            "enforce",
            "--deny-at",
            "new",
            "--backend",
            "landlock",
            "--profile",
        ])
        .arg(&p)
        .args(["--", "/usr/bin/bash", "-c", &script])
        .output()
        .unwrap();
    let so = String::from_utf8_lossy(&out.stdout);
    let se = String::from_utf8_lossy(&out.stderr);
    for want in [
        "allowed",
        "READ-DENIED",
        "WROTE",
        "WRITE-DENIED",
        "EXEC-DENIED",
        "CONNECTED",
        "CONNECT-DENIED",
        "FRESH-DENIED",
    ] {
        assert!(so.lines().any(|l| l == want), "{want} missing:\n{so}\n{se}");
    }
    assert!(!so.contains("secret"), "the denied file was read: {so}");
    assert!(!d.join("y.txt").exists());
    assert_eq!(
        std::fs::read_to_string(d.join("out/x.txt")).unwrap(),
        "hi\n"
    );
    // Said before the start: which backend, what it does not cover, what it widened.
    assert!(
        se.contains("with Landlock") && se.contains("cgroup programs (1 network rules)"),
        "{se}"
    );
    assert!(
        se.contains(
            "not covered by Landlock: unix sockets are checked by the name the program passes"
        ),
        "{se}"
    );
    assert!(
        se.contains(&format!(
            "widened: [[file]] {}/data/*: allowed beneath {}/data (a hierarchy)",
            d.display(),
            d.display()
        )),
        "{se}"
    );
    // And each denial, as it happened: the same one three times is one line and a count.
    let secret = format!("DENIED open {}/secret.txt (read)", d.display());
    assert_eq!(
        se.matches(&secret).count(),
        2,
        "once as it happened, once counted: {se}"
    );
    assert!(
        se.lines()
            .any(|l| l.contains(&secret) && l.ends_with("(3 times in all; printed once)")),
        "{se}"
    );
    assert!(
        se.contains("agentguard: enforced /usr/bin/bash"),
        "the summary: {se}"
    );
    assert!(se.contains("DENIED exec /usr/bin/id"), "{se}");
    assert!(
        se.contains(&format!("DENIED connect 127.0.0.1:{nop}")),
        "{se}"
    );
    // A program denied as soon as it started is named (its exec was read before the
    // denial), not left blank.
    let fresh_denial = format!("DENIED connect 127.0.0.1:{freshp} by bash (pid ");
    assert!(se.contains(&fresh_denial), "{fresh_denial}\n{se}");
    // -q: what Landlock changes is one line, not the lists.
    let quiet = Command::new(BIN)
        .args([
            "enforce",
            "-q",
            "--deny-at",
            "new",
            "--backend",
            "landlock",
            "--profile",
        ])
        .arg(&p)
        .args(["--", "/usr/bin/bash", "-c", "true"])
        .output()
        .unwrap();
    let qe = String::from_utf8_lossy(&quiet.stderr);
    assert!(
        qe.contains("with Landlock: ")
            && qe.contains("rules widened")
            && !qe.contains("widened: [[file]]"),
        "{qe}"
    );
    drop((ok, no));
}

#[test]
fn landlock_refuses_what_it_cannot_do_rather_than_degrade() {
    let d = scratch("landlock-refuse");
    let p = profile(&d, 1);
    for (extra, why) in [
        (vec!["--pid", "1"], "--pid cannot be enforced with Landlock"),
        (vec!["--audit", "--", "/bin/true"], "--audit needs BPF LSM"),
        (
            vec!["--on-deny", "kill", "--", "/bin/true"],
            "--on-deny kill needs BPF LSM",
        ),
    ] {
        let out = Command::new(BIN)
            .args([
                "enforce",
                "--deny-at",
                "new",
                "--backend",
                "landlock",
                "--profile",
            ])
            .arg(&p)
            .args(&extra)
            .output()
            .unwrap();
        let se = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {se}");
        assert!(
            se.contains(why) && se.contains("not started"),
            "{extra:?}: {se}"
        );
    }
}

#[test]
fn a_profile_edited_while_enforce_runs_is_not_half_applied() {
    // The profile is read once, before the start: rewriting it mid-run changes nothing.
    let d = scratch("landlock-edit");
    std::fs::create_dir_all(d.join("data")).unwrap();
    std::fs::create_dir_all(d.join("out")).unwrap();
    std::fs::write(d.join("secret.txt"), "secret\n").unwrap();
    let p = profile(&d, 1);
    // The tree says it runs (so the profile was read and the ruleset applied), then waits
    // for the test to edit the profile.
    let ready = fifo(&d.join("out"), "ready");
    let go = fifo(&d.join("data"), "go");
    let script = format!(
        "echo ready > {ready}; read x < {go}; cat {d}/secret.txt || echo STILL-DENIED",
        ready = ready.display(),
        go = go.display(),
        d = d.display()
    );
    let child = Started::new(
        Command::new(BIN)
            .args([
                "enforce",
                "-q",
                "--deny-at",
                "new",
                "--backend",
                "landlock",
                "--profile",
            ])
            .arg(&p)
            .args(["--", "/usr/bin/bash", "-c", &script])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    await_line(&ready, 60);
    let mut text = std::fs::read_to_string(&p).unwrap();
    text.push_str(&format!(
        "\n[[file]]\npath = \"{}/secret.txt\"\naccess = [\"read\"]\n",
        d.display()
    ));
    std::fs::write(&p, text).unwrap();
    send_line(&go, "go", 30);
    let out = child.wait_with_output();
    let so = String::from_utf8_lossy(&out.stdout);
    assert!(
        so.contains("STILL-DENIED") && !so.contains("secret"),
        "{so}"
    );
}

#[test]
fn a_hundred_thousand_rule_profile_is_refused_by_bpf_lsm_with_a_clear_message() {
    let d = scratch("huge-profile");
    let mut text = String::from("version = 1\n");
    for i in 0..100_000 {
        text.push_str(&format!(
            "\n[[file]]\npath = \"/srv/data/f{i}.txt\"\naccess = [\"read\"]\n"
        ));
    }
    let p = d.join("huge.toml");
    std::fs::write(&p, text).unwrap();
    // Parsing and diffing it works (within a baseline's limits)...
    let show = Command::new(BIN).arg("show").arg(&p).output().unwrap();
    assert!(
        show.status.success(),
        "{}",
        String::from_utf8_lossy(&show.stderr)
    );
    // ...and the kernel side says how much it holds, before anything starts.
    let out = Command::new(BIN)
        .args([
            "enforce",
            "--deny-at",
            "new",
            "--backend",
            "bpf-lsm",
            "--profile",
        ])
        .arg(&p)
        .args(["--", "/bin/true"])
        .output()
        .unwrap();
    let se = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{se}");
    assert!(
        se.contains("the profile compiles to 100")
            && se.contains(" path rules; the kernel side holds 16384"),
        "{se}"
    );
}

#[test]
fn landlock_and_its_seccomp_filter_deny_what_reaches_past_the_tree() {
    // The adversary's cases that Landlock itself cannot say, each refused by the signal
    // scope or the seccomp filter, each reported as a denial. The tree is given a profile
    // that lets it run and write its work directory; every case is a real attempt.
    let d = scratch("landlock-adversary");
    let work = d.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let adv = crate::adversary::adversary();
    let p = d.join("p.toml");
    std::fs::write(
        &p,
        format!(
            r#"version = 1
[[exec]]
path = "{adv}"

[[file]]
path = "/usr/lib/x86_64-linux-gnu/*"
access = ["read"]

[[file]]
path = "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
access = ["read"]

[[file]]
path = "/etc/ld.so.cache"
access = ["read"]

[[file]]
path = "/proc/*/task/*/children"
access = ["read"]

[[file]]
path = "{w}/*"
access = ["read", "write", "create"]

# Unix sockets the cases may reach by these names, and no other.
[[net]]
op = "connect"
proto = "stream"
addr = "@agentguard-landlock"

"#,
            adv = adv.display(),
            w = work.display()
        ),
    )
    .unwrap();
    let mut outsider = Command::new("/bin/sleep").arg("30").spawn().unwrap();
    let pid = outsider.id().to_string();
    let node = work.join("mem");
    let (w, n) = (work.to_str().unwrap(), node.to_str().unwrap());
    // Abstract: a path socket would need the right to make one in the directory.
    let outside_sock = "@agentguard-landlock-other".to_string();
    // One case under enforce: its standard output and error.
    let run = |args: &[&str]| {
        let out = Command::new(BIN)
            .args([
                "enforce",
                "--deny-at",
                "new",
                "--backend",
                "landlock",
                "-q",
                "--profile",
            ])
            .arg(&p)
            .arg("--")
            .arg(adv)
            .args(args)
            .output()
            .unwrap();
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    for (args, denial) in [
        (vec!["kill_guard", "-"], "DENIED signal"),
        (vec!["signal_outside", &pid], "DENIED signal"),
        (vec!["tiocsti", "-"], "DENIED ioctl"),
        (vec!["raw_socket", "127.0.0.1:9"], "DENIED socket"),
        (vec!["packet_socket", "-"], "DENIED socket"),
        (vec!["mknod_mem", n], "DENIED mknod"),
        (vec!["detached_read", w, "x"], "DENIED mount"),
        // Unix sockets by the name passed: one the profile does not name, and an abstract
        // name that extends an allowed one past a NUL.
        (vec!["unix_self", &outside_sock], "DENIED connect"),
        (vec!["unix_nul", "@agentguard-landlock"], "DENIED connect"),
    ] {
        let (so, se) = run(&args);
        assert!(
            so.contains(&format!("{} denied: Operation not permitted", args[0])),
            "{args:?}: {so}\n{se}"
        );
        assert!(se.contains(denial), "{args:?}: {se}");
    }
    // clone3 fails with ENOSYS, so that C libraries fall back to clone(2), which cannot
    // start a child in another cgroup; threads still start.
    let (so, _) = run(&["clone3_cgroup", "/sys/fs/cgroup", "-"]);
    assert!(
        so.contains("clone3_cgroup denied: Function not implemented"),
        "{so}"
    );
    // A routing change needs CAP_NET_ADMIN, which the tree no longer has (the deletion
    // of a route that does not exist: nothing changes here either way).
    let (so, _) = run(&["netlink_route", "-"]);
    assert!(
        so.contains("netlink_route denied: Operation not permitted"),
        "{so}"
    );
    // What the profile names is reached: the check is not a blanket refusal.
    let (so, _) = run(&["unix_self", "@agentguard-landlock"]);
    assert!(so.contains("unix_self ok"), "{so}");
    let (so, _) = run(&["thread_open", &format!("{w}/absent")]);
    assert!(
        so.contains("thread_open denied: No such file"),
        "a thread could not start: {so}"
    );
    assert!(!node.exists(), "the device node was made");
    // Limits on a process outside the tree: refused by the seccomp filter (no flag, so
    // no DENIED line); the process keeps its limits.
    let (so, _) = run(&["prlimit_outside", &pid]);
    assert!(
        so.contains("prlimit_outside denied: Operation not permitted"),
        "{so}"
    );
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let nofile = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    assert!(!nofile.split_whitespace().any(|w| w == "0"), "{nofile}");
    // The outsider got no signal.
    assert!(
        outsider.try_wait().unwrap().is_none(),
        "the outsider was signalled"
    );
    let _ = outsider.kill();
    let _ = outsider.wait();
}

#[test]
fn the_kernel_side_outlives_a_killed_agentguard_until_the_tree_is_dead() {
    // agentguard hands its BPF links to the watchdog. With the watchdog stopped (by root,
    // from outside the tree) and agentguard killed, the tree's next connection is still
    // refused by the cgroup program; once the watchdog runs again, it kills the tree and
    // removes the cgroup. The tree's root was moved out of the cgroup meanwhile (by root,
    // from outside: the tree cannot), standing for a way out nobody has found: the
    // watchdog kills by process set as well, so it dies too.
    let d = scratch("landlock-outlives");
    let no = TcpListener::bind("127.0.0.1:0").unwrap();
    let nop = no.local_addr().unwrap().port();
    let p = profile(&d, 1);
    // Where the profile lets the tree write (out/) and read (data/).
    std::fs::create_dir_all(d.join("out")).unwrap();
    std::fs::create_dir_all(d.join("data")).unwrap();
    let (started, go, out) = (
        fifo(&d.join("out"), "started"),
        fifo(&d.join("data"), "go"),
        fifo(&d.join("out"), "result"),
    );
    let script = format!(
        "echo up > {s}; read x < {g}; \
         if (exec 3<>/dev/tcp/127.0.0.1/{nop}) 2>/dev/null; then echo CONNECTED > {o}; else echo REFUSED > {o}; fi; \
         read y < {g}",
        s = started.display(),
        g = go.display(),
        o = out.display()
    );
    let ag = Started::new(
        Command::new(BIN)
            .args([
                "enforce",
                "--deny-at",
                "new",
                "--backend",
                "landlock",
                "-q",
                "--profile",
            ])
            .arg(&p)
            .args(["--", "/usr/bin/bash", "-c", &script])
            // The tree inherits these and outlives agentguard here: no pipe to wait on.
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let agp = ag.id();
    assert_eq!(await_line(&started, 60).trim(), "up");
    let (watchdog, root) = guard_children(agp);
    let links = std::fs::read_dir(format!("/proc/{watchdog}/fd"))
        .unwrap()
        .filter(|e| {
            std::fs::read_link(e.as_ref().unwrap().path())
                .is_ok_and(|t| t.as_os_str() == "anon_inode:bpf_link")
        })
        .count();
    assert!(links > 0, "the watchdog holds no BPF link");
    let cgroup2 = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .find_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            right
                .starts_with("cgroup2 ")
                .then(|| left.split_whitespace().nth(4).unwrap().to_string())
        })
        .expect("cgroup2 mounted");
    let wd = nix::unistd::Pid::from_raw(watchdog);
    nix::sys::signal::kill(wd, nix::sys::signal::Signal::SIGSTOP).unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(agp as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let _ = ag.wait_with_output();
    send_line(&go, "go", 30);
    let r = await_line(&out, 60);
    // Out of the cgroup, with the watchdog still stopped: only the process set holds it.
    std::fs::write(format!("{cgroup2}/cgroup.procs"), root.to_string()).unwrap();
    nix::sys::signal::kill(wd, nix::sys::signal::Signal::SIGCONT).unwrap();
    assert_eq!(
        r.trim(),
        "REFUSED",
        "the tree connected once agentguard was gone"
    );
    // The watchdog kills the tree (still waiting on `go`) and exits.
    let t = std::time::Instant::now();
    while std::path::Path::new(&format!("/proc/{watchdog}")).exists()
        && std::fs::read_to_string(format!("/proc/{watchdog}/stat"))
            .is_ok_and(|s| !s.contains(") Z "))
    {
        assert!(t.elapsed().as_secs() < 30, "the watchdog did not finish");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        !std::path::Path::new(&format!("{cgroup2}/agentguard-{agp}")).exists(),
        "the tree's cgroup is left"
    );
    // Killed by process set: gone, or a zombie nobody has reaped yet.
    let dead =
        std::fs::read_to_string(format!("/proc/{root}/stat")).map_or(true, |s| s.contains(") Z "));
    assert!(
        dead,
        "the tree's root, outside the cgroup, outlived agentguard"
    );
    drop(no);
}
