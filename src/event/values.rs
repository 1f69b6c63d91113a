//! The scalar values of an event that the log writes as text: when it happened, why a
//! call failed, a socket's address family. Each is written by its Display and read back
//! through FromStr, whose error says what was wrong.
use serde::{Deserialize, Serialize};

/// Serialised as its Display text, read back through FromStr.
macro_rules! serde_as_text {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$t, D::Error> {
                String::deserialize(d)?
                    .parse()
                    .map_err(serde::de::Error::custom)
            }
        }
    };
}

/// When an event happened: wall-clock time, written RFC 3339 with nanoseconds, read once
/// when a log is read (an unreadable one is an error with its line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(std::time::SystemTime);

impl Default for Timestamp {
    fn default() -> Timestamp {
        Timestamp(std::time::UNIX_EPOCH)
    }
}

impl Timestamp {
    pub fn new(t: std::time::SystemTime) -> Timestamp {
        Timestamp(t)
    }

    pub fn time(self) -> std::time::SystemTime {
        self.0
    }

    /// Seconds since the epoch (0 for a time before it).
    pub fn secs_f64(self) -> f64 {
        self.0
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    }
}

impl std::str::FromStr for Timestamp {
    type Err = String;
    fn from_str(s: &str) -> Result<Timestamp, String> {
        humantime::parse_rfc3339(s)
            .map(Timestamp)
            .map_err(|e| format!("ts {s:?} is not an RFC 3339 time: {e}"))
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{}", humantime::format_rfc3339_nanos(self.0))
    }
}

/// Why a call failed: its errno, which the event log names as the kernel's headers do
/// (`EACCES`); a number Linux gives no name is written `errno N`, so none is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(i32);

impl Errno {
    pub const EACCES: Errno = Errno(libc::EACCES);
    pub const EPERM: Errno = Errno(libc::EPERM);
    pub const EINPROGRESS: Errno = Errno(libc::EINPROGRESS);
    #[cfg(test)]
    pub const ENOENT: Errno = Errno(libc::ENOENT);
    #[cfg(test)]
    pub const ECONNREFUSED: Errno = Errno(libc::ECONNREFUSED);

    /// The error a syscall's return value carries, if it failed.
    pub fn from_ret(ret: i32) -> Option<Errno> {
        (ret < 0).then(|| Errno(ret.saturating_neg()))
    }

    /// Refused by a policy (enforce's, Landlock's or the host's own).
    pub fn is_denial(self) -> bool {
        self == Errno::EPERM || self == Errno::EACCES
    }

    fn known(self) -> Option<nix::errno::Errno> {
        Some(nix::errno::Errno::from_raw(self.0)).filter(|e| *e != nix::errno::Errno::UnknownErrno)
    }

    fn by_name(name: &str) -> Option<Errno> {
        use std::collections::HashMap;
        use std::sync::OnceLock;
        static NAMES: OnceLock<HashMap<String, Errno>> = OnceLock::new();
        if let Some(n) = name.strip_prefix("errno ") {
            // One spelling per number: no sign, no leading zeros.
            return n
                .parse::<i32>()
                .ok()
                .filter(|v| *v > 0 && v.to_string() == n)
                .map(Errno)
                .filter(|e| e.known().is_none());
        }
        // Linux's errnos run to 133 (EHWPOISON).
        let names = NAMES.get_or_init(|| {
            (1..256)
                .map(Errno)
                .filter_map(|e| e.known().map(|k| (format!("{k:?}"), e)))
                .collect()
        });
        names.get(name).copied()
    }
}

impl std::str::FromStr for Errno {
    type Err = String;
    fn from_str(s: &str) -> Result<Errno, String> {
        Errno::by_name(s).ok_or_else(|| format!("unknown errno name {s:?}"))
    }
}

impl std::fmt::Display for Errno {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self.known() {
            Some(k) => write!(f, "{k:?}"),
            None => write!(f, "errno {}", self.0),
        }
    }
}

/// A socket address's family, as the event log names it: `inet`, `inet6`, `unix`,
/// `unspec` (AF_UNSPEC, a UDP disconnect), or any other family by its AF_ number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    Unspec,
    Unix,
    Inet,
    Inet6,
    Other(u16),
}

impl Family {
    pub fn from_af(af: u16) -> Family {
        match i32::from(af) {
            libc::AF_UNSPEC => Family::Unspec,
            libc::AF_UNIX => Family::Unix,
            libc::AF_INET => Family::Inet,
            libc::AF_INET6 => Family::Inet6,
            _ => Family::Other(af),
        }
    }

    pub fn is_ip(self) -> bool {
        matches!(self, Family::Inet | Family::Inet6)
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Family::Unspec => f.write_str("unspec"),
            Family::Unix => f.write_str("unix"),
            Family::Inet => f.write_str("inet"),
            Family::Inet6 => f.write_str("inet6"),
            Family::Other(n) => write!(f, "{n}"),
        }
    }
}

impl std::str::FromStr for Family {
    type Err = String;
    fn from_str(s: &str) -> Result<Family, String> {
        Ok(match s {
            "unspec" => Family::Unspec,
            "unix" => Family::Unix,
            "inet" => Family::Inet,
            "inet6" => Family::Inet6,
            // Other families by number, in one spelling: a known family goes by its name.
            n => match n.parse::<u16>() {
                Ok(af) if af.to_string() == n && matches!(Family::from_af(af), Family::Other(_)) => {
                    Family::Other(af)
                }
                _ => {
                    return Err(format!(
                        "unknown address family {n:?} (inet, inet6, unix, unspec or another family's AF_ number)"
                    ))
                }
            },
        })
    }
}

serde_as_text!(Timestamp);
serde_as_text!(Errno);
serde_as_text!(Family);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_written_with_nanoseconds_and_read_once() {
        let t: Timestamp = "2026-11-26T12:00:00.123456789Z".parse().unwrap();
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, "\"2026-11-26T12:00:00.123456789Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), t);
        // Whole seconds read too (hand-written logs), and compare by time.
        let whole: Timestamp = serde_json::from_str("\"2026-11-26T12:00:00Z\"").unwrap();
        assert!(whole < t);
        assert_eq!(t.secs_f64().floor(), whole.secs_f64());
        let e = serde_json::from_str::<Timestamp>("\"yesterday\"").unwrap_err();
        assert!(e.to_string().contains("not an RFC 3339 time"), "{e}");
    }

    #[test]
    fn errnos_read_back_by_name() {
        for e in [
            Errno::EACCES,
            Errno::EPERM,
            Errno::ENOENT,
            Errno::from_ret(-133).unwrap(),
        ] {
            let json = serde_json::to_string(&e).unwrap();
            assert_eq!(serde_json::from_str::<Errno>(&json).unwrap(), e, "{json}");
        }
        assert_eq!(serde_json::to_string(&Errno::EACCES).unwrap(), "\"EACCES\"");
        // A number without a name keeps its number; nix's placeholder name is no errno.
        let odd = Errno::from_ret(-4000).unwrap();
        assert_eq!(serde_json::to_string(&odd).unwrap(), "\"errno 4000\"");
        assert_eq!(
            serde_json::from_str::<Errno>("\"errno 4000\"").unwrap(),
            odd
        );
        for bad in [
            "UnknownErrno",
            "errno 13",
            "errno -1",
            "errno +7",
            "errno x",
        ] {
            let json = format!("\"{bad}\"");
            assert!(serde_json::from_str::<Errno>(&json).is_err(), "{bad}");
        }
        assert_eq!(Errno::from_ret(0), None);
        assert!(serde_json::from_str::<Errno>("\"EWHATEVER\"").is_err());
    }

    #[test]
    fn address_families_keep_their_names_and_numbers() {
        for (f, json) in [
            (Family::Inet, "\"inet\""),
            (Family::Inet6, "\"inet6\""),
            (Family::Unix, "\"unix\""),
            (Family::Unspec, "\"unspec\""),
            (Family::Other(17), "\"17\""),
        ] {
            assert_eq!(serde_json::to_string(&f).unwrap(), json);
            assert_eq!(serde_json::from_str::<Family>(json).unwrap(), f);
        }
        // A known family goes by its name only, a number in one spelling.
        for bad in ["10", "0", "+17", "017"] {
            assert!(
                serde_json::from_str::<Family>(&format!("\"{bad}\"")).is_err(),
                "{bad}"
            );
        }
        let e = serde_json::from_str::<Family>("\"ipx\"").unwrap_err();
        assert!(
            e.to_string().contains("unknown address family \"ipx\""),
            "{e}"
        );
    }
}
