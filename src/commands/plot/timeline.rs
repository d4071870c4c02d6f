//! `timeline.{png,svg}`: throughput over time, from series.csv (the sink's count of each stream's bytes per
//! `--interval`). One panel per case: every repetition's total in grey, and for the median repetition its total
//! in black and each of its streams in colour, so that a stall, a stream that starved while the others ran, or a
//! mode that switched halfway is seen rather than averaged away.

use super::{FONT, Figure, colour, subtitle, titled};
use crate::base::model::{CaseKey, Labeler};
use crate::results::record::{Row, SeriesRow};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::collections::BTreeMap;

/// The most panels one chart holds (the cases after them are left out, and the subtitle says so).
const MAX_PANELS: usize = 16;

/// MB/s at each interval's start, in seconds from the first byte.
type Line = Vec<(f64, f64)>;

struct Panel {
    label: String,
    /// Every repetition's total.
    totals: Vec<Line>,
    /// The median repetition's total, and each of its streams.
    median_total: Line,
    median_streams: Vec<Line>,
}

pub(crate) struct Timeline {
    subtitle: String,
    panels: Vec<Panel>,
}

/// Per stream of one repetition, its points.
fn lines(points: &[&SeriesRow]) -> BTreeMap<u32, Line> {
    let mut by_stream: BTreeMap<u32, Line> = BTreeMap::new();
    for p in points {
        let mb_s = p.bytes as f64 / 1e6 / p.interval_s.max(1e-9);
        by_stream.entry(p.stream).or_default().push((p.t_s, mb_s));
    }
    by_stream
}

/// The streams' sum, interval by interval (the streams of a repetition start together, released by one barrier).
fn total(streams: &BTreeMap<u32, Line>) -> Line {
    let mut sum: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for line in streams.values() {
        for &(t, v) in line {
            let e = sum.entry((t * 1e6).round() as u64).or_insert((t, 0.0));
            e.1 += v;
        }
    }
    sum.into_values().collect()
}

impl Timeline {
    /// None when no repetition of `rows` has a series.
    pub fn new(rows: &[Row], series: &[SeriesRow]) -> Option<Self> {
        let keys: BTreeMap<&str, CaseKey> = rows.iter().map(|r| (r.case_id.as_str(), r.key())).collect();
        let mut by_case: BTreeMap<CaseKey, BTreeMap<(&str, u32), Vec<&SeriesRow>>> = BTreeMap::new();
        for p in series {
            if let Some(key) = keys.get(p.case_id.as_str()) {
                by_case
                    .entry(*key)
                    .or_default()
                    .entry((&p.run_id, p.repetition))
                    .or_default()
                    .push(p);
            }
        }
        if by_case.is_empty() {
            return None;
        }
        let labeler = Labeler::new(by_case.keys());
        let left_out = by_case.len().saturating_sub(MAX_PANELS);
        let panels = by_case
            .iter()
            .take(MAX_PANELS)
            .map(|(key, reps)| {
                // The median repetition by throughput, among those with a series.
                let mut ranked: Vec<&Row> = rows
                    .iter()
                    .filter(|r| r.key() == *key && reps.contains_key(&(r.run_id.as_str(), r.repetition)))
                    .collect();
                ranked.sort_by(|a, b| a.throughput_mb_s.total_cmp(&b.throughput_mb_s));
                let median = ranked.get(ranked.len() / 2).map(|r| (r.run_id.as_str(), r.repetition));
                let streams = median.and_then(|m| reps.get(&m)).map(|p| lines(p)).unwrap_or_default();
                Panel {
                    label: labeler.label(key),
                    totals: reps.values().map(|p| total(&lines(p))).collect(),
                    median_total: total(&streams),
                    median_streams: streams.into_values().collect(),
                }
            })
            .collect();
        let mut sub = subtitle(rows);
        if left_out > 0 {
            sub.push_str(&format!(" · {left_out} more case(s) not drawn"));
        }
        Some(Timeline { subtitle: sub, panels })
    }
}

impl Figure for Timeline {
    fn stem(&self) -> &str {
        "timeline"
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> anyhow::Result<()>
    where
        DB::ErrorType: 'static,
    {
        let area = titled(
            root,
            "Throughput over time (grey: each repetition; black: the median one; colours: its streams)",
            &self.subtitle,
        )?;
        let cols = (self.panels.len() as f64).sqrt().ceil().max(1.0) as usize;
        let rows = self.panels.len().div_ceil(cols);
        let t_max = self
            .panels
            .iter()
            .flat_map(|p| p.totals.iter().flatten())
            .map(|p| p.0)
            .fold(0.0, f64::max);
        for (panel, cell) in self.panels.iter().zip(area.split_evenly((rows, cols))) {
            let y_max = panel.totals.iter().flatten().map(|p| p.1).fold(0.0, f64::max).max(1.0) * 1.1;
            let mut chart = ChartBuilder::on(&cell)
                .caption(&panel.label, (FONT, 16))
                .margin(8)
                .x_label_area_size(32)
                .y_label_area_size(56)
                .build_cartesian_2d(0.0..t_max.max(0.001) * 1.02, 0.0..y_max)?;
            chart
                .configure_mesh()
                .x_desc("s from the first byte")
                .y_desc("MB/s")
                .label_style((FONT, 12))
                .axis_desc_style((FONT, 13))
                .draw()?;
            for line in &panel.totals {
                chart.draw_series(LineSeries::new(
                    line.iter().copied(),
                    RGBColor(170, 170, 170).stroke_width(1),
                ))?;
            }
            for (i, line) in panel.median_streams.iter().enumerate() {
                chart.draw_series(LineSeries::new(line.iter().copied(), colour(i).stroke_width(1)))?;
            }
            chart.draw_series(LineSeries::new(
                panel.median_total.iter().copied(),
                BLACK.stroke_width(2),
            ))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_sum_the_streams_interval_by_interval() {
        let p = |stream, t_s: f64, bytes| SeriesRow {
            stream,
            t_s,
            interval_s: 0.05,
            bytes,
            ..SeriesRow::default()
        };
        let points = [p(0, 0.0, 50_000_000), p(1, 0.0, 25_000_000), p(0, 0.05, 5_000_000)];
        let refs: Vec<&SeriesRow> = points.iter().collect();
        let streams = lines(&refs);
        assert_eq!(streams.len(), 2);
        assert_eq!(total(&streams), [(0.0, 1500.0), (0.05, 100.0)]);
    }
}
