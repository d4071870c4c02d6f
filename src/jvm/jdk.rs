//! The JDK and the sender compiled with it. The JDK is the `java` and `javac` on PATH, or those under `--java DIR`
//! (a JDK home); the sender's sources (the repository's `jvm/` folder) are built into this binary and compiled on
//! first use into a cache keyed by the JDK (its path and `-version` texts) and the sources' SHA-256, so a second run
//! with the same JDK compiles nothing, and a new JDK or an edited source gets classes of its own.

use crate::base::error::UsageError;
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The sender's sources, as the repository's `jvm/` folder has them.
const SOURCES: &[(&str, &str)] = &[
    ("Sender.java", include_str!("../../jvm/Sender.java")),
    ("Stream.java", include_str!("../../jvm/Stream.java")),
    ("Json.java", include_str!("../../jvm/Json.java")),
    ("NetworkThread.java", include_str!("../../jvm/NetworkThread.java")),
];

/// The class the JVM starts.
pub const MAIN_CLASS: &str = "Sender";

/// What to install where no JDK is found (Debian's; the release this project is measured with).
pub const INSTALL: &str = "apt-get install openjdk-17-jdk-headless";

/// A JDK: its launcher, its compiler, and what `java -version` says.
#[derive(Debug, Clone)]
pub struct Jdk {
    pub java: PathBuf,
    pub javac: PathBuf,
    /// The first line of `java -version`, e.g. `openjdk version "17.0.15" 2025-04-15`.
    pub version: String,
    /// Everything `java -version` and `javac -version` said (part of the cache key).
    described: String,
}

/// The executable `name` on PATH, if any.
pub fn on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// Finds the JDK: under `home` (`--java DIR`) or on PATH. `who` names the strategy that needs it, for the one line
/// that says what to install.
pub fn locate(home: Option<&Path>, who: &str) -> Result<Jdk, UsageError> {
    let (java, javac) = match home {
        Some(dir) => {
            let (java, javac) = (dir.join("bin/java"), dir.join("bin/javac"));
            if !java.is_file() || !javac.is_file() {
                return Err(UsageError::new(
                    "--java",
                    &dir.display().to_string(),
                    "not a JDK home: bin/java and bin/javac are not both there",
                ));
            }
            (java, javac)
        }
        None => match (on_path("java"), on_path("javac")) {
            (Some(java), Some(javac)) => (java, javac),
            (java, _) => {
                let missing = if java.is_some() {
                    "javac is not on PATH (a JRE alone cannot compile the sender)"
                } else {
                    "neither java nor javac is on PATH"
                };
                return Err(UsageError::msg(format!(
                    "{who} runs in a JVM and needs a JDK, but {missing}: {INSTALL} (or name a JDK home with --java \
                     DIR)"
                )));
            }
        },
    };
    let said = |tool: &Path| -> Result<String, UsageError> {
        let out = Command::new(tool)
            .arg("-version")
            .output()
            .map_err(|e| UsageError::msg(format!("cannot run '{}': {e}", tool.display())))?;
        if !out.status.success() {
            return Err(UsageError::msg(format!(
                "'{} -version' failed ({}): is it a working JDK? {INSTALL}",
                tool.display(),
                out.status
            )));
        }
        // java prints its version on stderr, javac (9 and later) on stdout.
        Ok(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    };
    let java_said = said(&java)?;
    let described = format!(
        "{}\n{java_said}\n{}\n{}",
        java.display(),
        javac.display(),
        said(&javac)?
    );
    Ok(Jdk {
        version: java_said.lines().next().unwrap_or_default().trim().to_string(),
        java,
        javac,
        described,
    })
}

/// Where compiled senders are kept: `$XDG_CACHE_HOME/xferbench/jvm`, else `~/.cache/xferbench/jvm`, else under the
/// temporary folder.
pub fn cache_root() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })
        .unwrap_or_else(std::env::temp_dir);
    base.join("xferbench").join("jvm")
}

/// The sender compiled for `jdk`: the class folder, and whether it was compiled just now.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub classes: PathBuf,
    pub compiled_now: bool,
}

/// The cache key: the JDK as it describes itself and the sources, hashed.
fn key(jdk: &Jdk) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(jdk.described.as_bytes());
    for (name, text) in SOURCES {
        ctx.update(name.as_bytes());
        ctx.update(&(text.len() as u64).to_le_bytes());
        ctx.update(text.as_bytes());
    }
    ctx.finish().as_ref()[..10].iter().map(|b| format!("{b:02x}")).collect()
}

/// Compiles the sender with `jdk` into `root`, or finds it there already. Two runs compiling at once each build
/// in a folder of their own and the first to finish names the result; the other's work is dropped.
pub fn compile(jdk: &Jdk, root: &Path) -> anyhow::Result<Compiled> {
    let classes = root.join(key(jdk));
    if classes.join(format!("{MAIN_CLASS}.class")).is_file() {
        return Ok(Compiled {
            classes,
            compiled_now: false,
        });
    }
    std::fs::create_dir_all(root).with_context(|| format!("cannot make the JVM cache '{}'", root.display()))?;
    let work = root.join(format!(".build-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let (src, out) = (work.join("src"), work.join("classes"));
    std::fs::create_dir_all(&src)?;
    std::fs::create_dir_all(&out)?;
    let mut files = Vec::new();
    for (name, text) in SOURCES {
        let path = src.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write '{}'", path.display()))?;
        files.push(path);
    }
    let made = Command::new(&jdk.javac)
        .args(["-encoding", "UTF-8", "-nowarn", "-d"])
        .arg(&out)
        .args(&files)
        .output()
        .with_context(|| format!("cannot run '{}'", jdk.javac.display()))?;
    if !made.status.success() {
        let _ = std::fs::remove_dir_all(&work);
        anyhow::bail!(
            "javac could not compile the JVM sender ({}): {}",
            made.status,
            String::from_utf8_lossy(&made.stderr).trim()
        );
    }
    std::fs::write(out.join("jdk.txt"), &jdk.described)?;
    // The rename is the commit: a folder under the key is whole or absent.
    if std::fs::rename(&out, &classes).is_err() && !classes.join(format!("{MAIN_CLASS}.class")).is_file() {
        let _ = std::fs::remove_dir_all(&work);
        anyhow::bail!("cannot put the compiled sender in '{}'", classes.display());
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(Compiled {
        classes,
        compiled_now: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_follows_the_jdk() {
        let jdk = |said: &str| Jdk {
            java: "/j/bin/java".into(),
            javac: "/j/bin/javac".into(),
            version: String::new(),
            described: said.into(),
        };
        assert_eq!(key(&jdk("17.0.15")), key(&jdk("17.0.15")));
        assert_ne!(key(&jdk("17.0.15")), key(&jdk("21.0.2")));
        assert_eq!(key(&jdk("x")).len(), 20);
    }

    #[test]
    fn a_folder_that_is_not_a_jdk_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let e = locate(Some(dir.path()), "jvm-nio").unwrap_err().to_string();
        assert!(e.contains("--java") && e.contains("not a JDK home"), "{e}");
    }
}
