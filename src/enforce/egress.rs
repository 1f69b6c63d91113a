//! The Landlock backend's network half (src/bpf/egress.bpf.c): the compiled [[net]] rules
//! checked by cgroup sock_addr programs on the tree's own cgroup. Like lsm.rs, the only
//! module that talks to libbpf for it.
use std::mem::MaybeUninit;
use std::os::fd::AsRawFd;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, OpenObject};

use super::compile::Compiled;

use crate::abi::MapValue;
use crate::skel::egress as skel;
use skel::{EgressSkel, EgressSkelBuilder};

pub struct Egress<'obj> {
    _links: Vec<Link>,
    skel: EgressSkel<'obj>,
}

impl<'obj> Egress<'obj> {
    /// Loads the programs with the rules in place and attaches them to `cgroup`, which
    /// the tree is put in before it runs.
    pub fn load(
        obj: &'obj mut MaybeUninit<OpenObject>,
        c: &Compiled,
        cgroup: &Path,
        audit: bool,
    ) -> Result<Self> {
        crate::sensor::capture_libbpf();
        let mut open = EgressSkelBuilder::default()
            .open(obj)
            .context("opening the network programs")?;
        let ro = open
            .maps
            .rodata_data
            .as_deref_mut()
            .context("the network object has no .rodata")?;
        // Its own key: nothing is shared with enforce.bpf.c's maps.
        let key = super::compile::random_key()?;
        ro.hash_key = key;
        ro.n_net = c.net.len() as u32;
        ro.audit = u32::from(audit);
        let skel = open.load().map_err(|e| {
            anyhow!(
                "loading the cgroup network programs: {e}\n{}",
                crate::sensor::libbpf_log_tail()
            )
        })?;
        for r in &c.net {
            // The same policy.h struct as BPF LSM's (the test below checks the size).
            let v = r.value(key);
            skel.maps
                .net_rules
                .update(&r.id.to_ne_bytes(), v.bytes(), MapFlags::ANY)
                .context("writing a network rule")?;
        }
        let p = &skel.progs;
        let links = on_cgroup(
            &[
                &p.egress_connect4,
                &p.egress_connect6,
                &p.egress_sendmsg4,
                &p.egress_sendmsg6,
                &p.egress_connect_unix,
                &p.egress_sendmsg_unix,
            ],
            cgroup,
        )?;
        Ok(Egress {
            _links: links,
            skel,
        })
    }

    pub fn denials(&self) -> &dyn MapCore {
        &self.skel.maps.denials
    }

    /// Denial reports the denials ring had no room for (the BPF side's `denials_lost`).
    pub fn denials_lost(&self) -> u64 {
        super::lost(self.skel.maps.bss_data.as_deref().map(|b| &b.denials_lost))
    }
}

/// Attaches cgroup programs to the tree's cgroup (this backend's, and the HTTP endpoint
/// check both backends load).
pub fn on_cgroup(progs: &[&libbpf_rs::ProgramMut], cgroup: &Path) -> Result<Vec<Link>> {
    let dir = std::fs::File::open(cgroup)
        .with_context(|| format!("opening the tree's cgroup {}", cgroup.display()))?;
    progs
        .iter()
        .map(|prog| {
            prog.attach_cgroup(dir.as_raw_fd()).map_err(|e| {
                anyhow!(
                    "attaching {} to {}: {e}\n{}",
                    prog.name().to_string_lossy(),
                    cgroup.display(),
                    crate::sensor::libbpf_log_tail()
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    /// The cgroup programs' rule map takes the value BPF LSM's does (NetRule::value).
    #[test]
    fn the_network_rule_is_one_struct_in_both_objects() {
        use std::mem::{align_of, size_of};
        type Egress = super::skel::types::ag_net_rule;
        type Lsm = crate::abi::ag_net_rule;
        assert_eq!(size_of::<Egress>(), size_of::<Lsm>());
        assert_eq!(align_of::<Egress>(), align_of::<Lsm>());
    }
}
