//! The vocabulary every layer shares: what a case is (`CaseKey`), the names a user types and the CSV carries
//! (strategies, layouts, cache states, receive modes, where the sink checks, transports), and what can become of a
//! repetition (`Status`, `Flag`). Each name is written once, here: its text on the command line, in runs.csv and
//! in summary.json comes from the same table, so old result sets keep reading and no module parses another's text.

mod case;
mod cc;
pub mod link;
mod names;
mod status;

pub use case::{CaseKey, Consumers, Labeler};
pub use cc::Cc;
pub use link::Link;
pub use names::{
    Cache, Layout, Method, Named, Order, Preset, RxMode, Shape, Strategy, Transport, UnknownName, VerifyOn,
};
pub use status::{Flag, Flags, Status};

/// Serde for a type written as its text (`Display`) and read with its `parse`, so plan.json says `auto` or `3`.
macro_rules! serde_as_text {
    ($t:ty) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$t, D::Error> {
                let v = serde_json::Value::deserialize(d)?;
                let text = match &v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                <$t>::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

/// How many times a repetition sends the whole file; written `auto` or the count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Passes {
    /// As many as it takes for the timed section to last `--min-time`, found during each case's warm-ups and then
    /// held (raised only if a later repetition comes out short of `--min-time`).
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
            n => crate::base::units::count_in(1, Passes::CAP)(n)
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

serde_as_text!(Passes);

/// How many rounds a run makes (each round runs every case once); written `auto` or the count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// Rounds until every case's interval is as narrow as `--ci` asks, or `--max-time` is up.
    Auto,
    /// This many rounds.
    Fixed(u32),
}

impl Repeat {
    /// The most rounds a run makes.
    pub const CAP: u32 = 10_000;

    /// `auto` or a count from 1 to `CAP`.
    pub fn parse(text: &str) -> Result<Repeat, String> {
        match text.trim() {
            "auto" => Ok(Repeat::Auto),
            n => crate::base::units::count_in(1, Repeat::CAP)(n)
                .map(Repeat::Fixed)
                .map_err(|why| format!("{why}, or auto")),
        }
    }
}

impl std::fmt::Display for Repeat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Repeat::Auto => f.write_str("auto"),
            Repeat::Fixed(n) => write!(f, "{n}"),
        }
    }
}

serde_as_text!(Repeat);

serde_as_text!(Link);
