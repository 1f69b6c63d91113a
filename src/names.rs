//! Which name the tree resolved each address from: DNS answers the tree received name the
//! addresses it then connects to, so connections read `api.example.com:443`, not an
//! address that rotates.
use std::collections::HashMap;
use std::time::Duration;

use crate::event::{Event, Kind};

/// An answer is believed at least this long, whatever its TTL: clients cache answers and
/// connect again after a short TTL has run out.
pub const TTL_FLOOR: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
pub struct Names {
    /// address -> (name, expiry as seconds since the epoch)
    by_addr: HashMap<String, (String, f64)>,
}

impl Names {
    /// Learns from an answer; names a connection.
    pub fn observe(&mut self, ev: &mut Event) {
        let now = seconds(&ev.ts);
        match &mut ev.kind {
            Kind::Dns(d) if d.answer && d.error.is_none() => {
                let Some(name) = d.names.first() else { return };
                for a in &d.addrs {
                    let ttl = Duration::from_secs(a.ttl.into()).max(TTL_FLOOR);
                    self.by_addr
                        .insert(a.addr.clone(), (name.clone(), now + ttl.as_secs_f64()));
                }
            }
            Kind::Net(n) if n.name.is_none() => {
                if let Some((name, until)) = self.by_addr.get(&n.addr) {
                    if now <= *until {
                        n.name = Some(name.clone());
                    }
                }
            }
            _ => {}
        }
    }
}

/// RFC 3339 to seconds since the epoch (0 when unreadable: then every answer is current).
fn seconds(ts: &str) -> f64 {
    humantime::parse_rfc3339(ts)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Dns, DnsAddr, Net, NetOp, Proto};

    fn ev(ts: &str, kind: Kind) -> Event {
        Event {
            ts: ts.into(),
            pid: 1,
            tid: 1,
            ppid: 0,
            exe: String::new(),
            kind,
            cause: None,
        }
    }
    fn answer(ts: &str, name: &str, addr: &str, ttl: u32) -> Event {
        ev(
            ts,
            Kind::Dns(Dns {
                names: vec![name.into()],
                qtypes: vec!["A".into()],
                server: "127.0.0.53:53".into(),
                answer: true,
                addrs: vec![DnsAddr {
                    addr: addr.into(),
                    ttl,
                }],
                error: None,
            }),
        )
    }
    fn connect(ts: &str, addr: &str) -> Option<String> {
        let mut e = ev(
            ts,
            Kind::Net(Net {
                op: NetOp::Connect,
                family: "inet".into(),
                proto: Proto::Tcp,
                addr: addr.into(),
                port: 443,
                mapped: false,
                name: None,
                error: None,
            }),
        );
        NAMES.with(|n| n.borrow_mut().observe(&mut e));
        match e.kind {
            Kind::Net(n) => n.name,
            _ => None,
        }
    }
    thread_local! {
        static NAMES: std::cell::RefCell<Names> = Default::default();
    }

    #[test]
    fn answers_name_connections_for_their_ttl_with_a_floor() {
        let mut a = answer("2026-11-26T12:00:00Z", "api.example.com", "10.1.2.3", 5);
        NAMES.with(|n| n.borrow_mut().observe(&mut a));
        assert_eq!(
            connect("2026-11-26T12:00:30Z", "10.1.2.3").as_deref(),
            Some("api.example.com"),
            "within the floor"
        );
        assert_eq!(connect("2026-11-26T12:02:00Z", "10.1.2.3"), None, "expired");
        assert_eq!(
            connect("2026-11-26T12:00:01Z", "10.9.9.9"),
            None,
            "never answered"
        );
        // The name moves to another address: the new one is named too.
        let mut b = answer("2026-11-26T12:03:00Z", "api.example.com", "10.4.5.6", 300);
        NAMES.with(|n| n.borrow_mut().observe(&mut b));
        assert_eq!(
            connect("2026-11-26T12:07:00Z", "10.4.5.6").as_deref(),
            Some("api.example.com")
        );
    }
}
