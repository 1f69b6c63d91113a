//! Loading the LSM programs and filling their maps from a compiled profile. Like
//! sensor/mod.rs for the sensor, the only module that talks to libbpf for enforcement.
use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::os::fd::BorrowedFd;

use anyhow::{bail, Context, Result};
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, OpenObject};

use super::compile::{hash, Anchor, Compiled, TAIL_ANY};

use crate::abi::MapValue;
use crate::skel::enforce as skel;
use skel::types::{ag_dir, ag_glob, ag_name_rule, ag_seg};
use skel::{EnforceSkel, EnforceSkelBuilder};

pub(crate) const DIR_RULES: usize = 32;
const ANYWHERE: usize = 64;
const MAX_RULES: usize = 16384;

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub audit: bool,
    pub kill_on_deny: bool,
}

pub struct Lsm<'obj> {
    skel: EnforceSkel<'obj>,
    /// The DNS programs on the tree's cgroup (attached by hand: libbpf attaches LSM
    /// programs only).
    _dns: Vec<libbpf_rs::Link>,
}

/// Whether the running kernel has a function (an LSM hook's BPF attach point). Unreadable
/// symbols count as present: loading then fails loudly rather than skipping a hook.
fn kernel_has(symbol: &str) -> bool {
    let Ok(text) = std::fs::read_to_string("/proc/kallsyms") else {
        return true;
    };
    text.lines()
        .any(|l| l.split_whitespace().nth(2) == Some(symbol))
}

/// How many arguments an LSM hook's BPF attach point takes, by the kernel's BTF.
fn hook_params(func: &str) -> Option<usize> {
    use libbpf_rs::btf::{types, Btf};
    let btf = Btf::from_vmlinux().ok()?;
    let f: types::Func = btf.type_by_name(func)?;
    let proto = types::FuncProto::try_from(f.next_type()?).ok()?;
    Some(proto.len())
}

/// Why LSM programs would not load here, as precisely as the system tells.
pub fn explain_refusal(err: &str) -> String {
    let lsm = std::fs::read_to_string("/sys/kernel/security/lsm").unwrap_or_default();
    let listed = lsm.split(',').any(|l| l.trim() == "bpf");
    let (active, fix) = if lsm.is_empty() {
        (
            "the active LSM list could not be read (mount securityfs on /sys/kernel/security to see it)".to_string(),
            "fix: boot with bpf in the LSM list: add lsm=landlock,lockdown,yama,integrity,apparmor,bpf (your list, then bpf) to the kernel command line (GRUB_CMDLINE_LINUX in /etc/default/grub, update-grub, reboot); the kernel needs CONFIG_BPF_LSM=y".to_string(),
        )
    } else if listed {
        (
            format!("\"bpf\" is in the active LSM list ({}), yet the programs were refused", lsm.trim()),
            "fix: this is a kernel or agentguard problem, not configuration; the libbpf log above says which program and why".to_string(),
        )
    } else {
        (
            format!("\"bpf\" is not in the active LSM list ({})", lsm.trim()),
            format!("fix: add lsm={},bpf to the kernel command line (GRUB_CMDLINE_LINUX in /etc/default/grub, update-grub, reboot); the kernel needs CONFIG_BPF_LSM=y", lsm.trim()),
        )
    };
    let log = crate::sensor::libbpf_log_tail();
    format!(
        "enforcement needs BPF LSM programs, and they could not be loaded: {err}\n{log}\n{active}.\n{fix}.\n\
         agentguard did not start the command: it does not run a tree it cannot enforce."
    )
}

impl<'obj> Lsm<'obj> {
    /// Loads and attaches the programs with the policy in place; `procs` is the sensor's
    /// map of tracked processes, which the programs share; `cgroup` the tree's, where the
    /// DNS programs go.
    pub fn load(
        obj: &'obj mut MaybeUninit<OpenObject>,
        procs: BorrowedFd<'_>,
        c: &Compiled,
        opts: Options,
        cgroup: &std::path::Path,
    ) -> Result<Self> {
        if c.rules.len() > MAX_RULES {
            bail!(
                "the profile compiles to {} path rules; the kernel side holds {MAX_RULES}",
                c.rules.len()
            );
        }
        let key = super::compile::random_key()?;
        let slow: Vec<u32> = c
            .rules
            .iter()
            .filter(|r| r.anchor == Anchor::Unanchored)
            .map(|r| r.id)
            .collect();
        if slow.len() > ANYWHERE {
            bail!("{} rules start with \"**\" and a pattern segment; the kernel side holds {ANYWHERE} (anchor them on a literal name)", slow.len());
        }
        let mut open = EnforceSkelBuilder::default()
            .open(obj)
            .context("opening the LSM programs")?;
        let ro = open
            .maps
            .rodata_data
            .as_deref_mut()
            .context("the LSM object has no .rodata")?;
        ro.tick_ns = crate::attach::tick_ns();
        ro.hash_key = key;
        ro.tree_cgid = std::os::unix::fs::MetadataExt::ino(
            &std::fs::metadata(cgroup)
                .with_context(|| format!("reading the tree's cgroup {}", cgroup.display()))?,
        );
        ro.audit = u32::from(opts.audit);
        ro.kill_on_deny = u32::from(opts.kill_on_deny);
        ro.n_slow = slow.len() as u32;
        ro.n_net = c.net.len() as u32;
        ro.n_names = c.names.len() as u32;
        // One floor for what record believes and what the kernel allows (names.rs).
        ro.ttl_floor_ns = crate::names::TTL_FLOOR.as_nanos() as u64;
        if c.names.is_empty() {
            // Only `host` rules need the tree's DNS traffic read.
            open.progs.dns_egress.set_autoload(false);
            open.progs.dns_ingress.set_autoload(false);
        }
        // inode_setattr gained the mount's id map as its first argument in Linux 6.8.
        match hook_params("bpf_lsm_inode_setattr") {
            Some(3) => open.progs.enforce_setattr_dentry_first.set_autoload(false),
            Some(2) => open.progs.enforce_setattr.set_autoload(false),
            other => anyhow::bail!(
                "the kernel's inode_setattr hook has {} arguments in its BTF; this agentguard knows the 6.1 and 6.8 forms (a file's times could not be enforced)",
                other.map_or("unknown".to_string(), |n| n.to_string())
            ),
        };
        if !kernel_has("bpf_lsm_file_ioctl_compat") {
            // Before Linux 6.8 the 32-bit ioctl entry calls file_ioctl's hook.
            open.progs.enforce_ioctl_compat.set_autoload(false);
        }
        open.maps
            .procs
            .reuse_fd(procs)
            .context("sharing the sensor's process map")?;
        let mut skel = open
            .load()
            .map_err(|e| anyhow::anyhow!(explain_refusal(&e.to_string())))?;
        fill(&skel, c, key, &slow)?;
        skel.attach()
            .map_err(|e| anyhow::anyhow!(explain_refusal(&format!("attaching: {e}"))))?;
        let mut dns = Vec::new();
        if !c.names.is_empty() {
            let dir = std::fs::File::open(cgroup)
                .with_context(|| format!("opening the tree's cgroup {}", cgroup.display()))?;
            for prog in [&skel.progs.dns_egress, &skel.progs.dns_ingress] {
                dns.push(
                    prog.attach_cgroup(std::os::fd::AsRawFd::as_raw_fd(&dir))
                        .with_context(|| {
                            format!(
                                "attaching the DNS programs to {}: {}",
                                cgroup.display(),
                                crate::sensor::libbpf_log_tail()
                            )
                        })?,
                );
            }
        }
        Ok(Lsm { skel, _dns: dns })
    }

    pub fn denials(&self) -> &dyn MapCore {
        &self.skel.maps.denials
    }

    /// Denial reports the denials ring had no room for (the BPF side's `denials_lost`).
    pub fn denials_lost(&self) -> u64 {
        super::lost(self.skel.maps.bss_data.as_deref().map(|b| &b.denials_lost))
    }
}

fn glob_value(r: &super::compile::Rule) -> ag_glob {
    let mut g = ag_glob {
        grant: r.grant,
        flags: r.flags,
        nseg: r.segs.len() as u32,
        id: r.id,
        seg: [ag_seg::default(); 4],
    };
    for (i, s) in r.segs.iter().enumerate() {
        let mut v = ag_seg {
            star: u8::from(s.star),
            plen: s.pre.len() as u8,
            slen: s.suf.len() as u8,
            ..Default::default()
        };
        for (j, b) in s.pre.iter().enumerate() {
            v.pre[j] = *b as i8;
        }
        for (j, b) in s.suf.iter().enumerate() {
            v.suf[j] = *b as i8;
        }
        g.seg[i] = v;
    }
    debug_assert!(r.flags & TAIL_ANY == 0 || g.flags & TAIL_ANY != 0);
    g
}

fn fill(skel: &EnforceSkel, c: &Compiled, key: u64, slow: &[u32]) -> Result<()> {
    let mut dirs: HashMap<u64, (Vec<u32>, String)> = HashMap::new();
    let mut comps: HashMap<u64, (Vec<u32>, String)> = HashMap::new();
    for r in &c.rules {
        skel.maps
            .globs
            .update(&r.id.to_ne_bytes(), glob_value(r).bytes(), MapFlags::ANY)
            .context("writing a rule")?;
        match &r.anchor {
            Anchor::Dir(d) => dirs
                .entry(hash(key, d.as_bytes()))
                .or_insert_with(|| (Vec::new(), d.clone()))
                .0
                .push(r.id),
            Anchor::Component(n) => comps
                .entry(hash(key, n))
                .or_insert_with(|| (Vec::new(), String::from_utf8_lossy(n).into_owned()))
                .0
                .push(r.id),
            Anchor::Unanchored => {}
        }
    }
    for (map, lists, what) in [
        (&skel.maps.dirs, &dirs, "directory"),
        (&skel.maps.comps, &comps, "name"),
    ] {
        for (h, (ids, name)) in lists {
            if ids.len() > DIR_RULES {
                bail!("{} patterns hang off the {what} {name:?}; the kernel side holds {DIR_RULES} per {what}", ids.len());
            }
            let mut v = ag_dir {
                n: ids.len() as u32,
                idx: [0; DIR_RULES],
            };
            v.idx[..ids.len()].copy_from_slice(ids);
            map.update(&h.to_ne_bytes(), v.bytes(), MapFlags::ANY)
                .context("writing a rule index")?;
        }
    }
    for (i, id) in slow.iter().enumerate() {
        skel.maps
            .slow
            .update(&(i as u32).to_ne_bytes(), &id.to_ne_bytes(), MapFlags::ANY)
            .context("writing a rule index")?;
    }
    for r in &c.net {
        let v = r.value(key);
        skel.maps
            .net_rules
            .update(&r.id.to_ne_bytes(), v.bytes(), MapFlags::ANY)
            .context("writing a network rule")?;
    }
    // `host` rules: a bit each, found from the question's name (exact, or a suffix for
    // *.example.com); dns.h allows the answer's addresses for the rules' ports.
    let mut exact: HashMap<u64, u64> = HashMap::new();
    let mut suffix: HashMap<u64, u64> = HashMap::new();
    for r in &c.names {
        let name = r.name.0.to_ascii_lowercase();
        let bit = 1u64 << r.id;
        match name.strip_prefix("*.") {
            Some(base) => *suffix.entry(hash(key, base.as_bytes())).or_default() |= bit,
            None => *exact.entry(hash(key, name.as_bytes())).or_default() |= bit,
        }
        let v = ag_name_rule {
            sotype: r.sotype,
            port_lo: r.lo,
            port_hi: r.hi,
            private_ok: u8::from(r.private),
            id: r.id,
            ..Default::default()
        };
        skel.maps
            .name_rules
            .update(&r.id.to_ne_bytes(), v.bytes(), MapFlags::ANY)
            .context("writing a host rule")?;
    }
    for (map, entries) in [
        (&skel.maps.name_exact, &exact),
        (&skel.maps.name_suffix, &suffix),
    ] {
        for (h, bits) in entries {
            map.update(&h.to_ne_bytes(), &bits.to_ne_bytes(), MapFlags::ANY)
                .context("writing a host rule")?;
        }
    }
    Ok(())
}
