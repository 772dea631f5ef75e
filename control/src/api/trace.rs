//! `xgate ctl trace`: each stage's decision for the next N packets that
//! match a filter, from whichever worker sees them.
//!
//! The control thread posts a [`TraceRequest`] (a countdown and a filter);
//! each worker owns a [`TraceTap`] and calls [`TraceTap::before`] and
//! [`TraceTap::after`] around every batch. While no trace is asked for,
//! `before` is one relaxed atomic load. While one is, the worker records
//! the whole batch with the pipeline's own trace (`Pipeline::trace`), and
//! `after` keeps the records of the packets that match the filter, claims
//! them from the countdown (so N packets are traced in all, over all
//! workers) and hands their formatted lines to the control thread. The
//! filter is applied after the batch, on the packet's parsed addresses:
//! the pipeline needs no change, at the price of recording a whole batch
//! while a trace is pending.

use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use xgate_dataplane::pipeline::Pipeline;
use xgate_dataplane::pipeline::trace::{TraceWhat, format_record};

use super::FlowFilter;

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
    pub fn new(f: &FlowFilter) -> Result<Self, String> {
        Ok(Selector {
            proto: f.proto.as_deref().map(proto_number).transpose()?,
            src: f.src,
            dst: f.dst,
        })
    }

    pub fn matches(&self, src: IpAddr, dst: IpAddr, proto: u8) -> bool {
        self.proto.is_none_or(|p| p == proto)
            && self.src.is_none_or(|s| s == src)
            && self.dst.is_none_or(|d| d == dst)
    }

    pub fn is_empty(&self) -> bool {
        *self == Selector::default()
    }
}

/// The trace the operator asked for, shared by the control thread and
/// every worker.
#[derive(Debug, Default)]
pub struct TraceRequest {
    /// Packets still to trace; 0: tracing is off.
    remaining: AtomicU64,
    selector: ArcSwap<Selector>,
    lines: Mutex<Vec<String>>,
    /// Packets traced since the last `add`.
    pub traced: AtomicU64,
}

impl TraceRequest {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts tracing the next `count` matching packets (replaces a
    /// pending request; keeps lines not yet shown).
    pub fn add(&self, count: u32, selector: Selector) {
        self.selector.store(std::sync::Arc::new(selector));
        self.traced.store(0, Ordering::Relaxed);
        self.remaining.store(u64::from(count), Ordering::Release);
    }

    /// Stops tracing and forgets every line.
    pub fn clear(&self) {
        self.remaining.store(0, Ordering::Release);
        self.lock().clear();
    }

    pub fn remaining(&self) -> u64 {
        self.remaining.load(Ordering::Relaxed)
    }

    /// The lines gathered so far (they stay until `clear`).
    pub fn lines(&self) -> Vec<String> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims one packet from the countdown; false when none is left.
    fn claim(&self) -> bool {
        self.remaining
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// One worker's side of the trace.
#[derive(Debug, Default)]
pub struct TraceTap {
    worker: usize,
    on: bool,
}

impl TraceTap {
    pub fn new(worker: usize) -> Self {
        TraceTap { worker, on: false }
    }

    /// Before a batch: record it if a trace is pending. One atomic load
    /// when none is.
    #[inline]
    pub fn before(&mut self, req: &TraceRequest, pipeline: &mut Pipeline) {
        let want = req.remaining.load(Ordering::Relaxed) > 0;
        if want != self.on {
            pipeline.trace.set_enabled(want);
            if !want {
                pipeline.trace.drain();
            }
            self.on = want;
        }
    }

    /// After a batch: hands over the records of matching packets.
    #[inline]
    pub fn after(&mut self, req: &TraceRequest, pipeline: &mut Pipeline) {
        if self.on {
            self.collect(req, pipeline);
        }
    }

    #[cold]
    fn collect(&mut self, req: &TraceRequest, pipeline: &mut Pipeline) {
        let sel = req.selector.load();
        let records: Vec<_> = pipeline.trace.drain().collect();
        let ifs = &pipeline.tables.interfaces;
        let mut out = Vec::new();
        let mut i = 0;
        while i < records.len() {
            // Records of one packet are contiguous per stage pass; group
            // by packet number over the batch.
            let pkt = records[i].pkt;
            let mine: Vec<_> = records.iter().filter(|r| r.pkt == pkt).collect();
            i += records[i..].iter().take_while(|r| r.pkt == pkt).count();
            if out.iter().any(|(p, _)| *p == pkt) {
                continue;
            }
            let ip = mine.iter().find_map(|r| match r.what {
                TraceWhat::Ip {
                    src, dst, proto, ..
                } => Some((src, dst, proto)),
                _ => None,
            });
            let hit = match ip {
                Some((s, d, p)) => sel.matches(s, d, p),
                None => sel.is_empty(),
            };
            if hit && req.claim() {
                let lines: Vec<String> = mine
                    .iter()
                    .map(|r| format!("w{} {}", self.worker, format_record(r, ifs)))
                    .collect();
                out.push((pkt, lines));
            }
        }
        if !out.is_empty() {
            req.traced.fetch_add(out.len() as u64, Ordering::Relaxed);
            let mut l = req.lock();
            for (_, lines) in out {
                l.extend(lines);
            }
            if l.len() > MAX_LINES {
                let n = l.len() - MAX_LINES;
                l.drain(..n);
            }
        }
    }
}
