//! xferbench: what zero-copy really buys when a Linux box sends a file over TCP, serially and in parallel.
//!
//! Layers, top to bottom (nothing imports from a layer above it):
//! - commands: `runner` (`run`), `sink` (`sink`), `compare`, `article`, `plot`;
//! - results: `summary`, `export`, `record`, `lock`;
//! - the experiment: `config` (the plan), `fixture`, `strategy`, `cache`, `probe`, `wire`, `pattern`, `buffer`;
//! - the vocabulary and the machine: `model`, `cli`, `units`, `env`, `error`, `out`.
//!
//! The library's surface is what the binary and the integration tests use; everything else is private to it, so
//! the compiler finds what nothing uses.

mod article;
mod buffer;
mod cache;
pub mod cli;
mod compare;
mod config;
pub mod env;
pub mod error;
pub mod export;
pub mod fixture;
pub mod lock;
pub mod model;
pub mod out;
mod outside;
pub mod pattern;
mod plot;
mod probe;
pub mod record;
mod runner;
mod sink;
pub mod stats;
mod strategy;
mod summary;
mod table;
mod tcp;
pub mod tls;
mod units;
pub mod wire;

/// What `main` runs for each command.
pub mod commands {
    pub use crate::article::table as article;
    pub use crate::compare::compare_dirs as compare;
    pub use crate::env::command as env;
    pub use crate::fixture::command as fixture;
    pub use crate::outside::{median_mb_s, report as stats};
    pub use crate::plot::plot_dir as plot;
    pub use crate::runner::main as run;
    pub use crate::sink::main as sink;
    pub use crate::summary::table_of_dir as table;
}
