//! Volumes the kernel counted (io.bpf.c), learned per run: bytes read from the files a
//! [[file]] entry covers, bytes sent to and received from a [[net]] destination. A run
//! beyond the learned range by a robust margin is a finding (diff's `file-volume`,
//! `net-volume`); HTTP endpoints have their own (profile::http::volume_limit).

/// Margins over twice the largest run: a destination's natural variation (a longer
/// conversation, TLS records, retries) and a file class's (a cache rebuilt, a log that
/// grew) are never findings; pulling a table, an archive or a source tree is.
pub const NET_MARGIN: u64 = 16 << 10;
pub const FILE_MARGIN: u64 = 256 << 10;

/// How far a run may go: twice the largest of the baseline's runs plus `margin`. None for
/// no runs (a hand-written entry: no volume is learned for it).
pub fn limit(runs: &[u64], margin: u64) -> Option<u64> {
    let max = *runs.iter().max()?;
    Some(max.saturating_mul(2).saturating_add(margin))
}

/// A run profile's volume: its runs' bytes summed (saturating).
pub fn total(runs: &[u64]) -> u64 {
    runs.iter().fold(0u64, |a, b| a.saturating_add(*b))
}

/// Per run of `seen`, what `of` gives it; empty when every run moved nothing (the field is
/// then left out of the profile).
pub fn per_run(seen: &[u32], of: impl Fn(u32) -> u64) -> Vec<u64> {
    let v: Vec<u64> = seen.iter().map(|r| of(*r)).collect();
    if v.iter().all(|n| *n == 0) {
        Vec::new()
    } else {
        v
    }
}

/// Volume fields are evidence: learned entries only, one value per run of `seen` (or
/// absent: nothing moved).
pub fn check(learned: bool, seen: &[u32], fields: &[(&str, &Vec<u64>)]) -> Result<(), String> {
    for (name, v) in fields {
        if v.is_empty() {
            continue;
        }
        if !learned {
            return Err(format!("field `{name}` is evidence of learned entries"));
        }
        if v.len() != seen.len() {
            return Err(format!(
                "field `{name}` must give one volume per run of `seen` ({} runs), or be left out",
                seen.len()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_fields() {
        assert_eq!(limit(&[], NET_MARGIN), None);
        assert_eq!(limit(&[10, 30, 20], 100), Some(160));
        assert_eq!(limit(&[u64::MAX], 1), Some(u64::MAX));
        assert_eq!(per_run(&[0, 2], |_| 0), Vec::<u64>::new());
        assert_eq!(per_run(&[0, 2], |r| u64::from(r) * 5), vec![0, 10]);
        assert!(check(true, &[0, 1], &[("read", &vec![1, 2])]).is_ok());
        assert!(check(true, &[0, 1], &[("read", &vec![])]).is_ok());
        let e = check(true, &[0, 1], &[("read", &vec![1])]).unwrap_err();
        assert!(e.contains("field `read`") && e.contains("2 runs"), "{e}");
        let e = check(false, &[], &[("sent", &vec![1])]).unwrap_err();
        assert!(e.contains("learned"), "{e}");
    }
}
