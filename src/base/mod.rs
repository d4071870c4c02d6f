//! The vocabulary and the machine, the bottom layer: the names every other layer shares (`model`), what the user
//! may type (`cli`), units, errors, standard output, and what shapes this machine's numbers (`env`). Imports from no
//! other layer.

pub mod cli;
pub mod env;
pub mod error;
pub mod help;
pub mod model;
pub mod out;
pub mod units;
