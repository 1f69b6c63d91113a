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
    /// Queries the tree sent and no answer has matched yet: (server, id) -> the names
    /// asked.
    pending: HashMap<(String, u16), Vec<String>>,
}

impl Names {
    /// Learns from an answer; names a connection.
    ///
    /// An answer names addresses only when it answers a query the tree sent: the same
    /// server, the same transaction id, the same question. Otherwise anything that can
    /// deliver a datagram from port 53 (the tree itself, as root) could make a name it
    /// likes stand for an address it likes. Such an answer keeps its addresses in the log,
    /// with an error saying why they name nothing.
    pub fn observe(&mut self, ev: &mut Event) {
        // Only answers and connections need the time: most events are neither.
        let now = || ev.ts.secs_f64();
        match &mut ev.kind {
            Kind::Dns(d) if !d.answer && d.error.is_none() => {
                if let Some(id) = d.id {
                    // Bounded: a tree that sends queries without end keeps the latest.
                    if self.pending.len() >= 4096 {
                        self.pending.clear();
                    }
                    self.pending.insert((d.server.clone(), id), d.names.clone());
                }
            }
            Kind::Dns(d) if d.answer && d.error.is_none() => {
                // Event logs written before answers carried their id are taken as they are.
                if let Some(id) = d.id {
                    let asked = self.pending.remove(&(d.server.clone(), id));
                    if asked.is_none_or(|q| q != d.names) {
                        d.error = Some(
                            "answers no query the tree sent (server, id and question): its addresses name nothing"
                                .into(),
                        );
                        return;
                    }
                }
                let Some(name) = d.names.first() else { return };
                let now = now();
                for a in &d.addrs {
                    let ttl = Duration::from_secs(a.ttl.into()).max(TTL_FLOOR);
                    self.by_addr
                        .insert(a.addr.clone(), (name.clone(), now + ttl.as_secs_f64()));
                }
            }
            Kind::Net(n) if n.name.is_none() => {
                if let Some((name, until)) = self.by_addr.get(&n.addr) {
                    if now() <= *until {
                        n.name = Some(name.clone());
                    }
                }
            }
            Kind::Io(io) if io.proto.is_some() && io.name.is_none() && !io.addr.is_empty() => {
                if let Some((name, until)) = self.by_addr.get(&io.addr) {
                    if now() <= *until {
                        io.name = Some(name.clone());
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Dns, DnsAddr, Net, NetOp, Proto};

    fn ev(ts: &str, kind: Kind) -> Event {
        Event {
            ts: ts.parse().unwrap(),
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
                id: None,
            }),
        )
    }
    fn connect(ts: &str, addr: &str) -> Option<String> {
        let mut e = ev(
            ts,
            Kind::Net(Net {
                op: NetOp::Connect,
                family: crate::event::Family::Inet,
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

    #[test]
    fn an_answer_to_no_query_the_tree_sent_names_nothing() {
        let mut n = Names::default();
        let dns = |answer: bool, id: u16, name: &str| {
            ev(
                "2026-11-26T12:00:00Z",
                Kind::Dns(Dns {
                    names: vec![name.into()],
                    qtypes: vec!["A".into()],
                    server: "127.0.0.53:53".into(),
                    answer,
                    addrs: if answer {
                        vec![DnsAddr {
                            addr: "203.0.113.9".into(),
                            ttl: 300,
                        }]
                    } else {
                        vec![]
                    },
                    error: None,
                    id: Some(id),
                }),
            )
        };
        let named = |n: &mut Names| {
            let mut c = ev(
                "2026-11-26T12:00:01Z",
                Kind::Net(Net {
                    op: NetOp::Connect,
                    family: crate::event::Family::Inet,
                    proto: Proto::Tcp,
                    addr: "203.0.113.9".into(),
                    port: 443,
                    mapped: false,
                    name: None,
                    error: None,
                }),
            );
            n.observe(&mut c);
            match c.kind {
                Kind::Net(x) => x.name,
                _ => None,
            }
        };
        // Unasked: the tree delivered it to itself.
        let mut a = dns(true, 7, "api.example.com");
        n.observe(&mut a);
        assert!(
            matches!(&a.kind, Kind::Dns(d) if d.error.as_deref().is_some_and(|e| e.contains("answers no query")))
        );
        assert_eq!(named(&mut n), None);
        // Asked for another name, or with another id: nothing either.
        n.observe(&mut dns(false, 8, "other.example.com"));
        n.observe(&mut dns(true, 8, "api.example.com"));
        n.observe(&mut dns(false, 9, "api.example.com"));
        n.observe(&mut dns(true, 10, "api.example.com"));
        assert_eq!(named(&mut n), None);
        // The answer to the query: names the address; a second copy of it does not count.
        n.observe(&mut dns(true, 9, "api.example.com"));
        assert_eq!(named(&mut n).as_deref(), Some("api.example.com"));
        let mut again = dns(true, 9, "api.example.com");
        n.observe(&mut again);
        assert!(matches!(&again.kind, Kind::Dns(d) if d.error.is_some()));
    }
}
