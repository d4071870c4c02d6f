//! The commands: `run` (`runner`), `sink`, `compare`, `article`, `plot`, `table` and `stats` (`outside`), a
//! folder's or a comparison's report.html and `table`'s JSON (`report`), `completions` and `man` (`manual`). Each
//! reads the layers below it; none of them imports from another command's internals but the charts (`plot`) that
//! `compare`, `report` and `run` draw, and the report that `run`, `plot` and `compare` write.

pub mod article;
pub mod compare;
pub mod manual;
pub mod outside;
pub mod plot;
pub mod report;
pub mod runner;
pub mod sink;
