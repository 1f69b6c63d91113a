//! What one run moves over HTTP, against what its baseline's runs moved: an endpoint's
//! bytes in a run beyond the learned range, and the exfiltration sequence (a bulk
//! download or a protected read, then a request carrying that much out).
//!
//! Only non-LLM endpoints count (What::Http): the conversation with the model carries
//! whatever the tools read by design, and grows with the task.
use std::collections::{HashMap, HashSet};

use super::rules::{self, Rule};
use crate::profile::http::{bytes, is_write, volume_limit};
use crate::profile::{HttpEntry, What};

/// A run that downloaded at least this much (over all its responses) has pulled in bulk.
pub const BULK: u64 = 16 << 10;
/// A request this large carries data out even with a read method (a query, a body).
const CARRIES: u64 = 1 << 10;
/// Downloads past this do not raise the bar an upload is held to: pulling junk first
/// must not make a later upload look small.
const BAR_MAX: u64 = 1 << 20;

type Key = (String, String, String);

#[derive(Default)]
pub struct Volume {
    /// Learned ranges: (sent, received) limits per endpoint.
    limits: HashMap<Key, (Option<u64>, Option<u64>)>,
    /// This run's bytes so far per endpoint.
    moved: HashMap<Key, (u64, u64)>,
    said: HashSet<(Key, bool)>,
    /// Bytes downloaded so far, and the largest response (what it was).
    downloaded: u64,
    largest: Option<(u64, String)>,
    /// Bytes carried out since the download reached BULK.
    uploaded: u64,
    /// A protected file the run read that its baseline does not admit.
    protected: Option<String>,
    said_sequence: HashSet<Key>,
    /// Endpoints a hand-written rule admits: no volume is learned for them.
    admitted: HashSet<Key>,
    /// Bytes sent per service to endpoints no entry names.
    unnamed: HashMap<String, u64>,
    said_unnamed: HashSet<String>,
}

impl Volume {
    pub fn new(entries: &[HttpEntry]) -> Volume {
        let mut limits = HashMap::new();
        let mut admitted = HashSet::new();
        for e in entries {
            let key = (e.service.clone(), e.method.clone(), e.path.clone());
            if e.learned {
                limits.insert(key, (volume_limit(&e.sent), volume_limit(&e.received)));
            } else {
                admitted.insert(key);
            }
        }
        Volume {
            limits,
            admitted,
            ..Default::default()
        }
    }

    /// The run read a protected file its baseline does not admit.
    pub fn protected_read(&mut self, path: &str) {
        self.protected.get_or_insert_with(|| path.to_string());
    }

    /// One exchange with an endpoint (a What::Http): the findings it completes, each with
    /// its rule, detail and reason.
    pub fn exchange(
        &mut self,
        what: &What,
        sent: u64,
        received: u64,
    ) -> Vec<(&'static Rule, String, String)> {
        let What::Http {
            service,
            method,
            path,
        } = what
        else {
            return Vec::new();
        };
        let key: Key = (service.clone(), method.clone(), path.clone());
        let mut out = Vec::new();
        // The sequence first: it is about what came before this request. Downloads and
        // uploads are summed over the run, so paging either side in small pieces changes
        // nothing.
        let carries = is_write(method) || sent >= CARRIES;
        if carries && self.downloaded >= BULK {
            self.uploaded = self.uploaded.saturating_add(sent);
        }
        let carried = if let Some(p) = &self.protected {
            carries.then(|| format!("after reading the protected {p}"))
        } else {
            let (down, up) = (self.downloaded, self.uploaded);
            (carries && down >= BULK && up >= down.min(BAR_MAX) / 2).then(|| {
                let from = self
                    .largest
                    .as_ref()
                    .map(|(_, f)| format!(", the most from {f}"))
                    .unwrap_or_default();
                format!(
                    "after downloading {} in this run{from} ({} carried out since)",
                    bytes(down),
                    bytes(up)
                )
            })
        };
        if let Some(after) = carried {
            if self.said_sequence.insert(key.clone()) {
                out.push((
                    &rules::EXFIL_SEQUENCE,
                    format!("{method} sent {}", bytes(sent)),
                    format!("{method} sending {} {after}", bytes(sent)),
                ));
            }
        }
        self.downloaded = self.downloaded.saturating_add(received);
        if self.largest.as_ref().is_none_or(|(n, _)| received > *n) {
            self.largest = Some((received, format!("{method} {service}{path}")));
        }
        let m = self.moved.entry(key.clone()).or_default();
        m.0 = m.0.saturating_add(sent);
        m.1 = m.1.saturating_add(received);
        let (total_sent, total_received) = *m;
        // An endpoint no entry names moved nothing in the baseline: what it is sent is held
        // to the limit of a run of nothing (4 KiB), so a new endpoint carrying data out (a
        // GET with it in its query, page after page) is more than a low new endpoint.
        // The endpoints of a service no entry names share that limit, so spreading the
        // data over many new paths changes nothing.
        let (lim_sent, lim_received) = match self.limits.get(&key) {
            Some(l) => *l,
            None if self.admitted.contains(&key) => (None, None),
            None => {
                let u = self.unnamed.entry(service.clone()).or_default();
                *u = u.saturating_add(sent);
                let limit = volume_limit(&[0]).unwrap_or_default();
                if *u > limit && self.said_unnamed.insert(service.clone()) {
                    out.push((
                        &rules::HTTP_VOLUME,
                        format!("sent {} to endpoints no entry names", bytes(*u)),
                        format!(
                            "{} sent in this run to endpoints of {service} the baseline never used; a run of nothing stays under {}",
                            bytes(*u),
                            bytes(limit)
                        ),
                    ));
                }
                (None, None)
            }
        };
        for (out_dir, total, limit) in [
            (true, total_sent, lim_sent),
            (false, total_received, lim_received),
        ] {
            let Some(limit) = limit.filter(|l| total > *l) else {
                continue;
            };
            if !self.said.insert((key.clone(), out_dir)) {
                continue;
            }
            let dir = if out_dir { "sent" } else { "received" };
            out.push((
                &rules::HTTP_VOLUME,
                format!("{method} {dir} {}", bytes(total)),
                format!(
                    "{} {dir} in this run; the baseline's runs stay under {} (twice the largest plus 4 KiB)",
                    bytes(total),
                    bytes(limit)
                ),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(method: &str, path: &str, sent: &[u64], received: &[u64]) -> HttpEntry {
        HttpEntry {
            service: "api:80".into(),
            method: method.into(),
            path: path.into(),
            learned: true,
            seen: (0..sent.len() as u32).collect(),
            count: sent.len() as u64,
            sent: sent.to_vec(),
            received: received.to_vec(),
            switches: false,
            allowed: None,
        }
    }

    fn http(method: &str, path: &str) -> What {
        What::Http {
            service: "api:80".into(),
            method: method.into(),
            path: path.into(),
        }
    }

    /// Whether the findings hold the exfiltration sequence.
    fn sequence(v: &[(&'static Rule, String, String)]) -> bool {
        v.iter().any(|f| f.0.id == rules::EXFIL_SEQUENCE.id)
    }

    fn rules_of(v: Vec<(&'static Rule, String, String)>) -> Vec<&'static str> {
        v.into_iter().map(|(r, _, _)| r.id).collect()
    }

    #[test]
    fn a_run_beyond_the_learned_range_is_flagged_once() {
        let mut v = Volume::new(&[entry("POST", "/notes", &[300, 500], &[100, 100])]);
        let post = http("POST", "/notes");
        // The limit is 2 * 500 + 4096 = 5096 bytes sent, summed over the run.
        assert!(v.exchange(&post, 3000, 100).is_empty());
        assert_eq!(rules_of(v.exchange(&post, 3000, 100)), ["http-volume"]);
        assert!(v.exchange(&post, 3000, 100).is_empty(), "said once");
        // Endpoints no entry names are held together to a run of nothing: 4 KiB sent.
        for i in 0..4 {
            assert!(v
                .exchange(&http("GET", &format!("/other{i}")), 1_000, 1 << 20)
                .is_empty());
        }
        assert_eq!(
            rules_of(v.exchange(&http("GET", "/another"), 1_000, 0)),
            ["http-volume"]
        );
        assert!(
            v.exchange(&http("GET", "/more"), 9_000, 0).is_empty(),
            "once"
        );
        // One a hand-written rule admits has no learned volume to hold it to.
        let mut hand = entry("POST", "/upload", &[], &[]);
        (hand.learned, hand.seen) = (false, vec![]);
        let mut v = Volume::new(&[hand]);
        assert!(v.exchange(&http("POST", "/upload"), 1 << 20, 0).is_empty());
    }

    #[test]
    fn a_bulk_download_then_a_comparable_upload_is_the_sequence() {
        let mut v = Volume::new(&[]);
        assert!(!sequence(&v.exchange(
            &http("GET", "/customers"),
            200,
            40_000
        )));
        // A small request afterwards is no upload of what was pulled.
        assert!(!sequence(&v.exchange(&http("POST", "/notes"), 2_000, 100)));
        let got = v.exchange(&http("POST", "/notes/{id}"), 25_000, 100);
        assert!(rules_of(got.clone()).contains(&"exfil-sequence"));
        assert!(
            got.iter().any(|f| f.2.contains(
                "after downloading 39.2 KiB in this run, the most from GET api:80/customers"
            )),
            "{got:?}"
        );
    }

    #[test]
    fn paging_either_side_changes_nothing() {
        let mut v = Volume::new(&[]);
        // Forty pages of 1 KB down, then uploads of 900 B each.
        for _ in 0..40 {
            assert!(!sequence(&v.exchange(
                &http("GET", "/customers"),
                150,
                1_000
            )));
        }
        let mut fired = 0;
        for i in 0..30 {
            let got = v.exchange(&http("POST", "/notes/{id}"), 900, 50);
            if sequence(&got) {
                assert_eq!(rules_of(got), ["exfil-sequence"]);
                fired = i;
                break;
            }
        }
        assert_eq!(fired, 22, "at half the download: 23 uploads of 900 B");
        // Reads of small requests carry nothing out.
        let mut v = Volume::new(&[]);
        for _ in 0..400 {
            assert!(!sequence(&v.exchange(&http("GET", "/page"), 200, 1_000)));
        }
    }

    #[test]
    fn after_a_protected_read_any_write_is_the_sequence() {
        let mut v = Volume::new(&[]);
        assert!(v.exchange(&http("POST", "/collect"), 120, 0).is_empty());
        v.protected_read("/home/ann/.aws/credentials");
        assert!(v.exchange(&http("GET", "/status"), 200, 50).is_empty());
        assert_eq!(
            rules_of(v.exchange(&http("POST", "/collect"), 120, 0)),
            ["exfil-sequence"]
        );
    }
}
