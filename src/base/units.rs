//! Sizes, rates and durations: parsed from what people type, formatted for people to read.
//!
//! Files always carry raw units (bytes, seconds, MB/s with MB = 10^6 bytes); only the terminal sees scaled ones.

use crate::base::error::UsageError;
use std::time::Duration;

/// Parses a size such as `1.2GB`, `1.2G`, `512MiB`, `64MiB` or `4096` into bytes; the error says why, for the
/// flag's message.
///
/// Decimal suffixes (`K`, `M`, `G`, with or without `B`) mean powers of 1000, binary ones (`KiB`, `MiB`, `GiB`)
/// powers of 1024, as the article's "1.2 GB" means 1,200,000,000 bytes.
pub fn size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    if let Some(rest) = trimmed.strip_prefix('-') {
        // Sizes take values that start with '-', so a forgotten value swallows the next flag: say which it is.
        return Err(if rest.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
            "a size cannot be negative; give a positive size such as 64MiB".into()
        } else {
            "expected a size (such as 64MiB) but found a flag; give the size right after the flag".into()
        });
    }
    parse_size::Config::new()
        .parse_size(trimmed)
        .map_err(|e| format!("not a size ({e}); try 1.2GB, 512MiB or 4096"))
}

/// A size of at least `min` and at most `max` bytes.
pub fn size_in(min: u64, max: u64) -> impl Fn(&str) -> Result<u64, String> + Clone + Send + Sync + 'static {
    move |text| match size(text)? {
        n if n < min || n > max => Err(format!(
            "must be between {} and {}",
            format_bytes_exact(min),
            format_bytes_exact(max)
        )),
        n => Ok(n),
    }
}

/// A byte count in words that never rounds: `1 byte`, `2 GiB`, `1.2 GB` only when exact.
fn format_bytes_exact(bytes: u64) -> String {
    match bytes {
        1 => "1 byte".into(),
        b if b % 1024 == 0 => format_bytes(b),
        b => format!("{b} bytes"),
    }
}

/// A whole number from `min` to `max`; parsed wide, so that -1 and 100000000000 get the range in the message
/// rather than "not a number".
pub fn count_in(min: u32, max: u32) -> impl Fn(&str) -> Result<u32, String> + Clone + Send + Sync + 'static {
    move |text| {
        let n: i128 = text
            .trim()
            .parse()
            .map_err(|_| format!("not a whole number; give one between {min} and {max}"))?;
        u32::try_from(n)
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| format!("must be between {min} and {max}"))
    }
}

/// The longest duration any flag takes: a deadline this far ahead still fits in an `Instant`.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 86_400);

/// Parses a duration: plain seconds (`30`, `0.5`) or with a unit (`90s`, `500ms`, `2m`, `1h`); above zero and at
/// most a year.
pub fn duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let too_long = || "the duration must be at most 365 days".to_string();
    let parsed = match trimmed.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 => Duration::try_from_secs_f64(secs).map_err(|_| too_long()),
        Ok(_) => Err("it must be a positive number of seconds".to_string()),
        Err(_) => humantime::parse_duration(trimmed).map_err(|e| format!("not a duration ({e}); try 30s or 2m")),
    }?;
    if parsed.is_zero() {
        return Err("the duration must be above zero".into());
    }
    if parsed > MAX_DURATION {
        return Err(too_long());
    }
    Ok(parsed)
}

/// A percentage above 0 and below 100: `5%` or `5` (the `%` is optional), as a fraction (0.05).
pub fn percent(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let n: f64 = t
        .strip_suffix('%')
        .unwrap_or(t)
        .trim()
        .parse()
        .map_err(|_| "not a percentage; try 5%".to_string())?;
    if !(n > 0.0 && n < 100.0) {
        return Err("must be above 0% and below 100%".into());
    }
    Ok(n / 100.0)
}

/// Durations in files as people type them (`500ms`, `1m 30s`), read back with `duration`.
pub mod duration_text {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        super::duration(&text).map_err(serde::de::Error::custom)
    }
}

/// A duration that may be 0 (`0` or `0s`: off), else as `duration`.
pub fn duration_or_off(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.trim_end_matches(|c: char| c.is_ascii_alphabetic()).trim() == "0" {
        return Ok(Duration::ZERO);
    }
    duration(t)
}

/// Durations that may be 0 (off) in files, as `duration_text` writes them.
pub mod duration_or_off_text {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        super::duration_text::serialize(d, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        super::duration_or_off(&text).map_err(serde::de::Error::custom)
    }
}

/// `duration_text` for an optional duration (null when unset).
pub mod duration_text_opt {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::duration_text::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<std::borrow::Cow<str>>::deserialize(d)? {
            Some(text) => super::duration(&text).map(Some).map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}

/// Formats a byte count for people: whole binary units when exact (`10 MiB`, `128 KiB`), else decimal (`1.20 GB`).
pub fn format_bytes(bytes: u64) -> String {
    const KIB: u64 = 1024;
    let binary = bytes % (KIB * KIB) == 0 || (bytes < KIB * KIB && bytes % KIB == 0);
    if bytes >= KIB && binary && bytes < 1_000_000_000_000 {
        let (value, unit) = if bytes % (KIB * KIB * KIB) == 0 {
            (bytes / (KIB * KIB * KIB), "GiB")
        } else if bytes % (KIB * KIB) == 0 {
            (bytes / (KIB * KIB), "MiB")
        } else {
            (bytes / KIB, "KiB")
        };
        return format!("{value} {unit}");
    }
    let b = bytes as f64;
    match b {
        _ if b >= 1e12 => format!("{:.2} TB", b / 1e12),
        _ if b >= 1e9 => format!("{:.2} GB", b / 1e9),
        _ if b >= 1e6 => format!("{:.1} MB", b / 1e6),
        _ if b >= 1e3 => format!("{:.1} kB", b / 1e3),
        _ => format!("{bytes} B"),
    }
}

/// Formats a rate given in MB/s (10^6 bytes per second) for people.
pub fn format_rate_mb_s(mb_s: f64) -> String {
    if mb_s >= 1000.0 {
        format!("{:.2} GB/s", mb_s / 1000.0)
    } else {
        format!("{mb_s:.0} MB/s")
    }
}

/// A CPU list as typed (`0-3,8`) and the CPUs it names, sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuList {
    pub text: String,
    pub cpus: Vec<usize>,
}

/// Parses a CPU list such as `0-3,8,10-11` (whether those CPUs are online is the machine's to say: `CpuList::check`).
pub fn cpu_list(text: &str) -> Result<CpuList, String> {
    let syntax = || "not a CPU list; try 0-3,8".to_string();
    let mut cpus = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let lo: usize = lo.trim().parse().map_err(|_| syntax())?;
        let hi: usize = hi.trim().parse().map_err(|_| syntax())?;
        if lo > hi || hi >= nix::sched::CpuSet::count() {
            return Err("a CPU range is reversed or beyond the CPUs the kernel supports".into());
        }
        cpus.extend(lo..=hi);
    }
    if cpus.is_empty() {
        return Err("names no CPU".into());
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(CpuList {
        text: text.trim().to_string(),
        cpus,
    })
}

impl serde::Serialize for CpuList {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for CpuList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<CpuList, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        cpu_list(&text).map_err(serde::de::Error::custom)
    }
}

impl CpuList {
    /// Refuses CPUs this machine does not have online.
    pub fn check(&self, flag: &str) -> Result<(), UsageError> {
        let online = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let max_cpu = nix::unistd::sysconf(nix::unistd::SysconfVar::_NPROCESSORS_ONLN)
            .ok()
            .flatten()
            .unwrap_or(online as i64);
        match self.cpus.iter().find(|&&c| c as i64 >= max_cpu) {
            Some(c) => Err(UsageError::new(
                flag,
                &self.text,
                format!("CPU {c} is not online (this machine has {max_cpu})"),
            )),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_the_issue_names() {
        assert_eq!(size("1.2GB"), Ok(1_200_000_000));
        assert_eq!(size("1.2G"), Ok(1_200_000_000));
        assert_eq!(size("512MiB"), Ok(512 << 20));
        assert_eq!(size("64MiB"), Ok(64 << 20));
        assert_eq!(size("4096"), Ok(4096));
        assert_eq!(size("128KiB"), Ok(128 << 10));
    }

    #[test]
    fn bad_sizes_say_why() {
        assert!(size("-5MB").unwrap_err().contains("negative"));
        assert!(size("--verify").unwrap_err().contains("found a flag"));
        assert!(size("lots").unwrap_err().contains("not a size"));
    }

    #[test]
    fn durations() {
        assert_eq!(duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(duration("0").is_err());
        assert!(duration("-1").is_err());
        assert!(duration("soon").is_err());
        // Past a year (and past what a Duration holds) is refused, not a panic or a deadline beyond Instant.
        assert_eq!(duration("365d"), Ok(MAX_DURATION));
        for long in ["1e300", "31536001", "366d", "1e19"] {
            assert_eq!(
                duration(long).unwrap_err(),
                "the duration must be at most 365 days",
                "{long}"
            );
        }
    }

    #[test]
    fn a_duration_that_may_be_off() {
        assert_eq!(duration_or_off("0"), Ok(Duration::ZERO));
        assert_eq!(duration_or_off("0ms"), Ok(Duration::ZERO));
        assert_eq!(duration_or_off("50ms"), Ok(Duration::from_millis(50)));
        assert!(duration_or_off("-1").is_err() && duration_or_off("x").is_err());
    }

    #[test]
    fn percentages_and_durations_as_text() {
        assert_eq!(percent("5%"), Ok(0.05));
        assert_eq!(percent(" 2.5 "), Ok(0.025));
        assert!(percent("0").is_err() && percent("100%").is_err() && percent("x").is_err());
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct T {
            #[serde(with = "duration_text")]
            d: Duration,
            c: CpuList,
        }
        let t = T {
            d: Duration::from_millis(1500),
            c: cpu_list("0-1").unwrap(),
        };
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, r#"{"d":"1s 500ms","c":"0-1"}"#);
        assert_eq!(serde_json::from_str::<T>(&json).unwrap(), t);
    }

    #[test]
    fn formatting() {
        assert_eq!(format_bytes(1_200_000_000), "1.20 GB");
        assert_eq!(format_bytes(10 << 20), "10 MiB");
        assert_eq!(format_bytes(131072), "128 KiB");
        assert_eq!(format_rate_mb_s(4210.0), "4.21 GB/s");
        assert_eq!(format_rate_mb_s(663.4), "663 MB/s");
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(cpu_list("0").unwrap().cpus, vec![0]);
        assert_eq!(cpu_list("3,0-1").unwrap().cpus, vec![0, 1, 3]);
        assert!(cpu_list("1-0").is_err());
        assert!(cpu_list("x").is_err());
        assert!(cpu_list("100000").is_err());
        assert!(cpu_list("").is_err());
        assert!(cpu_list("100").unwrap().check("--cpus").is_err());
        assert!(cpu_list("0").unwrap().check("--cpus").is_ok());
    }

    #[test]
    fn counts_and_ranges() {
        let c = count_in(1, 1024);
        assert_eq!(c("10"), Ok(10));
        assert_eq!(c("0").unwrap_err(), "must be between 1 and 1024");
        assert_eq!(c("-1").unwrap_err(), "must be between 1 and 1024");
        assert!(c("many").unwrap_err().starts_with("not a whole number"));
        let s = size_in(1, 1 << 31);
        assert_eq!(s("1MiB"), Ok(1 << 20));
        assert_eq!(s("0").unwrap_err(), "must be between 1 byte and 2 GiB");
    }
}
