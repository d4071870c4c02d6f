//! The path a case's streams take (`--link SPEC`): the loopback of one box, or a veth path through a router
//! namespace with the MTU, rate, delay, jitter, loss and offloads asked for. This is the spec only, as the user
//! types it and a row records it; the namespaces, veth pairs and qdiscs that make a path are `crate::link`'s.
//!
//! A spec is `loopback`, `veth` (or `veth:KEY=VALUE,...`), or a preset (`lan-10g`, `jumbo-10g`, `wan`, which may
//! be changed the same way: `wan:loss=1%`). Every value is written as tc writes it: rates in `bit`, `kbit`,
//! `mbit`, `gbit` (bits per second; tc's `bps` forms mean bytes and are refused), times in `ns`, `us`, `ms`, `s`,
//! loss in percent. Delay, jitter and loss hold for each direction, so a round trip sees twice the delay. A row
//! records the spec in its canonical form (every value in full, never a preset's name), so a set keeps saying what
//! its path was whatever a later release calls a preset.

use std::fmt;

/// The path of a case's streams.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Link {
    /// The box's own loopback (and, for `--connect`, whatever network lies between): no path of the run's own.
    /// Rows from before links existed read as this.
    #[default]
    Loopback,
    /// A veth path through a router namespace, shaped as the spec says.
    Veth(Veth),
}

/// A veth path: sender namespace, router namespace, sink namespace, two veth pairs; the router shapes both of its
/// egresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Veth {
    /// Bytes, on every interface of the path.
    pub mtu: u32,
    /// Bits per second each way (htb on the router); None: as fast as the veth goes.
    pub rate_bit_s: Option<u64>,
    /// Nanoseconds added each way (netem), whole microseconds.
    pub delay_ns: u64,
    /// Nanoseconds of uniform variation around the delay, each way (netem).
    pub jitter_ns: u64,
    /// Packets dropped each way, in parts per 10^9 (netem): 100,000 is 0.01%.
    pub loss_ppb: u32,
    /// TSO, GSO and GRO as the kernel sets them (true), or off on every interface of the path.
    pub offload: bool,
}

/// A veth path as the kernel makes one: 1,500-byte MTU, nothing shaped, offloads on.
pub const VETH: Veth = Veth {
    mtu: 1500,
    rate_bit_s: None,
    delay_ns: 0,
    jitter_ns: 0,
    loss_ppb: 0,
    offload: true,
};

/// The named paths: (name, what it stands for, spec).
pub const PRESETS: &[(&str, &str, Veth)] = &[
    (
        "lan-10g",
        "a 10 Gbit/s LAN: 1,500-byte MTU, 50 us each way",
        Veth {
            rate_bit_s: Some(10_000_000_000),
            delay_ns: 50_000,
            ..VETH
        },
    ),
    (
        "jumbo-10g",
        "a 10 Gbit/s LAN with jumbo frames: 9,000-byte MTU, 50 us each way",
        Veth {
            mtu: 9000,
            rate_bit_s: Some(10_000_000_000),
            delay_ns: 50_000,
            ..VETH
        },
    ),
    (
        "wan",
        "a 1 Gbit/s WAN: 10 ms each way, 0.01% loss each way, offloads off so that loss strikes single segments",
        Veth {
            rate_bit_s: Some(1_000_000_000),
            delay_ns: 10_000_000,
            loss_ppb: 100_000,
            offload: false,
            ..VETH
        },
    ),
];

/// Smallest MTU a path may have: the smallest datagram every IPv4 host must accept.
pub const MIN_MTU: u32 = 576;
/// Largest MTU a veth takes.
pub const MAX_MTU: u32 = 65_535;
const MIN_RATE: u64 = 1_000_000;
const MAX_RATE: u64 = 1_000_000_000_000;
const MAX_DELAY_NS: u64 = 10_000_000_000;
const PPB_PER_PERCENT: u64 = 10_000_000;
const KEYS: &str = "mtu, rate, delay, jitter, loss, offload";

impl Link {
    /// Parses a spec; the error says what is wrong and how to write it (clap puts it after the flag and value).
    pub fn parse(text: &str) -> Result<Link, String> {
        let text = text.trim();
        if text == "loopback" {
            return Ok(Link::Loopback);
        }
        let (base, keys) = text.split_once(':').unwrap_or((text, ""));
        let mut spec = match base {
            "veth" => VETH,
            name => match PRESETS.iter().find(|(n, _, _)| *n == name) {
                Some((_, _, spec)) => *spec,
                None => {
                    return Err(format!(
                        "'{name}' is not a link; known: loopback, veth:KEY=VALUE,... ({KEYS}), {}",
                        preset_names()
                    ));
                }
            },
        };
        let mut seen: Vec<&str> = Vec::new();
        for pair in keys.split(',').filter(|p| !p.trim().is_empty()) {
            let Some((key, value)) = pair.split_once('=') else {
                return Err(format!("'{pair}' is not KEY=VALUE; keys: {KEYS}"));
            };
            let (key, value) = (key.trim(), value.trim());
            if seen.contains(&key) {
                return Err(format!("{key} is given twice"));
            }
            seen.push(key);
            set(&mut spec, key, value).map_err(|why| format!("{key}={value}: {why}"))?;
        }
        check(&spec)?;
        Ok(Link::Veth(spec))
    }

    pub fn is_loopback(&self) -> bool {
        *self == Link::Loopback
    }

    pub fn veth(&self) -> Option<&Veth> {
        match self {
            Link::Loopback => None,
            Link::Veth(v) => Some(v),
        }
    }

    /// The configured rate, bits per second (None: not shaped).
    pub fn rate_bit_s(&self) -> Option<u64> {
        self.veth().and_then(|v| v.rate_bit_s)
    }
}

impl Veth {
    /// Delay, jitter or loss: what only netem (sch_netem) does.
    pub fn needs_netem(&self) -> bool {
        self.delay_ns > 0 || self.jitter_ns > 0 || self.loss_ppb > 0
    }
}

fn preset_names() -> String {
    PRESETS.iter().map(|(n, _, _)| *n).collect::<Vec<_>>().join(", ")
}

fn set(spec: &mut Veth, key: &str, value: &str) -> Result<(), String> {
    match key {
        "mtu" => {
            spec.mtu = value
                .parse::<u32>()
                .ok()
                .filter(|m| (MIN_MTU..=MAX_MTU).contains(m))
                .ok_or_else(|| format!("the MTU is a byte count from {MIN_MTU} to {MAX_MTU}"))?;
        }
        "rate" => spec.rate_bit_s = Some(rate(value)?),
        "delay" => spec.delay_ns = time_ns(value)?,
        "jitter" => spec.jitter_ns = time_ns(value)?,
        "loss" => spec.loss_ppb = loss_ppb(value)?,
        "offload" => {
            spec.offload = match value {
                "on" => true,
                "off" => false,
                _ => return Err("offload is on or off".into()),
            }
        }
        _ => return Err(format!("unknown key; keys: {KEYS}")),
    }
    Ok(())
}

/// What holds across keys.
fn check(spec: &Veth) -> Result<(), String> {
    if spec.jitter_ns > 0 && spec.delay_ns == 0 {
        return Err("jitter varies the delay: give delay too".into());
    }
    if spec.jitter_ns > spec.delay_ns {
        return Err(format!(
            "jitter ({}) exceeds the delay ({}): a packet cannot leave before it came",
            time_text(spec.jitter_ns),
            time_text(spec.delay_ns)
        ));
    }
    Ok(())
}

/// `1.5` -> (15, 10): a decimal number as an exact fraction.
fn decimal(text: &str) -> Option<(u128, u128)> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) || frac.len() > 12 || int.len() > 20 {
        return None;
    }
    let whole: u128 = format!("{int}{frac}").parse().ok()?;
    Some((whole, 10u128.pow(frac.len() as u32)))
}

/// `value` (a decimal then a unit from `units`) in the units' base, exactly; None when it is not a whole number.
fn scaled(value: &str, units: &[(&str, u128)]) -> Result<Option<u128>, ()> {
    let lower = value.to_ascii_lowercase();
    let at = lower.find(|c: char| !c.is_ascii_digit() && c != '.').ok_or(())?;
    let (number, unit) = lower.split_at(at);
    let &(_, scale) = units.iter().find(|(u, _)| *u == unit).ok_or(())?;
    let (n, d) = decimal(number).ok_or(())?;
    let whole = n.checked_mul(scale).ok_or(())?;
    Ok((whole % d == 0).then_some(whole / d))
}

fn rate(value: &str) -> Result<u64, String> {
    const UNITS: &[(&str, u128)] = &[
        ("bit", 1),
        ("kbit", 1_000),
        ("mbit", 1_000_000),
        ("gbit", 1_000_000_000),
        ("tbit", 1_000_000_000_000),
        ("kibit", 1 << 10),
        ("mibit", 1 << 20),
        ("gibit", 1 << 30),
    ];
    if value.to_ascii_lowercase().ends_with("bps") {
        return Err("tc reads bps as bytes per second: write the rate in bits, e.g. 10gbit or 800mbit".into());
    }
    let bits = match scaled(value, UNITS) {
        Ok(Some(b)) => b,
        Ok(None) => return Err("not a whole number of bits per second".into()),
        Err(()) => return Err("not a rate; write it as tc does: 10gbit, 800mbit, 1.5gbit".into()),
    };
    u64::try_from(bits)
        .ok()
        .filter(|b| (MIN_RATE..=MAX_RATE).contains(b))
        .ok_or_else(|| "the rate is from 1mbit to 1tbit (leave it out for an unshaped path)".into())
}

fn time_ns(value: &str) -> Result<u64, String> {
    const UNITS: &[(&str, u128)] = &[
        ("ns", 1),
        ("us", 1_000),
        ("usec", 1_000),
        ("µs", 1_000),
        ("ms", 1_000_000),
        ("msec", 1_000_000),
        ("s", 1_000_000_000),
        ("sec", 1_000_000_000),
    ];
    // tc takes times in whole microseconds.
    let ns = match scaled(value, UNITS) {
        Ok(Some(ns)) if ns % 1_000 == 0 => ns,
        Ok(_) => return Err("finer than a microsecond".into()),
        Err(()) => return Err("not a time; give a unit: 50us, 10ms, 1.5ms".into()),
    };
    u64::try_from(ns)
        .ok()
        .filter(|&ns| ns <= MAX_DELAY_NS)
        .ok_or_else(|| "at most 10s".into())
}

fn loss_ppb(value: &str) -> Result<u32, String> {
    let Some(number) = value.strip_suffix('%') else {
        return Err("give loss in percent, e.g. 0.01%".into());
    };
    let ppb = match scaled(&format!("{}%", number.trim()), &[("%", u128::from(PPB_PER_PERCENT))]) {
        Ok(Some(p)) => p,
        Ok(None) => return Err("finer than 0.0000001%".into()),
        Err(()) => return Err("not a percentage; e.g. 0.01%".into()),
    };
    u32::try_from(ppb)
        .ok()
        .filter(|&p| u64::from(p) < 100 * PPB_PER_PERCENT)
        .ok_or_else(|| "under 100%: with every packet lost nothing arrives".into())
}

/// Bits per second as tc writes them: the largest unit that keeps it whole.
pub fn rate_text(bits: u64) -> String {
    match bits {
        b if b % 1_000_000_000 == 0 => format!("{}gbit", b / 1_000_000_000),
        b if b % 1_000_000 == 0 => format!("{}mbit", b / 1_000_000),
        b if b % 1_000 == 0 => format!("{}kbit", b / 1_000),
        b => format!("{b}bit"),
    }
}

/// Nanoseconds (whole microseconds) as tc writes them: the largest unit that keeps it whole.
pub fn time_text(ns: u64) -> String {
    match ns {
        n if n % 1_000_000 == 0 => format!("{}ms", n / 1_000_000),
        n => format!("{}us", n / 1_000),
    }
}

/// Parts per 10^9 as a percentage with no trailing zeros: `0.01%`.
pub fn loss_text(ppb: u32) -> String {
    let (whole, frac) = (u64::from(ppb) / PPB_PER_PERCENT, u64::from(ppb) % PPB_PER_PERCENT);
    if frac == 0 {
        return format!("{whole}%");
    }
    let digits = format!("{frac:07}");
    format!("{whole}.{}%", digits.trim_end_matches('0'))
}

/// The canonical spec: `loopback`, or `veth:mtu=N` then each key that differs from a plain veth's.
impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Link::Veth(v) = self else {
            return f.write_str("loopback");
        };
        write!(f, "veth:mtu={}", v.mtu)?;
        if let Some(r) = v.rate_bit_s {
            write!(f, ",rate={}", rate_text(r))?;
        }
        if v.delay_ns > 0 {
            write!(f, ",delay={}", time_text(v.delay_ns))?;
        }
        if v.jitter_ns > 0 {
            write!(f, ",jitter={}", time_text(v.jitter_ns))?;
        }
        if v.loss_ppb > 0 {
            write!(f, ",loss={}", loss_text(v.loss_ppb))?;
        }
        if !v.offload {
            f.write_str(",offload=off")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn veth(text: &str) -> Veth {
        *Link::parse(text).unwrap().veth().unwrap()
    }

    #[test]
    fn specs_parse_into_their_values_and_print_back_canonical() {
        assert_eq!(Link::parse("loopback"), Ok(Link::Loopback));
        assert_eq!(veth("veth"), VETH);
        let v = veth("veth:mtu=9000,rate=1.5gbit,delay=2.5ms,jitter=500us,loss=0.01%,offload=off");
        assert_eq!(
            (v.mtu, v.rate_bit_s, v.delay_ns, v.jitter_ns, v.loss_ppb, v.offload),
            (9000, Some(1_500_000_000), 2_500_000, 500_000, 100_000, false)
        );
        let text = Link::Veth(v).to_string();
        assert_eq!(
            text,
            "veth:mtu=9000,rate=1500mbit,delay=2500us,jitter=500us,loss=0.01%,offload=off"
        );
        assert_eq!(Link::parse(&text), Ok(Link::Veth(v)), "the canonical text reads back");
        assert_eq!(veth("veth:rate=10Gbit").rate_bit_s, Some(10_000_000_000));
        assert_eq!(veth("veth:rate=1mibit").rate_bit_s, Some(1 << 20));
        assert_eq!(veth("veth:delay=1s").delay_ns, 1_000_000_000);
        assert_eq!(loss_text(10_000_000), "1%");
        assert_eq!(loss_text(1), "0.0000001%");
    }

    #[test]
    fn presets_are_specs_and_rows_record_their_values() {
        let lan = Link::parse("lan-10g").unwrap();
        assert_eq!(lan.to_string(), "veth:mtu=1500,rate=10gbit,delay=50us");
        assert_eq!(Link::parse("veth:rate=10gbit,delay=50us"), Ok(lan));
        let wan = veth("wan");
        assert_eq!(
            (wan.rate_bit_s, wan.delay_ns, wan.loss_ppb, wan.offload),
            (Some(1_000_000_000), 10_000_000, 100_000, false)
        );
        assert_eq!(
            veth("wan:loss=1%").loss_ppb,
            10_000_000,
            "a preset's keys may be changed"
        );
        assert!(wan.needs_netem() && !VETH.needs_netem() && !veth("veth:rate=1gbit,mtu=9000").needs_netem());
        for (name, _, spec) in PRESETS {
            assert_eq!(
                Link::parse(&Link::Veth(*spec).to_string()),
                Ok(Link::Veth(*spec)),
                "{name}"
            );
        }
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        let refused = |text: &str, needle: &str| {
            let e = Link::parse(text).unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
            assert!(!e.contains('\n'), "{e}");
        };
        refused("veth:rate=fast", "rate=fast: not a rate");
        refused("veth:rate=10gbps", "bytes per second");
        refused("veth:rate=100kbit", "from 1mbit");
        refused("veth:mtu=100", "mtu=100: the MTU is a byte count from 576");
        refused("veth:mtu=70000", "from 576 to 65535");
        refused("veth:colour=red", "colour=red: unknown key; keys: mtu, rate");
        refused("veth:mtu", "'mtu' is not KEY=VALUE");
        refused("veth:mtu=1500,mtu=9000", "mtu is given twice");
        refused("veth:delay=10", "give a unit");
        refused("veth:delay=11s", "at most 10s");
        refused("veth:delay=1500ns", "finer than a microsecond");
        refused("veth:jitter=1ms", "give delay too");
        refused("veth:delay=1ms,jitter=2ms", "exceeds the delay");
        refused("veth:loss=1", "in percent");
        refused("veth:loss=100%", "under 100%");
        refused("veth:loss=-1%", "not a percentage");
        refused("veth:offload=maybe", "on or off");
        refused("fibre", "'fibre' is not a link; known: loopback, veth:KEY=VALUE");
        refused("fibre", "lan-10g, jumbo-10g, wan");
    }
}
