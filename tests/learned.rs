//! The loop a user follows, with nothing hand-written: record a program a few times into
//! a baseline, then enforce that baseline on the same program. With `--backend auto`, so
//! this runs with Landlock on this machine and with BPF LSM in the VM
//! (tests/vm/z-integration.sh).
use std::path::Path;
use std::process::{Command, Output};

use crate::util::*;

/// `agentguard enforce` at the default level (--deny-at high).
fn enforce(profile: &Path, cmd: &[&str]) -> Output {
    enforce_at(profile, "high", cmd)
}

fn enforce_at(profile: &Path, deny_at: &str, cmd: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(profile.parent().unwrap())
        .args([
            "enforce",
            "--backend",
            "auto",
            "--deny-at",
            deny_at,
            "--profile",
        ])
        .arg(profile)
        .arg("--")
        .args(cmd)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `name` ran under its baseline as it did when recorded: exit 0, the same output, and
/// nothing denied.
fn ran_as_recorded(name: &str, out: &Output, stdout: &str) {
    let err = text(&out.stderr);
    assert_eq!(
        (out.status.code(), text(&out.stdout).as_str()),
        (Some(0), stdout),
        "{name} under its baseline: {err}"
    );
    assert!(!err.contains("DENIED"), "{name}: {err}");
}

#[test]
fn a_learned_baseline_runs_the_programs_it_was_learned_from() {
    let d = scratch("learned-runs");
    std::fs::write(d.join("data.txt"), "one\ntwo\nthree\n").unwrap();
    std::fs::write(d.join("secret.txt"), "secret\n").unwrap();
    let script = d.join("count.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nwc -l < {0}/data.txt\nls {0} > /dev/null\n",
            d.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let data = d.join("data.txt");
    let py = format!(
        "import json, pathlib; print(json.dumps(pathlib.Path({:?}).read_text().split()))",
        data.display()
    );
    let programs: Vec<(&str, Vec<&str>)> = vec![
        ("cat", vec!["/bin/cat", data.to_str().unwrap()]),
        ("script", vec![script.to_str().unwrap()]),
        ("python", vec![python(), "-c", &py]),
    ];
    for (name, cmd) in &programs {
        let baseline = d.join(format!("{name}.toml"));
        let recorded = learn(&baseline, cmd, 3);
        let p = std::fs::read_to_string(&baseline).unwrap();
        // Learned, and folded into the `libs` abstraction that covers it.
        assert!(
            p.contains("include = [\"libs\"") || p.contains("\"libs\"]") || p.contains("\"libs\","),
            "{name}: the `libs` include was proposed:\n{p}"
        );
        assert!(
            p.contains("ld-linux-x86-64.so.2\""),
            "{name}: the ELF loader the kernel mapped was learned:\n{p}"
        );
        ran_as_recorded(name, &enforce(&baseline, cmd), &text(&recorded.stdout));
    }
    // The same cat on a file it never read, beside the one it reads: rated low
    // (read-known-dir), so admitted and reported at the default level; denied under
    // --deny-at new.
    let secret = d.join("secret.txt");
    let cmd = ["/bin/cat", data.to_str().unwrap(), secret.to_str().unwrap()];
    let out = enforce(&d.join("cat.toml"), &cmd);
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        (out.status.code(), so.as_str()),
        (Some(0), "one\ntwo\nthree\nsecret\n"),
        "{se}"
    );
    assert!(
        se.contains(&format!("ALLOWED (low) file  {} (read)", secret.display()))
            && se.contains("[read-known-dir]"),
        "{se}"
    );
    let out = enforce_at(&d.join("cat.toml"), "new", &cmd);
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(so, "one\ntwo\nthree\n", "{se}");
    assert_eq!(out.status.code(), Some(1), "{se}");
    assert!(
        se.contains(&format!("DENIED open {}", secret.display())),
        "{se}"
    );
}

/// Progressive enforcement on a learned baseline: what `diff` would rate below the level
/// runs and is reported as ALLOWED; what it rates at the level or above is denied.
#[test]
fn a_learned_baseline_admits_what_rates_below_the_level_and_denies_the_rest() {
    let d = scratch("learned-levels");
    let work = d.join("work");
    let home = d.join("home");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(work.join("data.txt"), "one\ntwo\n").unwrap();
    let baseline = work.join("b.toml");
    let run = |cmd: &[&str], deny_at: Option<&str>| {
        let mut c = Command::new(BIN);
        c.current_dir(&work).env("HOME", &home);
        match deny_at {
            Some(level) => c
                .args([
                    "enforce",
                    "--backend",
                    "auto",
                    "--deny-at",
                    level,
                    "--profile",
                ])
                .arg(&baseline),
            None => c.args(["record", "-q", "--merge-into"]).arg(&baseline),
        };
        c.arg("--").args(cmd).output().unwrap()
    };
    for _ in 0..3 {
        let out = run(&["/bin/sh", "-c", "cat data.txt"], None);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let planted = home.join("planted");
    // head: a core utility (low); out.txt: a write in the workspace (medium), read back
    // (low); the home directory: a write outside the workspace (high); python: an
    // interpreter (high).
    let script = format!(
        "head -n1 data.txt; echo made > out.txt; cat out.txt; echo x > {}; {} -c 'print(1)'; exit 0",
        planted.display(),
        python()
    );
    let out = run(&["/bin/sh", "-c", &script], Some("high"));
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        (out.status.code(), so.as_str()),
        (Some(0), "one\nmade\n"),
        "{se}"
    );
    let out_txt = work.join("out.txt");
    for want in [
        "ALLOWED (low) exec  /usr/bin/head".to_string(),
        "[exec-coreutil]".to_string(),
        format!("ALLOWED (medium) file  {}", out_txt.display()),
        "[write-workspace]".to_string(),
        format!("DENIED exec {}", python()),
        "allowed beyond the profile, rated below high".to_string(),
    ] {
        assert!(se.contains(&want), "{want:?} in\n{se}");
    }
    assert!(denied_create(&se, &planted), "{se}");
    assert!(
        !planted.exists(),
        "the write outside the workspace had no effect"
    );
    // --deny-at medium: the write in the workspace is denied now; head still runs.
    std::fs::remove_file(&out_txt).unwrap();
    let out = run(&["/bin/sh", "-c", &script], Some("medium"));
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(so, "one\n", "{se}");
    assert!(denied_create(&se, &out_txt), "{se}");
    assert!(se.contains("ALLOWED (low) exec  /usr/bin/head"), "{se}");
    assert!(!out_txt.exists());
    // --deny-at new: nothing beyond the baseline, head included.
    let out = run(&["/bin/sh", "-c", &script], Some("new"));
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(so, "", "{se}");
    assert!(se.contains("DENIED exec /usr/bin/head"), "{se}");
    assert!(!se.contains("ALLOWED"), "{se}");
}

/// A denied new file: BPF LSM refuses the create itself (path_mknod); Landlock the open.
fn denied_create(stderr: &str, path: &Path) -> bool {
    ["open", "path"]
        .iter()
        .any(|op| stderr.contains(&format!("DENIED {op} {}", path.display())))
}

#[test]
fn a_baseline_without_the_loader_is_refused_before_the_start() {
    let d = scratch("learned-no-loader");
    let marker = d.join("ran");
    let baseline = d.join("b.toml");
    let cmd = ["/bin/cat", "/etc/hostname"];
    learn(&baseline, &cmd, 1);
    // The recording, less the loader: as an older agentguard recorded it. Learning folded
    // the loader into the `libs` include; take that out with what it absorbed.
    let mut p: toml::Table = std::fs::read_to_string(&baseline).unwrap().parse().unwrap();
    let inc = p["include"].as_array_mut().unwrap();
    let before = inc.len();
    inc.retain(|i| i.as_str() != Some("libs"));
    assert_eq!(inc.len(), before - 1, "the libs include: {p}");
    let absorbed = p["absorbed"].as_array_mut().unwrap();
    absorbed.retain(|a| a["include"].as_str() != Some("libs"));
    let files = p["file"].as_array().cloned().unwrap_or_default();
    assert!(
        !files
            .iter()
            .any(|f| f["path"].as_str().unwrap().contains("ld-linux")),
        "no loader entry left: {p}"
    );
    let stripped = d.join("stripped.toml");
    std::fs::write(&stripped, toml::to_string(&p).unwrap()).unwrap();
    let script = format!("touch {}; cat /etc/hostname", marker.display());
    let out = enforce(&stripped, &["/bin/sh", "-c", &script]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("the profile does not allow the ELF loader")
            && err.contains("/usr/bin/cat")
            && err.contains("the command was not started"),
        "{err}"
    );
    assert!(!marker.exists(), "nothing ran");
}

/// A loopback HTTP server of the test's own that answers `n` requests with "ok".
fn http_server(n: usize) -> (u16, std::thread::JoinHandle<()>) {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        for _ in 0..n {
            let Ok((mut c, _)) = l.accept() else { return };
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let _ = c.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
        }
    });
    (port, t)
}

#[test]
fn everyday_programs_run_under_the_baseline_learned_from_them() {
    let d = scratch("learned-everyday");
    // curl to a loopback server.
    let (port, server) = http_server(4);
    let url = format!("http://127.0.0.1:{port}/");
    let curl = ["/usr/bin/curl", "-s", url.as_str()];
    let base = d.join("curl.toml");
    learn(&base, &curl, 3);
    ran_as_recorded("curl", &enforce(&base, &curl), "ok");
    server.join().unwrap();

    // A script that imports from the standard library and from a virtualenv.
    let venv = d.join("venv");
    let st = Command::new(python())
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .status()
        .unwrap();
    assert!(st.success(), "python -m venv");
    let site = std::fs::read_dir(venv.join("lib"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join("site-packages");
    std::fs::write(site.join("venvmod.py"), "X = 42\n").unwrap();
    std::fs::write(
        d.join("s.py"),
        "import csv, io, json, venvmod\nprint(json.dumps([venvmod.X]), len(list(csv.reader(io.StringIO('a,b')))))\n",
    )
    .unwrap();
    let vpy = venv.join("bin/python");
    let cmd = [vpy.to_str().unwrap(), "s.py"];
    let base = d.join("venv.toml");
    learn(&base, &cmd, 3);
    ran_as_recorded("venv python", &enforce(&base, &cmd), "[42] 1\n");
}

/// git, the program agents run most: status, add and commit in a scratch repository,
/// learned from three recorded runs and enforced on a fourth. Under BPF LSM it runs as
/// recorded. Landlock cannot let git create files in .git without letting it create hooks
/// there (a right on a directory covers everything beneath it): enforce says so before the
/// start, and the commit is refused rather than the hooks left open.
#[test]
fn git_runs_under_the_baseline_learned_from_it() {
    let d = scratch("learned-git");
    let repo = d.join("repo");
    let home = d.join("home");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    let git = |args: &[&str]| {
        let st = Command::new("git")
            .args(args)
            .current_dir(&repo)
            .env("HOME", &home)
            .status()
            .unwrap();
        assert!(st.success(), "git {args:?}");
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["config", "user.email", "agent@example.com"]);
    git(&["config", "user.name", "agent"]);
    let baseline = d.join("git.toml");
    let run = |i: u32, enforce: bool| {
        let script = format!(
            "echo line-{i} >> notes.txt && git add notes.txt && git commit -q -m note-{i} && git status --short && git log --oneline | wc -l"
        );
        let mut c = Command::new(BIN);
        c.current_dir(&repo).env("HOME", &home);
        if enforce {
            c.args(["enforce", "--backend", "auto", "--profile"]);
        } else {
            c.args(["record", "-q", "--merge-into"]);
        }
        c.arg(&baseline)
            .args(["--", "/bin/sh", "-c", &script])
            .output()
            .unwrap()
    };
    for i in 1..=3 {
        let out = run(i, false);
        assert_eq!(text(&out.stdout), format!("{i}\n"), "{}", text(&out.stderr));
    }
    let p = std::fs::read_to_string(&baseline).unwrap();
    assert!(
        !p.contains("path = \"${CWD}/.git/config\"\naccess = [\"read\"]\nprotected = true"),
        "reading .git/config is learned, not held for review:\n{p}"
    );
    let out = run(4, true);
    let err = text(&out.stderr);
    if err.contains("with Landlock") {
        assert!(
            err.contains(&format!(
                "beneath {}/.git lies the protected",
                repo.display()
            )),
            "{err}"
        );
        return;
    }
    ran_as_recorded("git", &out, "4\n");
}

/// A wheel built here, with nothing but zipfile: no build backend, no index.
fn local_wheel(dir: &Path) -> std::path::PathBuf {
    let whl = dir.join("agdemo-1.0-py3-none-any.whl");
    let code = format!(
        r#"import zipfile
files = {{
    "agdemo/__init__.py": "X = 7\n",
    "agdemo-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: agdemo\nVersion: 1.0\n",
    "agdemo-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}}
files["agdemo-1.0.dist-info/RECORD"] = "".join(f"{{n}},,\n" for n in files) + "agdemo-1.0.dist-info/RECORD,,\n"
with zipfile.ZipFile({:?}, "w") as z:
    for n, t in files.items():
        z.writestr(n, t)
"#,
        whl.display()
    );
    let st = Command::new(python()).args(["-c", &code]).status().unwrap();
    assert!(st.success(), "building the wheel");
    whl
}

/// `pip install` of a local wheel into a fresh virtualenv, learned from three recorded
/// installs and enforced on a fourth. pip's temporary directories have new random names
/// each run: writes beneath /tmp rate medium (write-workspace), so the default level
/// admits them, and reports them. HOME lies outside /tmp, as a user's does.
#[test]
fn pip_installs_a_local_wheel_under_the_baseline_learned_from_it() {
    let d = scratch_outside_tmp("learned-pip");
    let (home, work) = (d.join("home"), d.join("work"));
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    let whl = local_wheel(&work);
    let venv = work.join("venv");
    let baseline = work.join("pip.toml");
    let pip = [
        venv.join("bin/python").display().to_string(),
        "-m".into(),
        "pip".into(),
        "install".into(),
        "-q".into(),
        "--no-index".into(),
        "--no-deps".into(),
        "--no-cache-dir".into(),
        "--disable-pip-version-check".into(),
        whl.display().to_string(),
    ];
    // A virtualenv with pip, made once outside the recorded tree (ensurepip is most of a
    // minute under the VM's emulation); each run starts from a fresh copy of it.
    let template = d.join("venv-template");
    let st = Command::new(python())
        .args(["-m", "venv"])
        .arg(&template)
        .status()
        .unwrap();
    assert!(st.success(), "python -m venv (with pip)");
    let run = |enforce: bool| {
        let _ = std::fs::remove_dir_all(&venv);
        let st = Command::new("cp")
            .arg("-a")
            .arg(&template)
            .arg(&venv)
            .status()
            .unwrap();
        assert!(st.success(), "copying the virtualenv");
        let mut c = Command::new(BIN);
        c.current_dir(&work).env("HOME", &home);
        if enforce {
            c.args(["enforce", "--backend", "auto", "--profile"]);
        } else {
            c.args(["record", "-q", "--merge-into"]);
        }
        let out = c.arg(&baseline).arg("--").args(&pip).output().unwrap();
        let check = Command::new(venv.join("bin/python"))
            .args(["-c", "import agdemo; print(agdemo.X)"])
            .output()
            .unwrap();
        (out, text(&check.stdout))
    };
    for _ in 0..3 {
        let (out, installed) = run(false);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(installed, "7\n");
    }
    let (out, installed) = run(true);
    let err = text(&out.stderr);
    if err.contains("with Landlock") {
        // Landlock cannot name a process's own /proc/PID before it exists, and /proc as a
        // whole holds /proc/kcore: the preamble says /proc is narrowed, and the Rust
        // programs pip runs (rustc, for its user agent) fail to read /proc/self, harmlessly.
        assert!(err.contains("narrowed: [[file]] /proc/"), "{err}");
        let other: Vec<&str> = err
            .lines()
            .filter(|l| l.contains("DENIED") && !l.contains(" /proc/self/"))
            .collect();
        assert!(other.is_empty(), "{other:#?}\n{err}");
        assert_eq!(out.status.code(), Some(0), "{err}");
    } else {
        ran_as_recorded("pip", &out, "");
    }
    assert_eq!(installed, "7\n", "the wheel was installed under enforce");
}

/// A baseline learned from a run that attacked: the adversary's cases recorded and merged
/// the way a user learns a baseline from runs that, unknown to them, were prompt-injected.
/// What record flags is not learned, so enforcing that baseline (--deny-at new) still
/// denies every attack; what a profile does hold runs again: an abstract unix socket whose
/// name holds a NUL, and, under BPF LSM, one reached through a symlink (learned by the
/// socket's bound name, as BPF LSM checks it).
#[test]
fn a_baseline_learned_from_attacking_runs_still_denies_the_attacks() {
    // Outside the temp directory: in the VM that is 9p, where no unix socket can be made.
    let d = scratch_outside_tmp("learned-adversary");
    let adv = crate::adversary::adversary().to_str().unwrap().to_string();
    let baseline = d.join("adversary.toml");
    let node = d.join("mem");
    let file = d.join("file.txt");
    std::fs::write(&file, "x").unwrap();
    let (real, link) = (d.join("real.sock"), d.join("link.sock"));
    let s = |p: &Path| p.to_str().unwrap().to_string();
    // Outlives the test (killed at its end): emulated in the VM, the runs take minutes.
    let outsider = || Command::new("/bin/sleep").arg("3600").spawn().unwrap();
    let attacks = |pid: u32| -> Vec<Vec<String>> {
        [
            vec!["signal_outside".into(), pid.to_string()],
            vec!["tiocsti".into(), "-".into()],
            vec!["raw_socket".into(), "127.0.0.1:9".into()],
            vec!["packet_socket".into(), "-".into()],
            vec!["mknod_mem".into(), s(&node)],
            vec!["netlink_route".into(), "-".into()],
            vec!["setcap".into(), s(&file)],
        ]
        .into_iter()
        .collect()
    };
    let unix = ["unix_symlink".to_string(), s(&real), s(&link)];
    // An abstract name with a NUL inside, learned as `@agentguard-learned\x00x`: the
    // kernel side must read that text back as the same bytes.
    let nul = ["unix_nul".to_string(), "@agentguard-learned".to_string()];
    let clean = || {
        for p in [&node, &real, &link] {
            let _ = std::fs::remove_file(p);
        }
    };
    let mut o = outsider();
    for a in attacks(o.id())
        .iter()
        .chain([unix.to_vec(), nul.to_vec()].iter())
    {
        clean();
        let mut cmd = vec![adv.as_str()];
        cmd.extend(a.iter().map(String::as_str));
        learn(&baseline, &cmd, 1);
    }
    let _ = o.kill();
    let _ = o.wait();
    let p = std::fs::read_to_string(&baseline).unwrap();
    assert!(
        p.contains(&format!("addr = \"{}\"", real.display())),
        "the connection learned by the socket it reached:\n{p}"
    );
    let mut o = outsider();
    for a in attacks(o.id()) {
        clean();
        let mut cmd = vec![adv.as_str()];
        cmd.extend(a.iter().map(String::as_str));
        let out = enforce_at(&baseline, "new", &cmd);
        let (so, se) = (text(&out.stdout), text(&out.stderr));
        assert!(
            so.contains(&format!("{} denied: Operation not permitted", a[0])),
            "{a:?} under the baseline learned from it: {so}\n{se}"
        );
    }
    assert!(
        o.try_wait().unwrap().is_none(),
        "the outsider was signalled"
    );
    let _ = o.kill();
    let _ = o.wait();
    assert!(!node.exists(), "the device node was made");
    let mut cmd = vec![adv.as_str()];
    cmd.extend(nul.iter().map(String::as_str));
    let out = enforce_at(&baseline, "new", &cmd);
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    assert!(so.contains("unix_nul ok"), "{so}\n{se}");
    clean();
    let mut cmd = vec![adv.as_str()];
    cmd.extend(unix.iter().map(String::as_str));
    let out = enforce_at(&baseline, "new", &cmd);
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    // A persistence point's times, recorded and learned: learning never admits a change
    // to one, so BPF LSM denies it; Landlock cannot restrict times and says so.
    let rc = d.join(".bashrc");
    std::fs::write(&rc, "# rc\n").unwrap();
    let utimes = [adv.as_str(), "utimes", rc.to_str().unwrap()];
    learn(&baseline, &utimes, 1);
    let out = enforce_at(&baseline, "new", &utimes);
    let (so2, se2) = (text(&out.stdout), text(&out.stderr));
    if se2.contains("with Landlock") {
        assert!(
            so2.contains("utimes ok") && se2.contains("a file's times"),
            "{so2}\n{se2}"
        );
    } else {
        assert!(
            so2.contains("utimes denied: Operation not permitted"),
            "{so2}\n{se2}"
        );
    }
    if se.contains("with Landlock") {
        // Stated before the start: Landlock's hooks see the name passed, the symlink.
        assert!(
            so.contains("unix_symlink denied: Operation not permitted")
                && se.contains("checked by the name the program passes"),
            "{so}\n{se}"
        );
    } else {
        assert!(so.contains("unix_symlink ok"), "{so}\n{se}");
    }
    clean();
}
