//! HTTP endpoints as a profile names them: a service (`host:port`), a method and a path
//! template, and the bytes an endpoint moves in a run.
//!
//! Paths generalise by shape, as file names do: a segment that looks like an id (digits, a
//! uuid, a long hex or random run) becomes `{id}`, whatever the number of runs, so
//! `/api/tickets/104` and `/api/tickets/666` are one endpoint, `/api/tickets/{id}`. Any
//! other segment stays literal: `/api/customers` is never covered by `/api/tickets`, and a
//! new name is a new endpoint. A template is the same function of every path it covers,
//! so matching is equality of templates.
use super::HttpEntry;

/// The placeholder a segment that looks like an id becomes.
pub const ID: &str = "{id}";

/// The service a request went to: its Host header, lower case, with the port the header
/// names or the scheme's default. Always a valid `service` (check): a missing host is
/// `-`, a port that is none (0, too large) is replaced by the default, and what is not
/// printable ASCII is percent-encoded, as the client chose it.
pub fn service(host: &str, tls: bool) -> String {
    let host = encode(&host.trim().to_ascii_lowercase());
    let default = if tls { 443 } else { 80 };
    let (name, port) = match host.rsplit_once(':') {
        // "[::1]" alone has colons but no port.
        Some((h, p)) if !h.contains(':') || h.ends_with(']') => match p.parse::<u16>() {
            Ok(port) if port > 0 => (h, port),
            _ => (h, default),
        },
        _ => (host.as_str(), default),
    };
    let name = if name.is_empty() { "-" } else { name };
    format!("{name}:{port}")
}

/// Percent-encodes what is not printable ASCII, and braces (a placeholder's): names a
/// profile holds stay the same through `paths::printable`, and never spell `{id}`.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_graphic() && b != b'{' && b != b'}' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A method as a profile holds it: upper case, encoded as names are.
pub fn method(m: &str) -> String {
    let m = encode(&m.to_ascii_uppercase());
    if m.is_empty() {
        "-".into()
    } else {
        m
    }
}

/// Methods that read: everything else (POST, PUT, PATCH, DELETE, and any method the
/// baseline does not know) can change or carry data out.
pub fn is_write(method: &str) -> bool {
    !matches!(method, "GET" | "HEAD" | "OPTIONS")
}

/// The template of a request target: the query and fragment dropped, id-like segments
/// `{id}`, and the braces of any other segment percent-encoded, so that a path the tree
/// chose can never spell a placeholder.
pub fn template(target: &str) -> String {
    let path = target.split(['?', '#']).next().unwrap_or_default();
    let segs: Vec<String> = path
        .split('/')
        .map(|seg| {
            if looks_like_id(seg) {
                ID.to_string()
            } else {
                encode(seg)
            }
        })
        .collect();
    let t = segs.join("/");
    if t.starts_with('/') {
        t
    } else {
        // An absolute-form or odd target: kept as given (encoded), never matching a path.
        format!("/{t}")
    }
}

fn looks_like_id(seg: &str) -> bool {
    let b = seg.as_bytes();
    if b.is_empty() {
        return false;
    }
    let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
    let is_uuid = seg.len() == 36
        && seg.split('-').map(str::len).eq([8, 4, 4, 4, 12])
        && b.iter().all(|c| c.is_ascii_hexdigit() || *c == b'-');
    let hexy = b.len() >= 8 && b.iter().all(u8::is_ascii_hexdigit) && digits >= 2;
    // Random tokens: long, mixed letters and digits, no separators words would have.
    let token = b.len() >= 16
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
        && digits >= 3
        && b.iter().any(u8::is_ascii_alphabetic);
    digits == b.len() || is_uuid || hexy || token
}

/// How far a run's volume may go beyond the largest run of the baseline before it is a
/// finding: twice the largest, plus 4 KiB so that a small endpoint's natural variation
/// (a longer id, another header) is never one. The largest, not a mean: the baseline's
/// runs are all normal by definition, and a false alarm costs the gate its credibility.
pub fn volume_limit(runs: &[u64]) -> Option<u64> {
    let max = *runs.iter().max()?;
    Some(max.saturating_mul(2).saturating_add(4096))
}

/// A volume as people read it.
pub fn bytes(n: u64) -> String {
    match n {
        0..=9_999 => format!("{n} B"),
        10_000..=9_999_999 => format!("{:.1} KiB", n as f64 / 1024.0),
        _ => format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0)),
    }
}

/// The template a hand-written path was meant to be: its placeholders kept.
fn suggest(path: &str) -> String {
    let segs: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(|seg| match seg {
            ID => ID.to_string(),
            _ => template(&format!("/{seg}"))[1..].to_string(),
        })
        .collect();
    format!("/{}", segs.join("/"))
}

/// What Profile::validate checks of an entry beyond what every section shares.
pub fn check(e: &HttpEntry) -> Result<(), String> {
    let port_ok = e
        .service
        .rsplit_once(':')
        .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
    if !port_ok {
        return Err(format!(
            "field `service` must be host:port, not {:?}",
            e.service
        ));
    }
    if e.method.is_empty() || method(&e.method) != e.method {
        return Err(format!(
            "field `method` must be an upper-case HTTP method, not {:?}",
            e.method
        ));
    }
    if !e.path.starts_with('/') {
        return Err(format!("field `path` must start with /, not {:?}", e.path));
    }
    if e.path.contains(['?', '#']) {
        return Err(format!(
            "field `path` is matched without its query: remove it from {:?}",
            e.path
        ));
    }
    // Each segment a placeholder or what `template` makes of it.
    let is_template = e
        .path
        .split('/')
        .all(|seg| seg == ID || template(&format!("/{seg}")) == format!("/{seg}"));
    if !is_template {
        return Err(format!(
            "field `path` must be a path template (ids written {ID}, other braces and non-ASCII percent-encoded), not {:?}: {:?} would cover the same requests",
            e.path,
            suggest(&e.path)
        ));
    }
    if !e.learned && (!e.sent.is_empty() || !e.received.is_empty()) {
        return Err("fields `sent` and `received` are evidence of learned entries".into());
    }
    if e.learned && (e.sent.len() != e.seen.len() || e.received.len() != e.seen.len()) {
        return Err(format!(
            "fields `sent` and `received` must give one volume per run of `seen` ({} runs)",
            e.seen.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_generalise_ids_and_keep_names() {
        assert_eq!(template("/api/tickets/104"), "/api/tickets/{id}");
        assert_eq!(
            template("/api/tickets/104?fields=a&key=x"),
            "/api/tickets/{id}"
        );
        assert_eq!(
            template("/v1/objects/3f2a9c1e-0b1d-4c2e-9f00-1234567890ab/parts/7"),
            "/v1/objects/{id}/parts/{id}"
        );
        assert_eq!(template("/blobs/deadbeef1234"), "/blobs/{id}");
        assert_eq!(template("/s/AbC9dE3fGh7iJkLm"), "/s/{id}");
        assert_eq!(template("/api/customers"), "/api/customers");
        assert_eq!(template("/api/kb/refunds"), "/api/kb/refunds");
        // Words with a digit or two stay names; short hex words are names.
        assert_eq!(template("/v2/status"), "/v2/status");
        assert_eq!(template("/cafe/beef"), "/cafe/beef");
        assert_eq!(template("/"), "/");
    }

    #[test]
    fn a_path_cannot_spell_a_placeholder() {
        // The tree chooses its paths: a literal `{id}` is not the placeholder.
        assert_eq!(template("/api/{id}"), "/api/%7Bid%7D");
        assert_ne!(template("/api/{id}"), template("/api/7"));
        assert_eq!(template("http://evil/x"), "/http://evil/x");
    }

    #[test]
    fn services_carry_their_port() {
        assert_eq!(service("API.example.com", true), "api.example.com:443");
        assert_eq!(service("127.0.0.1:18080", false), "127.0.0.1:18080");
        assert_eq!(service("[::1]", false), "[::1]:80");
        assert_eq!(service("[::1]:8080", true), "[::1]:8080");
        // Whatever the client sends, the service is one a profile can hold.
        assert_eq!(service("", false), "-:80");
        assert_eq!(service("x:0", true), "x:443");
        assert_eq!(service("x:70000", false), "x:80");
        assert_eq!(service("b\u{202e}ad host", false), "b%E2%80%AEad%20host:80");
        assert_eq!(method("m-search"), "M-SEARCH");
    }

    #[test]
    fn entries_hold_templates() {
        let mut e = HttpEntry {
            service: "api:80".into(),
            method: "POST".into(),
            path: "/api/tickets/{id}/comments".into(),
            learned: false,
            seen: vec![],
            count: 0,
            sent: vec![],
            received: vec![],
            switches: false,
            allowed: None,
        };
        assert_eq!(check(&e), Ok(()));
        for (path, why) in [
            ("/api/tickets/7", "/api/tickets/{id}"),
            ("/api/x?y=1", "without its query"),
            ("api/x", "must start with /"),
            ("/api/{name}", "/api/%7Bname%7D"),
        ] {
            e.path = path.into();
            let err = check(&e).unwrap_err();
            assert!(err.contains(why), "{path}: {err}");
        }
        // Whatever a request was, the entry learned from it is valid.
        for (host, m, target) in [
            ("", "get", "/a/\u{202e}{id}/\x01?q"),
            ("h:0", "M-SEARCH", "*"),
            ("[::1", "POST", "//x//{}"),
            ("h\u{85}", "\u{7f}", "http://x/y"),
        ] {
            let learned = HttpEntry {
                service: service(host, false),
                method: method(m),
                path: template(target),
                ..e.clone()
            };
            assert_eq!(check(&learned), Ok(()), "{learned:?}");
            let shown = crate::paths::printable(&learned.path);
            assert_eq!(shown, learned.path.as_str(), "printable changes nothing");
        }
        e.path = "/x".into();
        e.service = "api".into();
        assert!(check(&e).unwrap_err().contains("host:port"));
        e.service = "api:80".into();
        e.sent = vec![1];
        assert!(check(&e).unwrap_err().contains("learned"));
    }

    #[test]
    fn volume_limits_leave_room_for_variation() {
        assert_eq!(volume_limit(&[]), None);
        assert_eq!(volume_limit(&[100, 300, 200]), Some(4696));
        assert_eq!(volume_limit(&[u64::MAX]), Some(u64::MAX));
        assert!(is_write("POST") && is_write("BREW") && !is_write("GET"));
    }
}
