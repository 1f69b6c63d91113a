//! The live gate of `record --baseline --fail-on`: at the end of the run, the findings'
//! counts and the verdict. A gate never passes on missing data: what the sensor lost could
//! be the finding. `watch` shows the counts and judges nothing.
use crate::cli::FailOn;
use crate::diff::{self, complete::Gaps, rules::Severity, Checker};

/// The exit status the gate sets on a run that itself succeeded (`None`: it leaves it).
pub fn judge(
    checker: &Checker,
    fail_on: FailOn,
    gaps: &Gaps,
    watch: bool,
    quiet: bool,
) -> Option<i32> {
    let (findings, _) = checker.finish();
    let failed = diff::gate(fail_on, &findings);
    let incomplete = !gaps.whole() && !failed;
    if !quiet {
        let n = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
        let gate = if watch {
            String::new()
        } else if failed {
            "; gate --fail-on: FAILED".to_string()
        } else if incomplete {
            format!(
                "; gate --fail-on: INCOMPLETE ({} records lost, {} undecodable, {} processes untracked, {} still running: the run was not seen whole)",
                gaps.lost, gaps.undecoded, gaps.untracked, gaps.running
            )
        } else {
            "; gate --fail-on: passed".to_string()
        };
        eprintln!(
            "agentguard: {} findings against the baseline ({} critical, {} high, {} medium, {} low){gate}",
            findings.len(),
            n(Severity::Critical),
            n(Severity::High),
            n(Severity::Medium),
            n(Severity::Low),
        );
    }
    if failed {
        Some(1)
    } else if incomplete && !watch {
        Some(2)
    } else {
        None
    }
}
