//! Path text: lexical joining and normalising, and bytes that are not UTF-8.

/// Bytes as text; bytes that are not UTF-8 become `\xNN` so nothing is lost silently.
pub fn display_bytes(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        push_printable(&mut s, chunk.valid());
        for byte in chunk.invalid() {
            s.push_str(&format!("\\x{byte:02x}"));
        }
    }
    s
}

/// A unix socket's name: as [`display_bytes`], and a backslash written `\x5c`, so that
/// [`unescape`] gives back exactly the bytes (a name the tree chose, `\x62us`, must not
/// read back as another socket's, `bus`).
pub fn display_unix(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        for part in chunk.valid().split_inclusive('\\') {
            match part.strip_suffix('\\') {
                Some(text) => {
                    push_printable(&mut s, text);
                    s.push_str("\\x5c");
                }
                None => push_printable(&mut s, part),
            }
        }
        for byte in chunk.invalid() {
            s.push_str(&format!("\\x{byte:02x}"));
        }
    }
    s
}

/// The same, with control characters kept: for argv, which is matched against the tool
/// call that ran it (a multi-line `python -c`), and printed only through [`printable`].
pub fn argv_bytes(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        s.push_str(chunk.valid());
        for byte in chunk.invalid() {
            s.push_str(&format!("\\x{byte:02x}"));
        }
    }
    s
}

/// A name for a person, a terminal, a CI page or a profile: control characters (a
/// newline that would start a forged line, an escape sequence a terminal would obey)
/// written as `\xNN` (`\u{NNNN}` beyond ASCII), the way invalid UTF-8 is. Names the
/// tree chose pass through here before anything prints or stores them.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(hidden) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    push_printable(&mut out, s);
    std::borrow::Cow::Owned(out)
}

/// Control characters, and those that reorder or hide text (bidirectional overrides,
/// zero-width characters): a name must read as what it is.
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(c as u32, 0x200b..=0x200f | 0x202a..=0x202e | 0x2066..=0x2069 | 0xfeff)
}

fn push_printable(out: &mut String, s: &str) {
    for c in s.chars() {
        match c as u32 {
            _ if !hidden(c) => out.push(c),
            n if n < 0x80 => out.push_str(&format!("\\x{n:02x}")),
            n => out.push_str(&format!("\\u{{{n:04x}}}")),
        }
    }
}

/// The bytes a [`display_bytes`] text stands for: `\xNN` is that byte, `\u{NNNN}` that
/// character. A name's own backslash is not escaped, so this is the reading the kernel
/// side uses for names a profile holds (unix sockets), not a way to print them.
pub fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            let hex2 = |x: &&str| x.bytes().all(|c| c.is_ascii_hexdigit());
            if let Some(x) = s
                .get(i + 2..i + 4)
                .filter(|x| b.get(i + 1) == Some(&b'x') && hex2(x))
            {
                if let Ok(v) = u8::from_str_radix(x, 16) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
            if s[i + 1..].starts_with("u{") {
                if let Some(end) = s[i + 3..].find('}') {
                    let hex = &s[i + 3..i + 3 + end];
                    if let Some(c) = u32::from_str_radix(hex, 16).ok().and_then(char::from_u32) {
                        let mut buf = [0; 4];
                        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                        i += 4 + end;
                        continue;
                    }
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
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
    fn unescape_reverses_display_bytes() {
        for raw in [
            &b"plain"[..],
            b"a\x00b\x1b[31m",
            b"\xff\xfe",
            "zero\u{200b}width".as_bytes(),
            b"trailing\\",
            b"\\x4",
        ] {
            assert_eq!(unescape(&display_bytes(raw)), raw, "{raw:?}");
        }
    }

    #[test]
    fn unix_names_read_back_as_the_same_bytes() {
        for raw in [
            &b"/run/user/1000/\\x62us"[..],
            b"\\\\",
            b"a\\u{41}\x00b\xff",
            b"/tmp/.X11-unix/X0",
        ] {
            assert_eq!(unescape(&display_unix(raw)), raw, "{raw:?}");
        }
        assert_eq!(display_unix(b"/run/\\x62us"), "/run/\\x5cx62us");
    }

    #[test]
    fn non_utf8_bytes_are_escaped() {
        assert_eq!(display_bytes(b"a\xffb"), "a\\xffb");
        assert_eq!(display_bytes("é".as_bytes()), "é");
    }
}
