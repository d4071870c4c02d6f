//! Closed sets of names, each written once: the variant, its text on the command line and in the files, and the
//! list of known names that an error shows. `named!` makes the enum, `Named`, `Display`, `FromStr` and the serde
//! impls (as text, so runs.csv and summary.json read as they always have) from one table.

use serde::{Deserialize, Deserializer, Serializer};

/// A closed set of names.
pub trait Named: Sized + Copy + 'static {
    /// What the names are of, for messages: "layout", "cache state".
    const WHAT: &'static str;
    /// Every value, in the order they are listed to users.
    fn all() -> &'static [Self];
    /// The value's text on the command line and in the files.
    fn name(self) -> &'static str;
    /// The value named `text` (surrounding blanks ignored).
    fn from_name(text: &str) -> Result<Self, UnknownName> {
        let text = text.trim();
        Self::all()
            .iter()
            .copied()
            .find(|v| v.name() == text)
            .ok_or_else(|| UnknownName {
                what: Self::WHAT,
                given: text.to_string(),
                known: Self::all().iter().map(|v| v.name()).collect::<Vec<_>>().join(", "),
            })
    }
}

/// A name outside the set; the message lists the known ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} '{given}'; known: {known}")]
pub struct UnknownName {
    what: &'static str,
    given: String,
    known: String,
}

/// Serialises a named value as its text.
pub(super) fn serialize_name<T: Named, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(value.name())
}

/// Reads a named value from its text; an unknown one is an error naming the known ones.
pub(super) fn deserialize_name<'de, T: Named, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
    let text = std::borrow::Cow::<str>::deserialize(d)?;
    T::from_name(&text).map_err(serde::de::Error::custom)
}

macro_rules! named {
    ($(#[$meta:meta])* pub enum $name:ident: $what:literal {
        $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl Named for $name {
            const WHAT: &'static str = $what;
            fn all() -> &'static [Self] {
                &[$($name::$variant),+]
            }
            fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        $crate::base::model::names::as_text!($name);
    };
}
pub(crate) use named;

/// Display, FromStr and serde for a `Named` type, all by its text.
macro_rules! as_text {
    ($name:ident) => {
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::base::model::names::UnknownName;
            fn from_str(s: &str) -> Result<Self, $crate::base::model::names::UnknownName> {
                Self::from_name(s)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                $crate::base::model::names::serialize_name(self, s)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $crate::base::model::names::deserialize_name(d)
            }
        }
    };
}
pub(crate) use as_text;

/// Declares the transfer methods once: `Method` and the names of every `Strategy` (each method alone, as
/// `parallel-<method>`, and, for the methods listed after `broker:`, as `broker-<method>`) come from the same list,
/// and so does the line `run --help` gives each (`Method::about`, the variant's doc comment, which every method must
/// have).
macro_rules! methods {
    ($($(#[doc = $doc:literal])+ $variant:ident = $text:literal,)+ ; broker: [$($broker:ident),+ $(,)?]) => {
        named! {
            /// The transfer path of one connection.
            pub enum Method: "method" {
                $($(#[doc = $doc])+ $variant = $text,)+
            }
        }

        impl Method {
            /// What the method does, in one line (its doc comment).
            pub fn about(self) -> &'static str {
                match self {
                    $(Method::$variant => concat!($($doc),+).trim(),)+
                }
            }
        }

        impl Method {
            /// Whether a broker's network threads can serve consumers with this method (`broker-<method>`).
            pub fn serves_consumers(self) -> bool {
                matches!(self, $(Method::$broker)|+)
            }
        }

        impl Named for Strategy {
            const WHAT: &'static str = "strategy";
            fn all() -> &'static [Self] {
                &[
                    $(Strategy { shape: Shape::Serial, method: Method::$variant },)+
                    $(Strategy { shape: Shape::Parallel, method: Method::$variant },)+
                    $(Strategy { shape: Shape::Broker, method: Method::$broker },)+
                ]
            }
            fn name(self) -> &'static str {
                match (self.shape, self.method) {
                    $(
                        (Shape::Serial, Method::$variant) => $text,
                        (Shape::Parallel, Method::$variant) => concat!("parallel-", $text),
                        (Shape::Broker, Method::$variant) => concat!("broker-", $text),
                    )+
                }
            }
        }
    };
}

methods! {
    /// pread() into a user buffer of `chunk` bytes, send() it: two copies through user space.
    ReadSend = "read-send",
    /// mmap() the file, send() from the mapping: one copy.
    MmapSend = "mmap-send",
    /// sendfile() in `chunk`-sized calls: no copy through user space.
    Sendfile = "sendfile",
    /// splice() file -> pipe -> socket: no copy through user space.
    Splice = "splice",
    /// The splice path as linked io_uring operations, `queue_depth / 2` pipe-fulls per submission.
    IoUring = "io-uring",
    /// `io-uring` with the file, the pipe's ends and the socket registered with the ring (IORING_REGISTER_FILES).
    IoUringFixed = "io-uring-fixed",
    /// send() from a mapping with MSG_ZEROCOPY: no copy unless the kernel reports it copied anyway.
    MsgZerocopy = "msg-zerocopy",
    /// IORING_OP_SEND_ZC from a mapping, `queue_depth` linked sends per submission, copies reported by the kernel.
    IoUringSendZc = "io-uring-send-zc",
    /// IORING_OP_READ_FIXED into registered buffers, IORING_OP_SEND_ZC from them, file and socket registered
    /// (liburing's send-zerocopy shape).
    IoUringSendZcFixed = "io-uring-send-zc-fixed",
    /// pread() with O_DIRECT into an aligned buffer, then send(): the disk path for cold runs.
    DirectReadSend = "direct-read-send",
    /// pread() into a user buffer, encrypt in user space (TLS 1.3, rustls), send() the records: Kafka's path
    /// with TLS on.
    TlsReadSend = "tls-read-send",
    /// The same TLS session with its keys handed to the kernel (kTLS), then sendfile(): zero-copy with TLS.
    KtlsSendfile = "ktls-sendfile",
    /// In a JVM: `FileChannel.transferTo` of `chunk` bytes per call into a `SocketChannel`, Kafka's path (on Linux
    /// one sendfile per call; the check pass records the calls that really ran, `jvm_path`); as a broker, Java
    /// `Selector`s over non-blocking channels, transferTo of what is left of each fetch.
    JvmTransferto = "jvm-transferto",
    /// In a JVM: `FileInputStream.read` into a heap `byte[chunk]`, then a `java.net.Socket`'s stream (plain IO).
    JvmReadWrite = "jvm-read-write",
    /// In a JVM: `FileChannel.read` into a direct `ByteBuffer` of `chunk`, then `SocketChannel.write` (NIO).
    JvmNio = "jvm-nio",
    /// In a JVM: `FileChannel.read` into a direct `ByteBuffer` of `chunk`, `SSLEngine.wrap` into TLS 1.3 records,
    /// `SocketChannel.write`: Kafka's `SslTransportLayer` (as a broker, its 32 KiB reads).
    JvmTls = "jvm-tls",
    ;
    broker: [ReadSend, Sendfile, TlsReadSend, KtlsSendfile, JvmTransferto, JvmTls]
}

/// Serial sendfile: the baseline every ratio is taken against.
impl Default for Method {
    fn default() -> Method {
        Method::Sendfile
    }
}

impl Method {
    /// Whether the method has a submission queue whose depth `--queue-depth` sets.
    pub fn has_queue(self) -> bool {
        matches!(
            self,
            Method::IoUring | Method::IoUringFixed | Method::IoUringSendZc | Method::IoUringSendZcFixed
        )
    }

    /// Whether the method runs in a JVM (`jvm-*`), driven by the runner over the JVM's command channel.
    pub fn jvm(self) -> bool {
        matches!(
            self,
            Method::JvmTransferto | Method::JvmReadWrite | Method::JvmNio | Method::JvmTls
        )
    }

    /// Whether the method's streams are TLS sessions (the sink terminates them).
    pub fn tls(self) -> bool {
        matches!(self, Method::TlsReadSend | Method::KtlsSendfile | Method::JvmTls)
    }
}

named! {
    /// How a strategy's connections are arranged. Ordered as tables and charts tell the story.
    #[derive(Default)]
    pub enum Shape: "shape" {
        /// One connection carries the file.
        #[default]
        Serial = "serial",
        /// N threads, N connections, N file descriptors, dividing the file by a `Layout` (`parallel-<method>`).
        Parallel = "parallel",
        /// A broker's few network threads serving the whole file to each of many consumers, each thread one epoll
        /// loop over non-blocking sockets (`broker-<method>`), as a Kafka broker serves a hot log segment.
        Broker = "broker",
    }
}

/// A method in a shape: `sendfile`, `parallel-sendfile`, `broker-sendfile`. Ordered serial before parallel before
/// broker, as tables and charts tell the story.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Strategy {
    pub shape: Shape,
    pub method: Method,
}

impl Strategy {
    /// The serial strategy of `method`.
    pub const fn serial(method: Method) -> Strategy {
        Strategy {
            shape: Shape::Serial,
            method,
        }
    }

    /// The parallel strategy of `method`.
    pub const fn parallel(method: Method) -> Strategy {
        Strategy {
            shape: Shape::Parallel,
            method,
        }
    }

    /// The broker strategy of `method` (only the methods that `serves_consumers` have a name).
    pub const fn broker(method: Method) -> Strategy {
        Strategy {
            shape: Shape::Broker,
            method,
        }
    }

    /// `parallel-<method>`: N threads dividing the file.
    pub fn is_parallel(self) -> bool {
        self.shape == Shape::Parallel
    }

    /// `broker-<method>`: the whole file to each of many consumers.
    pub fn is_broker(self) -> bool {
        self.shape == Shape::Broker
    }
}

as_text!(Strategy);

named! {
    /// How a file is divided among the streams of one case.
    #[derive(Default)]
    pub enum Layout: "layout" {
        /// One stream carries the whole file.
        #[default]
        Single = "single",
        /// Stream k carries chunks k, k+N, k+2N, ... (as the original Java code did).
        Striped = "striped",
        /// Stream k carries one contiguous range of about size/N bytes.
        Contiguous = "contiguous",
    }
}

named! {
    /// Page-cache state asked for before a case (warm first: the order the article tells it in).
    #[derive(Default)]
    pub enum Cache: "cache state" {
        /// The file read first, so every page is resident.
        #[default]
        Warm = "warm",
        /// The file written back and evicted, so every page comes from storage.
        Cold = "cold",
    }
}

named! {
    /// How the sink takes bytes off the socket.
    #[derive(Default)]
    pub enum RxMode: "receive mode" {
        /// recv() into a user buffer: the receiver pays one copy, as any real consumer does.
        #[default]
        Copy = "copy",
        /// recv() with MSG_TRUNC: the kernel discards the bytes, no copy.
        Trunc = "trunc",
        /// splice() socket -> pipe -> /dev/null: the bytes never reach user space.
        Splice = "splice",
        /// TCP_ZEROCOPY_RECEIVE: the kernel maps received pages into the sink's memory, no copy; what it cannot map
        /// (segments that do not fill whole pages) is received as `copy` does.
        Zerocopy = "zerocopy",
    }
}

impl RxMode {
    /// Whether the bytes reach user space, where they can be checked (zerocopy: checked in place, in the
    /// mapping).
    pub fn can_verify(self) -> bool {
        matches!(self, RxMode::Copy | RxMode::Zerocopy)
    }
}

named! {
    /// Where the sink checks the bytes of a verified stream.
    pub enum VerifyOn: "place to verify" {
        /// In the receiving thread, between receive calls: the check's time comes off a receiver-bound stream.
        Receiver = "receiver",
        /// In a checking thread of its own per stream, fed filled buffers in batches.
        Thread = "thread",
    }
}

impl VerifyOn {
    /// `auto`: a thread of its own only where CPUs are to spare, three per stream (sender, receiver and checker
    /// on a loopback run); else the checker would take CPU from the transfer it checks.
    pub fn choose(streams: u32, cpus: usize) -> VerifyOn {
        if cpus >= 3 * streams.max(1) as usize {
            VerifyOn::Thread
        } else {
            VerifyOn::Receiver
        }
    }
}

named! {
    /// Settings taken together from a system that the run imitates.
    pub enum Preset: "preset" {
        /// A Kafka broker's defaults: 3 network threads (`num.network.threads`), 1 MiB fetches
        /// (`max.partition.fetch.bytes`), a 100 KiB send buffer (`socket.send.buffer.bytes` 102400), TCP_NODELAY on
        /// (the broker sets it on every connection), and a 64 KiB receive buffer for a spawned sink (the consumer's
        /// `receive.buffer.bytes` 65536).
        Kafka = "kafka",
    }
}

named! {
    /// The order of the cases within each round.
    #[derive(Default)]
    pub enum Order: "order" {
        /// The cases' order turned by one more each round, so that no case always follows the same one.
        #[default]
        Rotate = "rotate",
        /// A fresh permutation each round, from a recorded seed.
        Shuffle = "shuffle",
        /// Every repetition of a case before the next case (the order before rounds; nothing cancels drift).
        Grouped = "grouped",
    }
}

named! {
    /// Who receives.
    #[derive(Default)]
    pub enum Transport: "transport" {
        /// A sink this run spawned on 127.0.0.1.
        #[default]
        Loopback = "loopback",
        /// An `xferbench sink` reached with --connect.
        Remote = "remote",
        /// A sink this run spawned at the far end of a `--link` veth path of its own.
        Veth = "veth",
        /// Any TCP receiver, without header or report (--raw).
        Raw = "raw",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_round_trips_and_unknown_ones_list_the_known() {
        for s in Strategy::all() {
            assert_eq!(s.name().parse::<Strategy>().unwrap(), *s);
            assert_eq!(s.name().starts_with("parallel-"), s.is_parallel());
            assert_eq!(s.name().starts_with("broker-"), s.is_broker());
            assert!(!s.is_broker() || s.method.serves_consumers(), "{s}");
        }
        let brokers = Method::all().iter().filter(|m| m.serves_consumers()).count();
        assert_eq!(Strategy::all().len(), 2 * Method::all().len() + brokers);
        assert_eq!(brokers, 6);
        assert!("broker-splice".parse::<Strategy>().is_err());
        for c in Cache::all() {
            assert_eq!(Cache::from_name(c.name()).unwrap(), *c);
        }
        let e = "sendfil".parse::<Strategy>().unwrap_err().to_string();
        assert!(e.starts_with("unknown strategy 'sendfil'; known: read-send,"), "{e}");
        assert!(e.contains("parallel-direct-read-send"), "{e}");
        assert_eq!(" striped ".parse::<Layout>().unwrap(), Layout::Striped);
    }

    #[test]
    fn serde_uses_the_names() {
        let json = serde_json::to_string(&(Strategy::parallel(Method::Sendfile), Cache::Cold)).unwrap();
        assert_eq!(json, r#"["parallel-sendfile","cold"]"#);
        let back: (Strategy, Cache) = serde_json::from_str(&json).unwrap();
        assert_eq!(back, (Strategy::parallel(Method::Sendfile), Cache::Cold));
        assert!(serde_json::from_str::<Layout>(r#""diagonal""#).is_err());
    }

    #[test]
    fn orders_tell_the_story() {
        assert!(Cache::Warm < Cache::Cold);
        assert!(Strategy::serial(Method::ReadSend) < Strategy::parallel(Method::ReadSend));
        assert!(Strategy::serial(Method::DirectReadSend) < Strategy::parallel(Method::ReadSend));
        assert!(Strategy::parallel(Method::KtlsSendfile) < Strategy::broker(Method::ReadSend));
    }
}
