//! Page-cache state of the test file: warm it, evict it, measure it. (Placeholder: being built.)

use std::path::Path;

/// Reads the whole file so that its pages are resident.
pub fn warm(_path: &Path) -> anyhow::Result<()> {
    anyhow::bail!("cache::warm is not built yet")
}

/// Writes back and evicts the file's pages; with `drop_all` also drops the whole page cache (root only).
pub fn evict(_path: &Path, _drop_all: bool) -> anyhow::Result<()> {
    anyhow::bail!("cache::evict is not built yet")
}

/// Fraction of the file's pages resident in the page cache (mincore).
pub fn residency(_path: &Path) -> anyhow::Result<f64> {
    anyhow::bail!("cache::residency is not built yet")
}
