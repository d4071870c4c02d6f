//! Command-line definitions: what the user may type, parsed into typed values (sizes, counts, durations, names)
//! and nothing more. Whatever depends on the machine (free space, CPUs online, root) and on several flags at once
//! is `config`'s to check; no clap type reaches the core.

use crate::base::help;
use crate::base::model::{Cache, Cc, Layout, Link, Named, Order, Passes, Preset, Repeat, RxMode, Strategy, VerifyOn};
use crate::base::units::{self, CpuList};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// Default strategies of `run`: the article's four paths.
pub const DEFAULT_STRATEGIES: &str = "read-send,mmap-send,sendfile,parallel-sendfile";

/// The size of the generated test file when none is given: the article's 1.2 GB.
pub const DEFAULT_SIZE: &str = "1.2GB";

/// Most connections one case may open (a parallel case's threads, a broker's consumers; wire::MAX_STREAMS).
pub const MAX_THREADS: u32 = 1024;

/// `--consumers` of a broker case when none is given.
pub const DEFAULT_CONSUMERS: u32 = 8;
/// `--network-threads` when none is given: Kafka's `num.network.threads`.
pub const DEFAULT_NETWORK_THREADS: u32 = 3;
/// `--fetch-size` when none is given: Kafka's `max.partition.fetch.bytes`.
pub const DEFAULT_FETCH_BYTES: u64 = 1 << 20;

/// The values of a `Named` set, as clap's possible values (listed in --help and in the error for anything else).
fn named<T: Named + Send + Sync>() -> impl TypedValueParser<Value = T> {
    PossibleValuesParser::new(T::all().iter().map(|v| v.name())).map(|s| T::from_name(&s).expect("a listed name"))
}

/// Where the sink checks with --verify: a place, or its own choice (written `auto`, `receiver`, `thread`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyWhere {
    Auto,
    At(VerifyOn),
}

impl Serialize for VerifyWhere {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            VerifyWhere::Auto => s.serialize_str("auto"),
            VerifyWhere::At(on) => s.serialize_str(on.name()),
        }
    }
}

impl<'de> Deserialize<'de> for VerifyWhere {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<VerifyWhere, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        match text.as_ref() {
            "auto" => Ok(VerifyWhere::Auto),
            other => VerifyOn::from_name(other)
                .map(VerifyWhere::At)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// The layouts a parallel case may ask for (`single` is what serial cases have, not a choice).
fn parallel_layout() -> impl TypedValueParser<Value = Layout> {
    PossibleValuesParser::new([Layout::Striped.name(), Layout::Contiguous.name()])
        .map(|s| Layout::from_name(&s).expect("a listed name"))
}

fn verify_where() -> impl TypedValueParser<Value = VerifyWhere> {
    PossibleValuesParser::new(["auto", "receiver", "thread"]).map(|s| match VerifyOn::from_name(&s) {
        Ok(on) => VerifyWhere::At(on),
        Err(_) => VerifyWhere::Auto,
    })
}

fn file_size(text: &str) -> Result<u64, String> {
    match units::size(text)? {
        0 => Err("the file must hold at least 1 byte".into()),
        n => Ok(n),
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "xferbench",
    version,
    about = "What zero-copy really buys when a Linux box sends a file over TCP, serially and in parallel",
    after_help = "Exit status: 0 all cases ok, 1 a runtime failure or a failed case, 2 a usage error, 3 `compare \
                  --fail-if-slower` found a slower case, 130 interrupted.\n\nStart with `xferbench run` (the main \
                  job, about a minute) and read the table it prints; `xferbench <command> --help` shows examples."
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
    #[command(after_help = help::RUN)]
    Run(RunArgs),
    /// Receive streams and report on each: bytes, verification, byte times, CPU (serves until stopped).
    #[command(after_help = help::SINK)]
    Sink(SinkArgs),
    /// Make (or reuse) the deterministic test file.
    #[command(after_help = help::FIXTURE)]
    Fixture(FixtureArgs),
    /// Draw the charts of a result folder from its runs.csv, and write its report.html.
    #[command(after_help = help::PLOT)]
    Plot(PlotArgs),
    /// Print the table of a result folder from its runs.csv, as `run` prints it at its end.
    #[command(after_help = help::TABLE)]
    Table(TableArgs),
    /// Line up result sets from different machines or kernels.
    #[command(after_help = help::COMPARE)]
    Compare(CompareArgs),
    /// Put the article's 2017 medians beside a result folder's (writes DIR/article.md).
    #[command(after_help = help::ARTICLE)]
    Article(ArticleArgs),
    /// Show what shapes this machine's numbers: kernel, mitigations, TCP sysctls, offloads, CPU policy, limits.
    #[command(after_help = help::ENV)]
    Env(EnvArgs),
    /// Medians and paired ratios with intervals for results measured partly outside xferbench (a CSV of
    /// round,name,value), as `run` computes them.
    #[command(after_help = help::STATS)]
    Stats(StatsArgs),
    /// Print a shell completion script for bash, zsh, fish, elvish or powershell.
    #[command(after_help = help::COMPLETIONS)]
    Completions(CompletionsArgs),
    /// Print the man page (roff), made from this help.
    #[command(after_help = help::MAN)]
    Man,
}

/// How a command prints its answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people: the table (or listing) on stdout.
    #[default]
    Text,
    /// For machines: one JSON document on stdout (docs/output.md lists its fields); whatever is for people goes to
    /// stderr.
    Json,
}

// Numbers and sizes take a leading '-' as their value (allow_hyphen_values), so that `--size -5MB` is refused with
// the flag and the rule named, not by clap as an unknown argument '-5'.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Everything that shapes the measurement beside the cases.
    #[command(flatten)]
    pub settings: RunSettings,
    /// Strategies to run, comma-separated; `parallel-X` runs X on --threads connections (--help lists them all).
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = DEFAULT_STRATEGIES, value_parser = named::<Strategy>(), hide_possible_values = true, long_help = help::strategies())]
    pub strategies: Vec<Strategy>,
    /// Thread (connection) counts for parallel strategies, comma-separated.
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "10", allow_hyphen_values = true, value_parser = units::count_in(1, MAX_THREADS))]
    pub threads: Vec<u32>,
    /// Bytes per transfer call (and the read buffer of read-send), comma-separated.
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "10MiB", allow_hyphen_values = true, value_parser = units::size_in(1, 1 << 31))]
    pub chunk: Vec<u64>,
    /// How parallel strategies divide the file: striped (chunk k to thread k mod N) or contiguous.
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "striped", value_parser = parallel_layout())]
    pub layout: Vec<Layout>,
    /// Consumers a broker-X case serves, each the whole file, comma-separated [default: 8].
    #[arg(long, value_name = "LIST", value_delimiter = ',', allow_hyphen_values = true, value_parser = units::count_in(1, MAX_THREADS))]
    pub consumers: Vec<u32>,
    /// A broker-X case's network threads, each one epoll loop over its share of the consumers, comma-separated
    /// [default: 3, Kafka's num.network.threads].
    #[arg(long, value_name = "LIST", value_delimiter = ',', allow_hyphen_values = true, value_parser = units::count_in(1, MAX_THREADS))]
    pub network_threads: Vec<u32>,
    /// The most a network thread sends to one consumer before it moves on to the next (one fetch response),
    /// comma-separated [default: 1MiB, Kafka's max.partition.fetch.bytes].
    #[arg(long, value_name = "LIST", value_delimiter = ',', allow_hyphen_values = true, value_parser = units::size_in(1, 1 << 31))]
    pub fetch_size: Vec<u64>,
    /// Settings of a system to imitate. kafka: --network-threads 3, --fetch-size 1MiB, --sndbuf 100KiB (102400,
    /// socket.send.buffer.bytes), --nodelay, and for a spawned sink --rcvbuf 64KiB (the consumer's
    /// receive.buffer.bytes); a flag given beside it wins. The socket settings apply to every case of the run.
    #[arg(long, value_name = "NAME", value_parser = named::<Preset>())]
    pub preset: Option<Preset>,
    /// Page-cache state before each pass: warm (file read first) or cold (file evicted), comma-separated.
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "warm", value_parser = named::<Cache>())]
    pub cache: Vec<Cache>,
    /// How the spawned sink receives: copy (recv into a buffer), trunc (MSG_TRUNC), splice (to /dev/null),
    /// zerocopy (TCP_ZEROCOPY_RECEIVE, copying what the kernel cannot map).
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "copy", value_parser = named::<RxMode>())]
    pub rx_mode: Vec<RxMode>,
    /// TCP congestion control of the sender's sockets, comma-separated, each a case (e.g. cubic,bbr) [default: the
    /// system's, net.ipv4.tcp_congestion_control].
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = Cc::new)]
    pub cc: Vec<Cc>,
    /// The path the streams take, once per path, each a case (root and iproute2 for veth): loopback, or a veth
    /// path through a router namespace of the run's own, `veth:KEY=VALUE,...` with mtu, rate (htb), delay, jitter,
    /// loss (netem, each way) and offload=on|off, or a preset: lan-10g, jumbo-10g, wan (docs/links.md).
    #[arg(long, value_name = "SPEC", default_value = "loopback", value_parser = Link::parse)]
    pub link: Vec<Link>,
    /// The run's result folder (gets runs.csv and summary.json); default results/<UTC time>-<host>-<pid>.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Go on with the run in --out: finished rounds are kept, a round cut short goes on from its next case.
    #[arg(long, requires = "out")]
    pub resume: bool,
    /// Stop at the first failed case instead of going on.
    #[arg(long)]
    pub fail_fast: bool,
    /// Draw the charts into the result folder at the end.
    #[arg(long)]
    pub plot: bool,
    /// Secret the sink asks for (its --token); never written to any file.
    #[arg(long, value_name = "SECRET")]
    pub token: Option<String>,
    /// Folder that holds generated fixtures.
    #[arg(long, value_name = "DIR", default_value = "fixtures")]
    pub fixture_dir: PathBuf,
    /// Print only the final table.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print the plan (cases, runs, bytes) and exit without making or sending anything.
    #[arg(long)]
    pub dry_run: bool,
    /// text: the table on stdout; json: the run's summary (summary.json) on stdout once it ends, the table on
    /// stderr.
    #[arg(long, value_name = "FORMAT", default_value = "text", conflicts_with = "dry_run")]
    pub format: Format,
    #[command(flatten)]
    pub margin: Margin,
}

/// How ratios are judged: read by `run`, `table`, `compare` and `stats`, never part of a measurement.
#[derive(Debug, Clone, Copy, Args)]
pub struct Margin {
    /// An interval of a ratio that lies within this much of 1.00 (at a full 95% level) is marked `=`, the same
    /// within that margin; one that holds 1.00 but reaches beyond it is `≈`, not distinguishable.
    #[arg(long, value_name = "PCT", default_value = "5%", value_parser = units::percent)]
    pub same_within: f64,
}

/// Every run setting beside the cases, in one struct: clap reads it from the command line, the plan carries it,
/// plan.json is it (with the cases), a resume compares it field by field (`config::differences`, generic: a new
/// field is compared unasked) and `compare` says from it what differs between two result sets. Each field is
/// named after its flag, so the words of a difference are the flag's.
#[derive(Debug, Clone, PartialEq, Args, Serialize, Deserialize)]
pub struct RunSettings {
    /// Send this existing file instead of a generated fixture (content checked by byte count only, unless its
    /// sidecar shows xferbench made it).
    #[arg(long, value_name = "PATH", conflicts_with_all = ["size", "seed"])]
    pub file: Option<PathBuf>,
    /// Size of the generated fixture.
    #[arg(long, value_name = "SIZE", default_value = DEFAULT_SIZE, allow_hyphen_values = true, value_parser = file_size)]
    pub size: u64,
    /// Seed of the generated fixture's content.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// Counted repetitions of each case, run in rounds (each round runs every case once, in --order): a count, or
    /// auto (rounds are added until every case's 99% interval is within --ci, or --max-time is up; at least 8, the
    /// fewest whose interval reaches 99%; the table reports the 95% intervals, which hold their level under this
    /// rule).
    #[arg(long, value_name = "N|auto", default_value = "auto", allow_hyphen_values = true, value_parser = Repeat::parse)]
    pub repeat: Repeat,
    /// With --repeat auto: how narrow every case's 99% interval must get, as how far its farther end lies from its
    /// median, over the median (the ratio to serial sendfile, or the median MB/s of a case without one) [default:
    /// 5%].
    #[arg(long, value_name = "PCT", value_parser = units::percent)]
    pub ci: Option<f64>,
    /// With --repeat auto: the longest the rounds may take (warm-ups not counted); the report names the cases
    /// that did not get within --ci [default: 45s].
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true, value_parser = units::duration)]
    #[serde(with = "units::duration_text_opt")]
    pub max_time: Option<Duration>,
    /// The order of the cases in each round: rotate (turned by one each round), shuffle (a fresh permutation each
    /// round, from --order-seed), grouped (every repetition of a case before the next: nothing cancels drift).
    #[arg(long, value_name = "ORDER", default_value = "rotate", value_parser = named::<Order>())]
    pub order: Order,
    /// Seed of --order shuffle [default: drawn at start, printed and recorded in plan.json].
    #[arg(long, value_name = "N")]
    pub order_seed: Option<u64>,
    /// Uncounted warm-up repetitions of each case, all before the first round (the first finds the pass count).
    #[arg(long, value_name = "N", default_value = "1", allow_hyphen_values = true, value_parser = units::count_in(0, 1_000))]
    pub warmup: u32,
    /// Shortest timed section a repetition should have: `--passes auto` sends the file as many times as that takes
    /// (a quarter past it). The default was chosen by measurement: shorter repetitions give more rounds in the
    /// main job's minute, and its ratios held better from run to run than with longer ones.
    #[arg(long, value_name = "DURATION", default_value = "0.25s", allow_hyphen_values = true, value_parser = units::duration)]
    #[serde(with = "units::duration_text")]
    pub min_time: Duration,
    /// Times the whole file goes per repetition, back to back over the same connections: a count, or auto (found
    /// from each case's warm-ups so that each repetition lasts --min-time at the fastest pace seen, and raised for
    /// later rounds if a repetition still comes out shorter) [default: auto; with --raw, 1].
    #[arg(long, value_name = "N|auto", allow_hyphen_values = true, value_parser = Passes::parse)]
    pub passes: Option<Passes>,
    /// Have the sink check every byte against the fixture generator.
    #[arg(long)]
    pub verify: bool,
    /// Where the sink checks with --verify: receiver (in the receiving thread), thread (a checking thread of its
    /// own per stream), auto (a thread of its own when the sink has 3 CPUs per stream).
    #[arg(long, value_name = "WHERE", default_value = "auto", value_parser = verify_where())]
    pub verify_on: VerifyWhere,
    /// Receive buffer of the sink this run spawns.
    #[arg(long, value_name = "SIZE", default_value = "256KiB", allow_hyphen_values = true, value_parser = units::size_in(1, 1 << 30))]
    pub rx_buffer: u64,
    /// For cold cases, also drop the whole page cache (root only) after evicting the file.
    #[arg(long)]
    pub drop_caches: bool,
    /// Longest a single repetition may take before it is failed.
    #[arg(long, value_name = "DURATION", default_value = "120s", allow_hyphen_values = true, value_parser = units::duration)]
    #[serde(with = "units::duration_text")]
    pub timeout: Duration,
    /// Send to an `xferbench sink` already running at HOST:PORT instead of spawning one on loopback.
    #[arg(long, value_name = "HOST:PORT")]
    pub connect: Option<String>,
    /// Send the bare file bytes with no header and no report, so any TCP receiver can be the other end.
    #[arg(long, requires = "connect", conflicts_with = "verify")]
    pub raw: bool,
    /// SO_SNDBUF of the sender's sockets.
    #[arg(long, value_name = "SIZE", value_parser = units::size_in(1, 1 << 31))]
    pub sndbuf: Option<u64>,
    /// SO_RCVBUF of the spawned sink's sockets.
    #[arg(long, value_name = "SIZE", value_parser = units::size_in(1, 1 << 31))]
    pub rcvbuf: Option<u64>,
    /// Set TCP_NODELAY on the sender's sockets.
    #[arg(long)]
    pub nodelay: bool,
    /// Pin the sender's threads to these CPUs (e.g. 0-3,8).
    #[arg(long, value_name = "LIST", value_parser = units::cpu_list)]
    pub sender_cpus: Option<CpuList>,
    /// Pin the spawned sink to these CPUs.
    #[arg(long, value_name = "LIST", value_parser = units::cpu_list)]
    pub sink_cpus: Option<CpuList>,
    /// Run in a network namespace of the run's own whose loopback has this MTU (root; made with the run and gone
    /// with it, nothing outside changes): 61492 makes every loopback segment over IPv4 carry whole pages, which
    /// `--rx-mode zerocopy` needs.
    #[arg(long, value_name = "BYTES", value_parser = units::count_in(1280, 65536), conflicts_with = "connect")]
    pub netns_mtu: Option<u32>,
    /// The sink counts each stream's bytes in intervals this long: series.csv and the timeline chart show
    /// throughput over time (stalls, starved streams, a mode that switches halfway); 0 turns it off.
    #[arg(long, value_name = "DURATION", default_value = "50ms", value_parser = units::duration_or_off)]
    #[serde(with = "units::duration_or_off_text")]
    pub interval: Duration,
    /// Submission queue depth of the io-uring strategies (io-uring, io-uring-send-zc and their -fixed forms).
    #[arg(long, value_name = "N", default_value = "8", value_parser = units::count_in(1, 4096))]
    pub queue_depth: u32,
    /// A fault for broker-X cases: the first N consumers of each repetition read nothing until every other
    /// consumer has all its bytes (a stalled client); the others must not wait for them.
    #[arg(long, value_name = "N", allow_hyphen_values = true, value_parser = units::count_in(1, MAX_THREADS))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stalled_consumers: Option<u32>,
    /// The JDK home (with bin/java and bin/javac) of the jvm-* strategies [default: java and javac on PATH].
    #[arg(long, value_name = "DIR")]
    #[serde(default)]
    pub java: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SinkArgs {
    /// Address to listen on (port 0 picks a free one; the address is printed on the first line of stdout).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7700")]
    pub listen: String,
    /// Bytes per receive call.
    #[arg(long, value_name = "SIZE", default_value = "256KiB", allow_hyphen_values = true, value_parser = units::size_in(1, 1 << 30))]
    pub rx_buffer: u64,
    /// copy (recv into a buffer), trunc (recv with MSG_TRUNC, the kernel discards), splice (to /dev/null),
    /// zerocopy (TCP_ZEROCOPY_RECEIVE: received pages mapped into the sink, what cannot be mapped copied).
    #[arg(long, value_name = "MODE", default_value = "copy", value_parser = named::<RxMode>())]
    pub rx_mode: RxMode,
    /// Secret every stream header must carry; streams without it are dropped.
    #[arg(long, value_name = "SECRET")]
    pub token: Option<String>,
    /// SO_RCVBUF of accepted sockets.
    #[arg(long, value_name = "SIZE", value_parser = units::size_in(1, 1 << 31))]
    pub rcvbuf: Option<u64>,
    /// Pin the sink to these CPUs (e.g. 4-7).
    #[arg(long, value_name = "LIST", value_parser = units::cpu_list)]
    pub cpus: Option<CpuList>,
    /// Do not announce the address and limits on stderr (rejections are still logged).
    #[arg(long, hide = true)]
    pub quiet: bool,
    /// Close a connection that sends nothing for this long.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = units::duration)]
    pub idle_timeout: Duration,
    /// Close a new connection that has not sent its whole stream header this long after it was accepted.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = units::duration)]
    pub header_timeout: Duration,
    /// Connections waiting for their header at once; a newcomer beyond them pushes out the oldest of the source
    /// that holds the most.
    #[arg(long, value_name = "N", default_value = "1024", value_parser = units::count_in(1, 1_000_000))]
    pub max_pending: u32,
}

#[derive(Debug, Args)]
pub struct FixtureArgs {
    /// Size of the file [default: 1.2GB; with --check, what the file's sidecar records].
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true, value_parser = file_size)]
    pub size: Option<u64>,
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
    /// A result folder holding runs.csv (`plot` writes the charts and report.html beside it).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct TableArgs {
    /// A result folder holding runs.csv (as `run --out` or `run` made it).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// text: the table; json: the folder's summary, its cases summarised afresh from runs.csv.
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    pub format: Format,
    #[command(flatten)]
    pub margin: Margin,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Result folders, each holding runs.csv; the first is the baseline of the ratios.
    #[arg(value_name = "DIR", num_args = 2.., required = true)]
    pub dirs: Vec<PathBuf>,
    /// Also write the table, the charts and the report there (compare.md, compare.png, compare-ratio.png, their
    /// SVGs, report.html); without it, the table is printed and nothing is written.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Exit 3 (and name them) when a case of a later set is slower than the first set's by more than PCT for sure:
    /// the interval of its ratio lies wholly below 1 - PCT. Too few repetitions to tell is not a failure.
    #[arg(long, value_name = "PCT", value_parser = units::percent)]
    pub fail_if_slower: Option<f64>,
    /// text: the Markdown on stdout; json: the comparison as JSON.
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    pub format: Format,
    #[command(flatten)]
    pub margin: Margin,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// A CSV with the columns round,name,value: one value per name and round.
    #[arg(value_name = "CSV", required_unless_present = "mb_s")]
    pub file: Option<PathBuf>,
    /// The name the others are divided by, round by round [default: the first name in the file].
    #[arg(long, value_name = "NAME")]
    pub baseline: Option<String>,
    /// The values are times (lower is better): ratios are turned around, so that above 1 still means faster.
    #[arg(long)]
    pub lower_is_better: bool,
    /// Print the median MB/s of a result folder's ok rows instead (one number, for a script's CSV).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["file", "baseline", "lower_is_better"])]
    pub mb_s: Option<PathBuf>,
    #[command(flatten)]
    pub margin: Margin,
}

#[derive(Debug, Args)]
pub struct EnvArgs {
    /// The record as JSON (as summary.json holds it) instead of a listing: the same as --format json.
    #[arg(long)]
    pub json: bool,
    /// text: a listing; json: the record as summary.json holds it.
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    pub format: Format,
    /// Describe the storage holding this file (default: the current folder's).
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Describe the interface that reaches this host (default: loopback, as a spawned sink uses).
    #[arg(long, value_name = "HOST:PORT")]
    pub connect: Option<String>,
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

/// clap's error as one line of ours, built from its kind and context rather than its English: for a bad value,
/// the flag (without its placeholder: `'--size'`), the value, why, the known values and a suggestion; for an
/// unknown flag, the flag and a suggestion; anything else, clap's own first line.
pub fn error_line(err: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let text = |kind| match err.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        Some(ContextValue::Strings(v)) => Some(v.join(", ")),
        _ => None,
    };
    let arg = text(ContextKind::InvalidArg).map(|a| strip_placeholders(&a));
    let mut line = match (err.kind(), &arg) {
        (ErrorKind::InvalidValue | ErrorKind::ValueValidation, Some(arg)) => {
            let value = text(ContextKind::InvalidValue).unwrap_or_default();
            let why = std::error::Error::source(err)
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            format!("invalid value '{value}' for '{arg}'{why}")
        }
        (ErrorKind::UnknownArgument, Some(arg)) => format!("unexpected argument '{arg}' found"),
        _ => {
            let rendered = err.to_string();
            let first = rendered.lines().next().unwrap_or_default().trim().to_string();
            strip_placeholders(first.strip_prefix("error: ").unwrap_or(&first))
        }
    };
    if let Some(known) = text(ContextKind::ValidValue) {
        line.push_str(&format!("; known: {known}"));
    }
    if let Some(similar) = text(ContextKind::SuggestedValue) {
        line.push_str(&format!("; tip: a similar value exists: '{similar}'"));
    }
    if let Some(similar) = text(ContextKind::SuggestedArg) {
        line.push_str(&format!("; tip: a similar argument exists: '{similar}'"));
    }
    line
}

/// `'--size <SIZE>'` -> `'--size'`, `'--threads <LIST>...'` -> `'--threads'`.
fn strip_placeholders(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(" <") {
        let Some(len) = rest[start..].find('>') else { break };
        let mut end = start + len + 1;
        while rest[end..].starts_with('.') {
            end += 1;
        }
        out.push_str(&rest[..start]);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_errors_become_one_line() {
        let line = |args: &[&str]| {
            let err = Cli::try_parse_from(["xferbench"].iter().chain(args)).unwrap_err();
            error_line(&err)
        };
        let l = line(&["run", "--strategies", "sendfil"]);
        assert!(
            l.starts_with("invalid value 'sendfil' for '--strategies'; known: read-send"),
            "{l}"
        );
        assert!(l.ends_with("; tip: a similar value exists: 'sendfile'"), "{l}");
        assert_eq!(
            line(&["run", "--size", "x"]),
            "invalid value 'x' for '--size': not a size (invalid digit found in string); try 1.2GB, 512MiB or 4096"
        );
        let l = line(&["run", "--verfy"]);
        assert!(
            l.starts_with("unexpected argument '--verfy' found; tip: a similar argument exists: '--verify'"),
            "{l}"
        );
        assert!(!l.contains('\n'));
    }

    #[test]
    fn typed_values_parse() {
        let cli = Cli::try_parse_from([
            "xferbench",
            "run",
            "--strategies",
            "sendfile,parallel-splice",
            "--threads",
            "1,4",
            "--chunk",
            "1MiB",
            "--passes",
            "7",
            "--min-time",
            "250ms",
        ])
        .unwrap();
        let Command::Run(args) = cli.command else { panic!("run") };
        assert_eq!(args.strategies.len(), 2);
        assert_eq!(args.strategies[1].to_string(), "parallel-splice");
        assert_eq!(args.threads, vec![1, 4]);
        assert_eq!(args.chunk, vec![1 << 20]);
        assert_eq!(args.settings.passes, Some(Passes::Fixed(7)));
        assert_eq!(args.settings.min_time, Duration::from_millis(250));
        assert_eq!(args.settings.size, 1_200_000_000);
        let e = Cli::try_parse_from(["xferbench", "run", "--passes", "0"]).unwrap_err();
        assert!(error_line(&e).contains("between 1 and 10000, or auto"), "{e}");
    }
}
