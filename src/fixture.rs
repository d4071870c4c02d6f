//! The test file: made once from the generator in `pattern`, reused while its sidecar matches.
//! (Placeholder: being built.)

use std::path::{Path, PathBuf};

/// What to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureSpec {
    pub path: PathBuf,
    pub size: u64,
    pub seed: u64,
}

/// A file ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fixture {
    pub path: PathBuf,
    pub size: u64,
    /// Seed of a generated fixture; None for a user's own file (checked by byte count only).
    pub seed: Option<u64>,
}

/// Default location of a generated fixture.
pub fn default_path(dir: &Path, size: u64, seed: u64) -> PathBuf {
    dir.join(format!("xferbench-{size}-seed{seed}.bin"))
}

/// Makes the fixture, or reuses a matching one.
pub fn ensure(spec: &FixtureSpec, _progress: bool) -> anyhow::Result<Fixture> {
    anyhow::bail!("fixture creation is not built yet: {}", spec.path.display())
}

/// Opens a user's own file to send.
pub fn open_user_file(path: &Path) -> anyhow::Result<Fixture> {
    let size = std::fs::metadata(path)?.len();
    Ok(Fixture {
        path: path.to_path_buf(),
        size,
        seed: None,
    })
}
