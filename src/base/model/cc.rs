//! A TCP congestion control algorithm, by the name the kernel knows it (`cubic`, `bbr`, `reno`, ...). It decides
//! the numbers: under bbr, which paces every flow even over loopback, single-stream sendfile moved about a third of
//! what it moved under cubic on this project's VM. So it is part of every case, set on every data socket with
//! TCP_CONGESTION and read back from it.
//!
//! The name is kept inline (the kernel caps it at 15 bytes, TCP_CA_NAME_MAX less its NUL) so that a case key
//! stays `Copy`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Longest name the kernel takes.
const MAX: usize = 15;

/// A congestion control algorithm's name.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cc {
    len: u8,
    bytes: [u8; MAX],
}

impl Cc {
    /// The algorithm named `name`: 1 to 15 letters, digits, `_` or `-` (what the kernel's names are made of).
    pub fn new(name: &str) -> Result<Cc, String> {
        let name = name.trim();
        if name.is_empty() || name.len() > MAX {
            return Err(format!(
                "'{name}' is not a congestion control name (1 to {MAX} characters)"
            ));
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(format!(
                "'{name}' is not a congestion control name (letters, digits, '_' and '-' only)"
            ));
        }
        let mut bytes = [0u8; MAX];
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        Ok(Cc {
            len: name.len() as u8,
            bytes,
        })
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored (`new` checks).
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }

    /// The algorithm paces every flow by its own estimate of the path, on loopback too (the bbr family), so a
    /// single stream is held to the pace it finds rather than to what the sender can do.
    pub fn paces(&self) -> bool {
        self.as_str().starts_with("bbr")
    }
}

/// By name, as people sort them.
impl Ord for Cc {
    fn cmp(&self, other: &Cc) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for Cc {
    fn partial_cmp(&self, other: &Cc) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Cc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Cc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cc({})", self.as_str())
    }
}

impl std::str::FromStr for Cc {
    type Err = String;
    fn from_str(s: &str) -> Result<Cc, String> {
        Cc::new(s)
    }
}

impl Serialize for Cc {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Cc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Cc, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        Cc::new(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_ones_are_refused() {
        let bbr = Cc::new("bbr").unwrap();
        assert_eq!(bbr.to_string(), "bbr");
        assert!(bbr.paces() && !Cc::new("cubic").unwrap().paces());
        assert_eq!(serde_json::to_string(&bbr).unwrap(), r#""bbr""#);
        assert_eq!(serde_json::from_str::<Cc>(r#""cubic""#).unwrap().as_str(), "cubic");
        assert!(Cc::new("").is_err() && Cc::new("a b").is_err() && Cc::new(&"x".repeat(16)).is_err());
        assert!(Cc::new("cubic").unwrap() < Cc::new("reno").unwrap());
    }
}
