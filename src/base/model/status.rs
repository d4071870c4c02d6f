//! What became of a repetition (`Status`) and the warnings a row carries (`Flag`), with the texts runs.csv has
//! always used.

use super::names::{Named, named};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

named! {
    /// The `status` column: `ok`, or the name of what went wrong (docs/faults.md says what each means).
    #[derive(Default)]
    pub enum Status: "status" {
        /// Every byte arrived (and matched, with --verify).
        Ok = "ok",
        /// The repetition did not get as far as a verdict (never written by a finished repetition).
        #[default]
        Incomplete = "incomplete",
        /// The test file is not the size it had when the run began.
        FileChanged = "file-changed",
        /// Cut short by SIGINT or SIGTERM (never written: the runner drops such a repetition whole).
        Interrupted = "interrupted",
        /// No connection to the sink.
        ConnectFailed = "connect-failed",
        /// The sink refused the stream (token, protocol version, receive mode).
        Refused = "refused",
        /// Set-up before the timed section failed (socket options, buffers, mappings, rings).
        SetupFailed = "setup-failed",
        /// The TLS handshake failed (the sink's certificate is not the one its ack announced, or no TLS at all).
        TlsFailed = "tls-failed",
        /// The page cache could not be put in the state asked for, or its state not measured.
        CacheFailed = "cache-failed",
        /// /proc could not be read.
        ProbeFailed = "probe-failed",
        /// The sink sent no report for a stream.
        NoReport = "no-report",
        /// The sink reported an error on a stream.
        SinkError = "sink-error",
        /// The sender's calls wrote fewer bytes than planned.
        ShortSend = "short-send",
        /// The sink counted fewer (or more) bytes than planned.
        ShortTransfer = "short-transfer",
        /// The sink found bytes that differ from the fixture.
        Corrupt = "corrupt",
        /// The repetition ran past --timeout.
        Timeout = "timeout",
        /// The connection was reset.
        ConnectionReset = "connection-reset",
        /// The connection was closed under the sender.
        BrokenPipe = "broken-pipe",
        /// Another error of a transfer call.
        IoError = "io-error",
        /// The process that sends (a JVM strategy's JVM) exited before the repetition ended.
        SenderExited = "sender-exited",
    }
}

impl Status {
    /// A status that says the sink could not be used at all (nothing else in the run can succeed either).
    pub fn unreachable(self) -> bool {
        matches!(self, Status::ConnectFailed | Status::Refused | Status::TlsFailed)
    }
}

named! {
    /// A warning about one row (the `flags` column, `;`-separated).
    pub enum Flag: "flag" {
        /// The timed section lasted under `summary::SHORT_RUN_S`.
        ShortRun = "short-run",
        /// The page cache was not in the state the case is labelled with.
        ResidencyMismatch = "residency-mismatch",
        /// A warm-up (or calibration) repetition that failed: written so the failure is not lost.
        Warmup = "warmup",
        /// In raw mode, the receiver did not close its side in time.
        RawReceiverDidNotClose = "raw-receiver-did-not-close",
        /// The pass count that `--min-time` asked for reached the cap.
        PassesCapped = "passes-capped",
        /// Measured in a guest under an emulator (QEMU's TCG): the numbers are the emulator's, not the kernel's.
        Emulated = "emulated",
        /// A broker's consumer got less than half the median consumer's MB/s.
        ConsumerBehind = "consumer-behind",
    }
}

/// The `flags` column: a set of flags in the order they were raised, written `a;b`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags(Vec<Flag>);

impl Flags {
    pub fn add(&mut self, flag: Flag) {
        if !self.0.contains(&flag) {
            self.0.push(flag);
        }
    }

    pub fn has(&self, flag: Flag) -> bool {
        self.0.contains(&flag)
    }

    pub fn iter(&self) -> impl Iterator<Item = Flag> + '_ {
        self.0.iter().copied()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.0.iter().map(|f| f.name()).collect();
        f.write_str(&names.join(";"))
    }
}

impl Serialize for Flags {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Flags {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        let mut flags = Flags::default();
        for name in text.split(';').map(str::trim).filter(|n| !n.is_empty()) {
            flags.add(Flag::from_name(name).map_err(serde::de::Error::custom)?);
        }
        Ok(flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_read_and_write_as_before() {
        let flags: Flags = serde_json::from_str(r#""short-run;residency-mismatch""#).unwrap();
        assert!(flags.has(Flag::ShortRun) && flags.has(Flag::ResidencyMismatch));
        assert_eq!(flags.to_string(), "short-run;residency-mismatch");
        let empty: Flags = serde_json::from_str(r#""""#).unwrap();
        assert!(empty.is_empty());
        assert!(serde_json::from_str::<Flags>(r#""nonsense""#).is_err());
        assert_eq!(
            serde_json::to_string(&Status::ShortTransfer).unwrap(),
            r#""short-transfer""#
        );
    }
}
