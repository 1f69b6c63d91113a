//! A TLS ClientHello a process sent on a plain socket (the sensor copies a socket's first
//! write when it is a handshake record): the server name and the protocols it offered.
//! What a process with no probed TLS library says when its plaintext cannot be read.
use tls_parser::{
    parse_tls_extensions, parse_tls_plaintext, TlsExtension, TlsMessage, TlsMessageHandshake,
};

#[derive(Debug, Default, PartialEq)]
pub struct Hello {
    /// The server name (SNI), when the hello carried one.
    pub server: Option<String>,
    /// ALPN protocols offered ("h2", "http/1.1").
    pub alpn: Vec<String>,
}

/// The hello in a socket's first write: None unless it is a TLS handshake record holding a
/// ClientHello. A hello longer than the write (or than the sensor copied) is still one,
/// without its names.
pub fn parse(b: &[u8]) -> Option<Hello> {
    // Record: type 22 (handshake), version 3.x, length; then handshake type 1.
    if b.len() < 6 || b[0] != 0x16 || b[1] != 0x03 || b[5] != 0x01 {
        return None;
    }
    let mut hello = Hello::default();
    let Ok((_, record)) = parse_tls_plaintext(b) else {
        return Some(hello);
    };
    for msg in &record.msg {
        let TlsMessage::Handshake(TlsMessageHandshake::ClientHello(ch)) = msg else {
            continue;
        };
        let Some(Ok((_, exts))) = ch.ext.map(parse_tls_extensions) else {
            continue;
        };
        for e in exts {
            match e {
                TlsExtension::SNI(names) => {
                    hello.server = names.iter().find(|(t, _)| t.0 == 0).map(|(_, n)| shown(n));
                }
                TlsExtension::ALPN(protos) => {
                    hello.alpn = protos.iter().take(8).map(|p| shown(p)).collect();
                }
                _ => {}
            }
        }
    }
    Some(hello)
}

/// A name from the tree's bytes as the summary may print it: control characters escaped
/// (a name must not rewrite the terminal), and short.
fn shown(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(255)]);
    crate::paths::printable(&s).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ClientHello for `server` offering h2 and http/1.1, as a client writes it.
    fn client_hello(server: &str) -> Vec<u8> {
        let mut ext = Vec::new();
        let name = server.as_bytes();
        let sni_list = [&[0u8][..], &(name.len() as u16).to_be_bytes(), name].concat();
        ext.extend([0, 0]);
        ext.extend(((sni_list.len() + 2) as u16).to_be_bytes());
        ext.extend((sni_list.len() as u16).to_be_bytes());
        ext.extend(&sni_list);
        let alpn: Vec<u8> = [&b"h2"[..], b"http/1.1"]
            .iter()
            .flat_map(|p| [&[p.len() as u8][..], p].concat())
            .collect();
        ext.extend([0, 16]);
        ext.extend(((alpn.len() + 2) as u16).to_be_bytes());
        ext.extend((alpn.len() as u16).to_be_bytes());
        ext.extend(&alpn);
        let mut body = vec![3, 3];
        body.extend([7u8; 32]); // random
        body.push(0); // session id
        body.extend([0, 2, 0x13, 0x01]); // one cipher suite
        body.extend([1, 0]); // null compression
        body.extend((ext.len() as u16).to_be_bytes());
        body.extend(ext);
        let mut hs = vec![1];
        hs.extend(&(body.len() as u32).to_be_bytes()[1..]);
        hs.extend(body);
        let mut rec = vec![0x16, 3, 1];
        rec.extend((hs.len() as u16).to_be_bytes());
        rec.extend(hs);
        rec
    }

    #[test]
    fn a_hello_gives_its_server_name_and_protocols() {
        let h = parse(&client_hello("api.openai.com")).unwrap();
        assert_eq!(h.server.as_deref(), Some("api.openai.com"));
        assert_eq!(h.alpn, ["h2", "http/1.1"]);
    }

    #[test]
    fn a_name_that_would_rewrite_the_terminal_is_escaped() {
        let h = parse(&client_hello("x\r\x1b[2K\x1b[1Aok")).unwrap();
        let s = h.server.unwrap();
        assert!(!s.contains('\x1b') && !s.contains('\r'), "{s:?}");
    }

    #[test]
    fn a_hello_cut_short_is_still_one_and_other_bytes_are_none() {
        let full = client_hello("api.anthropic.com");
        assert_eq!(parse(&full[..60]), Some(Hello::default()));
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), None);
        // A handshake record that is not a ClientHello (a ServerHello: type 2).
        let mut server = full.clone();
        server[5] = 2;
        assert_eq!(parse(&server), None);
        assert_eq!(parse(&full[..5]), None);
    }
}
