//! The AF_XDP transmit path of `xgate-pktgen tx` (`--mode afxdp`, and what
//! `--mode auto` falls back to on kernels without XDP live frames).
//!
//! One transmit-only socket per sending thread, on queue i of the device,
//! opened by xgate's own AF_XDP backend ([`xgate_dataplane::io::afxdp`] with
//! `tx_only`): no rx ring and no XDP program, so nothing is attached to the
//! device and its received traffic is left alone. The XDP attach mode
//! (native or SKB) therefore does not arise; the bind mode does: zero-copy
//! where the driver has it, else copy (`--bind auto`; veth is always copy).
//!
//! Each thread's UMEM holds one frame per flow, written once from
//! [`Template::flow_frame`]. The send loop writes only descriptors: the
//! k-th frame of a thread is flow `k % flows`, as with live frames. It
//! queues them in batches of [`BATCH`], kicks the kernel with sendto when
//! the ring asks for it (need_wakeup; in copy mode the kernel transmits
//! inside that call, 32 frames at most per call) and reaps completions.
//! Several descriptors may name the same frame at once: the kernel only
//! reads it. A frame counts as sent when the kernel completes it; for a
//! veth that is once the peer has taken or dropped it, and veth counts
//! what it drops in the sender's `tx_dropped`.
//!
//! On veth, frames from an AF_XDP socket in copy mode are skbs; they reach
//! a native XDP program on the peer (the sink) through the peer's NAPI,
//! which veth uses for them because attaching XDP to the peer turns the
//! sender's TSO off.

use super::{Share, Template};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use xgate_dataplane::io::afxdp::{self, AfXdpConfig, AfXdpError, BindMode, WorkerIo};
use xgate_dataplane::io::{Desc, FRAME_SIZE, MAX_FRAME_LEN, Port};

/// Descriptors queued per round of the send loop.
pub const BATCH: usize = 64;
/// Most flows AF_XDP mode keeps: one UMEM frame each, per thread
/// (65536 flows = 128 MiB per thread).
pub const MAX_FLOWS: u32 = 1 << 16;
/// A sender whose frames the kernel has not completed for this long has
/// stalled (an error, not a hang).
const STALL: Duration = Duration::from_secs(2);
/// How long the end of a run waits for the last completions.
const DRAIN: Duration = Duration::from_secs(1);

/// One thread's transmit-only AF_XDP socket, its UMEM of flow frames.
pub struct AfXdpSender {
    io: WorkerIo,
    /// UMEM address of each flow's frame, in flow order.
    flows: Vec<u64>,
    /// Length of every frame (the template's size less the FCS).
    len: u32,
    device: String,
    queue: u32,
}

impl AfXdpSender {
    /// Opens a transmit-only socket on queue `queue` of `dev` (in the
    /// calling thread's namespace) and writes the template's flow frames
    /// into its UMEM.
    pub fn open(t: &Template, dev: &str, queue: u32, bind: BindMode) -> Result<Self, String> {
        t.validate()?;
        let len = t.size - 4;
        if len > MAX_FRAME_LEN {
            return Err(format!(
                "--size {}: AF_XDP mode sends frames of at most {} bytes (FCS included; \
                 UMEM frames of {FRAME_SIZE} bytes); --mode live sends up to 3500",
                t.size,
                MAX_FRAME_LEN + 4
            ));
        }
        if t.flows > MAX_FLOWS {
            return Err(format!(
                "--flows {}: AF_XDP mode keeps one UMEM frame per flow and thread, \
                 at most {MAX_FLOWS} flows; --mode live has no such limit",
                t.flows
            ));
        }
        let cfg = AfXdpConfig {
            bind,
            tx_only: true,
            frames: Some(t.flows as usize),
            ..AfXdpConfig::default()
        };
        let devices = [dev.to_string()];
        let mut io =
            afxdp::open_worker(&devices, &[queue], &cfg, &mut [None]).map_err(|e| match e {
                AfXdpError::NoQueue { available, .. } => format!(
                    "{dev} has {available} queue(s): queue {queue} is needed for thread {queue} \
                     (--threads at most {available}; a veth gets more with numtxqueues and \
                     numrxqueues)"
                ),
                e => format!("{dev}: {e}"),
            })?;
        let (umem, pool, _) = io.parts();
        let mut flows = Vec::with_capacity(t.flows as usize);
        for i in 0..t.flows {
            let d = pool
                .alloc()
                .ok_or_else(|| format!("{dev}: the UMEM has fewer frames than flows"))?;
            let frame = t.flow_frame(i);
            umem[d.addr as usize..][..frame.len()].copy_from_slice(&frame);
            flows.push(d.addr);
        }
        Ok(AfXdpSender {
            io,
            flows,
            len: len as u32,
            device: dev.to_string(),
            queue,
        })
    }

    /// What the kernel granted, for the log: "g0 queue 0 (copy, ...)".
    pub fn describe(&self) -> String {
        format!(
            "{} queue {} ({}, need_wakeup, no XDP program; UMEM of {} frame{})",
            self.device,
            self.queue,
            if self.io.obtained.zero_copy {
                "zero-copy"
            } else {
                "copy"
            },
            self.io.obtained.frames,
            if self.io.obtained.frames == 1 {
                ""
            } else {
                "s"
            }
        )
    }

    /// Sends `share`, adding the frames the kernel completed to `sent` as
    /// they complete, until the share is sent, its deadline passes or
    /// `stop` is set; then waits (at most a second) for the last
    /// completions. No allocation and at most a few system calls per batch.
    pub fn send(
        &mut self,
        share: &Share,
        stop: &AtomicBool,
        sent: &AtomicU64,
    ) -> Result<(), String> {
        let (umem, pool, sets) = self.io.parts();
        let port = &mut sets[0].ports[0];
        let nflows = self.flows.len();
        let mut descs = [Desc::default(); BATCH];
        let mut flow = 0usize; // the flow of the next frame
        let mut queued = 0u64;
        let mut reported = port.counters.tx_completed;
        let t0 = Instant::now();
        let mut progress = t0;
        loop {
            let now = Instant::now();
            if now >= share.until || stop.load(Ordering::Relaxed) || queued >= share.count {
                break;
            }
            let mut want = (share.count - queued).min(BATCH as u64);
            if share.rate > 0.0 {
                // Frames due by now: one at t0, then one every 1/rate s.
                let due = (now.duration_since(t0).as_secs_f64() * share.rate) as u64 + 1;
                want = want.min(due.saturating_sub(queued));
            }
            let want = want as usize;
            if want > 0 {
                let mut f = flow;
                for d in &mut descs[..want] {
                    *d = Desc {
                        addr: self.flows[f],
                        len: self.len,
                    };
                    f += 1;
                    if f == nflows {
                        f = 0;
                    }
                }
                // Takes what fits on the tx ring and kicks.
                let n = port.tx_burst(umem, &descs[..want]);
                flow = (flow + n) % nflows;
                queued += n as u64;
            }
            // Reaps completions, kicks again while frames are unsent.
            port.service(umem, pool);
            let done = port.counters.tx_completed;
            let completed_some = done > reported;
            if completed_some {
                sent.fetch_add(done - reported, Ordering::Relaxed);
                reported = done;
            }
            if completed_some || port.counters.tx_outstanding == 0 {
                progress = now;
            } else if now.duration_since(progress) > STALL {
                return Err(format!(
                    "{} queue {}: the kernel completed none of {} queued frames in {} s \
                     (a zero-copy driver that needs an XDP program on the device? try --bind copy)",
                    self.device,
                    self.queue,
                    port.counters.tx_outstanding,
                    STALL.as_secs()
                ));
            }
            if want == 0 && share.rate > 0.0 {
                // Ahead of the rate: sleep until the next frame is due (at
                // most 1 ms, so completions keep being reaped).
                let next = Duration::from_secs_f64(queued as f64 / share.rate);
                if let Some(wait) = next.checked_sub(t0.elapsed()) {
                    std::thread::sleep(wait.min(Duration::from_millis(1)));
                }
            }
        }
        port.drain_tx(pool, DRAIN);
        let done = port.counters.tx_completed;
        sent.fetch_add(done - reported, Ordering::Relaxed);
        Ok(())
    }

    /// Frames handed to this socket and not completed (after [`send`]:
    /// those the drain gave up on).
    ///
    /// [`send`]: AfXdpSender::send
    pub fn outstanding(&self) -> u32 {
        self.io.queues[0].ports[0].counters.tx_outstanding
    }

    /// Frames the kernel completed since the socket was opened.
    pub fn completed(&self) -> u64 {
        self.io.queues[0].ports[0].counters.tx_completed
    }

    /// UMEM frames neither free nor the flows' (zero unless frames leak).
    pub fn frames_unaccounted(&self) -> isize {
        self.io.frames_unaccounted(self.flows.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Testbed;
    use crate::pktgen::{Proto, shares};

    fn counter(tb: &Testbed, ns: &str, dev: &str, name: &str) -> u64 {
        let out = tb.exec(
            ns,
            "cat",
            &[&format!("/sys/class/net/{dev}/statistics/{name}")],
        );
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }

    /// A transmit-only socket leaves the device without an XDP program,
    /// and what the kernel completes is what left the device.
    #[test]
    fn tx_only_socket_attaches_nothing_and_counts_completions() {
        if let Some(r) = crate::skip_reason() {
            eprintln!("skipped: {r}");
            return;
        }
        let mut tb = Testbed::new();
        let g = tb.netns("g");
        let k = tb.netns("k");
        // No IPv6 router solicitations or MLD reports of the kernel's own
        // among the frames counted.
        tb.sysctl(&g, "net.ipv6.conf.default.disable_ipv6=1");
        let (g0, _) = tb.veth(&g, "g0", &k, "k0", 1);
        let t = Template {
            proto: Proto::Udp,
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src: "10.1.0.2".parse().unwrap(),
            dst: "10.2.0.2".parse().unwrap(),
            sport: 1024,
            dport: 9,
            size: 64,
            flows: 5,
            addrs: 1,
        };
        let before = counter(&tb, &g, &g0, "tx_packets");
        let (ns, dev, tmpl) = (g.clone(), g0.clone(), t.clone());
        // Opened in a thread that entered the namespace; the socket stays
        // bound to that namespace's device wherever it is used from.
        let mut s = std::thread::spawn(move || {
            crate::bpf::enter_netns(&ns).unwrap();
            AfXdpSender::open(&tmpl, &dev, 0, BindMode::Auto)
        })
        .join()
        .unwrap()
        .unwrap();
        assert!(s.describe().contains("copy"), "{}", s.describe());
        assert!(!tb.has_xdp(&g), "a transmit-only socket attached a program");
        let share = shares(0, 1000, 1, Instant::now() + Duration::from_secs(10))[0];
        let sent = AtomicU64::new(0);
        s.send(&share, &AtomicBool::new(false), &sent).unwrap();
        assert_eq!(sent.load(Ordering::Relaxed), 1000);
        assert_eq!((s.completed(), s.outstanding()), (1000, 0));
        assert_eq!(s.frames_unaccounted(), 0);
        assert_eq!(counter(&tb, &g, &g0, "tx_packets") - before, 1000);
        drop(s);
        assert!(!tb.has_xdp(&g));
    }
}
