//! A case: one combination of everything that makes an experiment distinct. `--resume`, the summary, every chart,
//! `compare` and `article` group rows by this one key, built from a row's typed columns, so two cases that differ
//! in any one field stay apart everywhere.
//!
//! The file's size and the number of passes are not part of it: a case is the experiment, not the bytes, so that
//! `compare` can line up a 1.2 GB set with a 16 GB one (each side's size and passes are shown beside it).

use super::cc::Cc;
use super::link::Link;
use super::names::{Cache, Layout, Method, Named, RxMode, Shape, Strategy};
use crate::base::units::format_bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// What a broker case serves: how many consumers take the whole file each, and the most one visit of a network
/// thread sends to one consumer before it moves on (a fetch response, Kafka's `max.partition.fetch.bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Consumers {
    pub count: u32,
    pub fetch_bytes: u64,
}

/// What one experiment is. Ordered as tables and charts tell the story: warm before cold, serial before parallel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CaseKey {
    pub cache: Cache,
    /// The congestion control every data socket used (None: rows from before xferbench set and recorded it).
    pub cc: Option<Cc>,
    pub strategy: Strategy,
    /// Sender threads: the connections of a parallel strategy (1 for serial ones), a broker's network threads.
    pub threads: u32,
    /// `single` for serial strategies.
    pub layout: Layout,
    /// Bytes asked of each transfer call.
    pub chunk_bytes: u64,
    /// How a sink this run spawned receives, and into how large a buffer; None when the receiver is not this
    /// run's to set (a remote sink receives as it was started, a raw receiver however it likes).
    pub receiver: Option<(RxMode, u64)>,
    /// The sink checked every byte.
    pub verify: bool,
    /// Submission queue depth, for the methods that have one.
    pub queue_depth: Option<u32>,
    /// The consumers a broker case serves (None for the other shapes).
    #[serde(default)]
    pub consumers: Option<Consumers>,
    /// The path the streams took (`--link`): loopback (also in rows from before links, and for a remote sink,
    /// whose path is not the run's to make) or a veth path shaped as its spec says.
    #[serde(default)]
    pub link: Link,
}

impl CaseKey {
    /// The case this one is measured against (`vs sf`): serial sendfile with the same chunk, cache, receiver and
    /// congestion control; for a broker case, broker-sendfile with the same consumers, network threads and fetch
    /// size (whose calls ask for what is left of a fetch).
    pub fn sendfile_baseline(&self) -> CaseKey {
        if let Some(c) = self.consumers {
            return CaseKey {
                strategy: Strategy::broker(Method::Sendfile),
                chunk_bytes: c.fetch_bytes,
                layout: Layout::Single,
                queue_depth: None,
                ..*self
            };
        }
        CaseKey {
            strategy: Strategy::serial(Method::Sendfile),
            threads: 1,
            layout: Layout::Single,
            queue_depth: None,
            ..*self
        }
    }

    /// This case with the receive mode left out: cases that differ only in how the sink received.
    pub fn without_rx_mode(&self) -> CaseKey {
        CaseKey {
            receiver: self.receiver.map(|(_, buffer)| (RxMode::Copy, buffer)),
            ..*self
        }
    }

    /// This case with the thread count left out: one line of the throughput chart.
    pub fn series(&self) -> CaseKey {
        CaseKey { threads: 0, ..*self }
    }

    /// The connections a repetition of this case opens: one per consumer of a broker, one per thread otherwise.
    pub fn connections(&self) -> u32 {
        match (self.consumers, self.strategy.shape) {
            (Some(c), _) => c.count,
            (None, Shape::Parallel) => self.threads,
            (None, _) => 1,
        }
    }

    /// The stable text of the `case_id` column.
    pub fn id(&self) -> String {
        let mut id = format!(
            "{}/t{}/{}/c{}/{}",
            self.strategy, self.threads, self.layout, self.chunk_bytes, self.cache
        );
        match self.receiver {
            Some((mode, buffer)) => id.push_str(&format!("/rx-{mode}-{buffer}")),
            None => id.push_str("/rx-theirs"),
        }
        if self.verify {
            id.push_str("/verify");
        }
        if let Some(depth) = self.queue_depth {
            id.push_str(&format!("/qd{depth}"));
        }
        if let Some(cc) = self.cc {
            id.push_str(&format!("/cc-{cc}"));
        }
        if let Some(c) = self.consumers {
            id.push_str(&format!("/k{}-f{}", c.count, c.fetch_bytes));
        }
        if !self.link.is_loopback() {
            id.push_str(&format!("/link-{}", self.link));
        }
        id
    }
}

/// For people: `parallel-sendfile ×10 striped, 10 MiB, warm, rx copy 256 KiB, verified, cubic`.
impl fmt::Display for CaseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.strategy)?;
        if self.strategy.is_parallel() {
            write!(f, " ×{} {}", self.threads, self.layout)?;
        }
        match self.consumers {
            Some(c) => {
                write!(
                    f,
                    ", {} consumer{}, {} network thread{}, fetch {}",
                    c.count,
                    if c.count == 1 { "" } else { "s" },
                    self.threads,
                    if self.threads == 1 { "" } else { "s" },
                    format_bytes(c.fetch_bytes)
                )?;
                if self.chunk_bytes != c.fetch_bytes {
                    write!(f, ", reads of {}", format_bytes(self.chunk_bytes))?;
                }
                write!(f, ", {}", self.cache)?;
            }
            None => write!(f, ", {}, {}", format_bytes(self.chunk_bytes), self.cache)?,
        }
        if let Some((mode, buffer)) = self.receiver {
            write!(f, ", rx {mode} {}", format_bytes(buffer))?;
        }
        if self.verify {
            f.write_str(", verified")?;
        }
        if let Some(depth) = self.queue_depth {
            write!(f, ", depth {depth}")?;
        }
        if let Some(cc) = self.cc {
            write!(f, ", {cc}")?;
        }
        if !self.link.is_loopback() {
            write!(f, ", over {}", self.link)?;
        }
        Ok(())
    }
}

/// The parts of a label beyond the strategy (and its thread count), each shown only where it varies.
type Part = fn(&CaseKey) -> Option<String>;

/// The parts only some shapes have (a parallel case's layout, a broker's network threads and fetch size): they vary
/// only where the cases that have them differ, not because other cases lack them.
const SHAPE_PARTS: [usize; 3] = [0, 8, 9];

const PARTS: [Part; 11] = [
    |k| k.strategy.is_parallel().then(|| k.layout.name().to_string()),
    |k| Some(format_bytes(k.chunk_bytes)),
    |k| Some(format!("({})", k.cache)),
    |k| Some(format!("rx:{}", k.receiver.map_or("theirs", |(m, _)| m.name()))),
    |k| k.receiver.map(|(_, b)| format!("rx {}", format_bytes(b))),
    |k| k.verify.then(|| "verified".to_string()),
    |k| k.queue_depth.map(|d| format!("depth {d}")),
    |k| Some(k.cc.map_or_else(|| "cc ?".to_string(), |c| c.to_string())),
    |k| k.consumers.map(|_| format!("{} net", k.threads)),
    |k| k.consumers.map(|c| format!("fetch {}", format_bytes(c.fetch_bytes))),
    |k| Some(k.link.to_string()),
];

/// Where the chunk and the cache state are in `PARTS`: tables give them columns of their own.
const CHUNK: usize = 1;
const CACHE: usize = 2;

/// Names cases with only what varies among them, so labels stay short enough for an axis and distinct.
pub struct Labeler {
    varies: [bool; PARTS.len()],
}

impl Labeler {
    pub fn new<'a>(keys: impl IntoIterator<Item = &'a CaseKey>) -> Labeler {
        let keys: Vec<&CaseKey> = keys.into_iter().collect();
        let mut varies = [false; PARTS.len()];
        for (i, (part, v)) in PARTS.iter().zip(varies.iter_mut()).enumerate() {
            let mut seen: BTreeSet<Option<String>> = keys.iter().map(|k| part(k)).collect();
            if SHAPE_PARTS.contains(&i) {
                seen.remove(&None);
            }
            *v = seen.len() > 1;
        }
        Labeler { varies }
    }

    /// Leaves the chunk and the cache state out of labels, for a table that shows them in columns.
    pub fn without_chunk_and_cache(mut self) -> Labeler {
        self.varies[CHUNK] = false;
        self.varies[CACHE] = false;
        self
    }

    /// The strategy, its thread count when parallel or its consumers when a broker, and every part that varies.
    pub fn label(&self, k: &CaseKey) -> String {
        let mut s = k.strategy.name().to_string();
        if k.strategy.is_parallel() && k.threads > 0 {
            s.push_str(&format!(" ×{}", k.threads));
        }
        if let Some(c) = k.consumers {
            s.push_str(&format!(" →{}", c.count));
        }
        for (part, varies) in PARTS.iter().zip(self.varies) {
            if let Some(text) = varies.then(|| part(k)).flatten() {
                s.push(' ');
                s.push_str(&text);
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn key() -> CaseKey {
        CaseKey {
            cache: Cache::Warm,
            cc: Some(Cc::new("cubic").unwrap()),
            strategy: Strategy::parallel(Method::Sendfile),
            threads: 4,
            layout: Layout::Striped,
            chunk_bytes: 1 << 20,
            receiver: Some((RxMode::Copy, 256 << 10)),
            verify: false,
            queue_depth: None,
            consumers: None,
            link: Link::Loopback,
        }
    }

    fn broker() -> CaseKey {
        CaseKey {
            strategy: Strategy::broker(Method::ReadSend),
            threads: 3,
            layout: Layout::Single,
            chunk_bytes: 32 << 10,
            consumers: Some(Consumers {
                count: 8,
                fetch_bytes: 1 << 20,
            }),
            ..key()
        }
    }

    /// One variant of `key()` per field, each differing from it in that field alone.
    fn one_field_apart() -> Vec<CaseKey> {
        let k = key();
        vec![
            CaseKey {
                cache: Cache::Cold,
                ..k
            },
            CaseKey {
                strategy: Strategy::parallel(Method::Splice),
                ..k
            },
            CaseKey { threads: 8, ..k },
            CaseKey {
                layout: Layout::Contiguous,
                ..k
            },
            CaseKey {
                chunk_bytes: 10 << 20,
                ..k
            },
            CaseKey {
                receiver: Some((RxMode::Trunc, 256 << 10)),
                ..k
            },
            CaseKey {
                receiver: Some((RxMode::Copy, 1 << 20)),
                ..k
            },
            CaseKey { receiver: None, ..k },
            CaseKey { verify: true, ..k },
            CaseKey {
                queue_depth: Some(8),
                ..k
            },
            CaseKey {
                cc: Some(Cc::new("bbr").unwrap()),
                ..k
            },
            CaseKey { cc: None, ..k },
            broker(),
            CaseKey { threads: 1, ..broker() },
            CaseKey {
                consumers: Some(Consumers {
                    count: 64,
                    fetch_bytes: 1 << 20,
                }),
                ..broker()
            },
            CaseKey {
                consumers: Some(Consumers {
                    count: 8,
                    fetch_bytes: 64 << 10,
                }),
                ..broker()
            },
            CaseKey {
                link: Link::parse("veth:mtu=9000").unwrap(),
                ..k
            },
        ]
    }

    #[test]
    fn cases_one_field_apart_get_different_ids_and_labels() {
        for other in one_field_apart() {
            let pair = [key(), other];
            assert_ne!(pair[0].id(), pair[1].id(), "{other}");
            assert_ne!(pair[0].to_string(), pair[1].to_string());
            let l = Labeler::new(&pair);
            assert_ne!(l.label(&pair[0]), l.label(&pair[1]), "{other}");
        }
    }

    #[test]
    fn labels_name_only_what_varies() {
        let serial = CaseKey {
            strategy: Strategy::serial(Method::Sendfile),
            threads: 1,
            layout: Layout::Single,
            ..key()
        };
        let keys = [serial, key()];
        let l = Labeler::new(&keys);
        assert_eq!(l.label(&keys[0]), "sendfile");
        assert_eq!(l.label(&keys[1]), "parallel-sendfile ×4");
        let cold = CaseKey {
            cache: Cache::Cold,
            ..serial
        };
        assert_eq!(Labeler::new(&[serial, cold]).label(&cold), "sendfile (cold)");
    }

    #[test]
    fn the_baseline_keeps_chunk_cache_and_receiver() {
        let b = key().sendfile_baseline();
        assert_eq!(b.strategy, Strategy::serial(Method::Sendfile));
        assert_eq!(
            (b.threads, b.layout, b.chunk_bytes, b.cache),
            (1, Layout::Single, 1 << 20, Cache::Warm)
        );
        assert_eq!(
            key().id(),
            "parallel-sendfile/t4/striped/c1048576/warm/rx-copy-262144/cc-cubic"
        );
    }

    #[test]
    fn a_broker_case_is_measured_against_broker_sendfile_with_its_consumers() {
        let b = broker().sendfile_baseline();
        assert_eq!(b.strategy, Strategy::broker(Method::Sendfile));
        assert_eq!(
            (b.threads, b.consumers, b.chunk_bytes),
            (3, broker().consumers, 1 << 20)
        );
        assert_eq!(b.sendfile_baseline(), b);
        assert_eq!((broker().connections(), key().connections()), (8, 4));
        assert_eq!(
            broker().id(),
            "broker-read-send/t3/single/c32768/warm/rx-copy-262144/cc-cubic/k8-f1048576"
        );
        assert_eq!(Labeler::new(&[broker()]).label(&broker()), "broker-read-send →8");
        let other = CaseKey { threads: 1, ..broker() };
        assert_eq!(
            Labeler::new(&[broker(), other]).label(&other),
            "broker-read-send →8 1 net"
        );
    }
}
