//! Charts of a result folder: `xferbench plot DIR` reads `DIR/runs.csv` and writes each figure beside it as PNG
//! (to look at) and SVG (to put in a page), the answer first (`ratio`); report.html takes the same figures as SVG
//! text (`ToSvg`). Each figure lives in its own module; this one holds what they share:
//! the canvas size, the embedded font, the palette, case labels, medians and the code that draws one figure to
//! both backends.
//!
//! Only rows with status `ok` are drawn: a failed repetition has no meaningful throughput. The font is compiled
//! in (DejaVu Sans from the `dejavu` crate) so that charts render the same on a bare machine with no font package.

pub(crate) mod bands;
mod consumers;
mod cpu;
mod latency;
pub(crate) mod ratio;
mod switches;
mod throughput;
mod timeline;

use crate::base::model::Cache;
use crate::base::units::format_bytes;
use crate::results::record::Row;
use anyhow::{Context, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Canvas of every figure, in pixels (PNG) or user units (SVG).
pub(crate) const SIZE: (u32, u32) = (1400, 860);
/// Family name the embedded font is registered under; plotters' own default text uses this name too.
pub(crate) const FONT: &str = "sans-serif";
/// Colour-blind-safe series colours (Okabe–Ito), in the order series are given them.
pub(crate) const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
    RGBColor(120, 94, 240),
    RGBColor(80, 80, 80),
];

/// The `i`th series colour, cycling when there are more series than colours.
pub(crate) fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Registers the embedded font once per process; plotters finds no text otherwise (no system fonts are used).
pub(crate) fn register_font() -> anyhow::Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).is_ok()
            && plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold()).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(anyhow!("the embedded DejaVu Sans font does not parse"))
    }
}

/// One chart that can be drawn onto any backend, so PNG and SVG come from the same code.
pub(crate) trait Figure {
    /// File name without extension, e.g. `throughput`.
    fn stem(&self) -> &str;
    /// Draws the whole figure onto `root` (already filled white).
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> anyhow::Result<()>
    where
        DB::ErrorType: 'static;
}

/// What is done with each figure of a folder: drawn into files, or kept as SVG text for a page.
pub(crate) trait Draw {
    fn figure(&mut self, fig: &impl Figure) -> anyhow::Result<()>;
}

/// Draws each figure into `dir/<stem>.png` and `.svg`, keeping the paths.
pub(crate) struct ToFiles<'a> {
    pub dir: &'a Path,
    pub files: Vec<PathBuf>,
}

impl Draw for ToFiles<'_> {
    fn figure(&mut self, fig: &impl Figure) -> anyhow::Result<()> {
        self.files.extend(render(self.dir, fig)?);
        Ok(())
    }
}

/// Keeps each figure as (stem, SVG text), for report.html.
#[derive(Default)]
pub(crate) struct ToSvg {
    pub svgs: Vec<(String, String)>,
}

impl Draw for ToSvg {
    fn figure(&mut self, fig: &impl Figure) -> anyhow::Result<()> {
        self.svgs.push((fig.stem().to_string(), svg(fig)?));
        Ok(())
    }
}

/// `fig` as SVG text (the same drawing as its .svg file).
pub(crate) fn svg(fig: &impl Figure) -> anyhow::Result<String> {
    register_font()?;
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, SIZE).into_drawing_area();
        draw_on(&root, fig).with_context(|| format!("cannot draw {}", fig.stem()))?;
    }
    Ok(text)
}

/// Draws `fig` into `dir/<stem>.png` and `dir/<stem>.svg`, returning both paths.
pub(crate) fn render(dir: &Path, fig: &impl Figure) -> anyhow::Result<Vec<PathBuf>> {
    register_font()?;
    let png = dir.join(format!("{}.png", fig.stem()));
    let svg = dir.join(format!("{}.svg", fig.stem()));
    {
        let root = BitMapBackend::new(&png, SIZE).into_drawing_area();
        draw_on(&root, fig).with_context(|| format!("cannot draw '{}'", png.display()))?;
    }
    {
        let root = SVGBackend::new(&svg, SIZE).into_drawing_area();
        draw_on(&root, fig).with_context(|| format!("cannot draw '{}'", svg.display()))?;
    }
    Ok(vec![png, svg])
}

fn draw_on<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, fig: &impl Figure) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    fig.draw(root)?;
    // The bitmap backend writes its file here; an error (disk full, no permission) must not pass silently.
    root.present()?;
    Ok(())
}

/// Draws a chart's series legend as every chart here has it: lower right, on a pale box.
pub(crate) fn legend<'a, DB, CT>(chart: &mut ChartContext<'a, DB, CT>) -> anyhow::Result<()>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    CT: plotters::coord::CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font((FONT, 16))
        .draw()?;
    Ok(())
}

/// Splits off a two-line heading (figure name, then the machine and file it describes) and returns the rest.
pub(crate) fn titled<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    subtitle: &str,
) -> anyhow::Result<DrawingArea<DB, Shift>>
where
    DB::ErrorType: 'static,
{
    let area = root.titled(title, (FONT, 30).into_font().style(FontStyle::Bold))?;
    Ok(area.titled(subtitle, (FONT, 18))?)
}

/// A heading of the figure's name and as many lines under it as `lines` holds (each wrapped to fit the canvas),
/// and the rest of the area.
pub(crate) fn titled_lines<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    lines: &[String],
) -> anyhow::Result<DrawingArea<DB, Shift>>
where
    DB::ErrorType: 'static,
{
    let mut area = root.titled(title, (FONT, 30).into_font().style(FontStyle::Bold))?;
    // DejaVu Sans at 18 px averages about 10 px a character: 130 characters fill the 1,400-pixel canvas.
    for line in lines.iter().flat_map(|l| wrap(l, 130)) {
        area = area.titled(&line, (FONT, 18))?;
    }
    Ok(area)
}

/// `text` cut into lines of at most `width` characters, at spaces (a word longer than that keeps its own line).
pub(crate) fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// Reads the rows of `dir/runs.csv` that count: status `ok`. None at all is an error, as there is nothing to draw.
pub fn ok_rows(dir: &Path) -> anyhow::Result<Vec<Row>> {
    ok_of(dir, crate::results::record::read_rows(dir)?)
}

/// The ok rows of `rows` (read from `dir`), or the error `ok_rows` gives when there are none.
pub(crate) fn ok_of(dir: &Path, rows: Vec<Row>) -> anyhow::Result<Vec<Row>> {
    let path = dir.join("runs.csv");
    let total = rows.len();
    let ok: Vec<Row> = rows.into_iter().filter(Row::is_ok).collect();
    anyhow::ensure!(
        !ok.is_empty(),
        "'{}' has no row with status ok ({total} rows in all): nothing to draw or compare",
        path.display()
    );
    Ok(ok)
}

/// The distinct values of `f` over `rows`, joined with `, ` (one value when the rows agree, as they should).
pub(crate) fn distinct(rows: &[Row], f: impl Fn(&Row) -> String) -> String {
    rows.iter()
        .map(f)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
        .join(", ")
}

/// The line under every title: where and what was measured.
pub(crate) fn subtitle(rows: &[Row]) -> String {
    format!(
        "{} · kernel {} · {} · file {} × {} passes · chunk {}",
        distinct(rows, |r| r.host.clone()),
        distinct(rows, |r| r.kernel.clone()),
        distinct(rows, |r| r.cpu_model.clone()),
        distinct(rows, |r| format_bytes(r.file_bytes)),
        distinct(rows, |r| r.passes.to_string()),
        distinct(rows, |r| format_bytes(r.chunk_bytes)),
    )
}

/// Median, minimum and maximum of some repetitions: the summary's own statistic.
pub(crate) type Spread = crate::results::stats::Stat;

/// The spread of `values`, or None when there are none.
pub(crate) fn spread(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
    Spread::of(&values.into_iter().collect::<Vec<f64>>())
}

/// The summary's cases of `rows`, in the order the story is told: charts draw the table's own numbers.
pub(crate) fn summary(rows: &[Row]) -> Vec<crate::results::summary::CaseSummary> {
    let mut cases = crate::results::summary::summarise(rows);
    cases.sort_by_key(|c| c.key);
    cases
}

/// The labels of `cases`: the strategy and whatever varies among them.
pub(crate) fn labels(cases: &[crate::results::summary::CaseSummary]) -> Vec<String> {
    let labeler = crate::base::model::Labeler::new(cases.iter().map(|c| &c.key));
    cases.iter().map(|c| labeler.label(&c.key)).collect()
}

/// The cache states of `rows`, warm first.
pub(crate) fn caches(rows: &[Row]) -> Vec<Cache> {
    rows.iter()
        .map(|r| r.cache)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The whole lines of `dir/series.csv` (none when the folder has no such file: a set made before it, or with
/// `--interval 0`).
pub(crate) fn read_series(dir: &Path) -> anyhow::Result<Vec<crate::results::record::SeriesRow>> {
    let path = dir.join("series.csv");
    let Ok(bytes) = std::fs::read(&path) else {
        return Ok(Vec::new());
    };
    // A line a crash cut short is not read.
    let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    csv::Reader::from_reader(&bytes[..whole])
        .deserialize()
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("'{}' does not parse", path.display()))
}

/// The margin (`--same-within`) the folder's run judged its ratios against, as its summary.json's verdicts say (a
/// folder without them: the default), so that its charts and report mark `=` as its table did.
pub(crate) fn margin_of(dir: &Path) -> f64 {
    let text = std::fs::read_to_string(dir.join("summary.json")).unwrap_or_default();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    doc["cases"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|c| c["vs_sendfile_verdict"]["same_within"].as_f64())
        .unwrap_or(crate::results::stats::DEFAULT_SAME_WITHIN)
}

/// Every figure of a folder's ok rows (and its series), the answer first: the ratio chart (where a case has a
/// ratio), throughput against threads (the cases that are not a broker's), a broker's consumers, CPU, switches,
/// latency and the timeline (where series.csv has lines).
pub(crate) fn figures(dir: &Path, rows: &[Row], to: &mut impl Draw) -> anyhow::Result<()> {
    if let Some(r) = ratio::RatioChart::of_run(rows, margin_of(dir)) {
        to.figure(&r)?;
    }
    // Threads are the x axis there; a broker's cases have consumers instead, and a chart of their own.
    let plain: Vec<Row> = rows.iter().filter(|r| r.consumers.is_none()).cloned().collect();
    if !plain.is_empty() {
        to.figure(&throughput::Throughput::new(&plain))?;
    }
    if let Some(c) = consumers::ConsumerChart::new(rows) {
        to.figure(&c)?;
    }
    to.figure(&cpu::Cpu::new(rows))?;
    to.figure(&switches::Switches::new(rows))?;
    to.figure(&latency::Latency::new(rows))?;
    if let Some(t) = timeline::Timeline::new(rows, &read_series(dir)?) {
        to.figure(&t)?;
    }
    Ok(())
}

/// Writes every figure of `ok` (a folder's ok rows, already read) into `dir`, returning the files written
/// (`report::plot_dir`, which `xferbench plot` runs, adds the report).
pub(crate) fn plot_rows(dir: &Path, ok: &[Row]) -> anyhow::Result<Vec<PathBuf>> {
    let mut to = ToFiles { dir, files: Vec::new() };
    figures(dir, ok, &mut to)?;
    Ok(to.files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_cuts_at_spaces() {
        assert_eq!(wrap("a bb ccc dddd", 6), vec!["a bb", "ccc", "dddd"]);
        assert_eq!(wrap("", 6), vec![""]);
        assert_eq!(wrap("averyverylongword x", 4), vec!["averyverylongword", "x"]);
    }

    #[test]
    fn spread_of_odd_and_even_counts() {
        assert_eq!(
            spread([3.0, 1.0, 2.0]),
            Some(Spread {
                median: 2.0,
                min: 1.0,
                max: 3.0
            })
        );
        assert_eq!(spread([4.0, 1.0, 2.0, 3.0]).map(|s| s.median), Some(2.5));
        assert_eq!(spread(Vec::new()), None);
    }
}
