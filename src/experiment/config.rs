//! The plan of a run: the command line expanded into cases and run-wide settings, with the conflicts between flags
//! refused (the flag named, exit 2). `expand` is pure, so it is tested without a machine; `check_machine` then asks
//! the machine what the plan needs of it (root, CPUs online, the congestion controls it names), and
//! `check_against_file` the file's size. `differences` compares two plans' settings field by field.

use crate::base::cli::{RunArgs, RunSettings, VerifyWhere};
use crate::base::error::UsageError;
use crate::base::model::{
    CaseKey, Cc, Consumers, Layout, Link, Method, Order, Passes, Preset, Repeat, RxMode, Shape, Strategy, Transport,
    VerifyOn,
};
use crate::experiment::fixture::{FixtureSpec, default_path};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// --ci when --repeat auto is given without it.
pub const DEFAULT_CI: f64 = 0.05;
/// --max-time when --repeat auto is given without it: with the warm-ups, the main job then stays under about a
/// minute on this project's 2-vCPU VM (chosen by measurement: results/README.md).
pub const DEFAULT_MAX_TIME: Duration = Duration::from_secs(45);

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
    /// One per combination of the list options, in the order they were given.
    pub cases: Vec<CaseKey>,
    /// Every run-wide setting, as recorded in plan.json.
    pub settings: RunSettings,
    /// What only steers this invocation: never compared, never recorded.
    pub out: Option<PathBuf>,
    pub resume: bool,
    pub fail_fast: bool,
    pub plot: bool,
    pub quiet: bool,
    pub dry_run: bool,
    /// The sink's secret: sent in headers, never written to a file.
    pub token: Option<String>,
    /// `--same-within`: the margin the summary judges each `vs sf` against (a reading, not a measurement).
    pub same_within: f64,
}

impl Plan {
    /// Who receives.
    pub fn transport(&self) -> Transport {
        match (&self.settings.connect, self.settings.raw) {
            (None, _) => Transport::Loopback,
            (Some(_), false) => Transport::Remote,
            (Some(_), true) => Transport::Raw,
        }
    }

    /// Where the sink checks (None: the sink chooses).
    pub fn verify_on(&self) -> Option<VerifyOn> {
        match self.settings.verify_on {
            VerifyWhere::Auto => None,
            VerifyWhere::At(on) => Some(on),
        }
    }

    /// The receive modes the cases ask of a spawned sink, in order of first use.
    pub fn rx_modes(&self) -> Vec<RxMode> {
        once(
            &self
                .cases
                .iter()
                .filter_map(|c| c.receiver)
                .map(|(m, _)| m)
                .collect::<Vec<_>>(),
        )
    }

    /// --ci: how far `--repeat auto` lets every 99% interval reach from its median (its farther end, relative).
    pub fn ci(&self) -> f64 {
        self.settings.ci.unwrap_or(DEFAULT_CI)
    }

    /// --passes as it runs (`expand` puts the default in: auto, or 1 with --raw).
    pub fn passes(&self) -> Passes {
        self.settings.passes.unwrap_or(Passes::Auto)
    }

    /// --interval in whole milliseconds, as the stream header carries it (None: off).
    pub fn interval_ms(&self) -> Option<u32> {
        let ms = self.settings.interval.as_millis();
        (ms > 0).then(|| ms.min(u128::from(u32::MAX)) as u32)
    }

    /// --max-time: the longest `--repeat auto`'s rounds may take.
    pub fn max_time(&self) -> Duration {
        self.settings.max_time.unwrap_or(DEFAULT_MAX_TIME)
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

/// The longest chunk a JVM strategy's buffer holds: a Java array's length is an int, a few short of 2^31.
pub const JVM_MAX_CHUNK: u64 = i32::MAX as u64 - 8;

/// Refuses the flags that cannot go together.
fn check_conflicts(args: &RunArgs, rx_modes: &[RxMode]) -> Result<(), UsageError> {
    let s = &args.settings;
    if s.verify_on != VerifyWhere::Auto && !s.verify {
        return Err(UsageError::msg("--verify-on says where to verify: it needs --verify"));
    }
    if s.verify && rx_modes.iter().any(|m| !m.can_verify()) {
        return Err(UsageError::msg(
            "--verify needs --rx-mode copy: the other modes never see the bytes",
        ));
    }
    if s.connect.is_some() && (s.rcvbuf.is_some() || s.sink_cpus.is_some()) {
        return Err(UsageError::msg(
            "--rcvbuf and --sink-cpus set up a spawned sink; with --connect give them to the remote `xferbench sink`",
        ));
    }
    if s.raw && args.token.is_some() {
        return Err(UsageError::msg(
            "--token travels in the stream header, which --raw does not send",
        ));
    }
    if s.connect.is_some() && rx_modes != [RxMode::Copy] {
        return Err(UsageError::msg(
            "--rx-mode sets up a spawned sink; with --connect give it to the remote sink",
        ));
    }
    if let Some(tls) = args.strategies.iter().find(|s| s.method.tls()) {
        if s.raw {
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
    if let (Some(_), Some(link)) = (&s.connect, args.link.iter().find(|l| !l.is_loopback())) {
        return Err(UsageError::msg(format!(
            "--link {link} makes a path on this host: with --connect the streams take the real network to the \
             remote sink (leave --link out)"
        )));
    }
    if let Some(jvm) = args.strategies.iter().find(|s| s.method.jvm())
        && let Some(chunk) = args.chunk.iter().find(|&&c| c > JVM_MAX_CHUNK)
    {
        return Err(UsageError::msg(format!(
            "{jvm} takes --chunk up to {JVM_MAX_CHUNK} bytes (a Java array's limit), not {chunk}"
        )));
    }
    check_broker(args)?;
    match s.repeat {
        Repeat::Auto if s.order == Order::Grouped => Err(UsageError::msg(
            "--order grouped needs a fixed --repeat N: --repeat auto (the default) adds rounds until every interval \
             is narrow, and grouped runs no rounds",
        )),
        Repeat::Fixed(_) if s.ci.is_some() || s.max_time.is_some() => Err(UsageError::msg(
            "--ci and --max-time steer --repeat auto: give --repeat auto, or leave them out",
        )),
        _ if s.order_seed.is_some() && s.order != Order::Shuffle => Err(UsageError::msg(
            "--order-seed seeds --order shuffle: give --order shuffle",
        )),
        _ => Ok(()),
    }
}

/// The broker's options need a broker strategy, and a broker needs the sink's per-consumer reports.
fn check_broker(args: &RunArgs) -> Result<(), UsageError> {
    let broker = args.strategies.iter().find(|s| s.is_broker());
    let given = [
        ("--consumers", !args.consumers.is_empty()),
        ("--network-threads", !args.network_threads.is_empty()),
        ("--fetch-size", !args.fetch_size.is_empty()),
        ("--stalled-consumers", args.settings.stalled_consumers.is_some()),
    ];
    let Some(broker) = broker else {
        return match given.iter().find(|(_, given)| *given) {
            Some((flag, _)) => Err(UsageError::msg(format!(
                "{flag} shapes broker-X cases, and --strategies has none (e.g. broker-sendfile)"
            ))),
            None => Ok(()),
        };
    };
    if args.settings.raw {
        return Err(UsageError::msg(format!(
            "{broker} needs the sink's report of every consumer, which --raw does not ask for"
        )));
    }
    let fewest = args
        .consumers
        .iter()
        .copied()
        .min()
        .unwrap_or(crate::base::cli::DEFAULT_CONSUMERS);
    if let Some(stalled) = args.settings.stalled_consumers
        && stalled >= fewest
    {
        return Err(UsageError::msg(format!(
            "--stalled-consumers {stalled} leaves no consumer reading in a case of {fewest}: stall fewer than \
             --consumers"
        )));
    }
    Ok(())
}

/// Kafka reads a log segment through a 32 KiB buffer when it cannot transferTo (`SslTransportLayer.transferFrom`;
/// KAFKA-9110 raised it from 8 KiB): the call size of a broker's read paths.
pub const BROKER_READ_BYTES: u64 = 32 << 10;

/// Each broker case of `strategy`: network threads x consumers x fetch size, in the order given. Its calls ask for
/// what is left of a fetch (sendfile paths) or Kafka's 32 KiB (read paths), so --chunk does not apply.
fn broker_cases(args: &RunArgs, strategy: Strategy, template: CaseKey) -> Vec<CaseKey> {
    use crate::base::cli::{DEFAULT_CONSUMERS, DEFAULT_FETCH_BYTES, DEFAULT_NETWORK_THREADS};
    let or = |v: &[u32], d: u32| if v.is_empty() { vec![d] } else { once(v) };
    let fetches = if args.fetch_size.is_empty() {
        vec![DEFAULT_FETCH_BYTES]
    } else {
        once(&args.fetch_size)
    };
    let mut cases = Vec::new();
    for threads in or(&args.network_threads, DEFAULT_NETWORK_THREADS) {
        for count in or(&args.consumers, DEFAULT_CONSUMERS) {
            for &fetch_bytes in &fetches {
                let reads = matches!(strategy.method, Method::ReadSend | Method::TlsReadSend | Method::JvmTls);
                cases.push(CaseKey {
                    strategy,
                    threads,
                    layout: Layout::Single,
                    chunk_bytes: if reads { BROKER_READ_BYTES } else { fetch_bytes },
                    queue_depth: None,
                    consumers: Some(Consumers { count, fetch_bytes }),
                    ..template
                });
            }
        }
    }
    cases
}

/// The cases of one strategy, receive mode and the rest (`template`): one connection, threads x layouts, or a
/// broker's network threads x consumers x fetch sizes.
fn shapes(args: &RunArgs, template: CaseKey) -> Vec<CaseKey> {
    match template.strategy.shape {
        Shape::Serial => vec![template],
        Shape::Parallel => {
            let layouts = once(&args.layout);
            once(&args.threads)
                .into_iter()
                .flat_map(|threads| {
                    layouts.iter().map(move |&layout| CaseKey {
                        threads,
                        layout,
                        ..template
                    })
                })
                .collect()
        }
        Shape::Broker => broker_cases(args, template.strategy, template),
    }
}

/// What `--preset` sets, where the flag itself was not given.
fn apply_preset(args: &mut RunArgs) {
    let Some(Preset::Kafka) = args.preset else { return };
    use crate::base::cli::{DEFAULT_FETCH_BYTES, DEFAULT_NETWORK_THREADS};
    if args.network_threads.is_empty() {
        args.network_threads = vec![DEFAULT_NETWORK_THREADS];
    }
    if args.fetch_size.is_empty() {
        args.fetch_size = vec![DEFAULT_FETCH_BYTES];
    }
    let s = &mut args.settings;
    s.sndbuf.get_or_insert(KAFKA_SEND_BUFFER_BYTES);
    s.nodelay = true;
    if s.connect.is_none() {
        s.rcvbuf.get_or_insert(KAFKA_CONSUMER_RECEIVE_BUFFER_BYTES);
    }
}

/// Kafka's `socket.send.buffer.bytes` and the consumer's `receive.buffer.bytes`.
pub const KAFKA_SEND_BUFFER_BYTES: u64 = 102_400;
pub const KAFKA_CONSUMER_RECEIVE_BUFFER_BYTES: u64 = 65_536;

/// Expands the command line into a plan: lists into cases, and the flags that cannot go together refused. The
/// cases' congestion control is left unset where no --cc was given: `check_machine` puts the system's in.
pub fn expand(mut args: RunArgs) -> Result<Plan, UsageError> {
    let rx_modes = once(&args.rx_mode);
    check_conflicts(&args, &rx_modes)?;
    apply_preset(&mut args);
    let s = &args.settings;
    let source = match &s.file {
        Some(path) => Source::UserFile(path.clone()),
        None => Source::Generated(FixtureSpec {
            path: default_path(&args.fixture_dir, s.size, s.seed),
            size: s.size,
            seed: s.seed,
        }),
    };
    let spawned = s.connect.is_none();
    let ccs: Vec<Option<Cc>> = match once(&args.cc) {
        none if none.is_empty() => vec![None],
        given => given.into_iter().map(Some).collect(),
    };
    let mut cases = Vec::new();
    for &cache in &once(&args.cache) {
        for &cc in &ccs {
            for &chunk_bytes in &once(&args.chunk) {
                for &strategy in &once(&args.strategies) {
                    for &mode in &rx_modes {
                        let template = CaseKey {
                            cache,
                            cc,
                            strategy,
                            threads: 1,
                            layout: Layout::Single,
                            chunk_bytes,
                            receiver: spawned.then_some((mode, s.rx_buffer)),
                            verify: s.verify,
                            queue_depth: strategy.method.has_queue().then_some(s.queue_depth),
                            consumers: None,
                            link: Link::Loopback,
                        };
                        for case in shapes(&args, template) {
                            // Broker cases do not vary with --chunk: the second chunk gives the same ones.
                            if !cases.contains(&case) {
                                cases.push(case);
                            }
                        }
                    }
                }
            }
        }
    }
    // Each path is a case dimension of its own, the outermost: a path's cases stand together in the plan.
    let cases: Vec<CaseKey> = once(&args.link)
        .into_iter()
        .flat_map(|link| cases.iter().map(move |c| CaseKey { link, ..*c }))
        .collect();
    let mut settings = args.settings;
    // A raw receiver keeps whatever arrives: unless asked, one pass and no calibration repetition.
    let passes = settings
        .passes
        .unwrap_or(if settings.raw { Passes::Fixed(1) } else { Passes::Auto });
    settings.passes = Some(passes);
    if settings.repeat == Repeat::Auto {
        settings.ci.get_or_insert(DEFAULT_CI);
        settings.max_time.get_or_insert(DEFAULT_MAX_TIME);
    }
    Ok(Plan {
        source,
        cases,
        settings,
        out: args.out,
        resume: args.resume,
        fail_fast: args.fail_fast,
        plot: args.plot,
        quiet: args.quiet,
        dry_run: args.dry_run,
        token: args.token,
        same_within: args.margin.same_within,
    })
}

/// What the plan needs of this machine: root for --drop-caches, the CPUs it pins to online, and the congestion
/// controls it names; the cases without one get the system's.
pub fn check_machine(plan: &mut Plan) -> Result<(), UsageError> {
    let s = &plan.settings;
    if s.drop_caches && !nix::unistd::geteuid().is_root() {
        return Err(UsageError::msg(
            "--drop-caches needs root (it writes /proc/sys/vm/drop_caches)",
        ));
    }
    if let Some(cpus) = &s.sender_cpus {
        cpus.check("--sender-cpus")?;
    }
    if let Some(cpus) = &s.sink_cpus {
        cpus.check("--sink-cpus")?;
    }
    let system = crate::experiment::tcp::default_cc()
        .map_err(|e| UsageError::msg(format!("cannot read the system's congestion control: {e}")))?;
    for case in &mut plan.cases {
        match case.cc {
            Some(cc) => crate::experiment::tcp::check_cc(cc)?,
            None => case.cc = Some(system),
        }
    }
    Ok(())
}

/// What plan.json holds: the settings, the file's real size, and every case's id in the order given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanFile {
    #[serde(flatten)]
    pub settings: RunSettings,
    /// The size of the file sent (the generated fixture's, or the user's file's).
    pub file_bytes: u64,
    pub cases: Vec<String>,
}

/// Settings a resume may change: they steer how long the run goes on, not what each repetition measures.
pub const MAY_CHANGE: &[&str] = &["repeat", "ci", "max_time"];

/// One setting whose value differs between two plans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The flag, e.g. `--min-time`.
    pub flag: String,
    pub left: String,
    pub right: String,
}

/// The settings as (flag, value) pairs, from their serde form: a new field is listed without being named here.
pub fn setting_items(settings: &RunSettings) -> Vec<(String, String)> {
    let value = serde_json::to_value(settings).unwrap_or_default();
    let Some(map) = value.as_object() else {
        return Vec::new();
    };
    map.iter()
        .map(|(name, v)| {
            let text = match v {
                serde_json::Value::Null => "unset".to_string(),
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (format!("--{}", name.replace('_', "-")), text)
        })
        .collect()
}

/// Every setting that differs from `left` to `right`, but those in `skip` (names as in the struct).
pub fn differences(left: &RunSettings, right: &RunSettings, skip: &[&str]) -> Vec<Difference> {
    let skipped: Vec<String> = skip.iter().map(|n| format!("--{}", n.replace('_', "-"))).collect();
    let (l, r) = (setting_items(left), setting_items(right));
    l.into_iter()
        .zip(r)
        .filter(|((flag, a), (_, b))| a != b && !skipped.contains(flag))
        .map(|((flag, a), (_, b))| Difference {
            flag,
            left: a,
            right: b,
        })
        .collect()
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
    use crate::base::cli::{Cli, Command};
    use crate::base::model::{Cache, Method, Strategy};
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
        refused(
            &["--repeat", "auto", "--order", "grouped"],
            "--order grouped needs a fixed --repeat N",
        );
        refused(&["--repeat", "3", "--ci", "3%"], "give --repeat auto");
        refused(&["--repeat", "3", "--max-time", "1m"], "give --repeat auto");
        refused(&["--order-seed", "3"], "give --order shuffle");
        assert!(plan(&["--verify", "--verify-on", "receiver"]).unwrap().verify_on() == Some(VerifyOn::Receiver));
        let auto = plan(&["--repeat", "auto"]).unwrap();
        assert_eq!((auto.ci(), auto.max_time()), (DEFAULT_CI, DEFAULT_MAX_TIME));
        assert_eq!(auto.settings.ci, Some(DEFAULT_CI), "recorded as it ran");
    }

    #[test]
    fn each_congestion_control_is_a_case_and_none_given_is_left_to_the_machine() {
        let p = plan(&["--strategies", "sendfile,read-send", "--cc", "cubic,bbr,cubic"]).unwrap();
        let ccs: Vec<String> = p.cases.iter().map(|c| c.cc.unwrap().to_string()).collect();
        assert_eq!(ccs, ["cubic", "cubic", "bbr", "bbr"]);
        assert_ne!(p.cases[0].id(), p.cases[2].id());
        assert!(plan(&[]).unwrap().cases.iter().all(|c| c.cc.is_none()));
        let cli = Cli::try_parse_from(["xferbench", "run", "--cc", "no such"]);
        assert!(cli.unwrap_err().to_string().contains("not a congestion control name"));
    }

    #[test]
    fn each_link_is_a_case_and_a_remote_sink_takes_the_real_network() {
        let p = plan(&[
            "--strategies",
            "sendfile,read-send",
            "--link",
            "loopback",
            "--link",
            "lan-10g",
            "--link",
            "veth:rate=10gbit,delay=50us",
        ])
        .unwrap();
        // lan-10g and its spec written out are one path.
        let links: Vec<String> = p.cases.iter().map(|c| c.link.to_string()).collect();
        let lan = "veth:mtu=1500,rate=10gbit,delay=50us";
        assert_eq!(links, ["loopback", "loopback", lan, lan]);
        assert_ne!(p.cases[0].id(), p.cases[2].id());
        assert!(plan(&[]).unwrap().cases.iter().all(|c| c.link.is_loopback()));
        let e = plan(&["--connect", "h:1", "--link", "wan"]).unwrap_err().to_string();
        assert!(
            e.contains("--link veth:mtu=1500,rate=1gbit,delay=10ms") && e.contains("leave --link out"),
            "{e}"
        );
        assert!(plan(&["--connect", "h:1", "--link", "loopback"]).is_ok());
        let cli = Cli::try_parse_from(["xferbench", "run", "--link", "veth:rate=fast"]);
        let e = crate::base::cli::error_line(&cli.unwrap_err());
        assert!(
            e.starts_with("invalid value 'veth:rate=fast' for '--link': rate=fast: not a rate"),
            "{e}"
        );
    }

    #[test]
    fn settings_differ_field_by_field_in_the_flags_words() {
        let a = plan(&["--min-time", "1s", "--nodelay", "--repeat", "3"])
            .unwrap()
            .settings;
        let b = plan(&["--repeat", "30"]).unwrap().settings;
        let d = differences(&a, &b, MAY_CHANGE);
        let words: Vec<String> = d
            .iter()
            .map(|d| format!("{} ({} here, {} there)", d.flag, d.left, d.right))
            .collect();
        assert_eq!(
            words,
            [
                "--min-time (1s here, 250ms there)",
                "--nodelay (true here, false there)"
            ]
        );
        assert_eq!(differences(&a, &b, &[]).len(), 3, "--repeat too when asked");
        let sink = plan(&["--sender-cpus", "0", "--sndbuf", "1MiB"]).unwrap().settings;
        let d = differences(&sink, &b, MAY_CHANGE);
        assert!(
            d.iter()
                .any(|d| d.flag == "--sender-cpus" && d.left == "0" && d.right == "unset"),
            "{d:?}"
        );
        assert!(d.iter().any(|d| d.flag == "--sndbuf" && d.left == "1048576"), "{d:?}");
        // plan.json round-trips.
        let file = PlanFile {
            settings: sink.clone(),
            file_bytes: 5,
            cases: vec!["x".into()],
        };
        let back: PlanFile = serde_json::from_str(&serde_json::to_string(&file).unwrap()).unwrap();
        assert_eq!(back, file);
    }

    #[test]
    fn raw_sends_one_pass_unless_asked() {
        let passes = |args: &[&str]| plan(args).unwrap().passes();
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

    #[test]
    fn broker_cases_ask_what_kafka_asks_per_call_and_ignore_chunk() {
        let p = plan(&[
            "--strategies",
            "broker-sendfile,broker-tls-read-send",
            "--consumers",
            "1,16",
            "--chunk",
            "64KiB,1MiB",
        ])
        .unwrap();
        let shape: Vec<(String, u32, u64, u32)> = p
            .cases
            .iter()
            .map(|c| {
                (
                    c.strategy.to_string(),
                    c.threads,
                    c.chunk_bytes,
                    c.consumers.unwrap().count,
                )
            })
            .collect();
        assert_eq!(
            shape,
            [
                ("broker-sendfile".into(), 3, 1 << 20, 1),
                ("broker-sendfile".into(), 3, 1 << 20, 16),
                ("broker-tls-read-send".into(), 3, BROKER_READ_BYTES, 1),
                ("broker-tls-read-send".into(), 3, BROKER_READ_BYTES, 16),
            ]
        );
        assert!(
            p.cases
                .iter()
                .all(|c| c.layout == Layout::Single && c.connections() == c.consumers.unwrap().count)
        );
    }

    #[test]
    fn the_kafka_preset_sets_what_it_says_and_a_given_flag_wins() {
        let p = plan(&["--strategies", "broker-sendfile", "--preset", "kafka"]).unwrap();
        let s = &p.settings;
        assert_eq!((s.sndbuf, s.rcvbuf, s.nodelay), (Some(102_400), Some(65_536), true));
        let c = p.cases[0];
        assert_eq!((c.threads, c.consumers.unwrap().fetch_bytes), (3, 1 << 20));
        let p = plan(&[
            "--strategies",
            "broker-sendfile",
            "--preset",
            "kafka",
            "--sndbuf",
            "1MiB",
            "--fetch-size",
            "64KiB",
        ])
        .unwrap();
        assert_eq!(p.settings.sndbuf, Some(1 << 20));
        assert_eq!(p.cases[0].consumers.unwrap().fetch_bytes, 64 << 10);
        // A remote sink is started with its own receive buffer: the preset leaves --rcvbuf alone.
        let p = plan(&[
            "--strategies",
            "broker-sendfile",
            "--preset",
            "kafka",
            "--connect",
            "h:1",
        ])
        .unwrap();
        assert_eq!(p.settings.rcvbuf, None);
        assert!(plan(&["--strategies", "broker-sendfile", "--raw", "--connect", "h:1"]).is_err());
    }
}
