//! The running instance as the control plane sees it: the publisher, the
//! workers' views, the operator's trace and the clock. The ctl commands
//! (`api`) and the metrics endpoint (`metrics`) both answer from it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use xgate_dataplane::nat::ports::NatStats;

use crate::publish::{Publisher, WorkerView};
use crate::trace::TraceSession;

/// A clock in nanoseconds: the one the workers pass to the pipeline as
/// `now` (conntrack expiry and neighbour ages are read against it).
pub type Clock = dyn Fn() -> u64 + Send + Sync;

/// Everything the control server and the metrics endpoint read.
pub struct Runtime {
    pub publisher: Arc<Publisher>,
    workers: RwLock<Vec<Arc<WorkerView>>>,
    pub trace: Arc<TraceSession>,
    pub started: Instant,
    clock: Box<Clock>,
    /// Lines for the log of `xgate run` (e.g. a reload by `ctl reload`),
    /// at most [`MAX_EVENTS`]; the control loop takes them.
    events: Mutex<VecDeque<String>>,
    /// The XDP offload's counters, when it runs.
    offload: std::sync::OnceLock<Arc<crate::offload::OffloadStats>>,
}

/// Log lines kept for the control loop at most (older ones are dropped).
pub const MAX_EVENTS: usize = 256;

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("publisher", &self.publisher)
            .finish_non_exhaustive()
    }
}

/// Applies the per-source limits of `[dataplane]` (RFC 6888 REQ-4) to the
/// shared connection table and NAT port allocator.
pub fn apply_limits(shared: &xgate_dataplane::pipeline::Shared, d: &crate::config::Dataplane) {
    shared.conntrack.set_per_source_limit(d.flows_per_source);
    shared.nat.set_per_source_limit(d.nat_ports_per_source);
}

impl Runtime {
    /// `clock` must be the clock the workers give the pipeline.
    pub fn new(publisher: Arc<Publisher>, clock: Box<Clock>) -> Self {
        let trace = Arc::new(TraceSession::new(publisher.shared().clone()));
        Runtime {
            publisher,
            workers: RwLock::new(Vec::new()),
            trace,
            started: Instant::now(),
            clock,
            events: Mutex::new(VecDeque::new()),
            offload: std::sync::OnceLock::new(),
        }
    }

    /// Registers the offload's counters (`xgate run`, once).
    pub fn set_offload(&self, stats: Arc<crate::offload::OffloadStats>) {
        let _ = self.offload.set(stats);
    }

    /// The offload's counters, if it runs.
    pub fn offload(&self) -> Option<&Arc<crate::offload::OffloadStats>> {
        self.offload.get()
    }

    /// Registers a worker (in worker-number order).
    pub fn add_worker(&self, view: Arc<WorkerView>) {
        self.workers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(view);
    }

    pub fn workers(&self) -> Vec<Arc<WorkerView>> {
        self.workers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn now(&self) -> u64 {
        (self.clock)()
    }

    /// Queues a line for the log (control threads only).
    pub fn note(&self, line: String) {
        let mut q = self.events.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() >= MAX_EVENTS {
            q.pop_front();
        }
        q.push_back(line);
    }

    /// The lines queued since the last call.
    pub fn take_events(&self) -> Vec<String> {
        let mut q = self.events.lock().unwrap_or_else(|e| e.into_inner());
        q.drain(..).collect()
    }
}

/// Watches the NAT allocator's refusal counters from the control thread
/// and says, at most once per `every`, how many connections found no port
/// (the workers only count; they never log).
#[derive(Debug)]
pub struct NatWatch {
    every: Duration,
    exhausted: u64,
    limited: u64,
    last: Option<Instant>,
}

impl NatWatch {
    /// Starts from the counters as they are now.
    pub fn new(stats: &NatStats, every: Duration) -> Self {
        NatWatch {
            every,
            exhausted: stats.exhausted,
            limited: stats.source_limited,
            last: None,
        }
    }

    /// A log line if connections were refused a port since the last line
    /// and the last line is `every` old (refusals in between are summed
    /// into the next line, never lost).
    pub fn check(&mut self, stats: &NatStats, now: Instant) -> Option<String> {
        let (ex, lim) = (
            stats.exhausted.saturating_sub(self.exhausted),
            stats.source_limited.saturating_sub(self.limited),
        );
        if ex == 0 && lim == 0 {
            return None;
        }
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < self.every)
        {
            return None;
        }
        self.last = Some(now);
        self.exhausted = stats.exhausted;
        self.limited = stats.source_limited;
        let mut line = String::from("NAT ports: ");
        if ex > 0 {
            line += &format!("{ex} new connection(s) found no free port (nat_ports_exhausted)");
        }
        if lim > 0 {
            if ex > 0 {
                line += ", ";
            }
            line += &format!("{lim} refused at the per-host limit (nat_source_limit)");
        }
        line += &format!("; {} ports in use", stats.in_use);
        Some(line)
    }
}
