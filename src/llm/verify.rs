//! Probes put where no symbol said (BoringSSL linked into an executable, found by what its
//! code is): what they read is trusted once the first answer they read on a connection is
//! an HTTP response, and they are taken off when it is not, so a probe that landed on the
//! wrong function is reported instead of read silently wrong.
use std::collections::HashSet;

#[derive(Debug, Default)]
pub struct Verify {
    /// Files probed without symbols, before their first answer.
    pending: HashSet<String>,
    /// Files whose probes read something else: their payload is dropped.
    bad: HashSet<String>,
    /// Files whose probes are to be taken off (by the record loop, which holds the links).
    pub to_detach: Vec<String>,
}

#[derive(Debug, PartialEq)]
pub enum Verdict {
    Read,
    /// The first answer is HTTP: the probes on this file are trusted from now.
    Verified,
    Drop,
    /// The probes on this file read what is not HTTP: taken off from now.
    Bad,
}

impl Verify {
    pub fn probed(&mut self, path: &str) {
        self.pending.insert(path.to_string());
    }

    /// Probes on `path` have not read their first answer yet.
    pub fn pending(&self, path: &str) -> bool {
        self.pending.contains(path)
    }

    /// A TLS call's bytes in a process of `exe`: whether to read them. `first_answer` is
    /// set when they begin the first answer read on a connection that sent a request.
    pub fn check(&mut self, exe: &str, first_answer: Option<&[u8]>) -> Verdict {
        if self.bad.contains(exe) {
            return Verdict::Drop;
        }
        if !self.pending.contains(exe) {
            return Verdict::Read;
        }
        let Some(b) = first_answer else {
            return Verdict::Read;
        };
        const START: &[u8] = b"HTTP/1.";
        if b.len() < START.len() && START.starts_with(b) {
            return Verdict::Read;
        }
        self.pending.remove(exe);
        if b.starts_with(START) {
            return Verdict::Verified;
        }
        self.bad.insert(exe.to_string());
        self.to_detach.push(exe.to_string());
        Verdict::Bad
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_is_trusted_after_an_http_answer_and_taken_off_after_anything_else() {
        let mut v = Verify::default();
        v.probed("/opt/good");
        v.probed("/opt/bad");
        // Requests, and files probed by their symbols, are read as they come.
        assert_eq!(
            v.check("/usr/bin/python3", Some(b"\x00\x01")),
            Verdict::Read
        );
        assert_eq!(v.check("/opt/good", None), Verdict::Read);
        // A start too short to tell waits for the next.
        assert_eq!(v.check("/opt/good", Some(b"HT")), Verdict::Read);
        assert_eq!(
            v.check("/opt/good", Some(b"HTTP/1.1 200 OK\r\n")),
            Verdict::Verified
        );
        assert_eq!(
            v.check("/opt/good", Some(b"\x17garbage")),
            Verdict::Read,
            "trusted"
        );
        assert_eq!(
            v.check("/opt/bad", Some(b"\x17\x03\x03garbage")),
            Verdict::Bad
        );
        assert_eq!(v.to_detach, ["/opt/bad"]);
        assert_eq!(v.check("/opt/bad", None), Verdict::Drop);
    }
}
