//! Sizes, counts and durations on the command line: parsed in process for many values, and through the binary
//! (`--dry-run`, and runs with the extremes that are accepted) for a few.

use super::common::{self, LIMIT, text};
use super::{bounded, cases, check};
use clap::Parser;
use proptest::prelude::*;
use xferbench::cli::{Cli, Command};

/// Flags that take a size, a count or a duration, with the command they belong to.
const FLAGS: [(&str, &str); 20] = [
    ("run", "--size"),
    ("run", "--chunk"),
    ("run", "--rx-buffer"),
    ("run", "--sndbuf"),
    ("run", "--rcvbuf"),
    ("run", "--threads"),
    ("run", "--repeat"),
    ("run", "--warmup"),
    ("run", "--passes"),
    ("run", "--queue-depth"),
    ("run", "--min-time"),
    ("run", "--timeout"),
    ("run", "--max-time"),
    ("run", "--ci"),
    ("run", "--order-seed"),
    ("run", "--cc"),
    ("sink", "--idle-timeout"),
    ("sink", "--header-timeout"),
    ("sink", "--max-pending"),
    ("fixture", "--size"),
];

/// What people type, and what they should not: numbers of every size, units, signs, exponents, noise.
fn values() -> impl Strategy<Value = String> {
    let number = prop_oneof![
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| f.to_string()),
        (any::<u32>(), 0u32..400).prop_map(|(m, e)| format!("{m}e{e}")),
        (1usize..60).prop_map(|n| "9".repeat(n)),
        Just("NaN".into()),
        Just("inf".into()),
        Just("-0".into()),
        Just("0x10".into()),
    ];
    let unit = prop_oneof![
        Just(""),
        Just("B"),
        Just("KiB"),
        Just("MiB"),
        Just("GiB"),
        Just("TiB"),
        Just("EiB"),
        Just("GB"),
        Just("EB"),
        Just("ns"),
        Just("us"),
        Just("ms"),
        Just("s"),
        Just("m"),
        Just("h"),
        Just("d"),
        Just("y"),
        Just("w"),
    ];
    prop_oneof![
        (number, unit).prop_map(|(n, u)| format!("{n}{u}")),
        "[0-9a-zA-Z .,+\\-]{0,24}",
        ".{0,16}",
    ]
}

fn inputs() -> impl Strategy<Value = (usize, String)> {
    (0..FLAGS.len(), values())
}

#[test]
fn sizes_counts_and_durations() {
    check(
        "sizes, counts and durations (clap)",
        cases(2500),
        common::LIMIT,
        inputs,
        |(flag, value)| {
            let (command, flag) = FLAGS[flag];
            let args = ["xferbench", command, flag, value.as_str()];
            // The error text is built from the value: bounded by its length, never by what it says.
            let parsed = bounded("Cli::try_parse_from", 1 << 20, || Cli::try_parse_from(args));
            match parsed {
                Ok(cli) => {
                    let longest = std::time::Duration::from_secs(365 * 86_400);
                    match cli.command {
                        Command::Run(r) => {
                            prop_assert!(r.settings.min_time <= longest && r.settings.timeout <= longest);
                            prop_assert!(r.settings.max_time.is_none_or(|t| t <= longest));
                            prop_assert!(r.settings.ci.is_none_or(|c| c > 0.0 && c < 1.0));
                            prop_assert!(r.settings.size >= 1 && r.chunk.iter().all(|&c| c >= 1));
                        }
                        Command::Sink(s) => prop_assert!(s.idle_timeout <= longest && s.header_timeout <= longest),
                        _ => {}
                    }
                }
                Err(e) => {
                    let line = xferbench::cli::error_line(&e);
                    prop_assert!(!line.is_empty() && !line.contains('\n'), "{line:?}");
                }
            }
            Ok(())
        },
    );
}

/// Through the binary: a refused value is one line and exit 2; an accepted one prints the plan and exits 0.
#[test]
fn sizes_and_durations_through_the_binary() {
    check(
        "sizes and durations (--dry-run)",
        cases(24),
        LIMIT,
        inputs,
        |(flag, value)| {
            let (command, flag) = FLAGS[flag];
            // A command line cannot hold a NUL.
            if command != "run" || value.contains('\0') {
                return Ok(());
            }
            let out = common::run_limited(
                {
                    let mut c = std::process::Command::new(common::BIN);
                    c.args(["run", "--dry-run", flag, &value]);
                    c
                },
                LIMIT,
            );
            let err = text(&out.stderr);
            prop_assert!(
                matches!(out.status.code(), Some(0 | 2)),
                "{flag} {value:?}: {:?} {err}",
                out.status
            );
            if out.status.code() == Some(2) {
                prop_assert_eq!(err.lines().count(), 1, "{}", err);
                prop_assert!(err.starts_with("xferbench: error:"), "{}", err);
            }
            Ok(())
        },
    );
}

/// The longest durations accepted, used for real: deadlines a year ahead.
#[test]
fn the_longest_durations_run() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(common::BIN);
    cmd.args(["run", "--size", "64KiB"])
        .args(common::ONCE)
        .args(common::ONE_PASS)
        .args(["--timeout", "365d"])
        .args(["--min-time", "365d", "--strategies", "sendfile", "--fixture-dir"])
        .arg(tmp.path().join("fixtures"))
        .arg("--out")
        .arg(tmp.path().join("out"));
    let out = common::run_limited(cmd, LIMIT);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let refused = common::run_limited(
        {
            let mut c = std::process::Command::new(common::BIN);
            c.args(["run", "--dry-run", "--timeout", "1e300"]);
            c
        },
        LIMIT,
    );
    common::assert_fails(&refused, 2, "at most 365 days");
}

/// `--link` specs: bases, keys and values, right and wrong, joined as people write them (and noise).
fn link_specs() -> impl Strategy<Value = String> {
    let base = prop_oneof![
        Just("veth"),
        Just("loopback"),
        Just("lan-10g"),
        Just("jumbo-10g"),
        Just("wan"),
        Just("vet"),
        Just("")
    ];
    let key = prop_oneof![
        Just("mtu"),
        Just("rate"),
        Just("delay"),
        Just("jitter"),
        Just("loss"),
        Just("offload"),
        Just("colour"),
        Just("")
    ];
    let value = prop_oneof![
        values(),
        (
            any::<u32>(),
            prop_oneof![Just("mbit"), Just("gbit"), Just("bps"), Just("kibit"), Just("%")]
        )
            .prop_map(|(n, u)| format!("{n}{u}")),
        (
            0u32..100,
            0u32..10_000_000,
            prop_oneof![Just("%"), Just("ms"), Just("us"), Just("gbit")]
        )
            .prop_map(|(a, b, u)| format!("{a}.{b}{u}")),
        Just("on".to_string()),
        Just("off".to_string()),
    ];
    let pair = (key, value).prop_map(|(k, v)| format!("{k}={v}"));
    prop_oneof![
        (base, proptest::collection::vec(pair, 0..5)).prop_map(|(b, ps)| format!("{b}:{}", ps.join(","))),
        ".{0,40}",
    ]
}

#[test]
fn link_specs_parse_to_a_canonical_spec_or_one_line() {
    check("link specs", cases(2500), common::LIMIT, link_specs, |text| {
        match bounded("Link::parse", 1 << 16, || xferbench::model::Link::parse(&text)) {
            Ok(link) => {
                // The canonical text reads back as the same path, and is its own canonical text.
                let canonical = link.to_string();
                prop_assert_eq!(xferbench::model::Link::parse(&canonical), Ok(link), "{}", canonical);
            }
            Err(why) => prop_assert!(!why.is_empty() && !why.contains('\n'), "{why:?}"),
        }
        Ok(())
    });
}
