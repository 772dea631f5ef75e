//! Workers: one pinned poll-mode thread per configured worker.
//!
//! Worker i owns queues q with q % workers == i of every device (every
//! queue of a device is served unless `[dataplane] queues` limits them):
//! its sockets, rings and UMEM, nobody else touches them. A worker's
//! sockets on one device form one port. A round of the loop services every
//! port (completions back to the pool, fill rings topped up, pending
//! transmissions kicked), takes an rx burst from each (from all its
//! sockets) and runs it through the pipeline, which transmits through the
//! worker's own sockets of the egress device.
//! Conntrack, NAT ports and neighbours are shared lock-free tables, so
//! both directions of a flow work whichever queue they arrive on.
//!
//! Idle policy ([`IdlePolicy`]): a pure busy poll burns a core even with
//! no traffic, which on a machine shared with other work (and in tests)
//! steals the CPU the traffic needs. The default spins for a number of
//! empty rounds, then yields, then sleeps with a doubling interval capped
//! at 100 µs: worst-case added latency 100 µs after a long idle period,
//! none under load. `Busy` never sleeps (dedicated cores).
//!
//! The stop flag is read every round; on stop a worker flushes, waits
//! briefly for its transmissions to complete and hands its resources back
//! to the caller, which closes the sockets one at a time.

use crate::io::afxdp::{QueueSet, WorkerIo, XskPort};
use crate::io::{Desc, FramePool, Port};
use crate::pipeline::{Pipeline, RX_BURST};
use crate::stats::WorkerStats;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// What a worker does when a round finds no packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdlePolicy {
    /// Poll without pause (a dedicated core per worker).
    Busy,
    /// Spin `spin` empty rounds, then yield, then sleep from 1 µs doubling
    /// up to `max_sleep_us`.
    Adaptive { spin: u32, max_sleep_us: u32 },
}

impl Default for IdlePolicy {
    fn default() -> Self {
        IdlePolicy::Adaptive {
            spin: 512,
            max_sleep_us: 100,
        }
    }
}

impl IdlePolicy {
    /// Waits after the `empty`-th consecutive empty round.
    #[inline]
    fn wait(self, empty: u32) {
        match self {
            IdlePolicy::Busy => std::hint::spin_loop(),
            IdlePolicy::Adaptive { spin, max_sleep_us } => {
                if empty < spin {
                    std::hint::spin_loop();
                } else if empty < spin + 16 {
                    std::thread::yield_now();
                } else {
                    let exp = (empty - spin - 16).min(16);
                    let us = (1u32 << exp).min(max_sleep_us.max(1));
                    std::thread::sleep(Duration::from_micros(us as u64));
                }
            }
        }
    }
}

/// Nanoseconds on the monotonic clock: the dataplane's `now` (the same
/// clock in every worker and the control thread).
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Pipeline ticks (neighbour retries, expiry slices, flushes) at least this
/// often under load, and this often at most when idle.
const TICK_BUSY_NS: u64 = 1_000_000;
const TICK_IDLE_NS: u64 = 100_000;

/// The poll loop over the queue sets of one worker, until `stop`. Generic
/// over the port type so tests run it over memory ports.
pub fn poll_loop<P: Port, S: AsMut<[P]>>(
    umem: &mut [u8],
    pool: &mut FramePool,
    sets: &mut [S],
    pipeline: &mut Pipeline,
    stop: &AtomicBool,
    idle: IdlePolicy,
    between: &mut BetweenBatches,
) {
    let mut rx = [Desc::default(); RX_BURST];
    let mut empty = 0u32;
    let mut last_tick = now_ns();
    while !stop.load(Ordering::Relaxed) {
        // The control plane's hook: newly published tables (one atomic
        // load when nothing changed).
        between(pipeline);
        let now = now_ns();
        let mut got = 0;
        for set in sets.iter_mut() {
            let ports = set.as_mut();
            for p in 0..ports.len() {
                ports[p].service(umem, pool);
                let n = ports[p].rx_burst(&mut rx);
                if n > 0 {
                    pipeline.process(umem, pool, ports, p as u16, &rx[..n], now);
                    got += n;
                }
            }
        }
        // What the host kernel sent through its taps (one load if nothing).
        if let Some(set) = sets.first_mut() {
            got += pipeline.kernel_input(umem, pool, set.as_mut(), now);
        }
        let since = now.saturating_sub(last_tick);
        if got == 0 {
            if since >= TICK_IDLE_NS {
                if let Some(set) = sets.first_mut() {
                    pipeline.tick(umem, pool, set.as_mut(), now);
                }
                last_tick = now;
            }
            pipeline.stats.idle_polls.inc();
            empty = empty.saturating_add(1);
            idle.wait(empty);
        } else {
            empty = 0;
            if since >= TICK_BUSY_NS {
                if let Some(set) = sets.first_mut() {
                    pipeline.tick(umem, pool, set.as_mut(), now);
                }
                last_tick = now;
            }
        }
    }
    if let Some(set) = sets.first_mut() {
        pipeline.tick(umem, pool, set.as_mut(), now_ns());
    }
}

impl AsMut<[XskPort]> for QueueSet {
    fn as_mut(&mut self) -> &mut [XskPort] {
        &mut self.ports
    }
}

/// What a worker runs before each poll round: the control plane's way in
/// (switching to newly published tables). Must be cheap when nothing
/// changed.
pub type BetweenBatches = dyn FnMut(&mut Pipeline) + Send;

/// One running worker.
pub struct Worker {
    pub id: usize,
    pub queues: Vec<u32>,
    pub core: Option<usize>,
    pub stats: Arc<WorkerStats>,
    handle: JoinHandle<(WorkerIo, Pipeline)>,
}

/// What a worker left when it stopped.
#[derive(Debug)]
pub struct WorkerExit {
    pub id: usize,
    pub queues: Vec<u32>,
    pub core: Option<usize>,
    pub stats: Arc<WorkerStats>,
    /// Frames not back in the pool after the sockets closed (should be 0).
    pub frames_leaked: isize,
    pub frames: usize,
    /// Packets that were still waiting for a neighbour (their frames were
    /// counted as held, not leaked).
    pub pending_at_stop: usize,
    /// System calls of its sockets: (tx kicks, fill-ring wake-ups, busy
    /// polls), see [`WorkerIo::syscalls`].
    pub syscalls: (u64, u64, u64),
    /// Transmit kicks that failed, and the last errno (0: none).
    pub kick_errors: (u64, i32),
    /// Per socket: (device, queue, frames received, the kernel's
    /// XDP_STATISTICS).
    pub xdp_stats: Vec<(String, u32, u64, crate::io::afxdp::XdpStats)>,
}

impl Worker {
    /// Starts worker `id` on its own thread, pinned to `core` if given.
    pub fn spawn(
        id: usize,
        io: WorkerIo,
        mut pipeline: Pipeline,
        stop: Arc<AtomicBool>,
        idle: IdlePolicy,
        core: Option<usize>,
        mut between: Box<BetweenBatches>,
    ) -> std::io::Result<Worker> {
        let queues = io.queue_ids();
        let stats = pipeline.stats.clone();
        let handle = std::thread::Builder::new()
            .name(format!("xgate-w{id}"))
            .spawn(move || {
                if let Some(c) = core {
                    core_affinity::set_for_current(core_affinity::CoreId { id: c });
                }
                // Short sleeps of the idle policy mean short: the default
                // 50 µs timer slack would stretch every one of them.
                // SAFETY: prctl on the calling thread with integer arguments.
                unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1000u64, 0, 0, 0) };
                let mut io = io;
                let (umem, pool, sets) = io.parts();
                poll_loop(umem, pool, sets, &mut pipeline, &stop, idle, &mut *between);
                io.drain_tx(Duration::from_millis(200));
                (io, pipeline)
            })?;
        Ok(Worker {
            id,
            queues,
            core,
            stats,
            handle,
        })
    }

    /// Waits for the worker to stop (set the stop flag first), then closes
    /// its sockets. Call for one worker at a time: closing the last socket
    /// of a device detaches its XDP program, and libxdp's bookkeeping of
    /// that program is not safe against concurrent closes.
    pub fn join(self) -> WorkerExit {
        let (io, pipeline) = match self.handle.join() {
            Ok(r) => r,
            Err(p) => std::panic::resume_unwind(p),
        };
        let pending = pipeline.pending_packets();
        let frames = io.pool.frames();
        let syscalls = io.syscalls();
        let kick_errors = io.kick_errors();
        let xdp_stats = io.xdp_statistics();
        let frames_leaked = io.close(pending);
        WorkerExit {
            id: self.id,
            queues: self.queues,
            core: self.core,
            stats: self.stats,
            frames_leaked,
            frames,
            pending_at_stop: pending,
            syscalls,
            kick_errors,
            xdp_stats,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::memory::MemoryPort;

    #[test]
    fn idle_policy_sleeps_at_most_the_cap() {
        let p = IdlePolicy::Adaptive {
            spin: 2,
            max_sleep_us: 100,
        };
        let t = std::time::Instant::now();
        for empty in 0..40 {
            p.wait(empty);
        }
        // 2 spins, 16 yields, then 1+2+..+64 + 100 * 15 µs at most, plus
        // the scheduler's slack.
        assert!(t.elapsed() < Duration::from_millis(200));
    }

    #[test]
    fn poll_loop_stops_and_leaves_every_frame_accounted() {
        let tables = Arc::new(crate::pipeline::Tables {
            interfaces: crate::iface::Interfaces::new(vec![crate::iface::Interface {
                name: "lan".into(),
                device: "lan".into(),
                port: 0,
                vlans: Default::default(),
                mac: [2, 0, 0, 0, 0, 1],
                mtu: 1500,
                v4: Vec::new(),
                v6: Vec::new(),
                tap: None,
                tap_groups: Vec::new(),
                rp_filter: Default::default(),
                bc_forwarding: false,
                bridge: crate::iface::Bridging::None,
            }]),
            fib: crate::route::Fib::new(),
            icmp: Default::default(),
            filter: Default::default(),
            tracking: false,
            helper_ports: Default::default(),
            ct_checksum: true,
            bridges: Default::default(),
        });
        let shared = Arc::new(crate::pipeline::Shared::new(64));
        let mut pipeline = Pipeline::new(tables, shared);
        let mut pool = FramePool::new(64);
        let mut umem = vec![0u8; pool.umem_len()];
        let mut port = MemoryPort::new(16);
        // Frames not for the router's MAC: dropped and freed.
        for _ in 0..10 {
            port.inject(&mut umem, &mut pool, &[0u8; 60]).unwrap();
        }
        let mut sets = vec![vec![port]];
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(20));
                stop.store(true, Ordering::Relaxed);
            });
            poll_loop(
                &mut umem,
                &mut pool,
                &mut sets,
                &mut pipeline,
                &stop,
                IdlePolicy::default(),
                &mut |_| {},
            );
        });
        assert_eq!(sets[0][0].rx_pending(), 0);
        assert_eq!(pool.available(), 64);
        assert!(pipeline.stats.total_drops() >= 10);
    }
}
