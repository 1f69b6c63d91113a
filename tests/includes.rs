//! Each shipped include (profiles/), enforced on a real program that needs it: with the
//! include the program runs and nothing is denied; without it, the same program is denied
//! what the include admits. Strict (--deny-at new), so nothing is admitted beyond the
//! rules; --backend auto: Landlock here, BPF LSM in the VM (tests/vm/z-integration.sh).
use std::process::{Command, Output};

use crate::util::*;

fn enforce(dir: &std::path::Path, includes: &[&str], cmd: &[&str], env: &[(&str, &str)]) -> Output {
    let profile = dir.join(format!("p-{}.toml", includes.join("-")));
    let list: Vec<String> = includes.iter().map(|i| format!("{i:?}")).collect();
    std::fs::write(
        &profile,
        format!("version = 1\ninclude = [{}]\n", list.join(", ")),
    )
    .unwrap();
    let mut c = Command::new(BIN);
    // The C locale is built into glibc: nothing read, unless a case asks for another.
    c.env("LC_ALL", "C")
        .current_dir(dir)
        .args([
            "enforce",
            "--deny-at",
            "new",
            "--backend",
            "auto",
            "--profile",
        ])
        .arg(&profile)
        .arg("--")
        .args(cmd);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// (include under test, the others the program needs, command, environment, what it
/// prints, what a denial without the include names)
type Case<'a> = (
    &'a str,
    Vec<&'a str>,
    Vec<&'a str>,
    Vec<(&'a str, &'a str)>,
    &'a str,
    &'a str,
);

#[test]
fn each_shipped_include_runs_a_real_program_that_needs_it() {
    let d = scratch("includes");
    let py = python();
    // What the include admits is reading the resolver's files; whether `localhost` then
    // resolves depends on the machine (a minimal Debian has no /etc/hosts and asks DNS,
    // which no rule here admits): either way the program ends normally.
    let resolve = "import socket\ntry:\n    socket.getaddrinfo('localhost', 80, socket.AF_INET)\nexcept socket.gaierror:\n    pass\nprint('done')";
    let tls =
        "import ssl; c = ssl.create_default_context(); print(c.cert_store_stats()['x509_ca'] > 0)";
    let cases: Vec<Case> = vec![
        (
            "coreutils",
            vec![],
            vec!["/usr/bin/echo", "hello"],
            vec![],
            "hello\n",
            "DENIED exec /usr/bin/echo",
        ),
        (
            "locale",
            vec!["coreutils"],
            vec!["/usr/bin/date", "-u", "-d", "@0", "+%A"],
            vec![("LC_ALL", "C.UTF-8")],
            "Thursday\n",
            "DENIED open /usr/lib/locale/",
        ),
        (
            "python",
            // Python reads /etc/localtime as it starts: the locale include has it.
            vec!["coreutils", "locale"],
            vec![py, "-I", "-S", "-c", "import json; print(json.dumps([1]))"],
            vec![],
            "[1]\n",
            "DENIED exec ",
        ),
        (
            "resolver",
            vec!["coreutils", "locale", "python"],
            vec![py, "-I", "-S", "-c", resolve],
            vec![],
            "done\n",
            "DENIED open /etc/",
        ),
        (
            "tls",
            vec!["coreutils", "locale", "python"],
            vec![py, "-I", "-S", "-c", tls],
            vec![],
            "True\n",
            "DENIED open /",
        ),
    ];
    for (include, others, cmd, env, stdout, denial) in cases {
        let mut with = others.clone();
        with.push(include);
        let out = enforce(&d, &with, &cmd, &env);
        let err = text(&out.stderr);
        assert_eq!(
            (out.status.code(), text(&out.stdout).as_str()),
            (Some(0), stdout),
            "{include}: {cmd:?} under include {with:?}: {err}"
        );
        // No file or program denied (a DNS query may be: no include admits a resolver).
        assert!(
            !err.contains("DENIED open")
                && !err.contains("DENIED exec")
                && !err.contains("DENIED path"),
            "{include}: {err}"
        );
        // Without it: what it admits is denied.
        let out = enforce(&d, &others, &cmd, &env);
        let err = text(&out.stderr);
        // The command itself not allowed to run: enforce says so as it starts it.
        let root =
            denial.starts_with("DENIED exec") && err.contains(&format!("cannot run `{}`", cmd[0]));
        assert!(
            err.contains(denial) || root,
            "{include}: without it, no {denial:?} in\n{err}"
        );
    }
}
