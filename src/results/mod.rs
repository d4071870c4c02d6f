//! Results: one row of runs.csv (`record`), written whole (`export`) into a folder held by one run (`lock`), the
//! statistics every table and stopping rule uses (`stats`), the summary of each case (`summary`) and the one table
//! writer (`table`). Imports from `base` and `experiment`.

pub mod export;
pub mod lock;
pub mod record;
pub mod stats;
pub mod summary;
pub mod table;
