//! Command-line definitions only: what the user may type. Values stay as typed here; `config` checks them and
//! resolves what depends on the machine, so no clap type reaches the core.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Default strategies of `run`: the article's four paths.
pub const DEFAULT_STRATEGIES: &str = "read-send,mmap-send,sendfile,parallel-sendfile";

/// The size of the generated test file when none is given: the article's 1.2 GB.
pub const DEFAULT_SIZE: &str = "1.2GB";

#[derive(Debug, Parser)]
#[command(
    name = "xferbench",
    version,
    about = "What zero-copy really buys when a Linux box sends a file over TCP, serially and in parallel",
    after_help = "Exit status: 0 all cases ok, 1 a runtime failure or a failed case, 2 a usage error, 130 interrupted."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: the size difference between variants costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Send a file through each strategy and record throughput, CPU, context switches and faults.
    Run(RunArgs),
    /// Receive streams and report on each: bytes, verification, byte times, CPU (serves until stopped).
    Sink(SinkArgs),
    /// Make (or reuse) the deterministic test file.
    Fixture(FixtureArgs),
    /// Draw the charts of a result folder from its runs.csv.
    Plot(PlotArgs),
    /// Line up result sets from different machines or kernels.
    Compare(CompareArgs),
    /// Put the article's 2017 medians beside a result folder's (writes DIR/article.md).
    Article(ArticleArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Send this existing file instead of a generated fixture (content then checked by byte count only).
    #[arg(long, value_name = "PATH", conflicts_with_all = ["size", "seed"])]
    pub file: Option<PathBuf>,
    /// Size of the generated fixture.
    // Numbers and sizes take a leading '-' as their value, so that `--size -5MB` is refused by `config` with the
    // flag and the rule named, not by clap as an unknown argument '-5'.
    #[arg(long, value_name = "SIZE", default_value = DEFAULT_SIZE, allow_hyphen_values = true)]
    pub size: String,
    /// Seed of the generated fixture's content.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// Folder that holds generated fixtures.
    #[arg(long, value_name = "DIR", default_value = "fixtures")]
    pub fixture_dir: PathBuf,
    /// Strategies to run, comma-separated; `parallel-X` runs X on --threads connections.
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = DEFAULT_STRATEGIES)]
    pub strategies: Vec<String>,
    /// Thread (connection) counts for parallel strategies, comma-separated.
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "10",
        allow_hyphen_values = true
    )]
    pub threads: Vec<String>,
    /// Bytes per transfer call (and the read buffer of read-send), comma-separated.
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "10MiB",
        allow_hyphen_values = true
    )]
    pub chunk: Vec<String>,
    /// How parallel strategies divide the file: striped (chunk k to thread k mod N) or contiguous.
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "striped")]
    pub layout: Vec<String>,
    /// Page-cache state before each case: warm (file read first) or cold (file evicted), comma-separated.
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "warm")]
    pub cache: Vec<String>,
    /// Counted repetitions of each case.
    #[arg(long, value_name = "N", default_value = "3", allow_hyphen_values = true)]
    pub repeat: String,
    /// Uncounted warm-up repetitions before each case's counted ones.
    #[arg(long, value_name = "N", default_value = "1", allow_hyphen_values = true)]
    pub warmup: String,
    /// Have the sink check every byte against the fixture generator.
    #[arg(long)]
    pub verify: bool,
    /// Where the sink checks with --verify: receiver (in the receiving thread), thread (a checking thread of its
    /// own per stream), auto (a thread of its own when the sink has 3 CPUs per stream).
    #[arg(long, value_name = "WHERE", default_value = "auto")]
    pub verify_on: String,
    /// Receive buffer of the sink this run spawns.
    #[arg(long, value_name = "SIZE", default_value = "256KiB", allow_hyphen_values = true)]
    pub rx_buffer: String,
    /// How the spawned sink receives: copy (recv into a buffer), trunc (MSG_TRUNC), splice (to /dev/null).
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "copy")]
    pub rx_mode: Vec<String>,
    /// The run's result folder (gets runs.csv and summary.json); default results/<UTC timestamp>-<host>.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Skip cases that runs.csv in --out already holds in full (for resumable sweeps).
    #[arg(long, requires = "out")]
    pub resume: bool,
    /// For cold cases, also drop the whole page cache (root only) after evicting the file.
    #[arg(long)]
    pub drop_caches: bool,
    /// Longest a single repetition may take before it is failed.
    #[arg(long, value_name = "DURATION", default_value = "120s", allow_hyphen_values = true)]
    pub timeout: String,
    /// Stop at the first failed case instead of going on.
    #[arg(long)]
    pub fail_fast: bool,
    /// Draw the charts into the result folder at the end.
    #[arg(long)]
    pub plot: bool,
    /// Send to an `xferbench sink` already running at HOST:PORT instead of spawning one on loopback.
    #[arg(long, value_name = "HOST:PORT")]
    pub connect: Option<String>,
    /// Send the bare file bytes with no header and no report, so any TCP receiver can be the other end.
    #[arg(long, requires = "connect", conflicts_with = "verify")]
    pub raw: bool,
    /// Secret the sink asks for (its --token).
    #[arg(long, value_name = "SECRET")]
    pub token: Option<String>,
    /// SO_SNDBUF of the sender's sockets.
    #[arg(long, value_name = "SIZE")]
    pub sndbuf: Option<String>,
    /// SO_RCVBUF of the spawned sink's sockets.
    #[arg(long, value_name = "SIZE")]
    pub rcvbuf: Option<String>,
    /// Set TCP_NODELAY on the sender's sockets.
    #[arg(long)]
    pub nodelay: bool,
    /// Pin the sender's threads to these CPUs (e.g. 0-3,8).
    #[arg(long, value_name = "LIST")]
    pub sender_cpus: Option<String>,
    /// Pin the spawned sink to these CPUs.
    #[arg(long, value_name = "LIST")]
    pub sink_cpus: Option<String>,
    /// Submission queue depth of the io-uring strategy.
    #[arg(long, value_name = "N", default_value = "8")]
    pub queue_depth: String,
    /// Print only the final table.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print the plan (cases, runs, bytes) and exit without making or sending anything.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct SinkArgs {
    /// Address to listen on (port 0 picks a free one; the address is printed on the first line of stdout).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7700")]
    pub listen: String,
    /// Bytes per receive call.
    #[arg(long, value_name = "SIZE", default_value = "256KiB", allow_hyphen_values = true)]
    pub rx_buffer: String,
    /// copy (recv into a buffer), trunc (recv with MSG_TRUNC, the kernel discards), splice (to /dev/null).
    #[arg(long, value_name = "MODE", default_value = "copy")]
    pub rx_mode: String,
    /// Secret every stream header must carry; streams without it are dropped.
    #[arg(long, value_name = "SECRET")]
    pub token: Option<String>,
    /// SO_RCVBUF of accepted sockets.
    #[arg(long, value_name = "SIZE")]
    pub rcvbuf: Option<String>,
    /// Pin the sink to these CPUs (e.g. 4-7).
    #[arg(long, value_name = "LIST")]
    pub cpus: Option<String>,
    /// Do not announce the address and limits on stderr (rejections are still logged).
    #[arg(long, hide = true)]
    pub quiet: bool,
    /// Close a connection that sends nothing for this long.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub idle_timeout: String,
}

#[derive(Debug, Args)]
pub struct FixtureArgs {
    /// Size of the file [default: 1.2GB; with --check, what the file's sidecar records].
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub size: Option<String>,
    /// Where to write it; default <fixture-dir>/xferbench-<bytes>-seed<N>.bin, the file `run` uses. A file there
    /// is replaced only if xferbench made it.
    #[arg(long, value_name = "PATH")]
    pub path: Option<PathBuf>,
    /// Folder that holds generated fixtures, as for `run`.
    #[arg(long, value_name = "DIR", default_value = "fixtures", conflicts_with = "path")]
    pub fixture_dir: PathBuf,
    /// Seed of the content [default: 1; with --check, what the file's sidecar records].
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Make nothing: read an existing fixture back and check every byte against the generator (the sidecar only
    /// vouches for size, seed and generator version); exit 1 at the first byte that differs.
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Args)]
pub struct PlotArgs {
    /// A result folder holding runs.csv; the charts are written beside it.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Result folders, each holding runs.csv; the first is the baseline of the ratios.
    #[arg(value_name = "DIR", num_args = 2.., required = true)]
    pub dirs: Vec<PathBuf>,
    /// Folder for the comparison chart and table (default: the current folder).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct ArticleArgs {
    /// A result folder holding runs.csv with sendfile, parallel-sendfile and read-send rows, cold and warm.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// The original study's runs, one row per trial [default: the copy built into xferbench, from
    /// fixtures/article/original-runs.csv].
    #[arg(long, value_name = "PATH")]
    pub original: Option<PathBuf>,
}
