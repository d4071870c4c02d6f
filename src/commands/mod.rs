//! The commands: `run` (`runner`), `sink`, `compare`, `article`, `plot`, `table` and `stats` (`outside`). Each reads
//! the layers below it; none of them imports from another command's internals but the charts (`plot`) that
//! `compare` and `run` draw.

pub mod article;
pub mod compare;
pub mod outside;
pub mod plot;
pub mod runner;
pub mod sink;
