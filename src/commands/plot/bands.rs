//! Horizontal category charts: one band per case down the y axis, values along x. Case names such as
//! `parallel-sendfile ×16 (cold)` stay readable this way however many cases a run has, where names under a
//! vertical bar would overlap; the per-case figures and `compare` all draw their bars with these helpers.

use super::FONT;
use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use std::ops::Range;

/// A linear f64 axis whose ticks (and so labels) sit exactly at given values. Plotters' own `with_key_points`
/// wrapper loses the f64 label formatting in 0.3.7, so the mesh would not draw; this is the small part we need.
#[derive(Clone)]
pub(crate) struct KeyedAxis {
    range: Range<f64>,
    keys: Vec<f64>,
}

impl KeyedAxis {
    pub fn new(range: Range<f64>, keys: Vec<f64>) -> Self {
        KeyedAxis { range, keys }
    }
}

impl Ranged for KeyedAxis {
    type ValueType = f64;
    type FormatOption = DefaultFormatting;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        RangedCoordf64::from(self.range.clone()).map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.keys.clone()
    }

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }
}

/// The y axis: bands `0..n` with a tick (and so a label) at the centre of each.
pub(crate) fn y_axis(n: usize) -> KeyedAxis {
    let n = n.max(1);
    KeyedAxis::new(0.0..n as f64, (0..n).map(|i| i as f64 + 0.5).collect())
}

/// The y coordinate of the centre of band `i` of `n`, counting from the top so the first case is read first.
pub(crate) fn centre(i: usize, n: usize) -> f64 {
    n as f64 - i as f64 - 0.5
}

/// The label of the band whose centre is `y`.
pub(crate) fn label_at(labels: &[String], y: f64) -> String {
    let from_bottom = y.floor();
    if from_bottom < 0.0 {
        return String::new();
    }
    let i = labels.len().checked_sub(1 + from_bottom as usize);
    i.and_then(|i| labels.get(i)).cloned().unwrap_or_default()
}

/// Width of the label area that fits the longest label (DejaVu Sans averages about 0.6 em a character).
pub(crate) fn label_width(labels: &[String]) -> u32 {
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0) as u32;
    (longest * 10 + 24).clamp(80, 420)
}

/// A tick label short enough not to run into its neighbours: `250`, `2.5`, `35k`, `1.2M`.
pub(crate) fn compact(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 10.0 || a == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

/// The rectangle of sub-bar `k` of `of` within band `i` of `n`, from `x0` to `x1`.
pub(crate) fn bar(i: usize, n: usize, k: usize, of: usize, x0: f64, x1: f64) -> [(f64, f64); 2] {
    // Bands are 1 high; 0.8 of that holds bars so neighbouring cases do not touch.
    let of = of.max(1) as f64;
    let top = centre(i, n) + 0.4 - 0.8 * k as f64 / of;
    [(x0, top), (x1, top - 0.8 / of)]
}

/// An x range from 0 to `headroom` times the longest bar, so that the legend clears it (and not empty when every
/// bar is 0).
pub(crate) fn x_range(max: f64, headroom: f64) -> Range<f64> {
    0.0..if max > 0.0 { max * headroom } else { 1.0 }
}

/// A chart with the case bands down the left and `x` across, titled `caption`, its mesh and axes drawn.
pub(crate) fn chart<'a, DB, X>(
    area: &'a DrawingArea<DB, Shift>,
    caption: &str,
    labels: &'a [String],
    x: X,
    x_desc: &str,
) -> anyhow::Result<ChartContext<'a, DB, Cartesian2d<X::CoordDescType, KeyedAxis>>>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    let mut builder = ChartBuilder::on(area);
    if !caption.is_empty() {
        builder.caption(caption, (FONT, 20));
    }
    let mut chart = builder
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(label_width(labels))
        .build_cartesian_2d(x, y_axis(labels.len()))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_labels(8)
        .x_label_formatter(&|x| compact(*x))
        .y_label_formatter(&|y| label_at(labels, *y))
        .x_desc(x_desc)
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .draw()?;
    Ok(chart)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_label_is_at_the_top() {
        let labels = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        assert_eq!(label_at(&labels, centre(0, 3)), "a");
        assert_eq!(label_at(&labels, centre(2, 3)), "c");
        assert_eq!(label_at(&labels, 3.5), "");
        assert_eq!(label_at(&labels, -0.5), "");
    }

    #[test]
    fn compact_ticks() {
        assert_eq!(compact(0.0), "0");
        assert_eq!(compact(0.25), "0.25");
        assert_eq!(compact(2500.0), "2500");
        assert_eq!(compact(35000.0), "35k");
        assert_eq!(compact(1_200_000.0), "1.2M");
    }

    #[test]
    fn sub_bars_fill_the_band_top_down() {
        let [(_, top), (_, _)] = bar(0, 1, 0, 2, 0.0, 1.0);
        let [(_, _), (_, bottom)] = bar(0, 1, 1, 2, 0.0, 1.0);
        assert!((top - 0.9).abs() < 1e-9 && (bottom - 0.1).abs() < 1e-9);
    }
}
