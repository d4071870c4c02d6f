//! Records the git commit xferbench is built from (`XFERBENCH_GIT_COMMIT`, "-dirty" when tracked files had
//! changes), so a result set can name the exact code that made it. Empty when the source is not a git checkout or
//! git is missing: the build never fails for want of git.
//!
//! Cargo reruns this when HEAD moves (a checkout), when the branch it points to moves (a commit), when the index
//! changes (a commit or `git add`) and when the sources change (the tree may have become dirty). In a git worktree
//! `.git` is a file and HEAD lives in the worktree's own git directory while branches live in the common one,
//! so both are asked of git rather than assumed.
//!
//! Every git command runs with `--no-optional-locks`: a plain `git status` refreshes the index's cached file
//! times and writes `.git/index` back, a file this script watches, so the next build would run it (and compile
//! the crate) again with nothing changed.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    println!("cargo:rerun-if-changed=build.rs");
    let commit = if root.join(".git").exists() {
        git_commit(&root)
    } else {
        None
    };
    println!("cargo:rustc-env=XFERBENCH_GIT_COMMIT={}", commit.unwrap_or_default());
}

/// The commit, with "-dirty" when tracked files differ from it; `None` when git cannot say.
fn git_commit(root: &Path) -> Option<String> {
    watch_git(root);
    for source in ["src", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={source}");
    }
    let commit = git(root, &["rev-parse", "HEAD"])?;
    // Untracked files are not part of the tree a commit names, so they do not make it dirty.
    let status = git(root, &["status", "--porcelain", "--untracked-files=no"])?;
    Some(if status.is_empty() {
        commit
    } else {
        format!("{commit}-dirty")
    })
}

/// Asks cargo to rerun when HEAD, the branch it names, or the index change. Only files that exist are named:
/// cargo reruns every build for a missing one.
fn watch_git(root: &Path) {
    let (Some(git_dir), Some(common_dir)) = (
        git(root, &["rev-parse", "--git-dir"]).map(|d| root.join(d)),
        git(root, &["rev-parse", "--git-common-dir"]).map(|d| root.join(d)),
    ) else {
        return;
    };
    let mut watched = vec![
        git_dir.join("HEAD"),
        git_dir.join("index"),
        common_dir.join("packed-refs"),
    ];
    if let Some(branch) = git(root, &["symbolic-ref", "-q", "HEAD"]) {
        watched.push(common_dir.join(branch));
    }
    for path in watched.iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

/// One git command's trimmed standard output; `None` when git is missing or fails.
fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("--no-optional-locks")
        .args(args)
        .current_dir(root)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}
