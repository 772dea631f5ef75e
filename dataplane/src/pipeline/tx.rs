//! Stage `tx`, once per call (not per batch): the end of every call.
//! A slice of the connection table's expiry sweep, the neighbour queues
//! serviced (retries, releases, time-outs), the local-output batch drained,
//! the per-port transmit queues flushed with one `Port::tx_burst` each,
//! the punt thread woken and requested traces handed to the control
//! thread. `enqueue_tx` is what rewrite calls per packet.
//!
//! Reads: the transmit queues. Changes: the ports' tx rings, the frame
//! pool (refused frames freed), the connection table (expiry).
//!
//! Drops: tx_ring_full.

use super::{Ctx, Meta, Pipeline, TraceWhat, flags};
use crate::io::Port;
use crate::stats::DropReason;

/// Transmit queue capacity per port before it is flushed mid-batch.
pub(super) const TX_QUEUE: usize = 4 * super::BATCH;
/// Connection entries the expiry sweep examines per call.
const EXPIRE_BUDGET: usize = 16;

impl Pipeline {
    /// What ends every call: neighbour queues serviced, the router's own
    /// packets routed, transmit queues flushed.
    pub(super) fn finish<P: Port>(&mut self, ctx: &mut Ctx<'_, P>) {
        if self.tables.tracking {
            // A slice of the expiry sweep: frees expired connections (and
            // their NAT ports) that no packet looks up any more.
            self.shared.conntrack.expire(ctx.now, EXPIRE_BUDGET);
        }
        self.poll_neighbors(ctx);
        self.local_out(ctx);
        self.flush(ctx);
        if std::mem::take(&mut self.punted)
            && let Some(p) = &self.punt
        {
            p.notify();
        }
        if self.trace_requested {
            // Requested traces leave for the control thread.
            self.trace_requested = false;
            for r in self.trace.drain() {
                self.shared.trace.push(r);
            }
        }
    }

    /// Queues a finished frame for transmission on `oif`'s port.
    #[inline(always)]
    pub(super) fn enqueue_tx<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, port: usize, m: &Meta) {
        if self.tx[port].len() == TX_QUEUE {
            self.flush_port(ctx, port);
        }
        if m.has(flags::OFFLOAD) {
            self.offload_learn(ctx, port, m);
        }
        if m.has(flags::TRACE) {
            let pos = self.tx[port].len() as u32;
            self.tx_meta[port].push((pos, m.seq, m.oif));
        }
        self.tx[port].push(m.desc);
    }

    pub(super) fn flush<P: Port>(&mut self, ctx: &mut Ctx<'_, P>) {
        for port in 0..self.tx.len() {
            if !self.tx[port].is_empty() {
                self.flush_port(ctx, port);
            }
        }
    }

    /// Once per port per batch; kept out of line so that the per-packet
    /// `enqueue_tx` stays small.
    #[inline(never)]
    pub(super) fn flush_port<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, port: usize) {
        let queue = &self.tx[port];
        let sent = match ctx.ports.get_mut(port) {
            Some(p) => p.tx_burst(ctx.umem, queue),
            None => 0,
        };
        let ps = &self.stats.ports[port];
        ps.tx_packets.add(sent as u64);
        ps.tx_bytes
            .add(queue[..sent].iter().map(|d| d.len as u64).sum());
        for d in &queue[sent..] {
            self.stats.count_drop(DropReason::TxRingFull);
            ctx.pool.free(*d);
        }
        // Trace records, for the traced packets of the queue.
        for &(pos, seq, oif) in &self.tx_meta[port] {
            let i = pos as usize;
            let what = if i < sent {
                TraceWhat::Tx {
                    oif,
                    len: queue[i].len,
                }
            } else {
                TraceWhat::Drop(DropReason::TxRingFull)
            };
            self.trace.record(seq, "tx", what);
        }
        self.tx[port].clear();
        self.tx_meta[port].clear();
    }
}
