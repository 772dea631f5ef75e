//! Packet trace: for selected packets, each stage's decision.
//!
//! Records are plain `Copy` values written into a buffer whose capacity is
//! reserved up front, so tracing never allocates on the packet path; when
//! the buffer is full further records are counted as lost. Formatting into
//! text (with interface names) happens outside the packet path.
//!
//! Two ways to select packets: every received packet (`Trace::set_enabled`,
//! what `xgate replay --trace` uses), or the next N received packets that
//! match a filter, on whichever worker they arrive ([`TraceRequest`], what
//! `xgate ctl trace add N` sets; like VPP's `trace add`). Requested traces
//! leave the worker through a bounded lock-free queue the control thread
//! reads.

use crate::iface::{IfIndex, Interfaces};
use crate::packet::ether::fmt_mac;
use crate::route::RouteType;
use crate::stats::DropReason;
use crossbeam_queue::ArrayQueue;
use std::fmt::Write;
use std::net::IpAddr;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicU32, AtomicU64};

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
    /// A bridge switched the frame to `port`, or flooded it.
    Bridged {
        port: IfIndex,
        flood: bool,
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
    /// Handed to the host kernel through tap `tap`.
    Punt {
        tap: u16,
    },
    /// Sent by the host kernel through tap `tap`.
    FromKernel {
        tap: u16,
    },
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
    /// A later fragment takes its first fragment's fate (`frag.rs`).
    Fragment {
        forwarded: bool,
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
    /// A helper read a command: `what` it was (or why it was left
    /// alone), the port it expects (0: none), the payload length change.
    Helper {
        what: &'static str,
        port: u16,
        diff: i16,
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
            // Room for requested traces (a few packets at a time).
            records: Vec::with_capacity(REQUESTED_RECORDS.min(capacity)),
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

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// Records a worker keeps between two hand-offs of requested traces.
const REQUESTED_RECORDS: usize = 4096;

/// Which packets a [`TraceRequest`] selects; every `Some` must match.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TraceFilter {
    /// IP protocol number.
    pub proto: Option<u8>,
    /// Source inside this prefix (neighbour-table key form: IPv4 mapped),
    /// with its length in bits of the 128.
    pub src: Option<(u128, u8)>,
    /// Destination inside this prefix.
    pub dst: Option<(u128, u8)>,
    /// Source or destination TCP/UDP port.
    pub port: Option<u16>,
}

impl TraceFilter {
    /// Whether a received frame (Ethernet, up to two VLAN tags) matches:
    /// a cheap look at fixed offsets, before the packet is parsed.
    pub fn matches(&self, frame: &[u8]) -> bool {
        let mut off = 12;
        let mut et = 0u16;
        for _ in 0..3 {
            let Some(b) = frame.get(off..off + 2) else {
                return false;
            };
            et = u16::from_be_bytes([b[0], b[1]]);
            if et != 0x8100 && et != 0x88a8 {
                break;
            }
            off += 4;
        }
        let l3 = &frame[(off + 2).min(frame.len())..];
        let (proto, src, dst, l4) = match et {
            0x0800 if l3.len() >= 20 => {
                let ihl = (l3[0] & 0xf) as usize * 4;
                let a = |i: usize| u32::from_be_bytes([l3[i], l3[i + 1], l3[i + 2], l3[i + 3]]);
                let (s, d) = (a(12), a(16));
                let v4 = |x: u32| crate::addr::v4_key(x);
                (l3[9], v4(s), v4(d), l3.get(ihl..).unwrap_or(&[]))
            }
            0x86dd if l3.len() >= 40 => {
                let a = |i: usize| u128::from_be_bytes(l3[i..i + 16].try_into().unwrap_or([0; 16]));
                (l3[6], a(8), a(24), &l3[40..])
            }
            _ => return *self == TraceFilter::default(),
        };
        if self.proto.is_some_and(|p| p != proto) {
            return false;
        }
        let inside = |a: u128, (net, len): (u128, u8)| {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len.min(128)))
            };
            (a ^ net) & mask == 0
        };
        if self.src.is_some_and(|p| !inside(src, p)) || self.dst.is_some_and(|p| !inside(dst, p)) {
            return false;
        }
        if let Some(port) = self.port {
            let ports = matches!(proto, 6 | 17) && l4.len() >= 4;
            let (sp, dp) = (
                u16::from_be_bytes([
                    l4.first().copied().unwrap_or(0),
                    l4.get(1).copied().unwrap_or(0),
                ]),
                u16::from_be_bytes([
                    l4.get(2).copied().unwrap_or(0),
                    l4.get(3).copied().unwrap_or(0),
                ]),
            );
            if !ports || (sp != port && dp != port) {
                return false;
            }
        }
        true
    }
}

/// A trace the control plane asked for: the next `n` received packets
/// matching a filter, whichever worker they reach. Workers look at one
/// counter per batch while no request is active. Set, then read back, by
/// the control thread only.
#[derive(Debug)]
pub struct TraceRequest {
    /// Packets still to select.
    remaining: AtomicU32,
    /// The filter, packed: written only while `remaining` is 0.
    proto: AtomicU32,
    /// Source and destination prefixes: (high, low, length) each.
    prefixes: [(AtomicU64, AtomicU64, AtomicU32); 2],
    port: AtomicU32,
    /// Records of selected packets, on their way to the control thread.
    records: ArrayQueue<TraceRecord>,
    /// Records the queue had no room for.
    pub lost: AtomicU64,
}

const NONE: u32 = u32::MAX;

impl TraceRequest {
    pub fn new(capacity: usize) -> Self {
        TraceRequest {
            remaining: AtomicU32::new(0),
            proto: AtomicU32::new(NONE),
            prefixes: std::array::from_fn(|_| {
                (AtomicU64::new(0), AtomicU64::new(0), AtomicU32::new(NONE))
            }),
            port: AtomicU32::new(NONE),
            records: ArrayQueue::new(capacity.max(1)),
            lost: AtomicU64::new(0),
        }
    }

    /// Asks for the next `n` packets matching `filter` (replaces any
    /// request still running).
    pub fn start(&self, n: u32, filter: TraceFilter) {
        self.remaining.store(0, Release);
        let opt = |v: Option<u32>| v.unwrap_or(NONE);
        self.proto.store(opt(filter.proto.map(u32::from)), Relaxed);
        for (slot, p) in self.prefixes.iter().zip([filter.src, filter.dst]) {
            let (net, len) = p.map_or((0, NONE), |(a, l)| (a, u32::from(l)));
            slot.0.store((net >> 64) as u64, Relaxed);
            slot.1.store(net as u64, Relaxed);
            slot.2.store(len, Relaxed);
        }
        self.port.store(opt(filter.port.map(u32::from)), Relaxed);
        self.remaining.store(n, Release);
    }

    /// Cancels the request and drops the records not read yet.
    pub fn clear(&self) {
        self.remaining.store(0, Release);
        while self.records.pop().is_some() {}
    }

    /// Packets the request still selects.
    pub fn remaining(&self) -> u32 {
        self.remaining.load(Relaxed)
    }

    /// Whether a request is running (one relaxed load: per batch).
    #[inline]
    pub fn active(&self) -> bool {
        self.remaining.load(Relaxed) != 0
    }

    /// The request's filter.
    pub fn filter(&self) -> TraceFilter {
        let get = |a: &AtomicU32| match a.load(Acquire) {
            NONE => None,
            v => Some(v),
        };
        let prefix = |(hi, lo, len): &(AtomicU64, AtomicU64, AtomicU32)| {
            get(len).map(|l| {
                let net = u128::from(hi.load(Relaxed)) << 64 | u128::from(lo.load(Relaxed));
                (net, l as u8)
            })
        };
        TraceFilter {
            proto: get(&self.proto).map(|v| v as u8),
            src: prefix(&self.prefixes[0]),
            dst: prefix(&self.prefixes[1]),
            port: get(&self.port).map(|v| v as u16),
        }
    }

    /// Selects a packet if the request still wants one: true at most
    /// `remaining` times in all, across workers.
    pub fn take(&self) -> bool {
        self.remaining
            .fetch_update(AcqRel, Acquire, |r| r.checked_sub(1))
            .is_ok()
    }

    /// Hands a worker's records to the control thread (never blocks).
    pub fn push(&self, rec: TraceRecord) {
        if self.records.push(rec).is_err() {
            self.lost.fetch_add(1, Relaxed);
        }
    }

    /// The next record for the control thread.
    pub fn pop(&self) -> Option<TraceRecord> {
        self.records.pop()
    }
}

/// One human-readable line: `#12 route  table 254 unicast via 192.168.1.1 dev wan`.
pub fn format_record(r: &TraceRecord, ifs: &Interfaces) -> String {
    let mut s = format!("#{} {:<9} ", r.pkt, r.stage);
    let _ = match r.what {
        TraceWhat::Rx { port, len } => write!(s, "rx port {port} len {len}"),
        TraceWhat::Classified { iif, vlans, tags } => match tags {
            0 => write!(s, "iif {}", ifs.name(iif)),
            1 => write!(s, "iif {} vlan {}", ifs.name(iif), vlans[0]),
            _ => write!(s, "iif {} vlan {}.{}", ifs.name(iif), vlans[0], vlans[1]),
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
                RouteType::Broadcast => "broadcast",
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
                Some(o) => write!(s, " dev {}", ifs.name(o)),
                None => Ok(()),
            }
        }
        TraceWhat::Local => write!(s, "local delivery"),
        TraceWhat::EchoReply => write!(s, "echo reply"),
        TraceWhat::Punt { tap } => write!(s, "to the kernel (tap {tap})"),
        TraceWhat::FromKernel { tap } => write!(s, "from the kernel (tap {tap})"),
        TraceWhat::IcmpError { icmp_type, code } => {
            write!(s, "icmp error type {icmp_type} code {code}")
        }
        TraceWhat::IcmpRateLimited => write!(s, "icmp error rate-limited, not sent"),
        TraceWhat::TcpReset => write!(s, "tcp reset"),
        TraceWhat::Fragmented { count } => write!(s, "fragmented into {count}"),
        TraceWhat::Neighbor { mac } => write!(s, "neighbor {}", fmt_mac(&mac)),
        TraceWhat::Bridged { flood: true, .. } => write!(s, "flood"),
        TraceWhat::Bridged { port, .. } => write!(s, "to port {}", ifs.name(port)),
        TraceWhat::NeighborQueued { ip } => write!(s, "queued awaiting {ip}"),
        TraceWhat::NeighborRequest { ip } => write!(s, "resolving {ip}"),
        TraceWhat::Tx { oif, len } => write!(s, "tx dev {} len {len}", ifs.name(oif)),
        TraceWhat::Conntrack { state, reply } => {
            let dir = if reply { " reply" } else { "" };
            write!(s, "ctstate {}{dir}", crate::filter::ct::name(state))
        }
        TraceWhat::Fragment { forwarded: true } => {
            write!(s, "follows its first fragment: forwarded")
        }
        TraceWhat::Fragment { forwarded: false } => {
            write!(s, "follows its first fragment: not forwarded")
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
        TraceWhat::Helper { what, port: 0, .. } => write!(s, "{what}"),
        TraceWhat::Helper {
            what,
            port,
            diff: 0,
        } => write!(s, "{what}: expect port {port}"),
        TraceWhat::Helper { what, port, diff } => {
            write!(s, "{what}: expect port {port}, rewritten ({diff:+} bytes)")
        }
        TraceWhat::Drop(r) => write!(s, "drop {}", r.name()),
    };
    s
}
