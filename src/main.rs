//! The binary: parse, dispatch, print the error chain, exit with the documented status.

use clap::Parser;
use xferbench::cli::{Cli, Command, Format};
use xferbench::dispatch as commands;
use xferbench::error::{EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE, UsageError};

fn main() {
    let cli = Cli::try_parse().unwrap_or_else(|err| exit_on_parse_error(err));
    let result = match cli.command {
        Command::Run(args) => commands::run(args),
        Command::Sink(args) => commands::sink(args).map(|()| 0),
        Command::Fixture(args) => commands::fixture(args).map(|()| 0),
        Command::Plot(args) => commands::plot(&args.dir).map(|files| {
            files
                .iter()
                .for_each(|f| xferbench::out::println(&f.display().to_string()));
            0
        }),
        Command::Table(args) => printed(match args.format {
            Format::Text => commands::table(&args.dir, args.margin.same_within),
            Format::Json => commands::table_json(&args.dir, args.margin.same_within),
        }),
        Command::Article(args) => commands::article(&args.dir, args.original.as_deref()).and_then(|table| {
            std::fs::write(args.dir.join("article.md"), &table)?;
            xferbench::out::print(&table);
            Ok(0)
        }),
        Command::Compare(args) => commands::compare_command(&args),
        Command::Env(args) => printed(commands::env(args)),
        Command::Stats(args) => match (&args.mb_s, &args.file) {
            (Some(dir), _) => commands::median_mb_s(dir).map(|v| {
                xferbench::out::println(&format!("{v:.1}"));
                0
            }),
            (None, Some(file)) => printed(commands::stats(
                file,
                args.baseline.as_deref(),
                args.lower_is_better,
                args.margin.same_within,
            )),
            (None, None) => Err(xferbench::error::UsageError::msg("stats needs a CSV file or --mb-s DIR").into()),
        },
        Command::Completions(args) => printed(Ok(commands::completions(args.shell))),
        Command::Man => printed(commands::man()),
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

/// Help and version go to stdout as clap writes them (exit 0); a bad command line is one line on stderr, in the
/// form of every other error, exit 2 (`cli::error_line`).
fn exit_on_parse_error(err: clap::Error) -> ! {
    use clap::error::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        err.exit();
    }
    eprintln!("xferbench: error: {} (see --help)", xferbench::cli::error_line(&err));
    std::process::exit(EXIT_USAGE)
}

/// A command whose whole answer is text for stdout: printed, exit 0.
fn printed(text: anyhow::Result<String>) -> anyhow::Result<i32> {
    text.map(|t| {
        xferbench::out::print(&t);
        0
    })
}
