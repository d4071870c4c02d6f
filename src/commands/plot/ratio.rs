//! `ratio.{png,svg}` (and `compare-ratio.{png,svg}`): the answer itself. Each case's ratio to its baseline is a
//! point with its interval as a whisker, against a line at 1.00, so that "faster", "slower" and "cannot tell" read
//! at a glance: a filled point whose whisker leaves out 1.00 differs, a hollow one whose whisker holds 1.00 is `≈`
//! (not distinguishable), a square is `=` (the same within the equivalence margin), and a cross has no interval
//! (one value, or too few to tell). A run's chart has one series (`vs sf`); `compare`'s has one per later set.

use super::{FONT, Figure, bands, colour, labels, legend, titled_lines};
use crate::results::record::Row;
use crate::results::stats::Estimate;
use crate::results::summary::CaseSummary;
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

/// How a ratio reads against 1.00.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mark {
    /// The interval leaves out 1.00.
    Differs,
    /// `≈`: the interval holds 1.00: not distinguishable from the baseline.
    Near,
    /// `=`: the interval lies inside the equivalence margin: the same, for practical purposes.
    Same,
    /// No interval (one value, or too few on a side to tell).
    NoInterval,
}

impl Mark {
    /// How an estimate reads, given whether it was found equivalent (`=`) to its baseline.
    pub fn of(e: &Estimate, equivalent: bool) -> Mark {
        match (e.n >= 2, equivalent) {
            (false, _) => Mark::NoInterval,
            (true, true) => Mark::Same,
            (true, false) if e.holds(1.0) => Mark::Near,
            (true, false) => Mark::Differs,
        }
    }
}

/// Whether a case was found the same as sendfile within the equivalence margin (`=`, `--same-within`), as the
/// summary's verdict says: the chart and the report draw it apart from `≈`.
pub(crate) fn equivalent(case: &CaseSummary) -> bool {
    case.vs_sendfile_verdict
        .is_some_and(|v| v.says == crate::results::stats::Says::Same)
}

/// One point: a ratio, with its interval where it has one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Point {
    pub estimate: Estimate,
    pub mark: Mark,
    /// What to write beside it instead of the estimate's own text (`0.80x (too few to tell)`).
    pub words: Option<&'static str>,
}

pub(crate) struct RatioChart {
    pub stem: String,
    pub title: String,
    pub subtitle: Vec<String>,
    pub labels: Vec<String>,
    /// The series' names (one colour each).
    pub series: Vec<String>,
    /// Per case, per series.
    pub points: Vec<Vec<Option<Point>>>,
}

impl RatioChart {
    /// A result folder's `vs sf`, one point per case that has one, each judged against `same_within`; None when
    /// no case has one.
    pub fn of_run(rows: &[Row], same_within: f64) -> Option<RatioChart> {
        let mut cases: Vec<CaseSummary> = crate::results::summary::summarise_within(rows, same_within)
            .into_iter()
            .filter(|c| c.vs_sendfile.is_some())
            .collect();
        cases.sort_by_key(|c| c.key);
        if cases.is_empty() {
            return None;
        }
        let points = cases
            .iter()
            .map(|c| {
                let e = c.vs_sendfile.expect("filtered");
                vec![Some(Point {
                    estimate: e,
                    mark: Mark::of(&e, equivalent(c)),
                    words: None,
                })]
            })
            .collect();
        Some(RatioChart {
            stem: "ratio".into(),
            title: match cases.iter().any(|c| c.key.consumers.is_some()) {
                false => "Ratio to serial sendfile, paired by round, with its interval".into(),
                true => "Ratio to sendfile (a broker's: to broker-sendfile), paired by round, with its interval".into(),
            },
            subtitle: vec![super::subtitle(rows)],
            labels: labels(&cases),
            series: vec!["vs sf".into()],
            points,
        })
    }

    fn x_range(&self) -> std::ops::Range<f64> {
        let all = self.points.iter().flatten().flatten();
        let lo = all
            .clone()
            .map(|p| p.estimate.lo.min(p.estimate.median))
            .fold(1.0, f64::min);
        let hi = all.map(|p| p.estimate.hi.max(p.estimate.median)).fold(1.0, f64::max);
        let pad = (hi - lo).max(0.1) * 0.12;
        // Room on the right for each point's text and the legend.
        (lo - pad).max(0.0)..hi + pad * 4.0
    }
}

/// The text beside a point: `1.77x [1.56–2.11]`, `≈1.09x [0.98–1.18]`, `=1.01x [0.98–1.03]`, `1.20x (n=1)`, or
/// the ratio and the point's own words.
fn point_text(p: &Point) -> String {
    if let Some(words) = p.words {
        return format!("{:.2}x ({words})", p.estimate.median);
    }
    // With no margin the text marks only `≈`; whether the point is `=` is its mark's, judged where it was made.
    let text = p.estimate.ratio_text(0.0);
    match p.mark {
        Mark::Same => format!("={}", text.trim_start_matches('≈')),
        _ => text,
    }
}

impl Figure for RatioChart {
    fn stem(&self) -> &str {
        &self.stem
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> anyhow::Result<()>
    where
        DB::ErrorType: 'static,
    {
        let area = titled_lines(root, &self.title, &self.subtitle)?;
        // Empty bands at the bottom hold the legend, clear of every point and its text: a quarter as many as
        // there are cases, at least one.
        let mut labels = self.labels.clone();
        labels.resize(labels.len() + labels.len().div_ceil(4).max(1), String::new());
        let mut chart = bands::chart(
            &area,
            "",
            &labels,
            self.x_range(),
            "ratio to the baseline (above 1.00: faster)",
        )?;
        let (n, sets) = (labels.len(), self.series.len());
        let y_top = n as f64;
        chart.draw_series(DashedLineSeries::new(
            [(1.0, 0.0), (1.0, y_top)],
            6,
            4,
            BLACK.stroke_width(2),
        ))?;
        for (s, name) in self.series.iter().enumerate() {
            let c = colour(s);
            let at = |i: usize| {
                let [(_, top), (_, bottom)] = bands::bar(i, n, s, sets, 0.0, 0.0);
                (top + bottom) / 2.0
            };
            let points: Vec<(f64, Point)> = self
                .points
                .iter()
                .enumerate()
                .filter_map(|(i, per)| Some((at(i), per.get(s).copied().flatten()?)))
                .collect();
            chart.draw_series(
                points
                    .iter()
                    .filter(|(_, p)| p.mark != Mark::NoInterval)
                    .map(|(y, p)| PathElement::new([(p.estimate.lo, *y), (p.estimate.hi, *y)], c.stroke_width(3))),
            )?;
            let at_mark = |mark: Mark| {
                points
                    .iter()
                    .filter(move |(_, p)| p.mark == mark)
                    .map(|(y, p)| (p.estimate.median, *y))
            };
            chart.draw_series(at_mark(Mark::Differs).map(|at| Circle::new(at, 7, c.filled())))?;
            chart.draw_series(at_mark(Mark::Near).map(|at| Circle::new(at, 7, WHITE.filled())))?;
            chart.draw_series(at_mark(Mark::Near).map(|at| Circle::new(at, 7, c.stroke_width(3))))?;
            chart.draw_series(
                at_mark(Mark::Same).map(|at| EmptyElement::at(at) + Rectangle::new([(-7, -7), (7, 7)], c.filled())),
            )?;
            chart.draw_series(at_mark(Mark::NoInterval).map(|at| Cross::new(at, 7, c.stroke_width(3))))?;
            chart.draw_series(points.iter().map(|(y, p)| {
                let right = if p.mark != Mark::NoInterval {
                    p.estimate.hi
                } else {
                    p.estimate.median
                };
                Text::new(
                    format!("  {}", point_text(p)),
                    (right, *y),
                    (FONT, 15).into_font().color(&BLACK),
                )
            }))?;
            chart
                .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
                .label(name.clone())
                .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], c.filled()));
        }
        mark_legend(&mut chart)?;
        legend(&mut chart)?;
        Ok(())
    }
}

/// The legend's entries for the four ways a point reads (grey: they hold for every series).
fn mark_legend<'a, DB>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, bands::KeyedAxis>>,
) -> anyhow::Result<()>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
{
    let grey = RGBColor(80, 80, 80);
    let none = || std::iter::empty::<Circle<(f64, f64), i32>>();
    chart
        .draw_series(none())?
        .label("filled: the interval leaves out 1.00")
        .legend(move |(x, y)| Circle::new((x + 7, y), 6, grey.filled()));
    chart
        .draw_series(none())?
        .label("hollow (≈): the interval holds 1.00, not distinguishable")
        .legend(move |(x, y)| Circle::new((x + 7, y), 6, grey.stroke_width(2)));
    chart
        .draw_series(none())?
        .label("square (=): the same within the equivalence margin")
        .legend(move |(x, y)| Rectangle::new([(x + 1, y - 6), (x + 13, y + 6)], grey.filled()));
    chart
        .draw_series(none())?
        .label("cross: no interval (one value, or too few to tell)")
        .legend(move |(x, y)| Cross::new((x + 7, y), 6, grey.stroke_width(2)));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(lo: f64, median: f64, hi: f64, n: usize) -> Estimate {
        Estimate {
            median,
            lo,
            hi,
            level: 0.95,
            n,
        }
    }

    #[test]
    fn a_point_reads_by_its_interval() {
        assert_eq!(Mark::of(&e(1.1, 1.2, 1.3, 8), false), Mark::Differs);
        assert_eq!(Mark::of(&e(0.7, 0.8, 0.9, 8), false), Mark::Differs);
        assert_eq!(Mark::of(&e(0.9, 1.1, 1.3, 8), false), Mark::Near);
        assert_eq!(Mark::of(&e(0.98, 1.0, 1.02, 8), true), Mark::Same);
        assert_eq!(Mark::of(&e(1.2, 1.2, 1.2, 1), false), Mark::NoInterval);
        let same = Point {
            estimate: e(0.98, 1.01, 1.03, 8),
            mark: Mark::Same,
            words: None,
        };
        assert_eq!(point_text(&same), "=1.01x [0.98–1.03]");
        let few = Point {
            estimate: e(0.8, 0.8, 0.8, 3),
            mark: Mark::NoInterval,
            words: Some("too few to tell"),
        };
        assert_eq!(point_text(&few), "0.80x (too few to tell)");
    }
}
