//! `throughput.{png,svg}`: MB/s against the number of connections. Each parallel strategy is a line of medians
//! with min–max whiskers over the repetitions; each serial strategy is a dashed horizontal reference, since it has
//! no thread count to vary but is what the parallel ones must beat. One panel per cache state, sharing the y axis.
//!
//! The thread axis is logarithmic (base 2) because thread counts are usually 1, 2, 4, 8, ...

use super::{FONT, Figure, Spread, caches, colour, legend, spread, subtitle, titled};
use crate::base::model::{Cache, CaseKey, Labeler};
use crate::results::record::Row;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::collections::BTreeMap;

/// The chart of one panel: threads (a keyed log axis) against MB/s.
type Panel2d<'a, DB> =
    ChartContext<'a, DB, Cartesian2d<super::bands::KeyedAxis, plotters::coord::types::RangedCoordf64>>;

struct Panel {
    cache: Cache,
    /// Per parallel series: (threads, spread of MB/s), threads ascending.
    lines: Vec<(usize, Vec<(u32, Spread)>)>,
    /// Per serial series: spread of MB/s.
    references: Vec<(usize, Spread)>,
}

/// Height of the box behind a reference label (14 px text plus 2 px above and below), and the space left between
/// a box and its line, in pixels.
const REFERENCE_LABEL_PX: f64 = 18.0;
const REFERENCE_GAP_PX: f64 = 3.0;

/// Where one reference label goes: the y (data units) of its top edge.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Slot {
    top: f64,
}

/// Places labels of height `height` for lines at `ys` (data units, any order) so that no two overlap: taken from
/// the highest line down, each goes `gap` above its line if that clears the label placed before it, else `gap`
/// below its line, else directly under the previous label. Returned in the order of `ys`.
fn label_slots(ys: &[f64], height: f64, gap: f64) -> Vec<Slot> {
    let mut order: Vec<usize> = (0..ys.len()).collect();
    order.sort_by(|a, b| ys[*b].total_cmp(&ys[*a]));
    let mut slots = vec![Slot { top: 0.0 }; ys.len()];
    let mut floor = f64::INFINITY; // the lowest edge of the labels placed so far
    for i in order {
        let y = ys[i];
        let top = if y + gap + height <= floor {
            y + gap + height
        } else if y - gap <= floor {
            y - gap
        } else {
            floor
        };
        slots[i] = Slot { top };
        floor = top - height;
    }
    slots
}

pub(crate) struct Throughput {
    subtitle: String,
    /// Legend names, indexed like the colours.
    names: Vec<String>,
    panels: Vec<Panel>,
    threads: Vec<u32>,
    y_max: f64,
}

impl Throughput {
    pub fn new(rows: &[Row]) -> Self {
        // One series per case without its thread count (the x axis) and cache state (the panels), shared by all
        // panels; parallel series first so they get the strongest colours.
        let series = |r: &Row| CaseKey {
            threads: 0,
            cache: Cache::Warm,
            ..r.key()
        };
        let mut keys: Vec<CaseKey> = rows.iter().map(series).collect();
        keys.sort_by_key(|k| (!k.strategy.is_parallel(), *k));
        keys.dedup();
        let labeler = Labeler::new(&keys);
        let names = keys.iter().map(|k| labeler.label(k)).collect();
        let panels = caches(rows)
            .into_iter()
            .map(|cache| {
                let mut groups: BTreeMap<(usize, u32), Vec<f64>> = BTreeMap::new();
                for r in rows.iter().filter(|r| r.cache == cache) {
                    let i = keys.iter().position(|k| *k == series(r)).unwrap_or(0);
                    groups.entry((i, r.threads)).or_default().push(r.throughput_mb_s);
                }
                let mut lines: BTreeMap<usize, Vec<(u32, Spread)>> = BTreeMap::new();
                let mut references = Vec::new();
                for ((i, threads), values) in groups {
                    let Some(s) = spread(values) else { continue };
                    if keys[i].strategy.is_parallel() {
                        lines.entry(i).or_default().push((threads, s));
                    } else {
                        references.push((i, s));
                    }
                }
                Panel {
                    cache,
                    lines: lines.into_iter().collect(),
                    references,
                }
            })
            .collect();

        let mut threads: Vec<u32> = rows
            .iter()
            .filter(|r| r.strategy.is_parallel())
            .map(|r| r.threads)
            .collect();
        threads.sort_unstable();
        threads.dedup();
        if threads.is_empty() {
            threads.push(1);
        }
        let top = rows.iter().map(|r| r.throughput_mb_s).fold(0.0, f64::max);
        Throughput {
            subtitle: subtitle(rows),
            names,
            panels,
            threads,
            y_max: if top > 0.0 { top * 1.15 } else { 1.0 },
        }
    }
}

/// Where `threads` sits on the base-2 logarithmic x axis.
fn x_of(threads: u32) -> f64 {
    f64::from(threads.max(1)).log2()
}

impl Figure for Throughput {
    fn stem(&self) -> &str {
        "throughput"
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> anyhow::Result<()>
    where
        DB::ErrorType: 'static,
    {
        let area = titled(
            root,
            "Throughput against threads (median, whiskers min–max)",
            &self.subtitle,
        )?;
        let key_points: Vec<f64> = self.threads.iter().map(|t| x_of(*t)).collect();
        let (first, last) = (key_points[0], key_points[key_points.len() - 1]);
        let x_range = first - 0.4..last + 0.4;
        for (p, (panel, cell)) in self
            .panels
            .iter()
            .zip(area.split_evenly((1, self.panels.len())))
            .enumerate()
        {
            let mut chart = ChartBuilder::on(&cell)
                .caption(format!("{} page cache", panel.cache), (FONT, 20))
                .margin(14)
                .x_label_area_size(48)
                .y_label_area_size(80)
                .build_cartesian_2d(
                    super::bands::KeyedAxis::new(x_range.clone(), key_points.clone()),
                    0.0..self.y_max,
                )?;
            chart
                .configure_mesh()
                .x_label_formatter(&|x| format!("{:.0}", x.exp2()))
                .y_label_formatter(&|y| format!("{y:.0}"))
                .x_desc("threads (connections)")
                .y_desc("throughput, MB/s (10^6 bytes/s)")
                .label_style((FONT, 15))
                .axis_desc_style((FONT, 17))
                .draw()?;

            self.draw_references(&mut chart, panel, &x_range)?;
            self.draw_lines(&mut chart, panel)?;
            if p == 0 {
                legend(&mut chart)?;
            }
        }
        Ok(())
    }
}

impl Throughput {
    /// Each serial strategy's dashed line, with its label on a pale box placed where it does not cover another.
    fn draw_references<DB: DrawingBackend>(
        &self,
        chart: &mut Panel2d<'_, DB>,
        panel: &Panel,
        x_range: &std::ops::Range<f64>,
    ) -> anyhow::Result<()>
    where
        DB::ErrorType: 'static,
    {
        // Reference labels sit on their lines; close lines would print them over each other, so they are
        // placed top-down, each above its line where there is room, else below it, else just below the last.
        let plot_height = f64::from(chart.plotting_area().dim_in_pixel().1.max(1));
        let y_per_px = self.y_max / plot_height;
        let label_height = REFERENCE_LABEL_PX * y_per_px;
        let slots = label_slots(
            &panel.references.iter().map(|(_, s)| s.median).collect::<Vec<_>>(),
            label_height,
            REFERENCE_GAP_PX * y_per_px,
        );
        let mut labels = Vec::new();
        for ((i, s), slot) in panel.references.iter().zip(slots) {
            let c = colour(*i);
            let ends = [(x_range.start, s.median), (x_range.end, s.median)];
            chart
                .draw_series(DashedLineSeries::new(ends, 10, 6, c.stroke_width(2)))?
                .label(format!("{} (serial)", self.names[*i]))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
            // In the axis's own unit: one unit per chart.
            labels.push((format!("{} {:.0} MB/s", self.names[*i], s.median), c, slot));
        }
        // After all the reference lines, on a pale box, so that no other reference runs through a label; the
        // parallel series are drawn over the boxes, so that no point of theirs is hidden.
        let plot_width = f64::from(chart.plotting_area().dim_in_pixel().0.max(1));
        let x_per_px = (x_range.end - x_range.start) / plot_width;
        for (text, c, slot) in labels {
            let font = (FONT, 14).into_font().color(&c).pos(Pos::new(HPos::Left, VPos::Top));
            let width_px = chart
                .plotting_area()
                .estimate_text_size(&text, &font)
                .map_or(0, |(w, _)| w);
            let left = x_range.start + 0.05;
            let right = left + (f64::from(width_px) + 6.0) * x_per_px;
            chart.draw_series(std::iter::once(Rectangle::new(
                [(left, slot.top), (right, slot.top - label_height)],
                WHITE.mix(0.85).filled(),
            )))?;
            let inset = (left + 2.0 * x_per_px, slot.top - 2.0 * y_per_px);
            chart.draw_series(std::iter::once(Text::new(text, inset, font)))?;
        }
        Ok(())
    }

    /// Each parallel strategy's line of medians, its points and its whiskers.
    fn draw_lines<DB: DrawingBackend>(&self, chart: &mut Panel2d<'_, DB>, panel: &Panel) -> anyhow::Result<()>
    where
        DB::ErrorType: 'static,
    {
        for (i, points) in &panel.lines {
            let c = colour(*i);
            let medians = points.iter().map(|(t, s)| (x_of(*t), s.median));
            chart
                .draw_series(LineSeries::new(medians, c.stroke_width(3)))?
                .label(self.names[*i].clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3)));
            chart.draw_series(
                points
                    .iter()
                    .map(|(t, s)| Circle::new((x_of(*t), s.median), 5, c.filled())),
            )?;
            // Whiskers: the spread of the repetitions, so a noisy case does not pass for a clear one.
            let cap = 0.04;
            chart.draw_series(points.iter().flat_map(|(t, s)| {
                let x = x_of(*t);
                [
                    PathElement::new(vec![(x, s.min), (x, s.max)], c.stroke_width(2)),
                    PathElement::new(vec![(x - cap, s.min), (x + cap, s.min)], c.stroke_width(2)),
                    PathElement::new(vec![(x - cap, s.max), (x + cap, s.max)], c.stroke_width(2)),
                ]
            }))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overlaps(slots: &[Slot], height: f64) -> bool {
        let mut tops: Vec<f64> = slots.iter().map(|s| s.top).collect();
        tops.sort_by(f64::total_cmp);
        tops.windows(2).any(|w| w[1] - w[0] < height - 1e-9)
    }

    #[test]
    fn far_apart_labels_sit_just_above_their_lines() {
        let slots = label_slots(&[100.0, 500.0, 300.0], 10.0, 1.0);
        assert_eq!(slots, [Slot { top: 111.0 }, Slot { top: 511.0 }, Slot { top: 311.0 }]);
    }

    #[test]
    fn equal_and_close_lines_get_labels_that_do_not_overlap() {
        // Two equal medians (the 1 MiB and 10 MiB serial sendfile lines of a cold sweep), then a run of close ones.
        let slots = label_slots(&[1990.0, 1990.0], 40.0, 5.0);
        assert_eq!(
            slots,
            [Slot { top: 2035.0 }, Slot { top: 1985.0 }],
            "one above, one below the line"
        );
        let ys = [1000.0, 1010.0, 1005.0, 995.0, 1020.0, 400.0];
        let slots = label_slots(&ys, 40.0, 5.0);
        assert!(!overlaps(&slots, 40.0), "{slots:?}");
        assert_eq!(slots[5], Slot { top: 445.0 }, "a line far below is not pushed");
    }
}
