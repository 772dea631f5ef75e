//! LOG: the records workers queue and the kernel-style lines made of them.
//!
//! A worker whose LOG rule matched (within its rate limit) pushes a
//! fixed-size [`LogRecord`] to the shared [`LogRing`], a bounded lock-free
//! queue; when it is full the record is counted as dropped, never waited
//! for. A control thread pops records and formats them with
//! [`Ruleset::format_log`] into the line `nf_log` would print.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_queue::ArrayQueue;

use super::ruleset::{Action, Ruleset};
use super::{IfIndex, PacketView};
use crate::addr::key_v4;

/// One logged packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogRecord {
    /// The worker's clock when the packet was logged (ns).
    pub now: u64,
    /// Counter slot of the LOG rule (its prefix is looked up with it).
    pub rule: u32,
    /// Syslog level 0..=7.
    pub level: u8,
    /// The packet as the rule saw it (mark included).
    pub view: PacketView,
}

/// Bounded multi-producer queue of [`LogRecord`]s shared by all workers.
#[derive(Debug)]
pub struct LogRing {
    queue: ArrayQueue<LogRecord>,
    dropped: AtomicU64,
}

impl LogRing {
    /// A ring of `capacity` records (at least 1).
    pub fn new(capacity: usize) -> Self {
        LogRing {
            queue: ArrayQueue::new(capacity.max(1)),
            dropped: AtomicU64::new(0),
        }
    }

    /// Queues `rec`; a full ring counts it as dropped. Returns whether it
    /// was queued.
    pub fn push(&self, rec: LogRecord) -> bool {
        match self.queue.push(rec) {
            Ok(()) => true,
            Err(_) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    pub fn pop(&self) -> Option<LogRecord> {
        self.queue.pop()
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Records lost because the ring was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Ruleset {
    /// The `--log-prefix` of the LOG rule in counter slot `rule` (empty if
    /// that slot is not a LOG rule of this ruleset).
    pub fn log_prefix(&self, rule: u32) -> &str {
        match self.rules.get(rule as usize).map(|r| r.action) {
            Some(Action::Log { prefix, .. }) => {
                self.log_prefixes.get(prefix as usize).map_or("", |p| &**p)
            }
            _ => "",
        }
    }

    /// The line the kernel's LOG target prints for `rec` (without the
    /// syslog level), e.g. `DROP: IN=lan OUT=wan SRC=192.168.1.10
    /// DST=8.8.8.8 LEN=60 TOS=0x00 PREC=0x00 TTL=63 ID=1234 PROTO=TCP
    /// SPT=40000 DPT=80 SYN `. Fields the view does not carry (MAC, DF,
    /// WINDOW, FLOWLBL, ...) are left out. `rec` must come from this
    /// ruleset, whose rule gives the prefix.
    pub fn format_log<'n>(&self, rec: &LogRecord, if_name: impl Fn(IfIndex) -> &'n str) -> String {
        let v = &rec.view;
        let mut s = String::with_capacity(160);
        s.push_str(self.log_prefix(rec.rule));
        let name = |i: Option<IfIndex>| i.map_or("", &if_name);
        let _ = write!(s, "IN={} OUT={} ", name(v.iif), name(v.oif));
        if v.v4 {
            let a = |x: u128| std::net::Ipv4Addr::from(key_v4(x).unwrap_or(0));
            let _ = write!(
                s,
                "SRC={} DST={} LEN={} TOS=0x{:02X} PREC=0x{:02X} TTL={} ID={} ",
                a(v.src),
                a(v.dst),
                v.len,
                v.tos & 0x1e,
                v.tos & 0xe0,
                v.ttl,
                v.ip_id
            );
        } else {
            let _ = write!(
                s,
                "SRC={} DST={} LEN={} TC={} HOPLIMIT={} ",
                FullV6(v.src),
                FullV6(v.dst),
                v.len,
                v.tos,
                v.ttl
            );
        }
        match v.proto {
            6 => {
                s.push_str("PROTO=TCP ");
                if v.has_ports {
                    let _ = write!(s, "SPT={} DPT={} ", v.sport, v.dport);
                    for (bit, n) in [
                        (0x20, "URG "),
                        (0x10, "ACK "),
                        (0x08, "PSH "),
                        (0x04, "RST "),
                        (0x02, "SYN "),
                        (0x01, "FIN "),
                    ] {
                        if v.tcp_flags & bit != 0 {
                            s.push_str(n);
                        }
                    }
                }
            }
            17 => {
                s.push_str("PROTO=UDP ");
                if v.has_ports {
                    let _ = write!(s, "SPT={} DPT={} ", v.sport, v.dport);
                }
            }
            1 | 58 => {
                s.push_str(if v.proto == 1 {
                    "PROTO=ICMP "
                } else {
                    "PROTO=ICMPv6 "
                });
                if let Some((t, c)) = v.icmp {
                    let _ = write!(s, "TYPE={t} CODE={c} ");
                }
            }
            p => {
                let _ = write!(s, "PROTO={p} ");
            }
        }
        if v.mark != 0 {
            let _ = write!(s, "MARK=0x{:x} ", v.mark);
        }
        s
    }
}

/// An IPv6 address as the kernel's `%pI6` prints it: eight groups of four
/// hex digits.
struct FullV6(u128);

impl std::fmt::Display for FullV6 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for i in 0..8 {
            let g = (self.0 >> (112 - 16 * i)) as u16;
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{g:04x}")?;
        }
        Ok(())
    }
}
