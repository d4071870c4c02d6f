//! `xferbench compare`: load the sets, write the Markdown (printed, or as JSON), the files of `--out`, and with
//! `--fail-if-slower` the exit status a kernel CI can act on.

use super::gate::{self, Gate};
use crate::base::cli::{CompareArgs, Format};
use crate::base::error::EXIT_SLOWER;

/// Runs `compare` as the command line asks; returns the exit status (0, or `EXIT_SLOWER` when
/// `--fail-if-slower` found a case slower for sure).
pub fn command(args: &CompareArgs) -> anyhow::Result<i32> {
    let (sets, common) = super::load(&args.dirs)?;
    let within = args.margin.same_within;
    let markdown = super::document(&sets, &common, within);
    if let Some(out) = &args.out {
        super::write_out(out, &sets, &common, &markdown, within)?;
    }
    let gate: Option<Gate> = args.fail_if_slower.map(|pct| gate::check(&sets, &common, pct));
    match args.format {
        Format::Text => crate::base::out::print(&markdown),
        Format::Json => crate::base::out::print(&super::json::document(&sets, &common, gate.as_ref(), within)?),
    }
    let Some(gate) = gate else { return Ok(0) };
    eprintln!("{}", gate.words());
    Ok(if gate.slower.is_empty() { 0 } else { EXIT_SLOWER })
}
