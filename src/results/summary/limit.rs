//! Who limited a flow, as TCP itself saw it: the kernel's timers of a connection (TCP_INFO's busy time, and the
//! parts of it stalled by the receiver's window and by the send buffer) as shares of the timed section, per case.
//! The `receiver-bound` verdict, which comes from the sink's CPU, is set beside the receive window's stalls; where
//! the two disagree, a note says what each saw.

use super::{CaseFlag, CaseSummary};
use serde::Serialize;

/// A stall share at least this large names the limit.
const STALLED: f64 = 0.3;
/// Busy at least this share of the time, without such stalls: TCP's own window or pacing set the pace.
const BUSY: f64 = 0.7;
/// A receiver-bound case whose window stalled less than this did not hold the flow back through TCP.
const WINDOW_QUIET: f64 = 0.1;

/// What limited a case's flow.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "by", rename_all = "kebab-case")]
pub enum Limit {
    /// The receiver's window: the sink did not take the bytes as fast as they came.
    ReceiverWindow { stalled_ratio: f64 },
    /// The send buffer: the socket's buffer was full and the sender waited on it.
    SendBuffer { stalled_ratio: f64 },
    /// The sender, busy: data always queued, the congestion control's window or pacing decided the rate.
    Sender { busy_ratio: f64 },
    /// The sending application: the socket had nothing to send part of the time.
    Application { idle_ratio: f64 },
}

impl Limit {
    /// The limit in words, with its share.
    pub fn words(&self) -> String {
        let pct = |x: f64| format!("{:.0}%", x * 100.0);
        match self {
            Limit::ReceiverWindow { stalled_ratio } => {
                format!("the receiver's window (stalled {})", pct(*stalled_ratio))
            }
            Limit::SendBuffer { stalled_ratio } => format!("the send buffer (stalled {})", pct(*stalled_ratio)),
            Limit::Sender { busy_ratio } => format!("the sender, busy (TCP's window or pacing; {})", pct(*busy_ratio)),
            Limit::Application { idle_ratio } => {
                format!("the sending application (the socket idle {})", pct(*idle_ratio))
            }
        }
    }
}

/// Names the limit of `case` from its TCP metrics' medians, and notes where it disagrees with `receiver-bound`.
pub fn judge(case: &mut CaseSummary) {
    let m = &case.metrics;
    let (Some(busy), Some(rwnd), Some(sndbuf)) = (
        m.tcp_busy_ratio.map(|s| s.median),
        m.tcp_rwnd_limited_ratio.map(|s| s.median),
        m.tcp_sndbuf_limited_ratio.map(|s| s.median),
    ) else {
        return;
    };
    let limit = if rwnd >= STALLED && rwnd >= sndbuf {
        Limit::ReceiverWindow { stalled_ratio: rwnd }
    } else if sndbuf >= STALLED {
        Limit::SendBuffer { stalled_ratio: sndbuf }
    } else if busy >= BUSY {
        Limit::Sender { busy_ratio: busy }
    } else {
        Limit::Application {
            idle_ratio: (1.0 - busy).max(0.0),
        }
    };
    case.limit = Some(limit);
    let bound = case.flags.contains(&CaseFlag::ReceiverBound);
    if bound && rwnd < WINDOW_QUIET {
        case.advice.push(format!(
            "receiver-bound by the sink's CPU, while TCP saw its receive window stall only {:.0}% of the timed \
             section: the receiver's window stayed open while its CPU was busy",
            rwnd * 100.0
        ));
    } else if !bound && matches!(limit, Limit::ReceiverWindow { .. }) {
        case.advice.push(format!(
            "TCP saw the receive window stall {:.0}% of the timed section on the worst connection, though the sink's \
             threads were not busy enough to flag receiver-bound: the flow waited on the receiver's window",
            rwnd * 100.0
        ));
    }
}
