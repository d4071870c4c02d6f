//! `compare --fail-if-slower PCT`: a case of a later set fails when the interval of its ratio to the first set
//! (the verdict's exact rank interval of the ratio, `stats::ratio_interval`) lies wholly below 1 - PCT: slower by more than PCT,
//! beyond the noise. A case with too few repetitions to tell is counted and named, never failed: a CI that cannot
//! tell must not cry wolf.

use super::{ResultSet, Verdict, verdict};
use crate::base::model::{CaseKey, Labeler};
use crate::results::stats::Estimate;
use serde::Serialize;

/// One case slower for sure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Slower {
    /// The later set it was measured in.
    pub set: String,
    pub case_id: String,
    /// The case in words, as the table labels it.
    pub case: String,
    /// The ratio of medians (later over first) and its interval.
    pub ratio: Estimate,
}

/// What the check found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gate {
    /// PCT as a fraction: a ratio interval wholly below 1 - this fails.
    pub threshold: f64,
    /// Cases compared with an interval.
    pub compared: usize,
    /// Cases with too few repetitions on a side to tell ("set: case").
    pub too_few: Vec<String>,
    pub slower: Vec<Slower>,
}

impl Verdict {
    /// The ratio's interval, where there is one (not with too few repetitions).
    pub fn interval(&self) -> Option<Estimate> {
        match self {
            Verdict::Differs { estimate }
            | Verdict::NotDistinguishable { estimate }
            | Verdict::Same { estimate, .. } => Some(*estimate),
            Verdict::TooFew { .. } => None,
        }
    }
}

/// Every common case of every later set against the first.
pub fn check(sets: &[ResultSet], common: &[CaseKey], threshold: f64) -> Gate {
    let labeler = Labeler::new(common);
    let (first, others) = (&sets[0], &sets[1..]);
    let mut gate = Gate {
        threshold,
        compared: 0,
        too_few: Vec::new(),
        slower: Vec::new(),
    };
    for other in others {
        for k in common {
            let (Some(base), Some(m)) = (first.cases.get(k), other.cases.get(k)) else {
                continue;
            };
            // The margin decides only the words of a verdict, not its interval.
            match verdict(&base.mb_s, &m.mb_s, crate::results::stats::DEFAULT_SAME_WITHIN).interval() {
                None => gate.too_few.push(format!("{}: {}", other.name, labeler.label(k))),
                Some(e) => {
                    gate.compared += 1;
                    if e.hi < 1.0 - threshold {
                        gate.slower.push(Slower {
                            set: other.name.clone(),
                            case_id: k.id(),
                            case: labeler.label(k),
                            ratio: e,
                        });
                    }
                }
            }
        }
    }
    gate
}

impl Gate {
    /// The verdict in words, for stderr.
    pub fn words(&self) -> String {
        let pct = self.threshold * 100.0;
        let few = match self.too_few.len() {
            0 => String::new(),
            n => format!(
                "; {n} with too few repetitions to tell, not failed: {}",
                self.too_few.join(", ")
            ),
        };
        if self.slower.is_empty() {
            return format!(
                "compare: no case slower than the first set by more than {pct:.1}% for sure ({} compared{few})",
                self.compared
            );
        }
        let named: Vec<String> = self
            .slower
            .iter()
            .map(|s| {
                format!(
                    "{}: {} {:.2}x [{:.2}–{:.2}]",
                    s.set, s.case, s.ratio.median, s.ratio.lo, s.ratio.hi
                )
            })
            .collect();
        format!(
            "compare: {} case(s) slower than the first set by more than {pct:.1}% (the ratio's interval wholly below \
             {:.2}): {} ({} compared{few})",
            self.slower.len(),
            1.0 - self.threshold,
            named.join("; "),
            self.compared
        )
    }
}
