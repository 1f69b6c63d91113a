//! `agentguard bench`: the sensor's cost as figures. The same syscall storm runs bare, inside
//! a recorded tree, and outside it while a recording is active; each storm times its own
//! loop (`__storm`), so start-up is measured separately.
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};

use crate::cli::{BenchArgs, BenchWhat, Storm, StormArgs};
use crate::event::{read_jsonl, Kind};
use crate::profile::Profile;

/// Runs one storm in this process and prints its loop time in ns.
pub fn storm(args: StormArgs) -> Result<i32> {
    let n = args.iterations;
    let ns = match args.storm {
        Storm::Open => {
            let path =
                std::env::temp_dir().join(format!("agentguard-storm-{}", std::process::id()));
            std::fs::write(&path, b"x").context("creating the storm's file")?;
            let c = std::ffi::CString::new(path.as_os_str().as_bytes())?;
            let t = Instant::now();
            for _ in 0..n {
                // SAFETY: a valid C string; the fd is closed right away.
                let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
                if fd < 0 {
                    bail!("open failed: {}", std::io::Error::last_os_error());
                }
                unsafe { libc::close(fd) };
            }
            let ns = t.elapsed().as_nanos();
            let _ = std::fs::remove_file(&path);
            ns
        }
        Storm::Exec => {
            let t = Instant::now();
            for _ in 0..n {
                let st = Command::new("/bin/true")
                    .status()
                    .context("running /bin/true")?;
                if !st.success() {
                    bail!("/bin/true failed: {st}");
                }
            }
            t.elapsed().as_nanos()
        }
        Storm::Connect => {
            let l = TcpListener::bind("127.0.0.1:0").context("listening on loopback")?;
            let addr = l.local_addr()?;
            let t = Instant::now();
            for _ in 0..n {
                let c = TcpStream::connect(addr).context("connecting on loopback")?;
                let (s, _) = l.accept().context("accepting on loopback")?;
                // Reset instead of FIN: 10k sockets in TIME_WAIT would exhaust ports.
                reset_on_close(&c)?;
                drop(s);
                drop(c);
            }
            t.elapsed().as_nanos()
        }
    };
    println!("{ns}");
    Ok(0)
}

fn reset_on_close(s: &TcpStream) -> Result<()> {
    use std::os::fd::AsRawFd;
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket and a correctly sized option value.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&l as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as u32,
        )
    };
    if r != 0 {
        bail!("SO_LINGER: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

fn self_exe() -> Result<std::path::PathBuf> {
    std::env::current_exe().context("finding agentguard's own executable")
}

fn parse_ns(out: &[u8], what: &str) -> Result<f64> {
    let text = String::from_utf8_lossy(out);
    text.lines()
        .last()
        .and_then(|l| l.trim().parse::<f64>().ok())
        .with_context(|| format!("{what}: no loop time in its output: {text:?}"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// One storm, bare: its loop time in ns.
fn bare(storm: &str, n: u64) -> Result<f64> {
    let out = Command::new(self_exe()?)
        .args(["__storm", storm, &n.to_string()])
        .output()?;
    if !out.status.success() {
        bail!(
            "storm {storm} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    parse_ns(&out.stdout, storm)
}

/// `agentguard ARGS -- agentguard __storm STORM N`: the storm's output.
fn storm_under(args: &[&str], storm: &str, n: u64) -> Result<Vec<u8>> {
    let exe = self_exe()?;
    let out = Command::new(&exe)
        .args(args)
        .args([
            "--",
            &exe.display().to_string(),
            "__storm",
            storm,
            &n.to_string(),
        ])
        .output()?;
    if !out.status.success() {
        bail!(
            "storm {storm} under agentguard {} failed: {}",
            args[0],
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out.stdout)
}

/// One storm inside a recorded tree: its loop time in ns and the events lost.
fn in_tree(storm: &str, n: u64, dir: &std::path::Path) -> Result<(f64, u64)> {
    let prof = dir.join("storm.toml");
    let out = storm_under(
        &["record", "-q", "-o", &prof.display().to_string()],
        storm,
        n,
    )?;
    let lost = Profile::load(&prof)?
        .run_info
        .first()
        .map(|r| r.lost_events)
        .unwrap_or(0);
    Ok((parse_ns(&out, storm)?, lost))
}

/// A recording of an idle tree, so storms can run beside it.
struct Background(std::process::Child);

impl Background {
    fn start(dir: &std::path::Path) -> Result<Background> {
        let events = dir.join("idle.jsonl");
        let child = Command::new(self_exe()?)
            .args(["record", "-q", "-o", "/dev/null", "--events"])
            .arg(&events)
            .args(["--", "sleep", "3600"])
            .stdout(Stdio::null())
            .spawn()?;
        // Ready once the tree's exec was recorded: the sensor is loaded and attached.
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(30) {
            let text = std::fs::read_to_string(&events).unwrap_or_default();
            if text.contains("\"kind\":\"exec\"") {
                return Ok(Background(child));
            }
            // The event log is buffered: the sleep's exec shows once the buffer flushes,
            // so ask the tree itself instead.
            if descendants_named(child.id(), "sleep") {
                return Ok(Background(child));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("the background recording did not start")
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.0.wait();
    }
}

fn descendants_named(pid: u32, name: &str) -> bool {
    crate::attach::tree_of(pid)
        .map(|t| t.iter().skip(1).any(|p| p.exe.ends_with(name)))
        .unwrap_or(false)
}

/// ms from starting `agentguard record` to the recorded command's exec.
fn startup(dir: &std::path::Path) -> Result<f64> {
    let events = dir.join("startup.jsonl");
    let t0 = SystemTime::now();
    let st = Command::new(self_exe()?)
        .args(["record", "-q", "-o", "/dev/null", "--events"])
        .arg(&events)
        .args(["--", "/bin/true"])
        .stdout(Stdio::null())
        .status()?;
    if !st.success() {
        bail!("recording /bin/true failed: {st}");
    }
    let evs = read_jsonl(&events)?;
    let exec = evs
        .iter()
        .find(|e| matches!(e.kind, Kind::Exec(_)))
        .context("no exec recorded for /bin/true")?;
    let t1 = exec.ts.time();
    Ok(t1.duration_since(t0).unwrap_or_default().as_secs_f64() * 1000.0)
}

/// A profile of about 5,000 rules of every shape the kernel checks, plus what the storms
/// need: their program, its libraries, the storm's file, /bin/true.
fn bench_profile(dir: &std::path::Path) -> Result<std::path::PathBuf> {
    let exe = self_exe()?;
    let mut t = String::from("version = 1\ninclude = [\"coreutils\"]\n");
    for i in 0..5000 {
        let p = match i % 4 {
            0 => format!("/srv/bench/d{}/f{i}.txt", i % 300),
            1 => format!("/srv/bench/d{}/m{i}*.py", i % 300),
            2 => format!("/srv/bench/t{i}/**"),
            _ => format!("/srv/bench/d{}/x{i}/*", i % 300),
        };
        t.push_str(&format!("[[file]]\npath = \"{p}\"\naccess = [\"read\"]\n"));
    }
    t.push_str(&format!(
        "[[exec]]\npath = \"{exe}\"\n[[file]]\npath = \"{exe}\"\naccess = [\"read\"]\n\
         [[file]]\npath = \"{tmp}/agentguard-storm-*\"\naccess = [\"read\", \"write\", \"create\", \"truncate\"]\n\
         [[file]]\npath = \"/{{usr/,}}lib{{64,}}/**\"\naccess = [\"read\"]\n\
         [[file]]\npath = \"/proc/**\"\naccess = [\"read\"]\n\
         [[file]]\npath = \"/sys/**\"\naccess = [\"read\"]\n",
        exe = exe.display(),
        tmp = std::env::temp_dir().display()
    ));
    let p = dir.join("bench-enforce.toml");
    std::fs::write(&p, t)?;
    Ok(p)
}

/// One storm under enforce: its loop time in ns.
fn under_enforce(storm: &str, n: u64, profile: &std::path::Path) -> Result<f64> {
    let profile = profile.display().to_string();
    parse_ns(
        &storm_under(&["enforce", "-q", "--profile", &profile], storm, n)?,
        storm,
    )
}

fn enforce_bench(args: &BenchArgs) -> Result<i32> {
    if !nix::unistd::Uid::effective().is_root() {
        bail!(
            "bench --what enforce loads BPF LSM programs: run it as root, on a kernel with BPF LSM"
        );
    }
    let dir = std::env::temp_dir().join(format!("agentguard-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let profile = bench_profile(&dir)?;
    let repeat = args.repeat.max(1);
    let json = args.format == crate::cli::Format::Json;
    let mut out: Box<dyn Write> = if json {
        Box::new(std::io::sink())
    } else {
        Box::new(std::io::stdout().lock())
    };
    let mut rows = Vec::new();
    writeln!(out, "agentguard bench --what enforce: 5,000-rule profile, median of {repeat} runs, loop time only")?;
    writeln!(
        out,
        "{:<28}{:>10}{:>12}{:>14}{:>9}",
        "storm", "iterations", "bare ms", "enforced ms", "ratio"
    )?;
    for (storm, n, label) in [
        ("open", 300_000u64, "open+close one file"),
        ("exec", 400, "fork+exec /bin/true"),
    ] {
        let n = ((n as f64) * args.scale).max(1.0) as u64;
        let (mut b, mut e) = (Vec::new(), Vec::new());
        for _ in 0..repeat {
            b.push(bare(storm, n)?);
            e.push(under_enforce(storm, n, &profile)?);
        }
        let (b, e) = (median(b), median(e));
        rows.push(serde_json::json!({
            "storm": storm,
            "what": label,
            "iterations": n,
            "bare_ms": b / 1e6,
            "enforced_ms": e / 1e6,
            "ratio": e / b,
        }));
        writeln!(
            out,
            "{:<28}{:>10}{:>12.1}{:>14.1}{:>8.3}x",
            label,
            n,
            b / 1e6,
            e / 1e6,
            e / b
        )?;
    }
    writeln!(out, "target: opens under enforce <= 1.15x")?;
    let _ = std::fs::remove_dir_all(&dir);
    if json {
        let v = serde_json::json!({
            "version": 1,
            "what": "enforce",
            "repeat": repeat,
            "storms": rows,
            "targets": {"open_ratio": 1.15},
        });
        crate::output::stdout(&(serde_json::to_string_pretty(&v)? + "\n"), "the report")?;
    }
    Ok(0)
}

pub fn run(args: BenchArgs) -> Result<i32> {
    let json = args.format == crate::cli::Format::Json;
    if args.what == BenchWhat::Profile {
        return crate::profile::bench::run(args.scale, json);
    }
    if args.what == BenchWhat::Enforce {
        return enforce_bench(&args);
    }
    if !nix::unistd::Uid::effective().is_root() {
        bail!("bench loads the sensor: run it as root");
    }
    let dir = std::env::temp_dir().join(format!("agentguard-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let repeat = args.repeat.max(1);
    let storms = [
        ("open", 300_000u64, "open+close one file"),
        ("exec", 400, "fork+exec /bin/true"),
        ("connect", 10_000, "connect+accept on loopback"),
    ];
    // Text goes out as each storm ends; JSON once, at the end.
    let mut out: Box<dyn Write> = if json {
        Box::new(std::io::sink())
    } else {
        Box::new(std::io::stdout().lock())
    };
    let mut rows = Vec::new();
    writeln!(
        out,
        "agentguard bench: median of {repeat} runs, loop time only"
    )?;
    writeln!(
        out,
        "{:<28}{:>10}{:>12}{:>12}{:>9}{:>13}{:>9}",
        "storm", "iterations", "bare ms", "in tree ms", "ratio", "beside ms", "ratio"
    )?;
    let mut open_lost = 0;
    for (storm, n, label) in storms {
        let n = ((n as f64) * args.scale).max(1.0) as u64;
        let mut b = Vec::new();
        let mut t = Vec::new();
        for _ in 0..repeat {
            b.push(bare(storm, n)?);
            let (ns, lost) = in_tree(storm, n, &dir)?;
            t.push(ns);
            if storm == "open" {
                open_lost = open_lost.max(lost);
            }
        }
        let mut o = Vec::new();
        {
            let _bg = Background::start(&dir)?;
            for _ in 0..repeat {
                o.push(bare(storm, n)?);
            }
        }
        let (b, t, o) = (median(b), median(t), median(o));
        rows.push(serde_json::json!({
            "storm": storm,
            "what": label,
            "iterations": n,
            "bare_ms": b / 1e6,
            "in_tree_ms": t / 1e6,
            "in_tree_ratio": t / b,
            "beside_ms": o / 1e6,
            "beside_ratio": o / b,
        }));
        writeln!(
            out,
            "{:<28}{:>10}{:>12.1}{:>12.1}{:>8.3}x{:>13.1}{:>8.3}x",
            label,
            n,
            b / 1e6,
            t / 1e6,
            t / b,
            o / 1e6,
            o / b
        )?;
    }
    let mut s = Vec::new();
    for _ in 0..repeat {
        s.push(startup(&dir)?);
    }
    let startup_ms = median(s);
    writeln!(
        out,
        "start-up until the command's first instruction: {startup_ms:.1} ms"
    )?;
    writeln!(out, "events lost during the open storm: {open_lost}")?;
    writeln!(
        out,
        "targets: in tree <= 1.10x, beside <= 1.02x, start-up <= 150 ms, 0 lost"
    )?;
    let _ = std::fs::remove_dir_all(&dir);
    if json {
        let v = serde_json::json!({
            "version": 1,
            "repeat": repeat,
            "storms": rows,
            "startup_ms": startup_ms,
            "open_storm_events_lost": open_lost,
            "targets": {"in_tree_ratio": 1.10, "beside_ratio": 1.02, "startup_ms": 150, "events_lost": 0},
        });
        crate::output::stdout(&(serde_json::to_string_pretty(&v)? + "\n"), "the report")?;
    }
    Ok(0)
}
