//! Helpers shared by the integration tests: run the binary in a temporary folder, read what it wrote.

#![allow(dead_code)]

use assert_cmd::Command;
use std::path::{Path, PathBuf};
use std::time::Duration;
use xferbench::record::{Row, read_rows};

/// The `xferbench` binary with a time limit, so that a hang fails the test instead of stalling CI.
pub fn xferbench() -> Command {
    let mut cmd = Command::cargo_bin("xferbench").expect("the binary is built");
    cmd.timeout(Duration::from_secs(120));
    cmd
}

/// A `run` on a small fixture made in `dir`, writing into `dir/out`.
pub fn small_run(dir: &Path, size: &str) -> Command {
    let mut cmd = xferbench();
    cmd.current_dir(dir)
        .args(["run", "--size", size, "--repeat", "1", "--warmup", "0", "--quiet"])
        .args([
            "--fixture-dir".as_ref(),
            dir.join("fixtures").as_os_str(),
            "--out".as_ref(),
            dir.join("out").as_os_str(),
        ]);
    cmd
}

pub fn out_rows(dir: &Path) -> Vec<Row> {
    read_rows(&dir.join("out").join("runs.csv")).expect("runs.csv parses")
}

pub fn out_dir(dir: &Path) -> PathBuf {
    dir.join("out")
}
