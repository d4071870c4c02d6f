//! `compare.{png,svg}`: median throughput of every common case, one bar per result set side by side, one
//! colour per set, so a kernel's gain or loss on one strategy shows at a glance.

use super::ResultSet;
use crate::base::model::CaseKey;
use crate::commands::plot::{Figure, bands, colour, legend, titled};
use plotters::coord::Shift;
use plotters::prelude::*;

pub(crate) struct CompareChart {
    subtitle: String,
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
            subtitle: sets
                .iter()
                .map(|s| format!("{}: {}", s.name, s.describe))
                .collect::<Vec<_>>()
                .join("  |  "),
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
        let area = titled(root, "Throughput per case across result sets (medians)", &self.subtitle)?;
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
