//! The running instance as the control plane sees it: the publisher, the
//! workers' views, the operator's trace and the clock. The ctl commands
//! (`api`) and the metrics endpoint (`metrics`) both answer from it.

use std::sync::{Arc, RwLock};
use std::time::Instant;

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
}

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
        }
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
}
