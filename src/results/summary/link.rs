//! Cases that a `--link` path's rate held back. A case whose payload moved at least `LINK_BOUND` of its link's
//! configured rate is flagged `link-bound`: every strategy that fills the link moves the same MB/s, so what it
//! costs shows as CPU per GB instead. Its note gives that answer: the paired ratio, round by round, of its sender
//! CPU per GB to serial sendfile's over the same path (the `vs sf` baseline), with its interval, where sendfile
//! filled the link too. Sender CPU, not the table's total: on one host the router's forwarding and shaping run as
//! softirq work that every strategy pays alike, and a real sink is another machine's CPU.
//!
//! The rate counts the packets' headers and the payload does not: at a 1,500-byte MTU the payload is about 95.6%
//! of the wire's bytes, the most a case can show.

use super::{CaseFlag, CaseSummary};
use crate::base::model::CaseKey;
use crate::results::record::{PairKey, Row};
use crate::results::stats::{Estimate, paired_ratios};
use std::collections::BTreeMap;

/// A case that moves at least this share of its link's rate is link-bound.
pub const LINK_BOUND: f64 = 0.9;

/// A rate for people: `2 Gbit/s`, `200 Mbit/s`, `1.5 Gbit/s`.
fn rate_words(bits: u64) -> String {
    if bits >= 1_000_000_000 {
        format!("{} Gbit/s", trim(bits as f64 / 1e9))
    } else {
        format!("{} Mbit/s", trim(bits as f64 / 1e6))
    }
}

fn trim(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The sender's CPU seconds per GB of each ok repetition, by what pairs it with other cases' (its round).
fn sender_cpu_by_round(rows: &[&Row]) -> BTreeMap<PairKey, f64> {
    rows.iter()
        .filter(|r| r.is_ok())
        .filter_map(|r| Some((r.pair_key(), r.per_gb(r.sender_user_s + r.sender_sys_s)?)))
        .collect()
}

/// Flags the link-bound cases and gives each its sender CPU per GB against sendfile's over the same path.
pub fn judge(cases: &mut [CaseSummary], groups: &BTreeMap<CaseKey, Vec<&Row>>, same_within: f64) {
    let bound: Vec<bool> = cases
        .iter()
        .map(|c| c.metrics.link_rate_ratio.is_some_and(|s| s.median >= LINK_BOUND))
        .collect();
    for i in (0..cases.len()).filter(|&i| bound[i]) {
        let (key, share) = (cases[i].key, cases[i].metrics.link_rate_ratio.map_or(0.0, |s| s.median));
        let Some(rate) = key.link.rate_bit_s() else { continue };
        let rate = rate_words(rate);
        let mut advice = format!(
            "moved {:.0}% of the link's {rate}: the link, not the sender, set the MB/s, so compare CPU per GB",
            share * 100.0
        );
        let base = key.sendfile_baseline();
        match cases.iter().position(|c| c.key == base) {
            Some(b) if b == i => {}
            Some(b) if bound[b] => {
                let ratios = paired_ratios(
                    &sender_cpu_by_round(groups.get(&key).map_or(&[][..], Vec::as_slice)),
                    &sender_cpu_by_round(groups.get(&base).map_or(&[][..], Vec::as_slice)),
                );
                if let Some(e) = Estimate::of_median(&ratios) {
                    advice.push_str(&format!(
                        ": {} uses {} sendfile's sender CPU per GB at the same {rate}",
                        key.strategy,
                        e.ratio_text(same_within)
                    ));
                }
            }
            Some(_) => advice.push_str("; sendfile did not fill the link, so their CPU per GB is not at the same rate"),
            None => {}
        }
        cases[i].flag(CaseFlag::LinkBound, advice);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::model::{Link, Status};

    /// A repetition of `strategy` in `round` over `link` at `gbit_s`, its sender using `cpu_s` per GB.
    fn row(strategy: &str, link: &str, round: u32, gbit_s: f64, cpu_s: f64) -> Row {
        let strategy: crate::base::model::Strategy = strategy.parse().unwrap();
        let link = Link::parse(link).unwrap();
        Row {
            strategy,
            path: strategy,
            threads: 1,
            round,
            repetition: round,
            file_bytes: 1_000_000_000,
            passes: 1,
            throughput_gbit_s: gbit_s,
            throughput_mb_s: gbit_s * 125.0,
            wall_s: 8.0 / gbit_s,
            sender_sys_s: cpu_s,
            link: Some(link),
            link_rate_bit_s: link.rate_bit_s(),
            transport: crate::base::model::Transport::Veth,
            status: Status::Ok,
            ..Row::default()
        }
    }

    #[test]
    fn a_case_that_fills_its_link_is_judged_by_cpu_per_gb_against_sendfiles() {
        let mut rows = Vec::new();
        for round in 1..=6 {
            let wobble = f64::from(round) * 0.001;
            rows.push(row("sendfile", "veth:rate=2gbit", round, 1.9, 0.1 + wobble));
            rows.push(row("read-send", "veth:rate=2gbit", round, 1.91, 0.18 + 1.8 * wobble));
            rows.push(row("mmap-send", "veth:rate=2gbit", round, 1.0, 0.15));
            rows.push(row("sendfile", "veth:rate=20gbit", round, 3.0, 0.1));
            rows.push(row("read-send", "veth:rate=20gbit", round, 19.0, 0.2));
        }
        let cases = super::super::summarise(&rows);
        let case = |s: &str, l: &str| {
            let link = Link::parse(l).unwrap();
            cases
                .iter()
                .find(|c| c.key.strategy.to_string() == s && c.key.link == link)
                .unwrap()
        };
        let sendfile = case("sendfile", "veth:rate=2gbit");
        assert!(sendfile.flags.contains(&CaseFlag::LinkBound), "{sendfile:?}");
        assert!(
            sendfile
                .advice
                .iter()
                .any(|a| a.starts_with("moved 95% of the link's 2 Gbit/s")),
            "{sendfile:?}"
        );
        let read_send = case("read-send", "veth:rate=2gbit");
        let note = read_send
            .advice
            .iter()
            .find(|a| a.contains("sendfile's sender CPU"))
            .expect("a CPU note");
        assert!(
            note.contains("read-send uses 1.80x [1.80–1.80] sendfile's sender CPU per GB at the same 2 Gbit/s"),
            "{note}"
        );
        let half = case("mmap-send", "veth:rate=2gbit");
        assert!(
            !half.flags.contains(&CaseFlag::LinkBound),
            "50% of the link is not link-bound: {half:?}"
        );
        let alone = case("read-send", "veth:rate=20gbit");
        assert!(alone.flags.contains(&CaseFlag::LinkBound));
        assert!(
            alone
                .advice
                .iter()
                .any(|a| a.contains("sendfile did not fill the link")),
            "{alone:?}"
        );
    }

    #[test]
    fn rates_read_as_people_say_them() {
        assert_eq!(rate_words(2_000_000_000), "2 Gbit/s");
        assert_eq!(rate_words(1_500_000_000), "1.5 Gbit/s");
        assert_eq!(rate_words(200_000_000), "200 Mbit/s");
    }
}
