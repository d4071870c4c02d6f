//! A new user's first steps: the README's two commands pass the first time on a fresh machine (the build script
//! leaves git's index alone, so a second build is a no-op; package installs wait for each other), and the help,
//! completions and man page show the way.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::SystemTime;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn succeeds(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{cmd:?}: {text}");
    text
}

fn modified(path: &Path) -> SystemTime {
    std::fs::metadata(path).and_then(|m| m.modified()).unwrap()
}

/// The build script, compiled alone and run in a fresh clone as cargo would run it, must not write `.git/index`:
/// it watches that file, so a write makes the next `cargo build` run it and compile the crate again.
#[test]
fn the_build_script_leaves_the_index_alone() {
    if !Path::new(ROOT).join(".git").exists() {
        eprintln!("SKIP: the source is not a git checkout");
        return;
    }
    let dir = common::tmp();
    let clone = dir.path().join("clone");
    succeeds(Command::new("git").args(["clone", "-q", ROOT]).arg(&clone));
    let script = dir.path().join("build-script");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    succeeds(
        Command::new(rustc)
            .args(["--edition", "2024", "-O"])
            .arg(Path::new(ROOT).join("build.rs"))
            .arg("-o")
            .arg(&script),
    );
    let index = clone.join(".git/index");
    let before = (modified(&index), std::fs::read(&index).unwrap());
    // Twice, as two builds would: the first run of git in a fresh clone is the one that used to refresh it.
    for _ in 0..2 {
        let said = succeeds(Command::new(&script).env("CARGO_MANIFEST_DIR", &clone));
        let commit = said
            .lines()
            .find_map(|l| l.strip_prefix("cargo:rustc-env=XFERBENCH_GIT_COMMIT="))
            .expect(&said);
        assert_eq!(commit.len(), 40, "a clean clone's commit, not dirty: {said}");
        assert!(
            said.contains(&format!("cargo:rerun-if-changed={}", index.display())),
            "{said}"
        );
    }
    assert_eq!(
        (modified(&index), std::fs::read(&index).unwrap()),
        before,
        "the build script wrote .git/index: the next build would compile xferbench again"
    );
}

/// Two callers of `need_packages` at once (as the two tests of tests/kernels.rs are): the second waits for the
/// first, finds the command installed, and runs no apt-get of its own. The stand-in apt-get fails as the real one
/// does when another holds its lock.
#[test]
fn package_installs_wait_for_each_other() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("SKIP: need_packages installs only as root");
        return;
    }
    let dir = common::tmp();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let apt = bin.join("apt-get");
    std::fs::write(
        &apt,
        format!(
            r#"#!/bin/bash
held={d}/apt.held
if ! mkdir "$held" 2>/dev/null; then
    echo "E: Could not get lock {d}/lists/lock. It is held by process 1 (apt-get)" >&2; exit 100
fi
echo "$*" >> {d}/apt.log
sleep 0.5
case " $* " in *" install "*) printf '#!/bin/sh\n' > {b}/xferbench-test-tool; chmod +x {b}/xferbench-test-tool ;; esac
rmdir "$held"
"#,
            d = dir.path().display(),
            b = bin.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&apt, std::fs::Permissions::from_mode(0o755)).unwrap();
    let call = |who: &str| {
        Command::new("bash")
            .arg("-c")
            .arg(format!(
                ". {ROOT}/scripts/lib/packages.sh && need_packages {who} xferbench-test-tool=xferbench-test-pkg"
            ))
            .env(
                "PATH",
                format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default()),
            )
            .env("XFERBENCH_PACKAGES_LOCK", dir.path().join("packages.lock"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (call("first"), call("second"));
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{text}");
    }
    let log = std::fs::read_to_string(dir.path().join("apt.log")).unwrap();
    assert_eq!(log.lines().filter(|l| l.contains(" install ")).count(), 1, "{log}");
    assert!(bin.join("xferbench-test-tool").exists());
}

fn stdout_of(args: &[&str]) -> String {
    let out = common::xferbench().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `run --help` lists every strategy the code knows, each method on a line of its own with what it does; every
/// subcommand shows examples; `table`'s folder is `table`'s.
#[test]
fn help_lists_every_strategy_and_shows_examples() {
    use xferbench::model::{Method, Named, Strategy};
    let help = stdout_of(&["run", "--help"]);
    for s in Strategy::all() {
        assert!(help.contains(s.name()), "run --help lacks {}", s.name());
    }
    for m in Method::all() {
        let line = help
            .lines()
            .find(|l| {
                let l = l.trim_start();
                l.starts_with(&format!("{0}, parallel-{0} ", m.name()))
                    || l.starts_with(&format!("{0}, parallel-{0}, broker-{0} ", m.name()))
            })
            .unwrap_or_else(|| panic!("no line for {} in\n{help}", m.name()));
        let words: String = m.about().chars().take(20).collect();
        assert!(!m.about().is_empty() && line.contains(&words), "{line}");
    }
    let top = stdout_of(&["--help"]);
    let commands: Vec<&str> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.len() >= 11, "{top}");
    for c in commands {
        let help = stdout_of(&[c, "--help"]);
        assert!(help.contains("Examples:\n  xferbench"), "{c} --help has no example");
    }
    let table = stdout_of(&["table", "--help"]);
    assert!(!table.contains("`plot`"), "{table}");
    assert!(!stdout_of(&["run", "--help"]).contains("results/README.md"));
}

/// Completions for every shell clap knows, and a man page that roff reads without error, naming every command.
#[test]
fn completions_and_man_page_build() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = stdout_of(&["completions", shell]);
        assert!(
            script.contains("xferbench") && script.contains("strategies"),
            "{shell}: {script}"
        );
    }
    let dir = common::tmp();
    let bash = dir.path().join("xferbench.bash");
    std::fs::write(&bash, stdout_of(&["completions", "bash"])).unwrap();
    succeeds(Command::new("bash").arg("-n").arg(&bash));
    common::xferbench().args(["completions", "tcsh"]).assert().code(2);

    let man = stdout_of(&["man"]);
    assert!(man.contains(".TH xferbench 1"), "{man}");
    for section in ["XFERBENCH RUN", "XFERBENCH COMPARE", "XFERBENCH MAN"] {
        assert!(man.contains(&format!(".SH \"{section}\"")), "no {section}");
    }
    assert!(man.contains("fail\\-if\\-slower") && man.contains("parallel\\-sendfile"));
    if Path::new("/usr/bin/groff").exists() {
        let page = dir.path().join("xferbench.1");
        std::fs::write(&page, &man).unwrap();
        let out = Command::new("groff")
            .args(["-man", "-Tutf8", "-z"])
            .arg(&page)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}
