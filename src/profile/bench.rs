//! `agentguard bench --what profile`: merge and matcher figures, each with a ratio to a
//! baseline measured in the same process (parsing the inputs; a hash-set lookup).
use std::collections::{BTreeSet, HashSet};
use std::hint::black_box;
use std::time::Instant;

use anyhow::Result;

use super::matcher::{Matcher, Verdict};
use super::{merge, Builder, Profile, RunInfo, Vars};
use crate::event::{Access, Event, File, Kind};

/// A deterministic pseudo-random sequence (no dependency for a benchmark's inputs).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// One run's profile of `n` file entries: a stable core and a varying part.
fn synthetic(run: u32, n: usize, rng: &mut Lcg) -> Profile {
    let mut b = Builder::new(Vars::default());
    let tree = crate::tree::Tree::default();
    for i in 0..n {
        let path = if i % 2 == 0 {
            format!("/srv/app/core/m{}/f{}.py", i % 97, i)
        } else {
            format!("/srv/data/d{}/doc{}.md", i % 50, rng.next() % 20_000)
        };
        let access = if i % 7 == 0 {
            vec![Access::Read, Access::Write]
        } else {
            vec![Access::Read]
        };
        let kind = Kind::File(File::opened(&path, access));
        b.add(
            &Event {
                ts: Default::default(),
                pid: 1,
                tid: 1,
                ppid: 0,
                exe: String::new(),
                kind,
                cause: None,
            },
            &tree,
        );
    }
    b.finish(RunInfo {
        id: format!("bench-{run}"),
        command: "bench".into(),
        started: format!("2026-11-26T12:{:02}:{:02}Z", run / 60, run % 60),
        seconds: 1.0,
        exit: Some(0),
        lost_events: 0,
        procs_untracked: 0,
        running: 0,
        decode_errors: 0,
        cwd: None,
        home: None,
        llm_calls: None,
        tls_unread: Vec::new(),
    })
}

/// The figures; `json`: printed as one JSON object at the end instead of text lines.
pub fn run(scale: f64, json: bool) -> Result<i32> {
    let n_profiles = ((50.0 * scale).max(2.0)) as usize;
    let n_entries = ((5000.0 * scale).max(10.0)) as usize;
    let mut rng = Lcg(42);
    let inputs: Vec<(Profile, String)> = (0..n_profiles)
        .map(|i| (synthetic(i as u32, n_entries, &mut rng), format!("p{i}")))
        .collect();
    let texts: Vec<String> = inputs
        .iter()
        .map(|(p, _)| p.to_toml())
        .collect::<Result<_>>()?;

    let t = Instant::now();
    for t in &texts {
        black_box(Profile::parse(t, std::path::Path::new("bench.toml"))?);
    }
    let parse = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let merged = merge::merge(&inputs)?;
    let merge_s = t.elapsed().as_secs_f64();
    let say = |line: String| {
        if !json {
            println!("{line}");
        }
    };
    say("agentguard bench --what profile".into());
    say(format!(
        "merge {n_profiles} profiles of {n_entries} entries: {:.3} s ({} entries out; parsing the same inputs: {:.3} s, ratio {:.2}x); target < 1 s",
        merge_s,
        merged.file.len(),
        parse,
        merge_s / parse
    ));

    // A 5,000-rule profile: literals and patterns, hand-written.
    let mut rules = String::from("version = 1\n");
    for i in 0..n_entries {
        let path = match i % 5 {
            0 => format!("/srv/data/d{i}/**"),
            1 => format!("/usr/lib/python3.{}/m{i}/*.py", i % 13),
            _ => format!("/srv/app/core/m{}/f{i}.py", i % 97),
        };
        rules.push_str(&format!(
            "[[file]]\npath = \"{path}\"\naccess = [\"read\"]\n"
        ));
    }
    let profile = Profile::parse(&rules, std::path::Path::new("rules.toml"))?;
    let m = Matcher::new(&profile, &Vars::default())?;
    let queries: Vec<String> = (0..1_000_000u64)
        .map(|i| match rng.next() % 4 {
            0 => format!(
                "/srv/app/core/m{}/f{}.py",
                i % 97,
                rng.next() % (n_entries as u64)
            ),
            1 => format!(
                "/srv/data/d{}/x/y{}.md",
                (rng.next() % (n_entries as u64)),
                i
            ),
            2 => format!(
                "/usr/lib/python3.{}/m{}/mod{i}.py",
                i % 13,
                rng.next() % (n_entries as u64)
            ),
            _ => format!("/home/u/unknown/{i}"),
        })
        .collect();
    let read = BTreeSet::from([Access::Read]);
    let t = Instant::now();
    let mut covered = 0u64;
    for q in &queries {
        if m.file(q, &read) == Verdict::Covered {
            covered += 1;
        }
    }
    let match_s = t.elapsed().as_secs_f64();
    let set: HashSet<&str> = queries.iter().step_by(2).map(String::as_str).collect();
    let t = Instant::now();
    let mut hits = 0u64;
    for q in &queries {
        hits += u64::from(set.contains(q.as_str()));
    }
    black_box(hits);
    let hash_s = t.elapsed().as_secs_f64();
    say(format!(
        "match {} paths against {n_entries} rules: {:.0} matches/s ({covered} covered; a hash-set lookup of the same paths: {:.0}/s, ratio {:.1}x); target > 1,000,000/s",
        queries.len(),
        queries.len() as f64 / match_s,
        queries.len() as f64 / hash_s,
        match_s / hash_s
    ));
    if json {
        let v = serde_json::json!({
            "version": 1,
            "what": "profile",
            "merge": {
                "profiles": n_profiles,
                "entries": n_entries,
                "seconds": merge_s,
                "parse_seconds": parse,
                "ratio_to_parse": merge_s / parse,
                "target_seconds": 1.0,
            },
            "match": {
                "paths": queries.len(),
                "rules": n_entries,
                "covered": covered,
                "per_second": queries.len() as f64 / match_s,
                "hash_set_per_second": queries.len() as f64 / hash_s,
                "ratio_to_hash_set": match_s / hash_s,
                "target_per_second": 1_000_000,
            },
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    }
    Ok(0)
}
