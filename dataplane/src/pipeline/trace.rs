//! Packet trace: for selected packets, each stage's decision.
//!
//! Records are plain `Copy` values written into a buffer whose capacity is
//! reserved up front, so tracing never allocates on the packet path; when
//! the buffer is full further records are counted as lost. Formatting into
//! text (with interface names) happens outside the packet path.

use crate::iface::{IfIndex, Interfaces};
use crate::packet::ether::fmt_mac;
use crate::route::RouteType;
use crate::stats::DropReason;
use std::fmt::Write;
use std::net::IpAddr;

/// What one stage decided for one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceWhat {
    Rx {
        port: u16,
        len: u32,
    },
    Classified {
        iif: IfIndex,
        vlans: [u16; 2],
        tags: u8,
    },
    Ip {
        src: IpAddr,
        dst: IpAddr,
        proto: u8,
        len: u16,
        ttl: u8,
    },
    Arp {
        op: u16,
        sender: IpAddr,
        target: IpAddr,
    },
    ArpReply,
    IcmpRateLimited,
    NdAdvert {
        target: IpAddr,
    },
    Learned {
        ip: IpAddr,
        mac: [u8; 6],
    },
    Route {
        table: u32,
        prefix: IpAddr,
        len: u8,
        rtype: RouteType,
        oif: Option<IfIndex>,
        via: Option<IpAddr>,
    },
    Local,
    EchoReply,
    IcmpError {
        icmp_type: u8,
        code: u8,
    },
    TcpReset,
    Fragmented {
        count: u8,
    },
    Neighbor {
        mac: [u8; 6],
    },
    NeighborQueued {
        ip: IpAddr,
    },
    NeighborRequest {
        ip: IpAddr,
    },
    Tx {
        oif: IfIndex,
        len: u32,
    },
    /// The connection lookup: the packet's ctstate bit, and whether it
    /// travels in the reply direction.
    Conntrack {
        state: u8,
        reply: bool,
    },
    /// A table's verdict and the line of the rule that gave it (0: policy).
    Verdict {
        verdict: &'static str,
        line: u32,
    },
    /// One part of a NAT translation applied (`src`: source part).
    Nat {
        src: bool,
        addr: IpAddr,
        port: u16,
    },
    Drop(DropReason),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceRecord {
    /// Sequence number of the packet (received packets count from 1;
    /// generated packets carry the number of the packet that caused them).
    pub pkt: u64,
    pub stage: &'static str,
    pub what: TraceWhat,
}

#[derive(Debug)]
pub struct Trace {
    enabled: bool,
    capacity: usize,
    records: Vec<TraceRecord>,
    pub lost: u64,
}

impl Trace {
    /// A disabled trace; its buffer of `capacity` records is allocated
    /// when it is first enabled, never on the packet path.
    pub fn new(capacity: usize) -> Self {
        Trace {
            enabled: false,
            capacity,
            records: Vec::new(),
            lost: 0,
        }
    }

    #[inline]
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Turns tracing of every received packet on or off.
    pub fn set_enabled(&mut self, on: bool) {
        if on && self.records.capacity() < self.capacity {
            self.records
                .reserve_exact(self.capacity - self.records.len());
        }
        self.enabled = on;
    }

    #[inline]
    pub fn record(&mut self, pkt: u64, stage: &'static str, what: TraceWhat) {
        if self.records.len() < self.records.capacity() {
            self.records.push(TraceRecord { pkt, stage, what });
        } else {
            self.lost += 1;
        }
    }

    /// Takes the records gathered so far.
    pub fn drain(&mut self) -> std::vec::Drain<'_, TraceRecord> {
        self.records.drain(..)
    }
}

fn name(ifs: &Interfaces, i: IfIndex) -> &str {
    if (i as usize) < ifs.len() {
        &ifs.get(i).name
    } else {
        "?"
    }
}

/// One human-readable line: `#12 route  table 254 unicast via 192.168.1.1 dev wan`.
pub fn format_record(r: &TraceRecord, ifs: &Interfaces) -> String {
    let mut s = format!("#{} {:<9} ", r.pkt, r.stage);
    let _ = match r.what {
        TraceWhat::Rx { port, len } => write!(s, "rx port {port} len {len}"),
        TraceWhat::Classified { iif, vlans, tags } => match tags {
            0 => write!(s, "iif {}", name(ifs, iif)),
            1 => write!(s, "iif {} vlan {}", name(ifs, iif), vlans[0]),
            _ => write!(s, "iif {} vlan {}.{}", name(ifs, iif), vlans[0], vlans[1]),
        },
        TraceWhat::Ip {
            src,
            dst,
            proto,
            len,
            ttl,
        } => {
            write!(s, "{src} > {dst} proto {proto} len {len} ttl {ttl}")
        }
        TraceWhat::Arp { op, sender, target } => match op {
            1 => write!(s, "arp who-has {target} tell {sender}"),
            2 => write!(s, "arp reply {sender} to {target}"),
            _ => write!(s, "arp op {op}"),
        },
        TraceWhat::ArpReply => write!(s, "arp reply sent"),
        TraceWhat::NdAdvert { target } => write!(s, "neighbor advertisement for {target}"),
        TraceWhat::Learned { ip, mac } => write!(s, "learned {ip} lladdr {}", fmt_mac(&mac)),
        TraceWhat::Route {
            table,
            prefix,
            len,
            rtype,
            oif,
            via,
        } => {
            let t = match rtype {
                RouteType::Unicast => "unicast",
                RouteType::Local => "local",
                RouteType::Blackhole => "blackhole",
                RouteType::Unreachable => "unreachable",
                RouteType::Prohibit => "prohibit",
            };
            let _ = match table {
                255 => write!(s, "{prefix}/{len} table local {t}"),
                254 => write!(s, "{prefix}/{len} table main {t}"),
                253 => write!(s, "{prefix}/{len} table default {t}"),
                _ => write!(s, "{prefix}/{len} table {table} {t}"),
            };
            if let Some(v) = via {
                let _ = write!(s, " via {v}");
            }
            match oif {
                Some(o) => write!(s, " dev {}", name(ifs, o)),
                None => Ok(()),
            }
        }
        TraceWhat::Local => write!(s, "local delivery"),
        TraceWhat::EchoReply => write!(s, "echo reply"),
        TraceWhat::IcmpError { icmp_type, code } => {
            write!(s, "icmp error type {icmp_type} code {code}")
        }
        TraceWhat::IcmpRateLimited => write!(s, "icmp error rate-limited, not sent"),
        TraceWhat::TcpReset => write!(s, "tcp reset"),
        TraceWhat::Fragmented { count } => write!(s, "fragmented into {count}"),
        TraceWhat::Neighbor { mac } => write!(s, "neighbor {}", fmt_mac(&mac)),
        TraceWhat::NeighborQueued { ip } => write!(s, "queued awaiting {ip}"),
        TraceWhat::NeighborRequest { ip } => write!(s, "resolving {ip}"),
        TraceWhat::Tx { oif, len } => write!(s, "tx dev {} len {len}", name(ifs, oif)),
        TraceWhat::Conntrack { state, reply } => {
            let dir = if reply { " reply" } else { "" };
            write!(s, "ctstate {}{dir}", crate::filter::ct::name(state))
        }
        TraceWhat::Verdict { verdict, line: 0 } => write!(s, "{verdict} (policy)"),
        TraceWhat::Verdict { verdict, line } => write!(s, "{verdict} (rule line {line})"),
        TraceWhat::Nat { src, addr, port } => {
            let part = if src { "source" } else { "destination" };
            match addr {
                IpAddr::V6(a) => write!(s, "{part} -> [{a}]:{port}"),
                a => write!(s, "{part} -> {a}:{port}"),
            }
        }
        TraceWhat::Drop(r) => write!(s, "drop {}", r.name()),
    };
    s
}
