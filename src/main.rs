//! The binary: parse, dispatch, print the error chain, exit with the documented status.

use clap::Parser;
use xferbench::cli::{Cli, Command};
use xferbench::error::{EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE, UsageError};

fn main() {
    let cli = Cli::try_parse().unwrap_or_else(|err| exit_on_parse_error(err));
    let result = match cli.command {
        Command::Run(args) => xferbench::runner::main(args),
        Command::Sink(args) => xferbench::sink::main(args).map(|()| 0),
        Command::Fixture(args) => fixture(args).map(|()| 0),
        Command::Plot(args) => xferbench::plot::plot_dir(&args.dir).map(|files| {
            files.iter().for_each(|f| xferbench::outln!("{}", f.display()));
            0
        }),
        Command::Article(args) => xferbench::article::table(&args.dir, args.original.as_deref()).and_then(|table| {
            std::fs::write(args.dir.join("article.md"), &table)?;
            xferbench::out!("{table}");
            Ok(0)
        }),
        Command::Compare(args) => xferbench::compare::compare_dirs(&args.dirs, &args.out).map(|table| {
            xferbench::out!("{table}");
            0
        }),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            eprintln!("xferbench: error: {err:#}");
            let usage = err.chain().any(|cause| cause.is::<UsageError>());
            let interrupted = err.chain().any(|cause| cause.is::<xferbench::fixture::Interrupted>());
            std::process::exit(match (usage, interrupted) {
                (true, _) => EXIT_USAGE,
                (_, true) => EXIT_INTERRUPTED,
                _ => EXIT_FAILURE,
            });
        }
    }
}

fn fixture(args: xferbench::cli::FixtureArgs) -> anyhow::Result<()> {
    use xferbench::fixture::{FixtureSpec, default_path, ensure_until};
    let size = args
        .size
        .as_deref()
        .map(|s| xferbench::units::parse_size("--size", s))
        .transpose()?;
    if size == Some(0) {
        return Err(UsageError::msg("--size must be above 0 bytes").into());
    }
    let default_size = || xferbench::units::parse_size("--size", xferbench::cli::DEFAULT_SIZE).expect("a valid size");
    let path = args.path.clone().unwrap_or_else(|| {
        default_path(
            &args.fixture_dir,
            size.unwrap_or_else(default_size),
            args.seed.unwrap_or(1),
        )
    });
    if args.check {
        return check_fixture(path, size, args.seed);
    }
    // SIGINT and SIGTERM stop the making and remove the temporary file instead of killing the process mid-write.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, std::sync::Arc::clone(&stop))?;
    }
    let spec = FixtureSpec {
        path,
        size: size.unwrap_or_else(default_size),
        seed: args.seed.unwrap_or(1),
    };
    let fixture = ensure_until(&spec, true, &stop)?;
    xferbench::outln!(
        "{} ({} bytes, seed {})",
        fixture.path.display(),
        fixture.size,
        spec.seed
    );
    Ok(())
}

/// `fixture --check`: makes nothing. Size and seed are the ones given, else the sidecar's, else the file's
/// length and seed 1.
fn check_fixture(path: std::path::PathBuf, size: Option<u64>, seed: Option<u64>) -> anyhow::Result<()> {
    use xferbench::fixture::{Fixture, read_sidecar};
    let shown = path.display();
    let meta = std::fs::metadata(&path).map_err(|e| {
        UsageError::msg(format!(
            "--check: cannot check '{shown}': {e} (make it first, without --check)"
        ))
    })?;
    if !meta.is_file() {
        return Err(UsageError::msg(format!("--check: '{shown}' is not a regular file")).into());
    }
    let side = read_sidecar(&path);
    if let Some(v) = side.as_ref().map(|s| s.generator_version)
        && v != xferbench::pattern::GENERATOR_VERSION
    {
        anyhow::bail!(
            "'{shown}' was made by generator version {v} and this xferbench generates version {}: \
             make it again (run or fixture without --check)",
            xferbench::pattern::GENERATOR_VERSION
        );
    }
    let fixture = Fixture {
        size: size.or(side.as_ref().map(|s| s.size_bytes)).unwrap_or(meta.len()),
        seed: Some(seed.or(side.as_ref().map(|s| s.seed)).unwrap_or(1)),
        path,
    };
    let (shown, seed) = (fixture.path.display(), fixture.seed.unwrap_or(1));
    xferbench::outln!("{shown} ({} bytes, seed {seed})", fixture.size);
    if let Some(offset) = xferbench::fixture::verify_file(&fixture)? {
        // A seed or size given that the sidecar contradicts is the likelier mistake than a damaged file.
        if let Some(s) = side.filter(|s| (s.seed, s.size_bytes) != (seed, fixture.size)) {
            anyhow::bail!(
                "'{shown}' differs from the generator (seed {seed}, {} bytes) at offset {offset}, but its sidecar \
                 says it was made with seed {} and {} bytes: check it with those",
                fixture.size,
                s.seed,
                s.size_bytes
            );
        }
        anyhow::bail!(
            "'{shown}' differs from the generator (seed {seed}, {} bytes) at offset {offset}: delete it (and its \
             .meta.json) to have it made again",
            fixture.size
        );
    }
    xferbench::outln!("checked: every byte matches the generator");
    Ok(())
}

/// Help and version go to stdout as clap writes them (exit 0); a bad command line is one line on stderr, in the
/// form of every other error, exit 2. clap's first line names what was wrong; the usage block after it is dropped.
fn exit_on_parse_error(err: clap::Error) -> ! {
    use clap::error::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        err.exit();
    }
    let text = err.to_string();
    let mut lines = text.lines().map(str::trim);
    let first = lines.next().unwrap_or_default();
    let mut line = first.strip_prefix("error: ").unwrap_or(first).to_string();
    // clap's tips ("a similar argument exists: '--size'") are worth keeping, on the same line.
    for tip in lines.filter(|l| l.starts_with("tip: ")) {
        line = format!("{line}; {tip}");
    }
    eprintln!("xferbench: error: {line} (see --help)");
    std::process::exit(EXIT_USAGE)
}
