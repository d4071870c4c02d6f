//! `latency.{png,svg}`: how long one transfer call takes, per case: median, 99th percentile and slowest call,
//! each the median over the repetitions. The spread covers several orders of magnitude (a 64 KiB send vs a
//! page-cache miss), hence a logarithmic microsecond axis; a thin line joins p50 to max so each case reads as a range.

use super::{Figure, bands, colour, labels, legend, subtitle, summary, titled};
use crate::results::record::Row;
use plotters::coord::Shift;
use plotters::prelude::*;

const PERCENTILES: [&str; 3] = ["p50", "p99", "max"];

pub(crate) struct Latency {
    subtitle: String,
    labels: Vec<String>,
    /// Per case, microseconds at each of `PERCENTILES`.
    values: Vec<[f64; 3]>,
}

impl Latency {
    pub fn new(rows: &[Row]) -> Self {
        let cases = summary(rows);
        let median = |s: Option<crate::results::stats::Stat>| s.map_or(0.0, |s| s.median);
        Latency {
            subtitle: subtitle(rows),
            labels: labels(&cases),
            values: cases
                .iter()
                .map(|c| {
                    let m = &c.metrics;
                    [median(m.call_p50_us), median(m.call_p99_us), median(m.call_max_us)]
                })
                .collect(),
        }
    }

    /// The log axis range: a factor of two beyond the extremes, and never down to 0, which a log axis cannot show.
    fn range(&self) -> std::ops::Range<f64> {
        let positive = || self.values.iter().flatten().copied().filter(|v| *v > 0.0);
        let lo = positive().fold(f64::INFINITY, f64::min);
        let hi = positive().fold(0.0, f64::max);
        if lo.is_finite() && hi > 0.0 {
            lo / 2.0..hi * 2.0
        } else {
            0.1..10.0
        }
    }
}

impl Figure for Latency {
    fn stem(&self) -> &str {
        "latency"
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> anyhow::Result<()>
    where
        DB::ErrorType: 'static,
    {
        let area = titled(
            root,
            "Latency of one transfer call (medians of repetitions)",
            &self.subtitle,
        )?;
        let range = self.range();
        let floor = range.start;
        let mut chart = bands::chart(
            &area,
            "",
            &self.labels,
            range.log_scale(),
            "call latency, µs (logarithmic)",
        )?;
        let n = self.labels.len();
        let at = |i: usize, v: f64| (v.max(floor), bands::centre(i, n));
        chart.draw_series(
            self.values
                .iter()
                .enumerate()
                .map(|(i, v)| PathElement::new(vec![at(i, v[0]), at(i, v[2])], colour(7).mix(0.5).stroke_width(2))),
        )?;
        for (k, name) in PERCENTILES.iter().enumerate() {
            let style = colour(k).filled();
            let points = self.values.iter().enumerate().map(move |(i, v)| at(i, v[k]));
            // A different marker per percentile, so the chart still reads in greyscale.
            match k {
                0 => chart
                    .draw_series(points.map(|p| Circle::new(p, 7, style)))?
                    .legend(move |(x, y)| Circle::new((x + 7, y), 6, style)),
                1 => chart
                    .draw_series(points.map(|p| TriangleMarker::new(p, 8, style)))?
                    .legend(move |(x, y)| TriangleMarker::new((x + 7, y), 7, style)),
                _ => chart
                    .draw_series(points.map(|p| Cross::new(p, 7, style.stroke_width(3))))?
                    .legend(move |(x, y)| Cross::new((x + 7, y), 6, style.stroke_width(3))),
            }
            .label(*name);
        }
        legend(&mut chart)?;
        Ok(())
    }
}
