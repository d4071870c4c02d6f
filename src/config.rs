//! The plan of a run: the command line expanded into cases and run-wide settings, with the conflicts between flags
//! refused (the flag named, exit 2). `expand` is pure, so it is tested without a machine; `check_machine` then asks
//! the machine what the plan needs of it (root, CPUs online), and `check_against_file` the file's size.

use crate::cli::{RunArgs, VerifyWhere};
use crate::error::UsageError;
use crate::fixture::{FixtureSpec, default_path};
use crate::model::{CaseKey, Layout, Passes, RxMode, Transport, VerifyOn};
use crate::units::CpuList;
use std::path::PathBuf;
use std::time::Duration;

/// Where the bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A generated fixture (made or reused), whose content the sink can check.
    Generated(FixtureSpec),
    /// A file the user named; its content can be checked only if its sidecar shows xferbench made it.
    UserFile(PathBuf),
}

/// Everything `run` needs, checked.
#[derive(Debug, Clone)]
pub struct Plan {
    pub source: Source,
    /// One per combination of the list options, in the order they run.
    pub cases: Vec<CaseKey>,
    pub repeat: u32,
    pub warmup: u32,
    pub min_time: Duration,
    pub passes: Passes,
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
    pub sender_cpus: Option<CpuList>,
    pub sink_cpus: Option<CpuList>,
    pub queue_depth: u32,
    pub quiet: bool,
    pub dry_run: bool,
}

impl Plan {
    /// Who receives.
    pub fn transport(&self) -> Transport {
        match (&self.connect, self.raw) {
            (None, _) => Transport::Loopback,
            (Some(_), false) => Transport::Remote,
            (Some(_), true) => Transport::Raw,
        }
    }

    /// The receive modes the cases ask of a spawned sink, in order of first use.
    pub fn rx_modes(&self) -> Vec<RxMode> {
        let mut modes: Vec<RxMode> = Vec::new();
        for (mode, _) in self.cases.iter().filter_map(|c| c.receiver) {
            if !modes.contains(&mode) {
                modes.push(mode);
            }
        }
        modes
    }
}

/// The values of a list, each once, in the order given.
fn once<T: PartialEq + Copy>(values: &[T]) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(values.len());
    for v in values {
        if !out.contains(v) {
            out.push(*v);
        }
    }
    out
}

/// Expands the command line into a plan: lists into cases, and the flags that cannot go together refused.
pub fn expand(args: RunArgs) -> Result<Plan, UsageError> {
    let verify_on = match args.verify_on {
        VerifyWhere::Auto => None,
        VerifyWhere::At(on) => Some(on),
    };
    if verify_on.is_some() && !args.verify {
        return Err(UsageError::msg("--verify-on says where to verify: it needs --verify"));
    }
    let rx_modes = once(&args.rx_mode);
    if args.verify && rx_modes.iter().any(|m| !m.can_verify()) {
        return Err(UsageError::msg(
            "--verify needs --rx-mode copy: the other modes never see the bytes",
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
    if let Some(tls) = args.strategies.iter().find(|s| s.method.tls()) {
        if args.raw {
            return Err(UsageError::msg(format!(
                "{tls} needs the sink's ack (it carries the certificate to pin), which --raw does not ask for"
            )));
        }
        if rx_modes != [RxMode::Copy] {
            return Err(UsageError::msg(format!(
                "{tls} needs --rx-mode copy: the sink must read the bytes to end the TLS session"
            )));
        }
    }
    let source = match &args.file {
        Some(path) => Source::UserFile(path.clone()),
        None => Source::Generated(FixtureSpec {
            path: default_path(&args.fixture_dir, args.size, args.seed),
            size: args.size,
            seed: args.seed,
        }),
    };
    let spawned = args.connect.is_none();
    let mut cases = Vec::new();
    for &cache in &once(&args.cache) {
        for &chunk_bytes in &once(&args.chunk) {
            for &strategy in &once(&args.strategies) {
                let shapes: Vec<(u32, Layout)> = if strategy.parallel {
                    let layouts = once(&args.layout);
                    once(&args.threads)
                        .into_iter()
                        .flat_map(|t| layouts.iter().map(move |&l| (t, l)))
                        .collect()
                } else {
                    vec![(1, Layout::Single)]
                };
                for (threads, layout) in shapes {
                    for &mode in &rx_modes {
                        cases.push(CaseKey {
                            cache,
                            strategy,
                            threads,
                            layout,
                            chunk_bytes,
                            receiver: spawned.then_some((mode, args.rx_buffer)),
                            verify: args.verify,
                            queue_depth: strategy.method.has_queue().then_some(args.queue_depth),
                        });
                    }
                }
            }
        }
    }
    Ok(Plan {
        source,
        cases,
        repeat: args.repeat,
        warmup: args.warmup,
        min_time: args.min_time,
        // A raw receiver keeps whatever arrives: unless asked, one pass and no calibration repetition.
        passes: args
            .passes
            .unwrap_or(if args.raw { Passes::Fixed(1) } else { Passes::Auto }),
        verify: args.verify,
        verify_on,
        rx_buffer: args.rx_buffer,
        out: args.out,
        resume: args.resume,
        drop_caches: args.drop_caches,
        timeout: args.timeout,
        fail_fast: args.fail_fast,
        plot: args.plot,
        connect: args.connect,
        raw: args.raw,
        token: args.token,
        sndbuf: args.sndbuf,
        rcvbuf: args.rcvbuf,
        nodelay: args.nodelay,
        sender_cpus: args.sender_cpus,
        sink_cpus: args.sink_cpus,
        queue_depth: args.queue_depth,
        quiet: args.quiet,
        dry_run: args.dry_run,
    })
}

/// What the plan needs of this machine: root for --drop-caches, the CPUs it pins to online.
pub fn check_machine(plan: &Plan) -> Result<(), UsageError> {
    if plan.drop_caches && !nix::unistd::geteuid().is_root() {
        return Err(UsageError::msg(
            "--drop-caches needs root (it writes /proc/sys/vm/drop_caches)",
        ));
    }
    if let Some(cpus) = &plan.sender_cpus {
        cpus.check("--sender-cpus")?;
    }
    if let Some(cpus) = &plan.sink_cpus {
        cpus.check("--sink-cpus")?;
    }
    Ok(())
}

/// Checks the cases against the file's size: a striped case needs at least one chunk per thread.
/// A chunk larger than the file is allowed: one call then carries the whole file (or the whole range).
pub fn check_against_file(plan: &Plan, file_bytes: u64) -> Result<(), UsageError> {
    for case in &plan.cases {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use crate::model::{Cache, Method, Strategy};
    use clap::Parser;

    fn plan(args: &[&str]) -> Result<Plan, UsageError> {
        let cli = Cli::try_parse_from(["xferbench", "run"].iter().chain(args)).expect("parses");
        let Command::Run(run) = cli.command else { unreachable!() };
        expand(run)
    }

    #[test]
    fn lists_expand_into_every_combination_once() {
        let p = plan(&[
            "--strategies",
            "sendfile,parallel-sendfile,sendfile",
            "--threads",
            "2,4,2",
            "--layout",
            "striped,contiguous",
            "--cache",
            "warm,cold",
            "--chunk",
            "1MiB",
        ])
        .unwrap();
        // Per cache: 1 serial + 2 threads x 2 layouts.
        assert_eq!(p.cases.len(), 2 * (1 + 4));
        assert_eq!(p.cases[0].strategy, Strategy::serial(Method::Sendfile));
        assert_eq!((p.cases[0].threads, p.cases[0].layout), (1, Layout::Single));
        assert!(p.cases[..5].iter().all(|c| c.cache == Cache::Warm));
        let parallel: Vec<(u32, Layout)> = p.cases[1..5].iter().map(|c| (c.threads, c.layout)).collect();
        assert_eq!(
            parallel,
            [
                (2, Layout::Striped),
                (2, Layout::Contiguous),
                (4, Layout::Striped),
                (4, Layout::Contiguous)
            ]
        );
        let mut ids: Vec<String> = p.cases.iter().map(CaseKey::id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), p.cases.len(), "every case distinct");
    }

    #[test]
    fn the_receiver_is_part_of_a_spawned_sinks_cases_only() {
        let p = plan(&[
            "--strategies",
            "io-uring,sendfile",
            "--rx-mode",
            "copy,trunc",
            "--rx-buffer",
            "1MiB",
        ])
        .unwrap();
        assert_eq!(p.cases.len(), 4);
        assert_eq!(p.cases[1].receiver, Some((RxMode::Trunc, 1 << 20)));
        assert_eq!(p.cases[0].queue_depth, Some(8));
        assert_eq!(p.cases[2].queue_depth, None);
        assert_eq!(p.rx_modes(), [RxMode::Copy, RxMode::Trunc]);
        let remote = plan(&["--connect", "host:1"]).unwrap();
        assert!(remote.cases.iter().all(|c| c.receiver.is_none()));
        assert_eq!(remote.transport(), Transport::Remote);
    }

    #[test]
    fn conflicts_are_refused_with_the_flags_named() {
        let refused = |args: &[&str], needle: &str| {
            let e = plan(args).unwrap_err().to_string();
            assert!(e.contains(needle), "{args:?}: {e}");
        };
        refused(&["--verify-on", "thread"], "it needs --verify");
        refused(
            &["--verify", "--rx-mode", "copy,trunc"],
            "--verify needs --rx-mode copy",
        );
        refused(&["--connect", "h:1", "--rcvbuf", "1MiB"], "--rcvbuf and --sink-cpus");
        refused(&["--connect", "h:1", "--raw", "--token", "x"], "--token travels");
        refused(
            &["--connect", "h:1", "--rx-mode", "trunc"],
            "give it to the remote sink",
        );
        assert!(plan(&["--verify", "--verify-on", "receiver"]).unwrap().verify_on == Some(VerifyOn::Receiver));
    }

    #[test]
    fn raw_sends_one_pass_unless_asked() {
        let passes = |args: &[&str]| plan(args).unwrap().passes;
        assert_eq!(passes(&["--connect", "h:1", "--raw"]), Passes::Fixed(1));
        assert_eq!(passes(&["--connect", "h:1", "--raw", "--passes", "auto"]), Passes::Auto);
        assert_eq!(passes(&["--connect", "h:1"]), Passes::Auto);
    }

    #[test]
    fn striped_cases_need_a_chunk_per_thread() {
        let p = plan(&["--strategies", "parallel-sendfile", "--threads", "4", "--chunk", "1MiB"]).unwrap();
        assert!(check_against_file(&p, 4 << 20).is_ok());
        let e = check_against_file(&p, 3 << 20).unwrap_err().to_string();
        assert!(e.contains("leaves threads without data"), "{e}");
    }
}
