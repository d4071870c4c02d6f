//! Lines up result sets. (Placeholder: being built.)

use std::path::{Path, PathBuf};

/// Compares the result folders, writes the chart into `out`, returns the markdown table.
pub fn compare_dirs(dirs: &[PathBuf], out: &Path) -> anyhow::Result<String> {
    anyhow::bail!("compare is not built yet: {} sets into {}", dirs.len(), out.display())
}
