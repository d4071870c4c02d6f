//! Sizes, rates and durations: parsed from what people type, formatted for people to read.
//!
//! Files always carry raw units (bytes, seconds, MB/s with MB = 10^6 bytes); only the terminal sees scaled ones.

use crate::error::UsageError;
use std::time::Duration;

/// Parses a size such as `1.2GB`, `1.2G`, `512MiB`, `64MiB` or `4096` into bytes.
///
/// Decimal suffixes (`K`, `M`, `G`, with or without `B`) mean powers of 1000, binary ones (`KiB`, `MiB`, `GiB`)
/// powers of 1024, as the article's "1.2 GB" means 1,200,000,000 bytes.
pub fn parse_size(flag: &str, text: &str) -> Result<u64, UsageError> {
    let trimmed = text.trim();
    if let Some(rest) = trimmed.strip_prefix('-') {
        // Sizes take values that start with '-', so a forgotten value swallows the next flag: say which it is.
        let why = if rest.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
            "a size cannot be negative; give a positive size such as 64MiB"
        } else {
            "expected a size (such as 64MiB) but found a flag; give the size right after the flag"
        };
        return Err(UsageError::new(flag, text, why));
    }
    parse_size::Config::new()
        .parse_size(trimmed)
        .map_err(|e| UsageError::new(flag, text, format!("not a size ({e}); try 1.2GB, 512MiB or 4096")))
}

/// Parses a duration: plain seconds (`30`, `0.5`) or with a unit (`90s`, `2m`, `1h`).
pub fn parse_duration(flag: &str, text: &str) -> Result<Duration, UsageError> {
    let trimmed = text.trim();
    let parsed = match trimmed.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 => Ok(Duration::from_secs_f64(secs)),
        Ok(_) => Err("it must be a positive number of seconds".to_string()),
        Err(_) => humantime::parse_duration(trimmed).map_err(|e| format!("not a duration ({e}); try 30s or 2m")),
    };
    match parsed {
        Ok(d) if d.is_zero() => Err(UsageError::new(flag, text, "the duration must be above zero")),
        Ok(d) => Ok(d),
        Err(why) => Err(UsageError::new(flag, text, why)),
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

/// Parses a CPU list such as `0-3,8,10-11`.
pub fn parse_cpu_list(flag: &str, text: &str) -> Result<Vec<usize>, UsageError> {
    let bad = |why: &str| UsageError::new(flag, text, why);
    let mut cpus = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<usize>(), b.trim().parse::<usize>()),
            None => (part.parse::<usize>(), part.parse::<usize>()),
        };
        let (lo, hi) = (
            lo.map_err(|_| bad("not a CPU list; try 0-3,8"))?,
            hi.map_err(|_| bad("not a CPU list; try 0-3,8"))?,
        );
        if lo > hi || hi >= nix::sched::CpuSet::count() {
            return Err(bad("a CPU range is reversed or beyond the CPUs the kernel supports"));
        }
        cpus.extend(lo..=hi);
    }
    if cpus.is_empty() {
        return Err(bad("names no CPU"));
    }
    let online = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let max_cpu = nix::unistd::sysconf(nix::unistd::SysconfVar::_NPROCESSORS_ONLN)
        .ok()
        .flatten()
        .unwrap_or(online as i64);
    if let Some(&c) = cpus.iter().find(|&&c| c as i64 >= max_cpu) {
        return Err(bad(&format!("CPU {c} is not online (this machine has {max_cpu})")));
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_the_issue_names() {
        assert_eq!(parse_size("--size", "1.2GB").unwrap(), 1_200_000_000);
        assert_eq!(parse_size("--size", "1.2G").unwrap(), 1_200_000_000);
        assert_eq!(parse_size("--size", "512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("--size", "64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("--size", "4096").unwrap(), 4096);
        assert_eq!(parse_size("--size", "128KiB").unwrap(), 128 << 10);
    }

    #[test]
    fn bad_sizes_say_which_flag() {
        let e = parse_size("--chunk", "-5MB").unwrap_err();
        assert!(e.to_string().contains("--chunk"), "{e}");
        assert!(e.to_string().contains("negative"), "{e}");
        let e = parse_size("--size", "lots").unwrap_err();
        assert!(e.to_string().contains("not a size"), "{e}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("--timeout", "30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("--timeout", "2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("--timeout", "0").is_err());
        assert!(parse_duration("--timeout", "-1").is_err());
        assert!(parse_duration("--timeout", "soon").is_err());
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
        assert_eq!(parse_cpu_list("--cpus", "0").unwrap(), vec![0]);
        assert!(parse_cpu_list("--cpus", "1-0").is_err());
        assert!(parse_cpu_list("--cpus", "x").is_err());
        assert!(parse_cpu_list("--cpus", "100000").is_err());
        assert!(parse_cpu_list("--cpus", "").is_err());
    }
}
