//! Merging: the union of the inputs' evidence, learned once. Order-independent:
//! merge(a,b) == merge(b,a), merge(merge(a,b),c) == merge(a,merge(b,c)), merge(a,a) == a.
//! Runs are identified by their id: inputs with disjoint runs add up; when one input's runs
//! are a subset of what came before, or a superset of it, the shared runs are counted once
//! (the larger count is kept); inputs that share some runs but not all are refused, since
//! their counts cannot be told apart.
use std::collections::BTreeSet;

use anyhow::{bail, Result};

use super::learn::Evidence;
use super::{Profile, RunInfo};

/// Merges profiles; the names say where each came from, for errors.
pub fn merge(inputs: &[(Profile, String)]) -> Result<Profile> {
    if inputs.is_empty() {
        bail!("nothing to merge");
    }
    // Pass 1: the union of runs, and for each input whether its counts add to what came
    // before (disjoint runs) or repeat some of it.
    let mut ids: BTreeSet<String> = BTreeSet::new();
    let mut names: Vec<&str> = Vec::new();
    let mut runs: Vec<RunInfo> = Vec::new();
    let mut adds: Vec<bool> = Vec::new();
    for (p, name) in inputs {
        let mine: BTreeSet<String> = p.run_info.iter().map(|r| r.id.clone()).collect();
        let shared: Vec<&String> = mine.intersection(&ids).collect();
        if !shared.is_empty() && !mine.is_subset(&ids) && !ids.is_subset(&mine) {
            let r = p
                .run_info
                .iter()
                .find(|r| &r.id == shared[0])
                .expect("a shared run is in p");
            bail!(
                "{name} and {} share {} of their runs (one is run {}: `{}`, {}) but not all: merge each run once, from the profiles it was first recorded in",
                names.join(" + "),
                shared.len(),
                r.id,
                r.command,
                r.started
            );
        }
        adds.push(shared.is_empty());
        runs.extend(p.run_info.iter().filter(|r| !ids.contains(&r.id)).cloned());
        ids.extend(mine);
        names.push(name);
    }
    runs.sort_by(|x, y| (&x.started, &x.id).cmp(&(&y.started, &y.id)));
    // Pass 2: every input's evidence, its run indices mapped into the union.
    let mut ev = Evidence::default();
    let mut hand = Profile::empty();
    for ((p, _), add) in inputs.iter().zip(adds) {
        let map: Vec<u32> = p
            .run_info
            .iter()
            .map(|r| {
                runs.iter()
                    .position(|x| x.id == r.id)
                    .expect("every run is in the union") as u32
            })
            .collect();
        let e = Evidence::from_profile(p);
        ev.absorb(&e, &map, add);
        if let Some(h) = e.hand {
            hand.include.extend(h.include);
            hand.exec.extend(h.exec);
            hand.file.extend(h.file);
            hand.net.extend(h.net);
            hand.dns.extend(h.dns);
            hand.flag.extend(h.flag);
            hand.tool.extend(h.tool);
            hand.llm.extend(h.llm);
            hand.http.extend(h.http);
        }
    }
    ev.runs = runs;
    ev.hand = Some(Box::new(hand));
    Ok(ev.into_profile())
}
