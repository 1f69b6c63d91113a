//! Merging: the union of the inputs' evidence, learned again. Order-independent:
//! merge(a,b) == merge(b,a), merge(merge(a,b),c) == merge(a,merge(b,c)), merge(a,a) == a.
//! Runs are identified by their id: inputs with disjoint runs add up; when one input's runs
//! are a subset of the other's, the same runs are counted once; inputs that share some runs
//! but not all are refused, since their counts cannot be told apart.
use std::collections::BTreeSet;

use anyhow::{bail, Result};

use super::learn::Evidence;
use super::{Profile, RunInfo};

/// Merges profiles; `names` say where each came from, for errors.
pub fn merge(inputs: &[(Profile, String)]) -> Result<Profile> {
    let Some((first, _)) = inputs.first() else {
        bail!("nothing to merge")
    };
    let mut acc = relearn(first);
    let mut acc_name = inputs[0].1.clone();
    for (p, name) in &inputs[1..] {
        acc = merge2(&acc, &acc_name, p, name)?;
        acc_name = format!("{acc_name} + {name}");
    }
    Ok(acc)
}

/// A profile learned again from its own evidence: what merging it with nothing gives.
pub fn relearn(p: &Profile) -> Profile {
    Evidence::from_profile(p).into_profile()
}

fn merge2(a: &Profile, a_name: &str, b: &Profile, b_name: &str) -> Result<Profile> {
    let ids = |p: &Profile| {
        p.run_info
            .iter()
            .map(|r| r.id.clone())
            .collect::<BTreeSet<_>>()
    };
    let (ia, ib) = (ids(a), ids(b));
    let shared: Vec<&String> = ia.intersection(&ib).collect();
    if !shared.is_empty() && !ia.is_subset(&ib) && !ib.is_subset(&ia) {
        let r = a
            .run_info
            .iter()
            .find(|r| &r.id == shared[0])
            .expect("a shared run is in a");
        bail!(
            "{a_name} and {b_name} share {} of their runs (one is run {}: `{}`, {}) but not all: merge each run once, from the profiles it was first recorded in",
            shared.len(),
            r.id,
            r.command,
            r.started
        );
    }
    let mut runs: Vec<RunInfo> = a.run_info.clone();
    runs.extend(b.run_info.iter().filter(|r| !ia.contains(&r.id)).cloned());
    runs.sort_by(|x, y| (&x.started, &x.id).cmp(&(&y.started, &y.id)));
    let index = |p: &Profile| -> Vec<u32> {
        p.run_info
            .iter()
            .map(|r| {
                runs.iter()
                    .position(|x| x.id == r.id)
                    .expect("every run is in the union") as u32
            })
            .collect()
    };
    let (ea, eb) = (Evidence::from_profile(a), Evidence::from_profile(b));
    let mut ev = Evidence::default();
    ev.absorb(&ea, &index(a), true);
    ev.absorb(&eb, &index(b), shared.is_empty());
    ev.runs = runs;
    let mut hand = ea.hand.map(|h| *h).unwrap_or_else(Profile::empty);
    if let Some(hb) = eb.hand {
        hand.include.extend(hb.include.iter().cloned());
        hand.exec.extend(hb.exec.iter().cloned());
        hand.file.extend(hb.file.iter().cloned());
        hand.net.extend(hb.net.iter().cloned());
        hand.dns.extend(hb.dns.iter().cloned());
        hand.flag.extend(hb.flag.iter().cloned());
    }
    ev.hand = Some(Box::new(hand));
    Ok(ev.into_profile())
}
