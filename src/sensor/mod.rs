//! Loads the BPF sensor, puts processes in scope, and hands out its records.
//! The only module that talks to libbpf; decode.rs is the only one that reads records.
mod boring;
pub mod decode;
mod elfsym;
mod found;

use crate::skel::sensor as skel;

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use anyhow::{bail, Context, Result};
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, OpenObject, RingBuffer, RingBufferBuilder};

use skel::types::{ag_proc, ag_stat};
use skel::{SensorSkel, SensorSkelBuilder};

/// The ring buffer's default size in MiB (--ring-buffer-mb).
pub const RING_MB: u32 = 64;
/// How many live processes the tree may have by default (--max-procs).
pub const MAX_PROCS: u32 = 65536;

/// Sizes chosen by the user; defaults fit an agent's tree comfortably.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    pub ring_buffer_mb: u32,
    pub max_procs: u32,
    /// Decode syscalls (files, network, flags). Without it only the process tree is
    /// followed: what enforcement needs when nothing is being recorded.
    pub syscalls: bool,
    /// Copy the bytes of HTTP streams (plain TCP, and TLS through `attach_tls`) for the
    /// LLM traffic decoder (src/llm).
    pub payload: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            ring_buffer_mb: RING_MB,
            max_procs: MAX_PROCS,
            syscalls: true,
            payload: true,
        }
    }
}

/// Counters the kernel side keeps per CPU, summed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Records dropped because the ring buffer was full.
    pub lost: u64,
    /// Children that could not be put in scope because the process map was full.
    pub procs_untracked: u64,
    /// Of `lost`: denial reports enforcement's rings had no room for (the calls were still
    /// refused). The sensor's own count is 0; the session adds the guard's.
    pub denials_lost: u64,
}

static LIBBPF_LOG: Mutex<String> = Mutex::new(String::new());

/// libbpf's messages are kept, not printed: a failure shows the tail that explains it.
fn capture_libbpf_log(level: libbpf_rs::PrintLevel, msg: String) {
    if level == libbpf_rs::PrintLevel::Debug {
        return;
    }
    if let Ok(mut log) = LIBBPF_LOG.lock() {
        log.push_str(&msg);
        if log.len() > 64 * 1024 {
            let mut cut = log.len() - 32 * 1024;
            while !log.is_char_boundary(cut) {
                cut += 1;
            }
            log.replace_range(..cut, "");
        }
    }
}

/// libbpf's messages go to a buffer (libbpf_log_tail), not to standard error.
pub fn capture_libbpf() {
    libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Warn, capture_libbpf_log)));
}

pub(crate) fn libbpf_log_tail() -> String {
    let log = LIBBPF_LOG.lock().map(|l| l.clone()).unwrap_or_default();
    let lines: Vec<&str> = log
        .lines()
        // On kernels with memcg accounting this hint is wrong and misleads (see README).
        .filter(|l| !l.contains("ulimit -l"))
        .collect();
    lines[lines.len().saturating_sub(12)..].join("\n")
}

pub struct Sensor<'obj> {
    skel: SensorSkel<'obj>,
}

/// TLS probes put on one file: the functions probed, and the links that hold them there
/// (the caller keeps them for as long as the probes should stay).
pub struct TlsProbes {
    pub funcs: Vec<&'static str>,
    pub links: Vec<libbpf_rs::Link>,
    /// How functions without symbols were found (BoringSSL linked in), for the note.
    pub how: Option<String>,
}

impl<'obj> Sensor<'obj> {
    /// Loads and attaches the programs. Nothing is in scope until `track`.
    pub fn load(obj: &'obj mut MaybeUninit<OpenObject>, cfg: Config) -> Result<Self> {
        capture_libbpf();
        let mut open = SensorSkelBuilder::default()
            .open(obj)
            .context("opening the BPF sensor")?;
        let rodata = open
            .maps
            .rodata_data
            .as_deref_mut()
            .context("the sensor has no .rodata")?;
        rodata.tick_ns = 1_000_000_000 / clock_ticks()?;
        rodata.capture_payload = cfg.payload && cfg.syscalls;
        if !rodata.capture_payload || !kernel_has_uprobe_multi() {
            // A kernel that does not know the attach type refuses the whole object.
            open.progs.tls_enter_multi.set_autoload(false);
            open.progs.tls_exit_multi.set_autoload(false);
        }
        if !rodata.capture_payload {
            for p in [
                &mut open.progs.tls_enter_multi,
                &mut open.progs.tls_exit_multi,
                &mut open.progs.tls_enter_one,
                &mut open.progs.tls_exit_one,
            ] {
                p.set_autoload(false);
            }
        }
        if !cfg.syscalls {
            // The one program every syscall of the host passes through: not attached at all.
            open.progs.on_sys_exit.set_autoload(false);
        }
        open.maps
            .events
            .set_max_entries(ring_bytes(cfg.ring_buffer_mb)?)
            .context("sizing the ring buffer")?;
        open.maps
            .procs
            .set_max_entries(cfg.max_procs)
            .context("sizing the process map")?;
        let mut skel = open.load().map_err(|e| {
            anyhow::anyhow!(
                "loading the BPF sensor: {e}\n{}\nhint: agentguard needs root (CAP_BPF and CAP_PERFMON) and a kernel with BTF (/sys/kernel/btf/vmlinux); `agentguard doctor` will check this",
                libbpf_log_tail()
            )
        })?;
        skel.attach().map_err(|e| {
            anyhow::anyhow!(
                "attaching the BPF sensor to its tracepoints: {e}\n{}",
                libbpf_log_tail()
            )
        })?;
        Ok(Sensor { skel })
    }

    /// Puts the TLS uprobes on a library or executable that exports OpenSSL's SSL_write
    /// and SSL_read (the _ex variants too when it has them). One attachment covers every
    /// process that maps the file; the programs keep to the tree. Returns the functions
    /// attached to; an error when the file exports neither. The file is open (`named` is
    /// what to call it): the offsets are found in, and the probes put on, this one file,
    /// which the tree cannot swap for another in between (a probe placed by one file's
    /// offsets in another would corrupt whatever runs that one).
    pub fn attach_tls(&self, file: &std::fs::File, named: &std::path::Path) -> Result<TlsProbes> {
        let pinned = std::path::PathBuf::from(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(file)
        ));
        let path = pinned.as_path();
        let p = &self.skel.progs;
        // One multi-uprobe link for the entries and one for the returns.
        let TlsFunctions { found, how, .. } = tls_functions(path, false)
            .map_err(|e| anyhow::anyhow!("{}: {e:#}", named.display()))?;
        let enter: Vec<(u64, u64)> = found.iter().map(|x| (x.1, x.2)).collect();
        let exit: Vec<(u64, u64)> = found
            .iter()
            .filter(|x| reads(x.2))
            .map(|x| (x.1, x.2))
            .collect();
        // Loaded only where the kernel takes multi-uprobe programs (see load).
        if !p.tls_enter_multi.autoload() {
            // fall through to plain uprobes
        } else if let Some(a) = attach_multi(&p.tls_enter_multi, path, &enter, false) {
            if let Some(b) = attach_multi(&p.tls_exit_multi, path, &exit, true) {
                return Ok(TlsProbes {
                    funcs: found.iter().map(|x| x.0).collect(),
                    links: vec![a, b],
                    how,
                });
            }
        }
        // One uprobe per function (kernels without multi-uprobe links).
        let mut links = Vec::new();
        let mut names = Vec::new();
        for &(func, off, cookie) in &found {
            let Some(l) = attach_at(&p.tls_enter_one, path, off, cookie, false) else {
                continue;
            };
            links.push(l);
            if reads(cookie) {
                match attach_at(&p.tls_exit_one, path, off, cookie, true) {
                    Some(l) => links.push(l),
                    None => continue,
                }
            }
            names.push(func);
        }
        let has = |read: bool| {
            found
                .iter()
                .any(|x| reads(x.2) == read && names.contains(&x.0))
        };
        if !has(false) || !has(true) {
            bail!(
                "{}: the uprobes on {} would not attach\n{}",
                named.display(),
                found.iter().map(|x| x.0).collect::<Vec<_>>().join("/"),
                libbpf_log_tail()
            );
        }
        Ok(TlsProbes {
            funcs: names,
            links,
            how,
        })
    }

    /// Puts a running process in scope. `start_ticks` is field 22 of /proc/PID/stat: the
    /// kernel side compares it with the process's start time, so if the pid was recycled
    /// in between, the stranger is not tracked.
    pub fn track(&mut self, pid: u32, start_ticks: u64) -> Result<()> {
        let v = ag_proc {
            start_ticks,
            ..Default::default()
        };
        // SAFETY: ag_proc is plain old data generated from events.h.
        let bytes = unsafe {
            std::slice::from_raw_parts(
                (&v as *const ag_proc).cast::<u8>(),
                std::mem::size_of::<ag_proc>(),
            )
        };
        self.skel
            .maps
            .procs
            .update(&pid.to_ne_bytes(), bytes, MapFlags::ANY)
            .with_context(|| format!("putting pid {pid} in scope"))?;
        let bss = self
            .skel
            .maps
            .bss_data
            .as_deref_mut()
            .context("the sensor has no .bss")?;
        let word = bss
            .scope_bits
            .get_mut((pid / 64) as usize)
            .with_context(|| format!("pid {pid} is above the kernel's limit"))?;
        // The kernel side updates other bits of this word atomically; so must we.
        // SAFETY: the word is 8-byte aligned in the mmapped .bss and lives as long as skel.
        unsafe { AtomicU64::from_ptr(word) }.fetch_or(1 << (pid % 64), Ordering::SeqCst);
        Ok(())
    }

    /// True once no tracked process is left.
    pub fn tree_empty(&self) -> bool {
        self.skel.maps.procs.keys().next().is_none()
    }

    /// The tracked pids (for a last look when the tree should be over).
    pub fn tracked(&self) -> Vec<u32> {
        self.skel
            .maps
            .procs
            .keys()
            .filter_map(|k| k.try_into().ok().map(u32::from_ne_bytes))
            .collect()
    }

    /// Whether the kernel tracks `pid` as the tree's now (its fork put it in the map
    /// before it ran its first instruction).
    pub fn tracks(&self, pid: u32) -> bool {
        matches!(
            self.skel
                .maps
                .procs
                .lookup(&pid.to_ne_bytes(), MapFlags::ANY),
            Ok(Some(_))
        )
    }

    /// Drops a tracked pid whose process is gone without an exit record (never adopted).
    /// Its scope bit may stay set: the bit is only a hint, the map decides.
    pub fn untrack(&self, pid: u32) {
        let _ = self.skel.maps.procs.delete(&pid.to_ne_bytes());
    }

    pub fn stats(&self) -> Result<Stats> {
        let sum = |which: ag_stat| -> Result<u64> {
            let per_cpu = self
                .skel
                .maps
                .stats
                .lookup_percpu(&which.0.to_ne_bytes(), MapFlags::ANY)
                .context("reading the sensor's counters")?
                .unwrap_or_default();
            Ok(per_cpu
                .iter()
                .filter_map(|v| v.get(..8)?.try_into().ok())
                .map(u64::from_ne_bytes)
                .sum())
        };
        Ok(Stats {
            lost: sum(ag_stat::AG_STAT_LOST)?,
            procs_untracked: sum(ag_stat::AG_STAT_PROCS_FULL)?,
            denials_lost: 0,
        })
    }

    /// What the kernel's byte counts still hold (io.bpf.c): (file key, read, written) for
    /// each open file counted and not yet reported. Read once the ring buffer is drained,
    /// after the tree ended: the entries are never deleted here (nothing counts on).
    pub fn io_left(&self) -> Result<Vec<(u64, u64, u64)>> {
        let map = &self.skel.maps.io;
        let mut out = Vec::new();
        for k in map.keys() {
            let Some(v) = map
                .lookup(&k, MapFlags::ANY)
                .context("reading the sensor's byte counts")?
            else {
                continue; // gone since it was listed
            };
            let (Ok(key), true) = (
                <[u8; 8]>::try_from(k.as_slice()),
                v.len() >= std::mem::size_of::<skel::types::ag_io>(),
            ) else {
                anyhow::bail!("the sensor's byte counts: an entry of {} bytes", v.len());
            };
            // SAFETY: ag_io is plain old data and the length was checked.
            let io: skel::types::ag_io = unsafe { std::ptr::read_unaligned(v.as_ptr().cast()) };
            out.push((u64::from_ne_bytes(key), io.read, io.written));
        }
        Ok(out)
    }

    /// The ring buffer's size in bytes.
    pub fn ring_bytes(&self) -> usize {
        self.skel.maps.events.max_entries() as usize
    }

    /// The ring buffer, calling `f` with each raw record.
    pub fn ring<'a, F>(&'a self, f: F) -> Result<RingBuffer<'a>>
    where
        F: FnMut(&[u8]) -> i32 + 'a,
    {
        let mut b = RingBufferBuilder::new();
        b.add(&self.skel.maps.events, f)
            .context("opening the ring buffer")?;
        b.build().context("opening the ring buffer")
    }

    /// The map of tracked processes, for enforcement to share.
    pub fn procs_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.skel.maps.procs.as_fd()
    }
}

/// The TLS functions of a file: (name, file offset, attach cookie) of each.
pub struct TlsFunctions {
    pub found: Vec<(&'static str, u64, u64)>,
    /// How they were found when the file has no symbols for them (BoringSSL linked in).
    pub how: Option<String>,
    /// What the signature found, as an entry for the table of known builds
    /// (boring_builds.toml), when it was searched for.
    pub entry: Option<String>,
    /// The table and the signature disagree: the table's offsets are used.
    pub disagree: bool,
    /// The table of known builds has the file.
    pub known: bool,
}

/// Where OpenSSL's SSL_write and SSL_read are in a file (the _ex variants too when it has
/// them): from its symbols (elfsym.rs), else BoringSSL's by what its code is (boring.rs).
/// An error when it has neither. `search`: search by BoringSSL's signature even for a
/// build the table knows (doctor, to check the table).
pub fn tls_functions(path: &std::path::Path, search: bool) -> Result<TlsFunctions> {
    // (symbol, attach cookie: which function it is, see payload.bpf.c)
    const ALL: [(&str, u64); 4] = [
        ("SSL_write", 1),
        ("SSL_write_ex", 2),
        ("SSL_read", 3),
        ("SSL_read_ex", 4),
    ];
    let offs = elfsym::func_offsets(path, &ALL.map(|f| f.0))?;
    let found: Vec<(&'static str, u64, u64)> = ALL
        .iter()
        .zip(&offs)
        .filter_map(|(&(name, cookie), off)| off.map(|o| (name, o, cookie)))
        .collect();
    let has = |f: &str| found.iter().any(|x| x.0 == f);
    if (has("SSL_write") || has("SSL_write_ex")) && (has("SSL_read") || has("SSL_read_ex")) {
        return Ok(TlsFunctions {
            found,
            how: None,
            entry: None,
            disagree: false,
            known: false,
        });
    }
    let Some(b) = boring::find(path, search)? else {
        bail!("exports no SSL_write/SSL_read to probe");
    };
    let id = b.build_id.as_deref().unwrap_or("none");
    let what = match b.at.library {
        boring::Library::Boringssl => "BoringSSL linked in",
        boring::Library::Aead => "BoringSSL's or AWS-LC's AEAD linked in (TLS 1.3 records)",
    };
    let how = match &b.known {
        Some(known) => format!("{what}, a known build: {known}"),
        None if b.build_id.is_none() => {
            format!("{what}, found by its signature (no build id: searched for at every exec)")
        }
        None => format!("{what}, found by its signature (build id {id})"),
    };
    // A file without a build id (Codex's) is searched at every exec: no entry keys it.
    let entry = b.signature.filter(|_| b.build_id.is_some()).map(|o| {
        format!(
            "[[build]]\nid = \"{id}\"\nlibrary = \"{}\"\nwhat = \"{}\"\nwrite = {:#x}\nread = {:#x}\n",
            o.library.key(),
            path.display(),
            o.write,
            o.read
        )
    });
    let found = match b.at.library {
        boring::Library::Boringssl => {
            vec![("SSL_write", b.at.write, 1), ("SSL_read", b.at.read, 3)]
        }
        boring::Library::Aead => vec![
            ("EVP_AEAD_CTX_seal", b.at.write, 5),
            ("EVP_AEAD_CTX_open", b.at.read, 6),
        ],
    };
    Ok(TlsFunctions {
        disagree: b.known.is_some() && b.signature.is_some_and(|o| o != b.at),
        known: b.known.is_some(),
        found,
        how: Some(how),
        entry,
    })
}

/// Whether the function an attach cookie names reads (its plaintext is there at its
/// return, which gets a probe too): SSL_read, SSL_read_ex, EVP_AEAD_CTX_open
/// (payload.bpf.c's TLS_READ, TLS_READ_EX, TLS_OPEN).
fn reads(cookie: u64) -> bool {
    matches!(cookie, 3 | 4 | 6)
}

/// Uprobes (or, with `retprobe`, uretprobes) on those of `funcs` (name, attach cookie)
/// that the file defines: one link of `multi` where the kernel loaded it (it has
/// multi-uprobe links), else a link of `one` per function. Returns the functions attached
/// to; an error when the file defines none of them or one would not take its probe.
pub fn attach_probes(
    multi: &libbpf_rs::ProgramMut,
    one: &libbpf_rs::ProgramMut,
    path: &std::path::Path,
    funcs: &[(&'static str, u64)],
    retprobe: bool,
) -> Result<TlsProbes> {
    let names: Vec<&str> = funcs.iter().map(|f| f.0).collect();
    let offs = elfsym::func_offsets(path, &names)?;
    let found: Vec<(&'static str, u64, u64)> = funcs
        .iter()
        .zip(&offs)
        .filter_map(|(&(name, cookie), off)| off.map(|o| (name, o, cookie)))
        .collect();
    if found.is_empty() {
        bail!("{} defines none of {}", path.display(), names.join(", "));
    }
    if multi.autoload() {
        let at: Vec<(u64, u64)> = found.iter().map(|x| (x.1, x.2)).collect();
        if let Some(l) = attach_multi(multi, path, &at, retprobe) {
            return Ok(TlsProbes {
                funcs: found.iter().map(|x| x.0).collect(),
                links: vec![l],
                how: None,
            });
        }
    }
    let mut out = TlsProbes {
        funcs: Vec::new(),
        links: Vec::new(),
        how: None,
    };
    for (name, off, cookie) in found {
        // Each function the file defines, or none: a probe missing from one of them
        // would leave a way around the others.
        let Some(l) = attach_at(one, path, off, cookie, retprobe) else {
            bail!(
                "{}: the uprobe on {name} would not attach\n{}",
                path.display(),
                libbpf_log_tail()
            );
        };
        out.funcs.push(name);
        out.links.push(l);
    }
    Ok(out)
}

/// A multi-uprobe link of `prog` on functions of the file (file offsets, with a cookie
/// each).
fn attach_multi(
    prog: &libbpf_rs::ProgramMut,
    path: &std::path::Path,
    funcs: &[(u64, u64)],
    retprobe: bool,
) -> Option<libbpf_rs::Link> {
    let opts = libbpf_rs::UprobeMultiOpts {
        offsets: funcs.iter().map(|f| f.0 as usize).collect(),
        cookies: funcs.iter().map(|f| f.1).collect(),
        retprobe,
        ..Default::default()
    };
    // No pattern: the offsets name the functions.
    prog.attach_uprobe_multi_with_opts(-1, path, "", opts).ok()
}

/// A plain uprobe link of `prog` at a file offset.
fn attach_at(
    prog: &libbpf_rs::ProgramMut,
    path: &std::path::Path,
    offset: u64,
    cookie: u64,
    retprobe: bool,
) -> Option<libbpf_rs::Link> {
    let opts = libbpf_rs::UprobeOpts {
        cookie,
        retprobe,
        ..Default::default()
    };
    prog.attach_uprobe_with_opts(-1, path, offset as usize, opts)
        .ok()
}

/// Whether this kernel makes multi-uprobe links (6.6 and later): tried, with the smallest
/// program, not read from a version number. Loading the program is not enough: older
/// kernels take a kprobe program whatever attach type it names, and only refuse the link,
/// so a probe that stopped at the load had both variants of every TLS program verified
/// (a third of a Debian 12 kernel's start-up) for links that could never be made. The
/// link asked for names a directory, which a kernel that has such links refuses as not a
/// regular file (EBADF) and an older one refuses for the attach type (EINVAL).
pub fn kernel_has_uprobe_multi() -> bool {
    use libbpf_rs::libbpf_sys;
    // r0 = 0; exit
    let insns: [u64; 2] = [0xb7, 0x95];
    let mut opts = libbpf_sys::bpf_prog_load_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_prog_load_opts>() as _,
        expected_attach_type: libbpf_sys::BPF_TRACE_UPROBE_MULTI,
        ..Default::default()
    };
    // SAFETY: two valid instructions (bpf_insn is 8 bytes), a NUL-terminated licence.
    let fd = unsafe {
        libbpf_sys::bpf_prog_load(
            libbpf_sys::BPF_PROG_TYPE_KPROBE,
            std::ptr::null(),
            c"GPL".as_ptr(),
            insns.as_ptr().cast(),
            insns.len() as _,
            &mut opts,
        )
    };
    if fd < 0 {
        return false;
    }
    let offset: libc::c_ulong = 0;
    let mut link = libbpf_sys::bpf_link_create_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_link_create_opts>() as _,
        ..Default::default()
    };
    link.__bindgen_anon_1.uprobe_multi =
        libbpf_sys::bpf_link_create_opts__bindgen_ty_1__bindgen_ty_3 {
            cnt: 1,
            path: c"/".as_ptr(),
            offsets: &offset,
            ..Default::default()
        };
    // SAFETY: a program descriptor we own; the options point at locals that outlive the call.
    let l =
        unsafe { libbpf_sys::bpf_link_create(fd, 0, libbpf_sys::BPF_TRACE_UPROBE_MULTI, &link) };
    // SAFETY: descriptors we own.
    unsafe {
        if l >= 0 {
            libc::close(l);
        }
        libc::close(fd);
    }
    // libbpf returns the error, negated.
    l == -libc::EBADF
}

fn clock_ticks() -> Result<u64> {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t <= 0 {
        bail!("sysconf(_SC_CLK_TCK) failed");
    }
    Ok(t as u64)
}

fn ring_bytes(mb: u32) -> Result<u32> {
    if !(1..=1024).contains(&mb) || !mb.is_power_of_two() {
        bail!("--ring-buffer-mb must be a power of two from 1 to 1024, not {mb}");
    }
    Ok(mb * 1024 * 1024)
}

/// Offset from CLOCK_MONOTONIC (the kernel's event clock) to wall-clock time.
pub fn mono_to_wall_ns() -> i128 {
    let ns = |c| {
        let t = nix::time::clock_gettime(c)
            .map(|t| t.tv_sec() as i128 * 1_000_000_000 + t.tv_nsec() as i128);
        t.unwrap_or(0)
    };
    ns(nix::time::ClockId::CLOCK_REALTIME) - ns(nix::time::ClockId::CLOCK_MONOTONIC)
}

/// Now on CLOCK_MONOTONIC, the clock of the kernel's event timestamps, in ns: events
/// agentguard makes itself (start, notes, losses, end) are timed on the same clock.
pub fn mono_now() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}
