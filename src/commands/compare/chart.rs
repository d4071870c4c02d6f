//! `compare.{png,svg}`: median throughput of every common case, one bar per result set side by side, one
//! colour per set, so a kernel's gain or loss on one strategy shows at a glance; and `compare-ratio.{png,svg}`:
//! each later set's ratio to the first with its interval (`plot::ratio`), so whether it differs shows too. The
//! sets' descriptions go under the title one line each, wrapped to the picture.

use super::{ResultSet, verdict};
use crate::base::model::CaseKey;
use crate::commands::plot::ratio::{Mark, Point, RatioChart};
use crate::commands::plot::{Figure, bands, colour, legend, titled_lines};
use plotters::coord::Shift;
use plotters::prelude::*;

pub(crate) struct CompareChart {
    subtitle: Vec<String>,
    names: Vec<String>,
    labels: Vec<String>,
    /// Per case, per set, the median MB/s (None where that set lacks the case).
    medians: Vec<Vec<Option<f64>>>,
}

impl CompareChart {
    pub fn new(sets: &[ResultSet], common: &[CaseKey], labels: Vec<String>) -> Self {
        let medians = common
            .iter()
            .map(|case| {
                sets.iter()
                    .map(|s| s.cases.get(case).and_then(|m| crate::results::stats::median(&m.mb_s)))
                    .collect()
            })
            .collect();
        CompareChart {
            subtitle: subtitle(sets),
            names: sets.iter().map(|s| s.name.clone()).collect(),
            labels,
            medians,
        }
    }
}

impl Figure for CompareChart {
    fn stem(&self) -> &str {
        "compare"
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> anyhow::Result<()>
    where
        DB::ErrorType: 'static,
    {
        let area = titled_lines(root, "Throughput per case across result sets (medians)", &self.subtitle)?;
        let top = self.medians.iter().flatten().flatten().copied().fold(0.0, f64::max);
        let mut chart = bands::chart(
            &area,
            "",
            &self.labels,
            bands::x_range(top, 1.3),
            "throughput, MB/s (10^6 bytes/s)",
        )?;
        let (n, sets) = (self.labels.len(), self.names.len());
        for (s, name) in self.names.iter().enumerate() {
            let fill = colour(s).filled();
            let bars =
                self.medians.iter().enumerate().filter_map(|(i, per_set)| {
                    per_set[s].map(|m| Rectangle::new(bands::bar(i, n, s, sets, 0.0, m), fill))
                });
            chart
                .draw_series(bars)?
                .label(name.clone())
                .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], fill));
        }
        legend(&mut chart)?;
        Ok(())
    }
}

/// One line per set: its name and where it was measured.
fn subtitle(sets: &[ResultSet]) -> Vec<String> {
    sets.iter().map(|s| format!("{}: {}", s.name, s.describe)).collect()
}

/// Each later set's median over the first set's per common case, with the verdict's interval (a cross where
/// there were too few repetitions to tell).
pub(crate) fn ratio_chart(sets: &[ResultSet], common: &[CaseKey], labels: Vec<String>, same_within: f64) -> RatioChart {
    let first = &sets[0];
    let points = common
        .iter()
        .map(|k| {
            sets[1..]
                .iter()
                .map(|o| {
                    let v = verdict(&first.cases.get(k)?.mb_s, &o.cases.get(k)?.mb_s, same_within);
                    Some(match v.interval() {
                        Some(e) => Point {
                            estimate: e,
                            mark: Mark::of(&e, matches!(v, super::Verdict::Same { .. })),
                            words: None,
                        },
                        None => {
                            let r = v.ratio()?;
                            Point {
                                estimate: crate::results::stats::Estimate {
                                    median: r,
                                    lo: r,
                                    hi: r,
                                    level: 0.0,
                                    n: 1,
                                },
                                mark: Mark::NoInterval,
                                words: Some("too few to tell"),
                            }
                        }
                    })
                })
                .collect()
        })
        .collect();
    RatioChart {
        stem: "compare-ratio".into(),
        title: "Ratio to the first set per case (median MB/s over median MB/s), with its interval".into(),
        subtitle: subtitle(sets),
        labels,
        series: sets[1..]
            .iter()
            .map(|s| format!("{} / {}", s.name, first.name))
            .collect(),
        points,
    }
}
