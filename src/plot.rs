//! Charts of a result folder. (Placeholder: being built.)

use std::path::{Path, PathBuf};

/// Draws every chart of `dir/runs.csv` into `dir`, returning the files written.
pub fn plot_dir(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    anyhow::bail!("plot is not built yet: {}", dir.display())
}
