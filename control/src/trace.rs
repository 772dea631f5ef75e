//! `xgate ctl trace`: each stage's decision for the next N packets that
//! match a filter, from whichever worker sees them.
//!
//! The selection happens in the dataplane ([`xgate_dataplane::pipeline::TraceRequest`]
//! in `Shared`): a worker looks at one counter per batch while no trace is
//! asked for; while one is, it tests each received frame against the
//! filter, claims matching packets from a countdown shared by all workers
//! (so N packets are traced in all), records their stages and hands the
//! records over a bounded lock-free queue. This side turns the records
//! into lines for `trace show`.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use xgate_dataplane::addr::ip_key;
use xgate_dataplane::pipeline::trace::format_record;
use xgate_dataplane::pipeline::{Shared, Tables, TraceFilter};

/// Lines kept for `trace show` at most; older ones are dropped first.
const MAX_LINES: usize = 100_000;

/// A filter ready to test packets: protocol number and addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    pub proto: Option<u8>,
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
}

/// The protocol number of a name as `conntrack -p` / `iptables -p` take it.
pub fn proto_number(s: &str) -> Result<u8, String> {
    match s.to_ascii_lowercase().as_str() {
        "tcp" => Ok(6),
        "udp" => Ok(17),
        "icmp" => Ok(1),
        "icmpv6" | "ipv6-icmp" => Ok(58),
        "gre" => Ok(47),
        "esp" => Ok(50),
        "sctp" => Ok(132),
        n => n
            .parse()
            .map_err(|_| format!("unknown protocol {s:?} (tcp, udp, icmp, icmpv6 or a number)")),
    }
}

/// The name `conntrack -L` prints for a protocol number.
pub fn proto_name(p: u8) -> &'static str {
    match p {
        6 => "tcp",
        17 => "udp",
        1 => "icmp",
        58 => "icmpv6",
        47 => "gre",
        50 => "esp",
        132 => "sctp",
        _ => "unknown",
    }
}

impl Selector {
    pub fn matches(&self, src: IpAddr, dst: IpAddr, proto: u8) -> bool {
        self.proto.is_none_or(|p| p == proto)
            && self.src.is_none_or(|s| s == src)
            && self.dst.is_none_or(|d| d == dst)
    }

    pub fn is_empty(&self) -> bool {
        *self == Selector::default()
    }
}

/// The trace the operator asked for, on the control thread: the request
/// handed to the workers and the lines gathered from them.
#[derive(Debug)]
pub struct TraceSession {
    shared: Arc<Shared>,
    lines: Mutex<Vec<String>>,
    /// Packets traced since the last `add`.
    pub traced: AtomicU64,
    last_pkt: Mutex<Option<u64>>,
}

fn prefix(a: IpAddr) -> (u128, u8) {
    (ip_key(a), 128)
}

impl TraceSession {
    pub fn new(shared: Arc<Shared>) -> Self {
        TraceSession {
            shared,
            lines: Mutex::new(Vec::new()),
            traced: AtomicU64::new(0),
            last_pkt: Mutex::new(None),
        }
    }

    /// Starts tracing the next `count` matching packets (replaces a
    /// pending request; keeps lines not yet shown).
    pub fn add(&self, count: u32, selector: Selector) {
        self.traced.store(0, Ordering::Relaxed);
        let filter = TraceFilter {
            proto: selector.proto,
            src: selector.src.map(prefix),
            dst: selector.dst.map(prefix),
            port: None,
        };
        self.shared.trace.start(count, filter);
    }

    /// Stops tracing and forgets every line.
    pub fn clear(&self) {
        self.shared.trace.clear();
        self.lock().clear();
    }

    pub fn remaining(&self) -> u64 {
        u64::from(self.shared.trace.remaining())
    }

    /// The lines gathered so far (they stay until `clear`), with the
    /// records the workers handed over since the last call formatted
    /// against `tables`' interface names.
    pub fn lines(&self, tables: &Tables) -> Vec<String> {
        let mut l = self.lock();
        let mut last = self.last_pkt.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(r) = self.shared.trace.pop() {
            if *last != Some(r.pkt) {
                *last = Some(r.pkt);
                self.traced.fetch_add(1, Ordering::Relaxed);
            }
            l.push(format_record(&r, &tables.interfaces));
        }
        if l.len() > MAX_LINES {
            let n = l.len() - MAX_LINES;
            l.drain(..n);
        }
        l.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner())
    }
}
