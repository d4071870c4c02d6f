//! The flags of a case in the summary and the table: each tells a reader not to trust a number too far, and
//! comes with a line of advice.

use serde::{Serialize, Serializer};
use std::fmt;

/// A warning about a case, written as it has always been (`failed:2`, `short-run`, `short:1`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseFlag {
    /// This many repetitions failed.
    Failed(usize),
    /// The median timed section is too short to time well.
    ShortRun,
    /// This many ok repetitions lasted under `SHORT_RUN_S` (a faster mode than the pass count was set for): kept
    /// and counted, not measured again.
    Short(usize),
    /// The repetitions spread too far to quote one number.
    Spread,
    /// The repetitions fall into two clusters: the median describes neither.
    Bimodal,
    /// The congestion control paces every flow, loopback too (bbr): the numbers are its pace.
    Paced,
    /// The page cache was not in the state the case is labelled with.
    ResidencyMismatch,
    /// The kernel copied zero-copy sends anyway.
    ZerocopyCopied,
    /// The strategy ran another path.
    Fallback,
    /// The receiver, not the sender, limited the case.
    ReceiverBound,
    /// The pass count reached its cap before --min-time.
    PassesCapped,
    /// Measured under an emulator.
    Emulated,
    /// A broker's consumer got less than half the median consumer's MB/s.
    ConsumerBehind,
    /// The case moved at least 90% of its `--link` path's rate: the link set the MB/s.
    LinkBound,
}

impl fmt::Display for CaseFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaseFlag::Failed(n) => write!(f, "failed:{n}"),
            CaseFlag::ShortRun => f.write_str("short-run"),
            CaseFlag::Short(n) => write!(f, "short:{n}"),
            CaseFlag::Spread => f.write_str("spread"),
            CaseFlag::Bimodal => f.write_str("bimodal"),
            CaseFlag::Paced => f.write_str("paced"),
            CaseFlag::ResidencyMismatch => f.write_str("residency-mismatch"),
            CaseFlag::ZerocopyCopied => f.write_str("zerocopy-copied"),
            CaseFlag::Fallback => f.write_str("fallback"),
            CaseFlag::ReceiverBound => f.write_str("receiver-bound"),
            CaseFlag::PassesCapped => f.write_str("passes-capped"),
            CaseFlag::Emulated => f.write_str("emulated"),
            CaseFlag::ConsumerBehind => f.write_str("consumer-behind"),
            CaseFlag::LinkBound => f.write_str("link-bound"),
        }
    }
}

impl Serialize for CaseFlag {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
