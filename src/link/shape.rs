//! The qdiscs that shape one egress of the router, as tc command lines (pure, so they are tested without a
//! kernel). The layout is mininet's TCLink (`TCIntf.config`): htb at the root for the rate, a netem child for
//! delay, jitter and loss; netem alone where no rate is asked, nothing where nothing is. The rate is htb's, never
//! netem's own `rate`, which paces GSO super-packets whole and so bursts.
//!
//! Sizes: netem queues every packet for the delay, so its limit must hold what is in flight, rate x (delay +
//! jitter) with half again for bursts, in packets of the MTU; never less than its default 1,000 (an unshaped path
//! is sized as if it ran at 100 Gbit/s, more than a veth carries). htb's burst is at least 1 ms of the rate
//! (iproute2's own default) and at least the largest packet the path carries: a 64 KiB GSO super-packet with
//! offloads on, one MTU with them off.

use crate::base::model::link::{Veth, loss_text, rate_text, time_text};

/// netem's default queue, in packets, and the least it gets here.
pub const NETEM_DEFAULT_LIMIT: u64 = 1_000;
/// The rate an unshaped path's netem queue is sized for, bits per second.
const UNSHAPED_SIZING_BIT_S: u64 = 100_000_000_000;
/// The largest packet with offloads on: a GSO super-packet (gso_max_size) and its Ethernet header.
const GSO_PACKET: u64 = 65_536 + 14;
/// htb warns above this quantum.
const MAX_QUANTUM: u64 = 200_000;

/// The largest packet the path's queues see, bytes with the Ethernet header.
fn largest_packet(spec: &Veth) -> u64 {
    if spec.offload {
        GSO_PACKET
    } else {
        u64::from(spec.mtu) + 14
    }
}

/// netem's queue limit, in packets: what is in flight at the rate over delay and jitter, x1.5, at least 1,000.
pub fn netem_limit(spec: &Veth) -> u64 {
    let rate = spec.rate_bit_s.unwrap_or(UNSHAPED_SIZING_BIT_S) as u128;
    let held_ns = u128::from(spec.delay_ns + spec.jitter_ns);
    let bytes = rate * held_ns * 3 / 2 / 8 / 1_000_000_000;
    let packets = bytes.div_ceil(u128::from(spec.mtu));
    (packets.min(u128::from(u32::MAX)) as u64).max(NETEM_DEFAULT_LIMIT)
}

/// htb's burst, bytes: 1 ms of the rate, and at least the largest packet.
pub fn burst_bytes(spec: &Veth, rate_bit_s: u64) -> u64 {
    (rate_bit_s / 8 / 1_000).max(largest_packet(spec))
}

/// The tc command lines (after `tc -n NS`) that shape egress `dev` as `spec` says; empty for an unshaped path.
pub fn commands(dev: &str, spec: &Veth) -> Vec<Vec<String>> {
    let words = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<String>>();
    let mut out = Vec::new();
    let mut parent = "root".to_string();
    if let Some(rate) = spec.rate_bit_s {
        let burst = burst_bytes(spec, rate);
        let quantum = largest_packet(spec).min(MAX_QUANTUM);
        out.push(words(&format!("qdisc add dev {dev} root handle 1: htb default 1")));
        out.push(words(&format!(
            "class add dev {dev} parent 1: classid 1:1 htb rate {} burst {burst}b cburst {burst}b quantum {quantum}",
            rate_text(rate)
        )));
        parent = "parent 1:1".into();
    }
    if spec.needs_netem() {
        let mut netem = format!(
            "qdisc add dev {dev} {parent} handle 10: netem limit {}",
            netem_limit(spec)
        );
        if spec.delay_ns > 0 {
            netem.push_str(&format!(" delay {}", time_text(spec.delay_ns)));
            if spec.jitter_ns > 0 {
                netem.push_str(&format!(" {}", time_text(spec.jitter_ns)));
            }
        }
        if spec.loss_ppb > 0 {
            netem.push_str(&format!(" loss {}", loss_text(spec.loss_ppb)));
        }
        out.push(words(&netem));
    } else if spec.rate_bit_s.is_some() {
        // htb's leaf would otherwise take the device's txqueuelen as its limit, which a veth may leave at 0.
        out.push(words(&format!(
            "qdisc add dev {dev} parent 1:1 handle 10: pfifo limit {NETEM_DEFAULT_LIMIT}"
        )));
    }
    out
}

/// Whether a command line adds netem (its failure then means the kernel has no sch_netem).
pub fn is_netem(command: &[String]) -> bool {
    command.iter().any(|w| w == "netem")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::model::Link;

    fn spec(text: &str) -> Veth {
        *Link::parse(text).unwrap().veth().unwrap()
    }

    fn lines(text: &str) -> Vec<String> {
        commands("r1", &spec(text)).iter().map(|c| c.join(" ")).collect()
    }

    #[test]
    fn rate_is_htb_and_delay_and_loss_a_netem_child() {
        assert!(lines("veth:mtu=9000").is_empty(), "nothing to shape");
        assert_eq!(
            lines("veth:rate=200mbit"),
            [
                "qdisc add dev r1 root handle 1: htb default 1",
                "class add dev r1 parent 1: classid 1:1 htb rate 200mbit burst 65550b cburst 65550b quantum 65550",
                "qdisc add dev r1 parent 1:1 handle 10: pfifo limit 1000",
            ]
        );
        let both = lines("veth:rate=10gbit,delay=2ms,jitter=100us,loss=0.5%,offload=off");
        assert_eq!(
            both[1],
            "class add dev r1 parent 1: classid 1:1 htb rate 10gbit burst 1250000b cburst 1250000b quantum 1514"
        );
        // 10 Gbit/s x 2.1 ms x 1.5 / 8 / 1500 bytes = 2,625 packets.
        assert_eq!(
            both[2],
            "qdisc add dev r1 parent 1:1 handle 10: netem limit 2625 delay 2ms 100us loss 0.5%"
        );
        assert_eq!(
            lines("veth:delay=50us"),
            ["qdisc add dev r1 root handle 10: netem limit 1000 delay 50us"]
        );
        assert!(is_netem(&commands("r1", &spec("veth:loss=1%"))[0]));
    }

    #[test]
    fn netems_queue_holds_what_is_in_flight() {
        // 1 Gbit/s x 10 ms x 1.5 = 1.875 MB = 1,250 packets of 1,500 bytes.
        assert_eq!(netem_limit(&spec("veth:rate=1gbit,delay=10ms")), 1_250);
        assert_eq!(netem_limit(&spec("veth:rate=100mbit,delay=1ms")), NETEM_DEFAULT_LIMIT);
        // Unshaped: sized for 100 Gbit/s.
        assert_eq!(netem_limit(&spec("veth:delay=10ms")), 125_000);
    }
}
