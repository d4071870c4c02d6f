//! One veth path, made and removed whole: three namespaces of the run's own (sender, router, sink), a veth pair from
//! the sender to the router and one from the router to the sink, every interface at the spec's MTU, and the
//! router shaping both of its egresses (`shape`): the data on its way to the sink, the acknowledgements on their
//! way back. Nothing is shaped on the sender's own interface: netem there would orphan the socket's buffer and hide
//! the back-pressure TCP depends on.
//!
//! The addresses are the documentation ranges (RFC 5737): they exist only inside the path's namespaces.

use super::ip::{self, Failed};
use super::ns::{Namespace, Owner};
use super::shape;
use crate::base::error::UsageError;
use crate::base::model::Link;
use crate::base::model::link::{Veth, rate_text};
use std::net::{IpAddr, Ipv4Addr};

pub const SENDER_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const ROUTER_NEAR_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const ROUTER_FAR_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
pub const SINK_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

/// Interface names, each inside its own namespace.
const SENDER_DEV: &str = "veth0";
const ROUTER_NEAR: &str = "to-sender";
const ROUTER_FAR: &str = "to-sink";
const SINK_DEV: &str = "veth0";

/// TCP's per-namespace settings that a new namespace would otherwise take from the kernel's defaults, not from the
/// host: the endpoints of a path get the run's own.
const TCP_SYSCTLS: &[&str] = &[
    "tcp_rmem",
    "tcp_wmem",
    "tcp_congestion_control",
    "tcp_autocorking",
    "tcp_mtu_probing",
    "tcp_timestamps",
    "tcp_sack",
    "tcp_window_scaling",
    "tcp_notsent_lowat",
    "tcp_limit_output_bytes",
    "tcp_ecn",
    "tcp_slow_start_after_idle",
    "tcp_no_metrics_save",
];

/// A path, made.
#[derive(Debug)]
pub struct Path {
    pub link: Link,
    pub sender: Namespace,
    pub router: Namespace,
    pub sink: Namespace,
    /// The MTU the sender's interface has, read back.
    pub mtu: Option<u32>,
}

impl Path {
    /// Makes path `index` of the run's paths; whatever was made before a step failed is removed.
    pub fn make(owner: Owner, index: usize, link: Link, spec: &Veth) -> anyhow::Result<Path> {
        // One by one, so that a failure drops (and deletes) exactly what was made.
        let sender = Namespace::add(owner.name(index, "snd"))?;
        let router = Namespace::add(owner.name(index, "rtr"))?;
        let sink = Namespace::add(owner.name(index, "rcv"))?;
        let mut path = Path {
            link,
            sender,
            router,
            sink,
            mtu: None,
        };
        path.wire(spec)?;
        path.tune(spec)?;
        path.shape(spec)?;
        path.mtu = path
            .sender
            .inside(|| Ok(crate::base::env::mtu_of(SENDER_DEV)))
            .ok()
            .flatten();
        Ok(path)
    }

    pub fn sink_ip(&self) -> IpAddr {
        IpAddr::V4(SINK_IP)
    }

    /// The path in a line: its namespaces, its MTU and what shapes it.
    pub fn describe(&self) -> String {
        let Link::Veth(spec) = self.link else {
            return "loopback".into();
        };
        let mut by = Vec::new();
        if let Some(rate) = spec.rate_bit_s {
            by.push(format!("htb at {}", rate_text(rate)));
        }
        if spec.needs_netem() {
            by.push(format!("netem (a queue of {} packets)", shape::netem_limit(&spec)));
        }
        let shaped = match by.is_empty() {
            true => "nothing shaped".to_string(),
            false => format!("both of the router's egresses shaped by {}", by.join(" and ")),
        };
        format!(
            "sender {SENDER_IP} in {} -> router {} -> sink {SINK_IP} in {}; MTU {}, offloads {}, {shaped}",
            self.sender.name,
            self.router.name,
            self.sink.name,
            self.mtu.map_or_else(|| "unknown".into(), |m| m.to_string()),
            if spec.offload { "on" } else { "off" }
        )
    }

    /// Veth pairs, MTUs, addresses, links up, routes.
    fn wire(&self, spec: &Veth) -> Result<(), Failed> {
        let (s, r, k) = (&self.sender.name, &self.router.name, &self.sink.name);
        let mtu = spec.mtu.to_string();
        ip::ip(&[
            "link",
            "add",
            SENDER_DEV,
            "netns",
            s,
            "type",
            "veth",
            "peer",
            "name",
            ROUTER_NEAR,
            "netns",
            r,
        ])?;
        ip::ip(&[
            "link", "add", ROUTER_FAR, "netns", r, "type", "veth", "peer", "name", SINK_DEV, "netns", k,
        ])?;
        let ends = [
            (s, SENDER_DEV, SENDER_IP),
            (r, ROUTER_NEAR, ROUTER_NEAR_IP),
            (r, ROUTER_FAR, ROUTER_FAR_IP),
            (k, SINK_DEV, SINK_IP),
        ];
        for (ns, dev, addr) in ends {
            ip::ip(&["-n", ns, "link", "set", "dev", dev, "mtu", &mtu])?;
            ip::ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev])?;
            ip::ip(&["-n", ns, "link", "set", "dev", dev, "up"])?;
        }
        // Loopback too: the sender's cold cases wake every CPU's softirq with a loopback datagram.
        for ns in [s, r, k] {
            ip::ip(&["-n", ns, "link", "set", "dev", "lo", "up"])?;
        }
        ip::ip(&["-n", s, "route", "add", "default", "via", &ROUTER_NEAR_IP.to_string()])?;
        ip::ip(&["-n", k, "route", "add", "default", "via", &ROUTER_FAR_IP.to_string()])
    }

    /// The router forwards; the endpoints get the run's TCP settings; offloads off where the spec says.
    fn tune(&self, spec: &Veth) -> anyhow::Result<()> {
        let failed = |what: &'static str| move |e: std::io::Error| anyhow::anyhow!("cannot {what} on the path: {e}");
        self.router
            .inside(|| std::fs::write("/proc/sys/net/ipv4/ip_forward", "1"))
            .map_err(failed("turn forwarding on"))?;
        let tcp: Vec<(&str, String)> = TCP_SYSCTLS
            .iter()
            .filter_map(|name| {
                Some((
                    *name,
                    std::fs::read_to_string(format!("/proc/sys/net/ipv4/{name}")).ok()?,
                ))
            })
            .collect();
        for ns in [&self.sender, &self.sink] {
            ns.inside(|| {
                for (name, value) in &tcp {
                    match std::fs::write(format!("/proc/sys/net/ipv4/{name}"), value.trim()) {
                        // A setting the kernel keeps for all namespaces alike has no file in a new one.
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(std::io::Error::new(e.kind(), format!("{name}: {e}"))),
                        Ok(()) => {}
                    }
                }
                Ok(())
            })
            .map_err(failed("copy the run's TCP settings"))?;
        }
        if !spec.offload {
            let ends = [
                (&self.sender, &[SENDER_DEV][..]),
                (&self.router, &[ROUTER_NEAR, ROUTER_FAR]),
                (&self.sink, &[SINK_DEV]),
            ];
            for (ns, devs) in ends {
                ns.inside(|| devs.iter().try_for_each(|d| super::offload::all_off(d)))
                    .map_err(failed("turn offloads off"))?;
            }
        }
        Ok(())
    }

    /// The router's two egresses, each shaped alike.
    fn shape(&self, spec: &Veth) -> anyhow::Result<()> {
        for dev in [ROUTER_FAR, ROUTER_NEAR] {
            for command in shape::commands(dev, spec) {
                let mut args = vec!["-n", self.router.name.as_str()];
                args.extend(command.iter().map(String::as_str));
                match ip::tc(&args) {
                    Ok(()) => {}
                    Err(e) if shape::is_netem(&command) => {
                        return Err(UsageError::msg(format!(
                            "--link {}: delay, jitter and loss need the kernel's netem qdisc (sch_netem), which this \
                             kernel does not have (tc: {}); mtu and rate work without it",
                            self.link, e.said
                        ))
                        .into());
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }
}
