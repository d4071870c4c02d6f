//! `consumers.{png,svg}`: a broker's cases against their number of consumers, three panels side by side: the
//! aggregate MB/s (every consumer's bytes; median with min–max whiskers), the CPU seconds per GB (sender, sink and
//! softirq; median), and Jain's fairness index over the consumers (median). One line per broker strategy and
//! whatever else varies among the cases (network threads, fetch size, cache, congestion control). Only drawn when
//! a folder holds broker cases; the consumer axis is logarithmic (base 2), as consumer counts are 1, 4, 16, 64.

use super::{FONT, Figure, Spread, colour, legend, subtitle, summary, titled};
use crate::base::model::{CaseKey, Consumers, Labeler};
use crate::results::record::Row;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::collections::BTreeMap;

/// One panel: its title, its axis, and per line (consumers, value).
struct Panel {
    title: &'static str,
    y_desc: &'static str,
    lines: Vec<Vec<(u32, Spread)>>,
}

pub(crate) struct ConsumerChart {
    subtitle: String,
    names: Vec<String>,
    consumers: Vec<u32>,
    panels: [Panel; 3],
}

/// Where `consumers` sits on the base-2 logarithmic x axis.
fn x_of(consumers: u32) -> f64 {
    f64::from(consumers.max(1)).log2()
}

impl ConsumerChart {
    /// The chart of `rows`' broker cases, or None when there are none.
    pub fn new(rows: &[Row]) -> Option<ConsumerChart> {
        let cases: Vec<_> = summary(rows)
            .into_iter()
            .filter(|c| c.key.consumers.is_some())
            .collect();
        if cases.is_empty() {
            return None;
        }
        // A line is a case without its consumer count.
        let line_of = |k: &CaseKey| CaseKey {
            consumers: k.consumers.map(|c| Consumers { count: 0, ..c }),
            ..*k
        };
        let mut lines: BTreeMap<CaseKey, Vec<usize>> = BTreeMap::new();
        for (i, c) in cases.iter().enumerate() {
            lines.entry(line_of(&c.key)).or_default().push(i);
        }
        let keys: Vec<CaseKey> = lines.keys().copied().collect();
        let labeler = Labeler::new(&keys);
        let names = keys.iter().map(|k| labeler.label(k).replace(" →0", "")).collect();
        let mut consumers: Vec<u32> = cases.iter().filter_map(|c| c.key.consumers).map(|c| c.count).collect();
        consumers.sort_unstable();
        consumers.dedup();
        let series = |f: &dyn Fn(&crate::results::summary::Metrics) -> Option<Spread>| -> Vec<Vec<(u32, Spread)>> {
            lines
                .values()
                .map(|members| {
                    let mut points: Vec<(u32, Spread)> = members
                        .iter()
                        .filter_map(|&i| Some((cases[i].key.consumers?.count, f(&cases[i].metrics)?)))
                        .collect();
                    points.sort_by_key(|p| p.0);
                    points
                })
                .collect()
        };
        let median_only = |s: Option<Spread>| {
            s.map(|s| Spread {
                min: s.median,
                max: s.median,
                ..s
            })
        };
        Some(ConsumerChart {
            subtitle: subtitle(rows),
            names,
            consumers,
            panels: [
                Panel {
                    title: "aggregate throughput",
                    y_desc: "MB/s (10^6 bytes/s), every consumer's bytes",
                    lines: series(&|m| m.throughput_mb_s),
                },
                Panel {
                    title: "CPU per GB (sender + sink + softirq)",
                    y_desc: "CPU seconds per GB",
                    lines: series(&|m| median_only(m.cpu_s_per_gb)),
                },
                Panel {
                    title: "fairness over consumers",
                    y_desc: "Jain's index (1 = every consumer alike)",
                    lines: series(&|m| median_only(m.consumer_jain)),
                },
            ],
        })
    }
}

impl Figure for ConsumerChart {
    fn stem(&self) -> &str {
        "consumers"
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> anyhow::Result<()>
    where
        DB::ErrorType: 'static,
    {
        let area = titled(root, "A broker's consumers (medians; whiskers min–max)", &self.subtitle)?;
        let key_points: Vec<f64> = self.consumers.iter().map(|&c| x_of(c)).collect();
        let x_range = key_points[0] - 0.4..key_points[key_points.len() - 1] + 0.4;
        for (p, (panel, cell)) in self.panels.iter().zip(area.split_evenly((1, 3))).enumerate() {
            let top = panel.lines.iter().flatten().map(|(_, s)| s.max).fold(0.0, f64::max);
            let y_max = if p == 2 {
                1.05
            } else {
                (top * 1.15).max(f64::MIN_POSITIVE)
            };
            let mut chart = ChartBuilder::on(&cell)
                .caption(panel.title, (FONT, 20))
                .margin(12)
                .x_label_area_size(44)
                .y_label_area_size(70)
                .build_cartesian_2d(
                    super::bands::KeyedAxis::new(x_range.clone(), key_points.clone()),
                    0.0..y_max,
                )?;
            chart
                .configure_mesh()
                .x_label_formatter(&|x| format!("{:.0}", x.exp2()))
                .y_label_formatter(&|y| if p == 0 { format!("{y:.0}") } else { format!("{y:.2}") })
                .x_desc("consumers")
                .y_desc(panel.y_desc)
                .label_style((FONT, 14))
                .axis_desc_style((FONT, 15))
                .draw()?;
            for (i, points) in panel.lines.iter().enumerate() {
                let c = colour(i);
                let medians = points.iter().map(|(n, s)| (x_of(*n), s.median));
                chart
                    .draw_series(LineSeries::new(medians, c.stroke_width(3)))?
                    .label(self.names[i].clone())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3)));
                chart.draw_series(
                    points
                        .iter()
                        .map(|(n, s)| Circle::new((x_of(*n), s.median), 5, c.filled())),
                )?;
                chart.draw_series(
                    points
                        .iter()
                        .filter(|(_, s)| s.max > s.min)
                        .map(|(n, s)| PathElement::new(vec![(x_of(*n), s.min), (x_of(*n), s.max)], c.stroke_width(2))),
                )?;
            }
            if p == 0 {
                legend(&mut chart)?;
            }
        }
        Ok(())
    }
}
