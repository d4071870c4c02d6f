//! `switches.{png,svg}`: what a strategy costs the scheduler and the system call interface, per gigabyte sent.
//! Left: context switches of the sender, of the sink, and system-wide (which includes both, hence side by side
//! rather than stacked). Right: system calls the strategy made. The summary's medians over the repetitions, the
//! numbers the table shows; what no row measured (the sink of a raw receiver) is not drawn.

use super::{Figure, bands, colour, labels, legend, subtitle, summary, titled};
use crate::results::record::Row;
use plotters::coord::Shift;
use plotters::prelude::*;

const SWITCHES: [&str; 3] = ["sender (vol + invol)", "sink (vol + invol)", "system-wide"];

pub(crate) struct Switches {
    subtitle: String,
    labels: Vec<String>,
    /// Per case, context switches per GB of each of `SWITCHES` (None: not measured).
    switches: Vec<[Option<f64>; 3]>,
    syscalls: Vec<Option<f64>>,
}

impl Switches {
    pub fn new(rows: &[Row]) -> Self {
        let cases = summary(rows);
        let median = |s: Option<crate::results::stats::Stat>| s.map(|s| s.median);
        Switches {
            subtitle: subtitle(rows),
            labels: labels(&cases),
            switches: cases
                .iter()
                .map(|c| {
                    let m = &c.metrics;
                    [
                        median(m.sender_ctxsw_per_gb),
                        median(m.sink_ctxsw_per_gb),
                        median(m.system_ctxsw_per_gb),
                    ]
                })
                .collect(),
            syscalls: cases.iter().map(|c| median(c.metrics.syscalls_per_gb)).collect(),
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

        let max = self.switches.iter().flatten().flatten().copied().fold(0.0, f64::max);
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
                .filter_map(|(i, s)| Some(Rectangle::new(bands::bar(i, n, k, SWITCHES.len(), 0.0, s[k]?), fill)));
            chart
                .draw_series(bars)?
                .label(*name)
                .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], fill));
        }
        legend(&mut chart)?;

        let max = self.syscalls.iter().flatten().copied().fold(0.0, f64::max);
        let mut chart = bands::chart(
            &right,
            "System calls",
            &self.labels,
            bands::x_range(max, 1.3),
            "system calls per GB",
        )?;
        let fill = colour(SWITCHES.len()).filled();
        chart.draw_series(
            (self.syscalls.iter().enumerate())
                .filter_map(|(i, s)| Some(Rectangle::new(bands::bar(i, n, 0, 1, 0.0, (*s)?), fill))),
        )?;
        Ok(())
    }
}
