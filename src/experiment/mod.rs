//! The experiment: the plan (`config`), the test file (`fixture`, `pattern`), the transfer paths (`strategy`,
//! `tls`), the page cache (`cache`), what the kernel counts (`probe`), the socket's own settings (`tcp`), the wire
//! protocol between sender and sink (`wire`) and aligned buffers. Imports from `base` only.

pub mod buffer;
pub mod cache;
pub mod config;
pub mod fixture;
pub mod netns;
pub mod pattern;
pub mod probe;
pub mod strategy;
pub mod tcp;
pub mod tls;
pub mod wire;
