//! Enforcement by HTTP endpoint for plain HTTP/1.x (src/bpf/endpoint.bpf.c): the profile's
//! [[http]] endpoints and [[llm]] hosts as the keys the kernel looks requests up by, and
//! the classes of uncovered request the level denies. Loaded under either backend, on the
//! tree's cgroup; like lsm.rs and egress.rs, the only module that talks to libbpf for it.
use std::collections::BTreeMap;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, OpenObject};

use crate::abi::MapValue;
use crate::diff::rules::{Severity, HTTP_CLASSES as CLASSES};
use crate::profile::{http, Profile};
use crate::skel::endpoint as skel;
use skel::types::{ag_http_key, ag_http_kind, ag_http_value};
use skel::{EndpointSkel, EndpointSkelBuilder};

// SAFETY: generated from policy.h: a u32 then char arrays, no padding (checked below).
unsafe impl MapValue for ag_http_key {}

/// What the kernel checks requests against.
#[derive(Debug, Default)]
pub struct Policy {
    /// Keys and their values: for an endpoint enum ag_http_value's bits, 1 for an LLM
    /// host, for a service whether the profile writes there.
    pub keys: BTreeMap<Vec<u8>, u32>,
    /// 1 << class, per enum ag_http_class the level denies.
    pub deny_mask: u32,
    /// Entries the kernel cannot spell (too long): their requests are rated as uncovered.
    pub narrowed: Vec<String>,
    /// The tree ran before enforcement (--pid): TLS objects made before the probes are
    /// not followed (their streams' places are unknown) rather than killed at their next
    /// write.
    pub adopt_unseen: bool,
}

/// The key as the kernel spells it, or None when a field does not fit its buffer.
fn key(kind: ag_http_kind, service: &str, method: &str, path: &str) -> Option<Vec<u8>> {
    let mut k = ag_http_key {
        kind: kind.0,
        ..Default::default()
    };
    // NUL-padded: a field as long as its buffer would not be.
    fn fill(dst: &mut [i8], s: &str) -> Option<()> {
        if s.len() >= dst.len() {
            return None;
        }
        for (d, b) in dst.iter_mut().zip(s.bytes()) {
            *d = b as i8;
        }
        Some(())
    }
    fill(&mut k.service, service)?;
    fill(&mut k.method, method)?;
    fill(&mut k.path, path)?;
    Some(k.bytes().to_vec())
}

/// The profile (as enforced, includes resolved) and the level as kernel policy.
pub fn policy(p: &Profile, level: Option<Severity>) -> Policy {
    let mut out = Policy::default();
    for (class, rule) in CLASSES {
        if level.is_none_or(|l| rule.severity >= l) {
            out.deny_mask |= 1 << class;
        }
    }
    for h in &p.http {
        let write = u32::from(http::is_write(&h.method));
        let value = ag_http_value::AG_HTTP_COVERED.0
            | if h.switches {
                ag_http_value::AG_HTTP_SWITCHES.0
            } else {
                0
            };
        match (
            key(ag_http_kind::AG_HTTP_ENDPOINT, &h.service, &h.method, &h.path),
            key(ag_http_kind::AG_HTTP_SERVICE, &h.service, "", ""),
        ) {
            (Some(e), Some(s)) => {
                // Two entries with one key (a hand-written and a learned one): either's bits.
                *out.keys.entry(e).or_default() |= value;
                *out.keys.entry(s).or_default() |= write;
            }
            _ => out.narrowed.push(format!(
                "[[http]] {} {}{}: too long for the kernel to check; its requests are rated as not covered",
                h.method, h.service, h.path
            )),
        }
    }
    for l in &p.llm {
        // The Host header's value as it came, lower case, encoded as requests' are.
        let host = http::encode(&l.host.trim().to_ascii_lowercase());
        match key(ag_http_kind::AG_HTTP_LLM, &host, "", "") {
            Some(k) => {
                out.keys.insert(k, 1);
            }
            None => out.narrowed.push(format!(
                "[[llm]] {}: too long for the kernel to check; its calls are rated as to a new host",
                l.host
            )),
        }
    }
    out
}

pub struct Endpoints<'obj> {
    _links: Vec<Link>,
    skel: EndpointSkel<'obj>,
}

impl<'obj> Endpoints<'obj> {
    /// Loads the programs with the keys in place: the sock_ops program on `cgroup`, which
    /// the tree is put in before it runs, the sk_msg program on its connections' map.
    pub fn load(
        obj: &'obj mut MaybeUninit<OpenObject>,
        policy: &Policy,
        cgroup: &Path,
        audit: bool,
    ) -> Result<Self> {
        crate::sensor::capture_libbpf();
        let mut open = EndpointSkelBuilder::default()
            .open(obj)
            .context("opening the HTTP endpoint programs")?;
        let ro = open
            .maps
            .rodata_data
            .as_deref_mut()
            .context("the HTTP endpoint object has no .rodata")?;
        ro.audit = u32::from(audit);
        ro.deny_mask = policy.deny_mask;
        ro.adopt_unseen = u32::from(policy.adopt_unseen);
        if !crate::sensor::kernel_has_uprobe_multi() {
            // A kernel that does not know the attach type refuses the whole object.
            open.progs.tls_check_multi.set_autoload(false);
            open.progs.tls_commit_multi.set_autoload(false);
        }
        let skel = open.load().map_err(|e| {
            anyhow!(
                "loading the HTTP endpoint programs: {e}\n{}",
                crate::sensor::libbpf_log_tail()
            )
        })?;
        for (k, v) in &policy.keys {
            skel.maps
                .endpoints
                .update(k, &v.to_ne_bytes(), MapFlags::ANY)
                .context("writing an HTTP endpoint")?;
        }
        skel.progs
            .endpoint_msg
            .attach_sockmap(skel.maps.conns.as_fd().as_raw_fd())
            .map_err(|e| anyhow!("attaching the HTTP request check to its connections: {e}"))?;
        let mut links = super::egress::on_cgroup(&[&skel.progs.endpoint_sockops], cgroup)?;
        // The TLS check's per-process state goes with the process.
        links.push(
            skel.progs
                .tls_exit
                .attach()
                .map_err(|e| anyhow!("attaching the TLS check's exit program: {e}"))?,
        );
        // The TLS probes keep to the processes of the tree's cgroup (and its children).
        let dir = std::fs::File::open(cgroup)
            .with_context(|| format!("opening the tree's cgroup {}", cgroup.display()))?;
        skel.maps
            .tree
            .update(
                &0u32.to_ne_bytes(),
                &(dir.as_raw_fd() as u32).to_ne_bytes(),
                MapFlags::ANY,
            )
            .context("naming the tree's cgroup to the TLS request check")?;
        Ok(Endpoints {
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

    /// Puts the TLS request check on a file the sensor probes for plaintext: on its
    /// SSL_write functions (entry and return); on SSL_clear (at its return),
    /// SSL_set_connect_state and SSL_set_accept_state, where a connection starts (a
    /// server's writes are responses: not checked); on SSL_free, where an object ends.
    /// Every function the file defines must take its probe, or it is not checked at all.
    pub fn attach_tls(&self, path: &Path) -> Result<Vec<Link>> {
        // (symbol, attach cookie: which function it is, see endpoint.bpf.c)
        // Starts and ends before writes: one uprobe at a time (no multi-uprobe links), a
        // write probed before its object's start would be killed as unfollowed.
        const FUNCS: [(&str, u64); 7] = [
            ("SSL_free", 4),
            ("SSL_set_connect_state", 5),
            ("SSL_set_accept_state", 6),
            ("SSL_clear", 7),
            ("SSL_write", 1),
            ("SSL_write_ex", 2),
            ("SSL_write_ex2", 3),
        ];
        let p = &self.skel.progs;
        let attach = crate::sensor::attach_probes;
        // Returns first: a write checked at its entry but never committed at its return
        // would leave its stream behind.
        let returns: Vec<_> = FUNCS
            .into_iter()
            .filter(|f| f.1 <= 3 || f.0 == "SSL_clear")
            .collect();
        let ret = attach(&p.tls_commit_multi, &p.tls_commit_one, path, &returns, true)?;
        let entries = attach(&p.tls_check_multi, &p.tls_check_one, path, &FUNCS, false)?;
        let has = |f: &&str| {
            entries.funcs.contains(f)
                && (!returns.iter().any(|r| r.0 == *f) || ret.funcs.contains(f))
        };
        let needed = [
            "SSL_write",
            "SSL_free",
            "SSL_clear",
            "SSL_set_connect_state",
        ];
        if let Some(missing) = needed.iter().find(|f| !has(f)) {
            anyhow::bail!(
                "{}: the HTTPS request check needs {missing}; probed {} (returns: {})",
                path.display(),
                entries.funcs.join(", "),
                ret.funcs.join(", ")
            );
        }
        let mut links = ret.links;
        links.extend(entries.links);
        Ok(links)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::skel::endpoint::types::ag_http_class;

    #[test]
    fn the_key_is_its_fields_without_padding() {
        use std::mem::size_of;
        let k = ag_http_key::default();
        assert_eq!(
            size_of::<ag_http_key>(),
            4 + k.service.len() + k.method.len() + k.path.len()
        );
    }

    #[test]
    fn endpoints_services_and_llm_hosts_become_keys() {
        let p: Profile = toml::from_str(
            r#"
            version = 1
            [[http]]
            service = "api.internal:80"
            method = "GET"
            path = "/api/tickets/{id}"
            [[http]]
            service = "api.internal:80"
            method = "POST"
            path = "/api/tickets/{id}/comments"
            [[http]]
            service = "kb.internal:80"
            method = "GET"
            path = "/search"
            switches = true
            [[llm]]
            host = "Model.Local:8080"
            api = "openai.chat"
            "#,
        )
        .unwrap();
        let pol = policy(&p, Some(Severity::High));
        let get = |kind, s: &str, m: &str, path: &str| {
            pol.keys.get(&key(kind, s, m, path).unwrap()).copied()
        };
        type K = ag_http_kind;
        assert_eq!(
            get(
                K::AG_HTTP_ENDPOINT,
                "api.internal:80",
                "GET",
                "/api/tickets/{id}"
            ),
            Some(1)
        );
        assert_eq!(get(K::AG_HTTP_SERVICE, "api.internal:80", "", ""), Some(1));
        assert_eq!(get(K::AG_HTTP_SERVICE, "kb.internal:80", "", ""), Some(0));
        // An endpoint learned to switch protocols says so in its value.
        assert_eq!(
            get(K::AG_HTTP_ENDPOINT, "kb.internal:80", "GET", "/search"),
            Some(3)
        );
        assert_eq!(get(K::AG_HTTP_LLM, "model.local:8080", "", ""), Some(1));
        assert_eq!(pol.keys.len(), 6);
        // At high, only a write to a read-only service and a new LLM host are denied.
        assert_eq!(
            pol.deny_mask,
            1 << ag_http_class::AG_HTTP_WRITE_READ_ONLY.0
                | 1 << ag_http_class::AG_HTTP_LLM_NEW_HOST.0
        );
        assert_eq!(policy(&p, None).deny_mask.count_ones(), 5);
        let medium = policy(&p, Some(Severity::Medium)).deny_mask;
        assert_eq!(medium & 1 << ag_http_class::AG_HTTP_NEW_ENDPOINT.0, 0);
        assert_ne!(medium & 1 << ag_http_class::AG_HTTP_NEW_WRITE.0, 0);
    }

    #[test]
    fn a_path_too_long_for_the_kernel_is_said() {
        let long = format!("/{}", "a".repeat(300));
        let p: Profile = toml::from_str(&format!(
            "version = 1\n[[http]]\nservice = \"a:80\"\nmethod = \"GET\"\npath = \"{long}\"\n"
        ))
        .unwrap();
        let pol = policy(&p, None);
        assert!(pol.keys.is_empty());
        assert_eq!(pol.narrowed.len(), 1, "{:?}", pol.narrowed);
    }
}
