//! xferbench: what zero-copy really buys when a Linux box sends a file over TCP, serially and in parallel.
//!
//! Layers, top to bottom (nothing imports from a layer above it):
//! `runner`, `compare` → `plot`, `export`, `summary`, `sink` → `config`, `record`, `fixture`, `strategy` →
//! `cli`, `units`, `probe`, `cache`, `wire`, `pattern`, `env`, `error`.

pub mod article;
pub mod buffer;
pub mod cache;
pub mod cli;
pub mod compare;
pub mod config;
pub mod env;
pub mod error;
pub mod export;
pub mod fixture;
pub mod out;
pub mod pattern;
pub mod plot;
pub mod probe;
pub mod record;
pub mod runner;
pub mod sink;
pub mod strategy;
pub mod summary;
pub mod tls;
pub mod units;
pub mod wire;
