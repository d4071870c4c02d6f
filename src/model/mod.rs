//! The vocabulary every layer shares: what a case is (`CaseKey`), the names a user types and the CSV carries
//! (strategies, layouts, cache states, receive modes, where the sink checks, transports), and what can become of a
//! repetition (`Status`, `Flag`). Each name is written once, here: its text on the command line, in runs.csv and
//! in summary.json comes from the same table, so old result sets keep reading and no module parses another's text.

mod case;
mod names;
mod status;

pub use case::{CaseKey, Labeler};
pub use names::{Cache, Layout, Method, Named, RxMode, Strategy, Transport, UnknownName, VerifyOn};
pub use status::{Flag, Flags, Status};

/// How many times a repetition sends the whole file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Passes {
    /// As many as it takes for the timed section to last `--min-time`, found once per case during its warm-up
    /// and then held for every counted repetition.
    Auto,
    /// This many, always.
    Fixed(u32),
}

impl Passes {
    /// The most passes one repetition makes: `auto` stops there and says so.
    pub const CAP: u32 = 10_000;

    /// `auto` or a count from 1 to `CAP`.
    pub fn parse(text: &str) -> Result<Passes, String> {
        match text.trim() {
            "auto" => Ok(Passes::Auto),
            n => crate::units::count_in(1, Passes::CAP)(n)
                .map(Passes::Fixed)
                .map_err(|why| format!("{why}, or auto")),
        }
    }
}

impl std::fmt::Display for Passes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Passes::Auto => f.write_str("auto"),
            Passes::Fixed(n) => write!(f, "{n}"),
        }
    }
}
