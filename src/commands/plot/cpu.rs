//! `cpu.{png,svg}`: CPU seconds spent per gigabyte sent, per case, as stacked bars of where the time went:
//! the sender in user space, the sender in the kernel, the sink, and softirq (where loopback TCP does much of
//! its work, so leaving it out would flatter every strategy). Each part is the summary's median over the
//! repetitions, the number the table shows; a part no row measured (the sink of a raw receiver) is not drawn.

use super::{Figure, bands, colour, labels, legend, subtitle, summary, titled};
use crate::results::record::Row;
use plotters::coord::Shift;
use plotters::prelude::*;

/// The stacked parts, in drawing order.
const PARTS: [&str; 4] = [
    "sender user",
    "sender system",
    "sink (user + system)",
    "softirq (system-wide)",
];

pub(crate) struct Cpu {
    subtitle: String,
    labels: Vec<String>,
    /// Per case, seconds per GB of each of `PARTS` (None: not measured).
    parts: Vec<[Option<f64>; 4]>,
    sink_measured: bool,
}

impl Cpu {
    pub fn new(rows: &[Row]) -> Self {
        let cases = summary(rows);
        let parts = cases
            .iter()
            .map(|c| {
                let m = &c.metrics;
                [
                    m.sender_user_s_per_gb,
                    m.sender_sys_s_per_gb,
                    m.sink_cpu_s_per_gb,
                    m.softirq_s_per_gb,
                ]
                .map(|s| s.map(|s| s.median))
            })
            .collect();
        Cpu {
            subtitle: subtitle(rows),
            labels: labels(&cases),
            parts,
            sink_measured: rows.iter().any(|r| r.sink_user_s.is_some() || r.sink_sys_s.is_some()),
        }
    }
}

impl Figure for Cpu {
    fn stem(&self) -> &str {
        "cpu"
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> anyhow::Result<()>
    where
        DB::ErrorType: 'static,
    {
        let area = titled(root, "CPU time per GB sent (medians)", &self.subtitle)?;
        let top = self
            .parts
            .iter()
            .map(|p| p.iter().flatten().sum::<f64>())
            .fold(0.0, f64::max);
        // Headroom on the right keeps the legend clear of the longest bar.
        let mut chart = bands::chart(
            &area,
            "",
            &self.labels,
            bands::x_range(top, 1.4),
            "CPU seconds per GB (GB = 10^9 bytes)",
        )?;
        let n = self.labels.len();
        for (part, name) in PARTS.iter().enumerate() {
            let fill = colour(part).filled();
            let bars = self.parts.iter().enumerate().filter_map(|(i, p)| {
                let x0: f64 = p[..part].iter().flatten().sum();
                Some(Rectangle::new(bands::bar(i, n, 0, 1, x0, x0 + p[part]?), fill))
            });
            let name = if part == 2 && !self.sink_measured {
                "sink (not measured)"
            } else {
                name
            };
            chart
                .draw_series(bars)?
                .label(name)
                .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], fill));
        }
        legend(&mut chart)?;
        Ok(())
    }
}
