//! Options of `run`, checked and resolved once: sizes parsed, lists expanded into cases, conflicts refused with
//! the flag named. Nothing here touches the network or the test file's content.

use crate::cli::RunArgs;
use crate::error::UsageError;
use crate::fixture::{FixtureSpec, default_path};
use crate::strategy::Strategy;
use crate::units::{parse_duration, parse_size};
use crate::wire::{Layout, RxMode, VerifyOn};
use std::path::PathBuf;
use std::time::Duration;

/// Most connections one parallel case may open.
pub const MAX_THREADS: u32 = 1024;

/// Where the bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A generated fixture (made or reused), whose content the sink can check.
    Generated(FixtureSpec),
    /// The user's own file, checked by byte count only.
    UserFile(PathBuf),
}

/// Page-cache state asked for before a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cache {
    Warm,
    Cold,
}

impl Cache {
    pub fn name(self) -> &'static str {
        match self {
            Cache::Warm => "warm",
            Cache::Cold => "cold",
        }
    }
}

/// One combination of the options that change what is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Case {
    pub strategy: Strategy,
    pub threads: u32,
    pub chunk_bytes: u64,
    pub layout: Layout,
    pub cache: Cache,
    pub rx_mode: RxMode,
}

impl Case {
    /// Stable key: equal for the same case in another run of the same file, so `--resume` can find it.
    pub fn id(&self, file_bytes: u64, rx_buffer: u64) -> String {
        format!(
            "{}/t{}/c{}/{}/{}/{}/rx{}/f{}",
            self.strategy.name(),
            self.threads,
            self.chunk_bytes,
            self.layout.as_str(),
            self.cache.name(),
            self.rx_mode.name(),
            rx_buffer,
            file_bytes
        )
    }
}

/// Everything `run` needs, checked.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub source: Source,
    pub cases: Vec<Case>,
    pub repeat: u32,
    pub warmup: u32,
    pub verify: bool,
    /// Where the sink checks (None: the sink chooses).
    pub verify_on: Option<VerifyOn>,
    pub rx_buffer: u64,
    pub out: Option<PathBuf>,
    pub resume: bool,
    pub drop_caches: bool,
    pub timeout: Duration,
    pub fail_fast: bool,
    pub plot: bool,
    pub connect: Option<String>,
    pub raw: bool,
    pub token: Option<String>,
    pub sndbuf: Option<u64>,
    pub rcvbuf: Option<u64>,
    pub nodelay: bool,
    /// As typed (for the CSV) and expanded.
    pub sender_cpus: Option<(String, Vec<usize>)>,
    pub sink_cpus: Option<String>,
    pub queue_depth: u32,
    pub quiet: bool,
    pub dry_run: bool,
}

fn parse_count(flag: &str, text: &str, min: u32, max: u32) -> Result<u32, UsageError> {
    let range = || UsageError::new(flag, text, format!("must be between {min} and {max}"));
    // Parsed wide, so that -1 and 100000000000 get the range in the message rather than "not a number".
    let n: i128 = text.trim().parse().map_err(|_| {
        UsageError::new(
            flag,
            text,
            format!("not a whole number; give one between {min} and {max}"),
        )
    })?;
    let n = u32::try_from(n).map_err(|_| range())?;
    if n < min || n > max {
        return Err(range());
    }
    Ok(n)
}

fn parse_each<T>(values: &[String], mut f: impl FnMut(&str) -> Result<T, UsageError>) -> Result<Vec<T>, UsageError>
where
    T: PartialEq,
{
    let mut out: Vec<T> = Vec::new();
    for v in values.iter().map(|v| v.trim()).filter(|v| !v.is_empty()) {
        let parsed = f(v)?;
        if !out.contains(&parsed) {
            out.push(parsed);
        }
    }
    Ok(out)
}

fn parse_layout(text: &str) -> Result<Layout, UsageError> {
    match text {
        "striped" => Ok(Layout::Striped),
        "contiguous" => Ok(Layout::Contiguous),
        _ => Err(UsageError::new(
            "--layout",
            text,
            "unknown layout; known: striped, contiguous",
        )),
    }
}

fn parse_cache(text: &str) -> Result<Cache, UsageError> {
    match text {
        "warm" => Ok(Cache::Warm),
        "cold" => Ok(Cache::Cold),
        _ => Err(UsageError::new(
            "--cache",
            text,
            "unknown cache state; known: warm, cold",
        )),
    }
}

/// Checks and expands the options of `run`.
pub fn resolve(args: RunArgs) -> Result<RunConfig, UsageError> {
    let nonempty = |flag: &str, v: &[String]| -> Result<(), UsageError> {
        if v.iter().all(|s| s.trim().is_empty()) {
            return Err(UsageError::msg(format!(
                "'{flag}' names nothing; give at least one value"
            )));
        }
        Ok(())
    };
    nonempty("--strategies", &args.strategies)?;
    let strategies = parse_each(&args.strategies, Strategy::parse)?;
    nonempty("--threads", &args.threads)?;
    let threads = parse_each(&args.threads, |t| parse_count("--threads", t, 1, MAX_THREADS))?;
    nonempty("--chunk", &args.chunk)?;
    let chunks = parse_each(&args.chunk, |c| match parse_size("--chunk", c)? {
        0 => Err(UsageError::new("--chunk", c, "a chunk must be at least 1 byte")),
        n if n > 1 << 31 => Err(UsageError::new(
            "--chunk",
            c,
            "a chunk must be at most 2 GiB (one system call)",
        )),
        n => Ok(n),
    })?;
    nonempty("--layout", &args.layout)?;
    let layouts = parse_each(&args.layout, parse_layout)?;
    nonempty("--cache", &args.cache)?;
    let caches = parse_each(&args.cache, parse_cache)?;
    nonempty("--rx-mode", &args.rx_mode)?;
    let rx_modes = parse_each(&args.rx_mode, |m| RxMode::parse("--rx-mode", m))?;
    let repeat = parse_count("--repeat", &args.repeat, 1, 10_000)?;
    let warmup = parse_count("--warmup", &args.warmup, 0, 1_000)?;
    let rx_buffer = parse_size("--rx-buffer", &args.rx_buffer)?;
    if rx_buffer == 0 || rx_buffer > 1 << 30 {
        return Err(UsageError::new(
            "--rx-buffer",
            &args.rx_buffer,
            "must be between 1 byte and 1 GiB",
        ));
    }
    let timeout = parse_duration("--timeout", &args.timeout)?;
    let queue_depth = parse_count("--queue-depth", &args.queue_depth, 1, 4096)?;

    let (source, file_bytes) = match &args.file {
        Some(path) => {
            if args.verify {
                return Err(UsageError::msg(
                    "--verify needs a generated fixture: the content of a --file is checked by byte count only",
                ));
            }
            // Size known only once the file is opened; the runner checks chunks against it then.
            (Source::UserFile(path.clone()), None)
        }
        None => {
            let size = parse_size("--size", &args.size)?;
            if size == 0 {
                return Err(UsageError::new(
                    "--size",
                    &args.size,
                    "the file must hold at least 1 byte",
                ));
            }
            let path = default_path(&args.fixture_dir, size, args.seed);
            (
                Source::Generated(FixtureSpec {
                    path,
                    size,
                    seed: args.seed,
                }),
                Some(size),
            )
        }
    };
    let verify_on = VerifyOn::parse("--verify-on", &args.verify_on)?;
    if verify_on.is_some() && !args.verify {
        return Err(UsageError::msg("--verify-on says where to verify: it needs --verify"));
    }
    if args.verify && rx_modes.iter().any(|m| !m.can_verify()) {
        return Err(UsageError::msg(
            "--verify needs --rx-mode copy: the other modes never see the bytes",
        ));
    }
    if args.drop_caches && !nix::unistd::geteuid().is_root() {
        return Err(UsageError::msg(
            "--drop-caches needs root (it writes /proc/sys/vm/drop_caches)",
        ));
    }
    if args.connect.is_some() && (args.rcvbuf.is_some() || args.sink_cpus.is_some()) {
        return Err(UsageError::msg(
            "--rcvbuf and --sink-cpus set up a spawned sink; with --connect give them to the remote `xferbench sink`",
        ));
    }
    if args.raw && args.token.is_some() {
        return Err(UsageError::msg(
            "--token travels in the stream header, which --raw does not send",
        ));
    }
    if args.connect.is_some() && rx_modes != [RxMode::Copy] {
        return Err(UsageError::msg(
            "--rx-mode sets up a spawned sink; with --connect give it to the remote sink",
        ));
    }
    let sender_cpus = match &args.sender_cpus {
        Some(s) => Some((s.clone(), crate::units::parse_cpu_list("--sender-cpus", s)?)),
        None => None,
    };
    if let Some(s) = &args.sink_cpus {
        crate::units::parse_cpu_list("--sink-cpus", s)?;
    }

    let mut cases = Vec::new();
    for &cache in &caches {
        for &chunk_bytes in &chunks {
            for &strategy in &strategies {
                let shapes: Vec<(u32, Layout)> = if strategy.parallel {
                    threads
                        .iter()
                        .flat_map(|&t| layouts.iter().map(move |&l| (t, l)))
                        .collect()
                } else {
                    vec![(1, Layout::Single)]
                };
                for (t, layout) in shapes {
                    for &rx_mode in &rx_modes {
                        cases.push(Case {
                            strategy,
                            threads: t,
                            chunk_bytes,
                            layout,
                            cache,
                            rx_mode,
                        });
                    }
                }
            }
        }
    }
    let cfg = RunConfig {
        source,
        cases,
        repeat,
        warmup,
        verify: args.verify,
        verify_on,
        rx_buffer,
        out: args.out,
        resume: args.resume,
        drop_caches: args.drop_caches,
        timeout,
        fail_fast: args.fail_fast,
        plot: args.plot,
        connect: args.connect,
        raw: args.raw,
        token: args.token,
        sndbuf: args.sndbuf.as_deref().map(|s| parse_size("--sndbuf", s)).transpose()?,
        rcvbuf: args.rcvbuf.as_deref().map(|s| parse_size("--rcvbuf", s)).transpose()?,
        nodelay: args.nodelay,
        sender_cpus,
        sink_cpus: args.sink_cpus,
        queue_depth,
        quiet: args.quiet,
        dry_run: args.dry_run,
    };
    if let Some(size) = file_bytes {
        check_against_file(&cfg, size)?;
    }
    Ok(cfg)
}

/// Checks the cases against the file's size: a striped case needs at least one chunk per thread.
/// A chunk larger than the file is allowed: one call then carries the whole file (or the whole range).
pub fn check_against_file(cfg: &RunConfig, file_bytes: u64) -> Result<(), UsageError> {
    for case in &cfg.cases {
        let n = u64::from(case.threads);
        let enough = match case.layout {
            Layout::Striped => file_bytes.div_ceil(case.chunk_bytes) >= n,
            Layout::Contiguous => file_bytes >= n,
            Layout::Single => true,
        };
        if !enough {
            return Err(UsageError::msg(format!(
                "--threads {} with --chunk {} leaves threads without data: the file ({} bytes) has only {} chunk(s); \
                 use a smaller --chunk or fewer --threads",
                case.threads,
                case.chunk_bytes,
                file_bytes,
                file_bytes.div_ceil(case.chunk_bytes)
            )));
        }
    }
    Ok(())
}
