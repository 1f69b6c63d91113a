use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::util::*;

/// tests/dns/server.py on one loopback address: DNS from a table a test can rewrite, and
/// TCP listeners for the answers.
pub struct DnsServer {
    child: Child,
    pub table: PathBuf,
    pub resolv: PathBuf,
}

impl DnsServer {
    pub fn start(dir: &Path, dns: &str, table: &str, listen: &[&str]) -> DnsServer {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let table_path = dir.join("names.json");
        std::fs::write(&table_path, table).unwrap();
        let resolv = dir.join("resolv.conf");
        std::fs::write(
            &resolv,
            format!("nameserver {dns}\noptions attempts:1 timeout:2\n"),
        )
        .unwrap();
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.arg(root.join("tests/dns/server.py"))
            .args(["--dns", dns, "--ttl", "1", "--table"])
            .arg(&table_path)
            .stdout(Stdio::piped());
        for l in listen {
            cmd.args(["--listen", l]);
        }
        let mut child = cmd.spawn().expect("/usr/bin/python3 (scripts/setup.sh)");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "ready", "the DNS server did not start");
        DnsServer {
            child,
            table: table_path,
            resolv,
        }
    }

    /// A command run with this server as its resolver: its own resolv.conf, bound over
    /// /etc/resolv.conf in a private mount namespace.
    pub fn resolving(&self, names: &[&str]) -> Vec<String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        sh(&format!(
            "mount --bind {} /etc/resolv.conf && exec /usr/bin/python3 {} {}",
            self.resolv.display(),
            root.join("tests/dns/client.py").display(),
            names.join(" ")
        ))
        .into_iter()
        .fold(vec!["unshare".to_string(), "-m".to_string()], |mut v, a| {
            v.push(a);
            v
        })
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn connections_are_recorded_by_the_name_the_tree_resolved_and_diffed_by_name() {
    let d = scratch("dns-names");
    let srv = DnsServer::start(
        &d,
        "127.0.0.153",
        r#"{"api.test": "127.0.0.21", "other.test": "127.0.0.22"}"#,
        &["127.0.0.21:18090", "127.0.0.22:18090", "127.0.0.23:18090"],
    );
    let base = d.join("base");
    std::fs::create_dir_all(&base).unwrap();
    let r = record(&base, &[], &strs(&srv.resolving(&["api.test:18090"])));
    assert_eq!(r.code(), Some(0), "{}", r.stderr());
    let answer = r
        .kind("dns")
        .into_iter()
        .find(|e| e["answer"] == true)
        .expect("the answer the tree received");
    assert_eq!(answer["names"][0], "api.test");
    assert_eq!(answer["addrs"][0]["addr"], "127.0.0.21");
    let conn = r
        .kind("net")
        .into_iter()
        .find(|e| e["addr"] == "127.0.0.21")
        .expect("the connection");
    assert_eq!(conn["name"], "api.test", "{conn}");
    assert!(
        r.profile
            .contains("host = \"api.test\"\nport = 18090\naddresses = [\"127.0.0.21\"]"),
        "{}",
        r.profile
    );

    // The name moves to another address: still the baseline's host. Another name is new.
    std::fs::write(
        &srv.table,
        r#"{"api.test": "127.0.0.23", "other.test": "127.0.0.22"}"#,
    )
    .unwrap();
    let run = d.join("run");
    std::fs::create_dir_all(&run).unwrap();
    let r2 = record(
        &run,
        &[],
        &strs(&srv.resolving(&["api.test:18090", "other.test:18090"])),
    );
    assert_eq!(r2.code(), Some(0), "{}", r2.stderr());
    let out = Command::new(BIN)
        .args(["diff", "--format", "json"])
        .arg(base.join("run.toml"))
        .arg(run.join("run.jsonl"))
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let nets: Vec<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "net")
        .map(|f| {
            format!(
                "{} {}",
                f["object"].as_str().unwrap(),
                f["detail"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        nets.contains(&"other.test:18090 connect tcp 127.0.0.22".to_string()),
        "{nets:?}"
    );
    assert!(
        !nets.iter().any(|n| n.starts_with("api.test")),
        "a known name at a new address is no finding: {nets:?}"
    );
}

#[test]
fn an_answer_read_with_recvmsg_names_the_connection() {
    // The same resolution, by a client that reads the answer with recvmsg: the answer is
    // recorded and the connection is named by it.
    let d = scratch("dns-recvmsg");
    let srv = DnsServer::start(
        &d,
        "127.0.0.154",
        r#"{"api.test": "127.0.0.24"}"#,
        &["127.0.0.24:18091"],
    );
    let r = record(&d, &[], &strs(&srv.resolving(&["recvmsg:api.test:18091"])));
    assert_eq!(r.code(), Some(0), "{}", r.stderr());
    assert!(
        r.kind("dns")
            .iter()
            .any(|e| e["answer"] == true && e["addrs"][0]["addr"] == "127.0.0.24"),
        "{:?}",
        r.kind("dns")
    );
    let conn = r
        .kind("net")
        .into_iter()
        .find(|e| e["addr"] == "127.0.0.24")
        .expect("the connection");
    assert_eq!(conn["name"], "api.test", "{conn}");
}
