use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;

use crate::util::*;

/// A peer outside the tree: takes everything a connection sends, answers `REPLY` bytes and
/// closes, for as long as the test runs.
const REPLY: usize = 500;

fn peer() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            let mut sink = Vec::new();
            let _ = c.read_to_end(&mut sink);
            let _ = c.write_all(&[b'r'; REPLY]);
        }
    });
    port
}

/// Reads `table` `reads` times over, sends `send` bytes to the peer, reads its answer.
fn client(table: &std::path::Path, reads: u32, port: u16, send: usize) -> Vec<String> {
    let script = format!(
        r#"
import socket, sys
for _ in range({reads}):
    with open({table:?}, "rb") as f:
        while f.read(65536):
            pass
s = socket.create_connection(("127.0.0.1", {port}))
s.sendall(b"x" * {send})
s.shutdown(socket.SHUT_WR)
# Peeks leave the answer queued: counted once, when read.
s.recv(65536, socket.MSG_PEEK)
s.recvmsg(65536, 0, socket.MSG_PEEK)
got = 0
while True:
    b = s.recv(65536)
    if not b:
        break
    got += len(b)
sys.exit(0 if got == {REPLY} else 3)
"#
    );
    vec![python().to_string(), "-c".to_string(), script]
}

fn io_events<'a>(
    run: &'a Run,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> Vec<&'a serde_json::Value> {
    run.kind("io").into_iter().filter(|e| pred(e)).collect()
}

/// The bytes the kernel counted, learned from recorded runs, and a run that moves more
/// than any of them did: findings on the file class and on the destination; a run like
/// the baseline's has none.
#[test]
fn kernel_byte_counts_are_learned_per_run_and_a_run_beyond_them_is_found() {
    require_root();
    let d = scratch("volume");
    let table = d.join("data/table.csv");
    std::fs::create_dir_all(table.parent().unwrap()).unwrap();
    std::fs::write(&table, vec![b'c'; 200_000]).unwrap();
    let port = peer();

    // What the kernel reported of one run: the file's bytes and the socket's, exactly.
    let run = record(&d, &[], &strs(&client(&table, 1, port, 1000)));
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    let t = table.to_str().unwrap();
    let reads: u64 = io_events(&run, |e| e["path"] == t)
        .iter()
        .map(|e| e["read"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(reads, 200_000, "{:?}", run.kind("io"));
    let sock = io_events(&run, |e| e["proto"] == "tcp" && e["port"] == port);
    assert_eq!(sock.len(), 1, "{:?}", run.kind("io"));
    assert_eq!(sock[0]["addr"], "127.0.0.1");
    assert_eq!(sock[0]["written"], 1000);
    assert_eq!(sock[0]["read"], REPLY as u64);
    assert!(run.profile.contains("read = [200000]"), "{}", run.profile);
    assert!(
        run.profile.contains("sent = [1000]") && run.profile.contains("received = [500]"),
        "{}",
        run.profile
    );
    std::fs::rename(d.join("run.toml"), d.join("base-1.toml")).unwrap();

    // A second run, then the baseline merged from both: one volume per run.
    let out = Command::new(BIN)
        .args(["record", "-q", "-o"])
        .arg(d.join("base-2.toml"))
        .arg("--")
        .args(client(&table, 1, port, 1200))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(BIN)
        .args(["merge", "-o"])
        .arg(d.join("baseline.toml"))
        .arg(d.join("base-1.toml"))
        .arg(d.join("base-2.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let base = std::fs::read_to_string(d.join("baseline.toml")).unwrap();
    assert!(base.contains("read = [200000, 200000]"), "{base}");
    // Runs are in the order of their ids: either way, one volume each.
    assert!(
        base.contains("sent = [1000, 1200]") || base.contains("sent = [1200, 1000]"),
        "{base}"
    );
    let show = Command::new(BIN)
        .arg("show")
        .arg(d.join("baseline.toml"))
        .output()
        .unwrap();
    let show = String::from_utf8_lossy(&show.stdout);
    assert!(
        show.contains(&format!(
            "127.0.0.1:{port}   (per run at most 1200 B out, 500 B in)"
        )),
        "{show}"
    );
    assert!(show.contains("(per run at most 195.3 KiB read)"), "{show}");

    let diff = |send: usize, reads: u32| -> Vec<serde_json::Value> {
        let run = record(&d, &[], &strs(&client(&table, reads, port, send)));
        assert_eq!(run.code(), Some(0), "{}", run.stderr());
        let out = Command::new(BIN)
            .args(["diff", "--format", "json"])
            .arg(d.join("baseline.toml"))
            .arg(d.join("run.jsonl"))
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        report["findings"].as_array().unwrap().clone()
    };
    let volume = |f: &serde_json::Value| f["rule"] == "net-volume" || f["rule"] == "file-volume";

    // Like the baseline's runs: nothing about volume.
    let same = diff(1100, 1);
    assert!(!same.iter().any(volume), "{same:#?}");

    // 60 KB out (the baseline sent at most 1200 B) and the table read four times.
    let more = diff(60_000, 4);
    let net: Vec<_> = more.iter().filter(|f| f["rule"] == "net-volume").collect();
    assert_eq!(net.len(), 1, "{more:#?}");
    assert_eq!(net[0]["object"], format!("127.0.0.1:{port}"));
    assert_eq!(net[0]["severity"], "medium");
    assert!(
        net[0]["detail"].as_str().unwrap().starts_with("sent "),
        "{:?}",
        net[0]
    );
    let file: Vec<_> = more.iter().filter(|f| f["rule"] == "file-volume").collect();
    assert_eq!(file.len(), 1, "{more:#?}");
    assert!(
        file[0]["object"]
            .as_str()
            .unwrap()
            .ends_with("data/table.csv"),
        "{:?}",
        file[0]
    );
    assert!(
        file[0]["reason"].as_str().unwrap().contains("781.2 KiB"),
        "{:?}",
        file[0]
    );
}
