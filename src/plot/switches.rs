//! `switches.{png,svg}`: what a strategy costs the scheduler and the system call interface, per gigabyte sent.
//! Left: context switches of the sender, of the sink, and system-wide (which includes both, hence side by side
//! rather than stacked). Right: system calls the strategy made. Medians over the repetitions.

use super::{Figure, bands, cases, colour, gb, legend, median, subtitle, titled};
use crate::model::Labeler;
use crate::record::Row;
use plotters::coord::Shift;
use plotters::prelude::*;

const SWITCHES: [&str; 3] = ["sender (vol + invol)", "sink (vol + invol)", "system-wide"];

pub(crate) struct Switches {
    subtitle: String,
    labels: Vec<String>,
    /// Per case, context switches per GB of each of `SWITCHES`.
    switches: Vec<[f64; 3]>,
    syscalls: Vec<f64>,
}

impl Switches {
    pub fn new(rows: &[Row]) -> Self {
        let cases = cases(rows);
        let labeler = Labeler::new(cases.iter().map(|(k, _)| k));
        let per_gb = |reps: &[&Row], f: &dyn Fn(&Row) -> u64| median(reps.iter().map(|r| f(r) as f64 / gb(r)));
        Switches {
            subtitle: subtitle(rows),
            labels: cases.iter().map(|(k, _)| labeler.label(k)).collect(),
            switches: cases
                .iter()
                .map(|(_, reps)| {
                    [
                        per_gb(reps, &|r| r.sender_voluntary_ctxsw + r.sender_involuntary_ctxsw),
                        per_gb(reps, &|r| {
                            r.sink_voluntary_ctxsw.unwrap_or(0) + r.sink_involuntary_ctxsw.unwrap_or(0)
                        }),
                        per_gb(reps, &|r| r.system_ctxsw),
                    ]
                })
                .collect(),
            syscalls: cases.iter().map(|(_, reps)| per_gb(reps, &|r| r.syscalls)).collect(),
        }
    }
}

impl Figure for Switches {
    fn stem(&self) -> &str {
        "switches"
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> anyhow::Result<()>
    where
        DB::ErrorType: 'static,
    {
        let area = titled(
            root,
            "Context switches and system calls per GB sent (medians)",
            &self.subtitle,
        )?;
        let (left, right) = area.split_horizontally(area.dim_in_pixel().0 * 3 / 5);
        let n = self.labels.len();

        let max = self.switches.iter().flatten().copied().fold(0.0, f64::max);
        let mut chart = bands::chart(
            &left,
            "Context switches",
            &self.labels,
            bands::x_range(max, 1.3),
            "context switches per GB",
        )?;
        for (k, name) in SWITCHES.iter().enumerate() {
            let fill = colour(k).filled();
            let bars = (self.switches.iter().enumerate())
                .map(|(i, s)| Rectangle::new(bands::bar(i, n, k, SWITCHES.len(), 0.0, s[k]), fill));
            chart
                .draw_series(bars)?
                .label(*name)
                .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], fill));
        }
        legend(&mut chart)?;

        let max = self.syscalls.iter().copied().fold(0.0, f64::max);
        let mut chart = bands::chart(
            &right,
            "System calls",
            &self.labels,
            bands::x_range(max, 1.3),
            "system calls per GB",
        )?;
        let fill = colour(SWITCHES.len()).filled();
        chart.draw_series(
            (self.syscalls.iter().enumerate()).map(|(i, s)| Rectangle::new(bands::bar(i, n, 0, 1, 0.0, *s), fill)),
        )?;
        Ok(())
    }
}
