//! Path text: lexical joining and normalising, and bytes that are not UTF-8.

/// Bytes as text; bytes that are not UTF-8 become `\xNN` so nothing is lost silently.
pub fn display_bytes(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        s.push_str(chunk.valid());
        for byte in chunk.invalid() {
            s.push_str(&format!("\\x{byte:02x}"));
        }
    }
    s
}

/// Resolves `.` and `..` lexically in an absolute path (a relative one is taken from `/`).
/// Symlinks are not followed: this is for names the kernel did not resolve for us.
pub fn normalize(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            x => out.push(x),
        }
    }
    let mut s = String::with_capacity(p.len() + 1);
    for part in &out {
        s.push('/');
        s.push_str(part);
    }
    if s.is_empty() {
        s.push('/');
    }
    s
}

/// `rel` relative to the directory `base`; an absolute `rel` stands alone.
pub fn join(base: &str, rel: &str) -> String {
    if rel.starts_with('/') {
        normalize(rel)
    } else {
        normalize(&format!("{base}/{rel}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_and_join() {
        assert_eq!(normalize("/a/./b/../c//d/"), "/a/c/d");
        assert_eq!(normalize("/.."), "/");
        assert_eq!(join("/home/u", "../v/x"), "/home/v/x");
        assert_eq!(join("/home/u", "/etc/passwd"), "/etc/passwd");
        assert_eq!(join("/", "."), "/");
    }

    #[test]
    fn non_utf8_bytes_are_escaped() {
        assert_eq!(display_bytes(b"a\xffb"), "a\\xffb");
        assert_eq!(display_bytes("é".as_bytes()), "é");
    }
}
