//! xferbench: what zero-copy really buys when a Linux box sends a file over TCP, serially and in parallel.
//!
//! Four layers, one folder each, top to bottom; nothing imports from a layer above it:
//! - `commands`: `run` (`runner`), `sink`, `compare`, `article`, `plot`, `table` and `stats` (`outside`),
//!   `report` (report.html), `completions` and `man` (`manual`);
//! - `link`: the paths of `--link` (namespaces, veth pairs and qdiscs of the run's own), beside `results`: used by
//!   `commands`, using `base` only;
//! - `results`: one row (`record`), written whole (`export`) into a held folder (`lock`), the statistics (`stats`),
//!   the summary of each case (`summary`), the one table writer (`table`);
//! - `experiment`: the plan (`config`), the test file (`fixture`, `pattern`), the transfer paths (`strategy`,
//!   `tls`), the page cache (`cache`), the kernel's counters (`probe`), the socket's settings (`tcp`), the wire
//!   protocol (`wire`), aligned buffers (`buffer`);
//! - `jvm` (beside `results`, above `experiment`): the JDK, the JVM sender and its process, for the `jvm-*`
//!   strategies that `runner` drives;
//! - `base`, the vocabulary and the machine: `model`, `cli`, `units`, `env`, `error`, `out`.
//!
//! Beside `results`, between `commands` and `experiment`: `broker`, a broker's network threads serving many
//! consumers, which the runner drives as it drives `experiment::strategy::streams`.
//!
//! The library's surface is what the binary and the integration tests use (re-exported here); everything else is
//! private to it, so the compiler finds what nothing uses.

mod base;
mod broker;
mod commands;
mod experiment;
mod jvm;
mod link;
mod results;

pub use base::{cli, env, error, model, out};
pub use experiment::{fixture, pattern, tls, wire};
pub use results::{export, lock, record, stats};

/// What `main` runs for each command.
pub mod dispatch {
    pub use crate::base::env::command as env;
    pub use crate::commands::article::table as article;
    pub use crate::commands::compare::command as compare_command;
    pub use crate::commands::compare::compare_dirs as compare;
    pub use crate::commands::manual::{completions, man};
    pub use crate::commands::outside::{median_mb_s, report as stats};
    pub use crate::commands::report::plot_dir as plot;
    pub use crate::commands::report::table_json;
    pub use crate::commands::runner::main as run;
    pub use crate::commands::sink::main as sink;
    pub use crate::experiment::fixture::command as fixture;
    pub use crate::results::summary::table_of_dir as table;
}
