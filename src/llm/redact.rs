//! Secrets never leave agentguard unredacted: credentials in headers and query strings,
//! and well-known key formats anywhere in a kept body or tool-call argument.
use std::sync::LazyLock;

use regex::Regex;

pub const REDACTED: &str = "[redacted]";

/// Headers whose values are credentials.
fn secret_header(name: &str) -> bool {
    matches!(
        name,
        "authorization"
            | "proxy-authorization"
            | "cookie"
            | "set-cookie"
            | "x-api-key"
            | "api-key"
            | "x-goog-api-key"
            | "x-auth-token"
            | "openai-api-key"
            | "anthropic-api-key"
    ) || name.contains("token")
        || name.contains("secret")
        || name.ends_with("-key")
}

/// `Authorization: Bearer sk-...` -> `Authorization: Bearer [redacted]`: the scheme is
/// useful to a reviewer, the credential never.
pub fn headers(hs: &[(String, String)]) -> Vec<(String, String)> {
    hs.iter()
        .map(|(n, v)| {
            if !secret_header(n) {
                return (n.clone(), v.clone());
            }
            let v = match v.split_once(' ') {
                Some((scheme, _)) if n.ends_with("authorization") => format!("{scheme} {REDACTED}"),
                _ => REDACTED.to_string(),
            };
            (n.clone(), v)
        })
        .collect()
}

/// Query parameters that carry keys (`?key=...`, `api_key`, `token`, `sig`...).
pub fn path(p: &str) -> String {
    let Some((base, q)) = p.split_once('?') else {
        return p.to_string();
    };
    let q: Vec<String> = q
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if secret_param(k) => format!("{k}={REDACTED}"),
            _ => kv.to_string(),
        })
        .collect();
    format!("{base}?{}", q.join("&"))
}

fn secret_param(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    [
        "key",
        "token",
        "secret",
        "sig",
        "signature",
        "password",
        "auth",
    ]
    .iter()
    .any(|w| k.contains(w))
}

static SECRETS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?s)-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----",
        r"|\bsk-(?:ant-|proj-)?[A-Za-z0-9_\-]{16,}",
        r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
        r"|\bgh[pousr]_[A-Za-z0-9]{30,}",
        r"|\bxox[abposr]-[A-Za-z0-9\-]{10,}",
        r"|\bAIza[0-9A-Za-z_\-]{35}",
        r"|\beyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}",
        r"|(?i:bearer)\s+[A-Za-z0-9._~+/\-]{16,}=*",
    ))
    .expect("the secret patterns compile")
});

/// `name = value` lines whose name says secret (aws_secret_access_key = ..., password: ...).
static ASSIGNED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)\b([a-z0-9_\-]*(?:secret|password|passwd|token|api_key|apikey|access_key)[a-z0-9_\-]*)(\s*[:=]\s*"?)([^\s"\\,;]{4,})"#)
        .expect("the assignment pattern compiles")
});

/// Text with every recognised secret replaced.
pub fn text(s: &str) -> String {
    let s = SECRETS.replace_all(s, REDACTED);
    ASSIGNED
        .replace_all(&s, |c: &regex::Captures| {
            format!("{}{}{REDACTED}", &c[1], &c[2])
        })
        .into_owned()
}

/// Redacted, and at most `max` bytes (cut on a character boundary, marked).
pub fn bounded(s: &str, max: usize) -> String {
    cut(&text(s), max)
}

/// At most `max` bytes of `s` (cut on a character boundary, marked), as it is.
pub fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...[{} more bytes]", &s[..end], s.len() - end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_headers_keep_their_scheme_only() {
        let hs = vec![
            ("authorization".into(), "Bearer sk-live-abcdef".into()),
            ("x-api-key".into(), "sk-ant-123".into()),
            ("cookie".into(), "session=abc".into()),
            ("content-type".into(), "application/json".into()),
        ];
        let r = headers(&hs);
        assert_eq!(r[0].1, "Bearer [redacted]");
        assert_eq!(r[1].1, "[redacted]");
        assert_eq!(r[2].1, "[redacted]");
        assert_eq!(r[3].1, "application/json");
    }

    #[test]
    fn query_keys_and_known_formats_are_redacted() {
        assert_eq!(
            path("/v1beta/models/x:generate?key=AIzaSECRET&alt=sse"),
            "/v1beta/models/x:generate?key=[redacted]&alt=sse"
        );
        let t = text("creds: [default]\naws_access_key_id = AKIAFAKEEXAMPLE00000\naws_secret_access_key = fake/secret/for/x\nsk-proj-abcdefghijklmnopqrstuv ok");
        assert!(!t.contains("AKIAFAKE"), "{t}");
        assert!(!t.contains("fake/secret"), "{t}");
        assert!(!t.contains("sk-proj-abc"), "{t}");
        assert!(t.contains("ok"), "{t}");
        let pem = text(
            "x -----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY----- y",
        );
        assert_eq!(pem, "x [redacted] y");
    }

    #[test]
    fn bounded_cuts_on_a_character() {
        let b = bounded("ééééé", 3);
        assert!(b.starts_with('é') && b.contains("more bytes"), "{b}");
    }
}
