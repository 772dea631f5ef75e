//! What the workers hand the control thread for the XDP offload (issue
//! 16; the program is `io/afxdp/offload.bpf.c`, the control thread's part
//! `control/src/offload.rs`, the connection words `conntrack/table/offload.rs`).
//!
//! A worker never makes a system call: when the first packet of an
//! offloadable direction leaves (`pipeline/offload.rs` decides which), it
//! queues a [`Learned`] record — the packet's headers as they arrived and
//! the frame as it leaves — and the control thread turns it into the
//! program's map entry with [`crate::io::afxdp::offload::learn`]. A TCP
//! FIN or RST of an offloaded connection queues a teardown, so its
//! entries go at once rather than at the next scan. Fixed-size records in
//! a bounded queue: no allocation; a full queue is counted and the
//! direction is asked for again by a later packet.

use crate::conntrack::ConnId;
use crate::iface::IfIndex;
use crossbeam_queue::ArrayQueue;
use crossbeam_utils::CachePadded;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// Bytes of a packet's IP and transport headers kept as it arrived: an
/// IPv6 header and a TCP header with 4 bytes of options.
pub const RX_HEAD: usize = 64;
/// Bytes of the frame kept as it leaves: Ethernet, one tag, [`RX_HEAD`].
pub const TX_HEAD: usize = 14 + 4 + RX_HEAD;
/// Records waiting for the control thread at most.
pub const QUEUE: usize = 4096;

/// One direction of a connection, as the pipeline forwarded a packet of it.
#[derive(Clone, Copy, Debug)]
pub struct Learned {
    /// The packet's L3 header and what follows, as it arrived (VLAN tag
    /// popped), `rx_len` bytes of it.
    pub rx: [u8; RX_HEAD],
    pub rx_len: u8,
    /// The frame as it left, `tx_len` bytes of it.
    pub tx: [u8; TX_HEAD],
    pub tx_len: u8,
    /// The port it arrived on and the VLAN ID of its tag (0: none).
    pub rx_port: u16,
    pub rx_vlan: u16,
    /// The port it left by, and the egress interface's IP MTU.
    pub tx_port: u16,
    pub mtu: u16,
    /// The egress interface and next hop (the neighbour whose MAC the
    /// entry copies: the control thread watches it).
    pub oif: IfIndex,
    pub nexthop: u128,
    /// The connection, in the packet's direction.
    pub conn: ConnId,
    /// The ingress interface's MAC (the program takes only frames sent
    /// to it).
    pub rx_mac: [u8; 6],
    /// The generation of the tables the pipeline decided with: a record
    /// made with older ones is thrown away.
    pub tables_gen: u64,
}

/// A worker's message to the control thread.
#[derive(Clone, Copy, Debug)]
pub enum Request {
    Learn(Learned),
    /// A TCP FIN or RST of a connection with offloaded directions.
    Teardown(ConnId),
    /// `ctl conntrack -D` of an offloaded connection: its entries go
    /// first, then the connection (its NAT port must not be reused while
    /// an entry still translates to it).
    Kill(ConnId),
}

/// The offload's shared part: which ports may offload, the queue.
pub struct OffloadQueue {
    /// Bit p: frames received on port p may be offloaded (the port runs
    /// the offload program natively). Set by the control thread.
    rx_ports: AtomicU64,
    /// Bit p: the device of port p takes redirected frames (the program
    /// may send to it). Set by the control thread.
    tx_ports: AtomicU64,
    /// Off while the control thread wants no new entry (a trace request
    /// is active: traced packets must walk the pipeline).
    paused: AtomicBool,
    queue: ArrayQueue<Request>,
    /// Directions queued, and records lost to a full queue (on their own
    /// line: every worker reads the masks above).
    pub queued: CachePadded<AtomicU64>,
    pub queue_full: CachePadded<AtomicU64>,
}

impl Default for OffloadQueue {
    fn default() -> Self {
        OffloadQueue {
            rx_ports: AtomicU64::new(0),
            tx_ports: AtomicU64::new(0),
            paused: AtomicBool::new(false),
            queue: ArrayQueue::new(QUEUE),
            queued: CachePadded::new(AtomicU64::new(0)),
            queue_full: CachePadded::new(AtomicU64::new(0)),
        }
    }
}

impl std::fmt::Debug for OffloadQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OffloadQueue")
            .field("rx_ports", &self.rx_ports.load(Relaxed))
            .field("queued", &self.queued.load(Relaxed))
            .finish_non_exhaustive()
    }
}

impl OffloadQueue {
    /// Whether a packet received on `port` may be offloaded now.
    #[inline]
    pub fn rx_port(&self, port: u16) -> bool {
        port < 64 && self.rx_ports.load(Relaxed) >> port & 1 == 1 && !self.paused.load(Relaxed)
    }

    /// Whether the program may redirect to any device now.
    #[inline]
    pub fn any_tx_port(&self) -> bool {
        self.tx_ports.load(Relaxed) != 0
    }

    /// Whether the program may redirect to `port`'s device now.
    #[inline]
    pub fn tx_port(&self, port: u16) -> bool {
        port < 64 && self.tx_ports.load(Relaxed) >> port & 1 == 1
    }

    /// Sets which ports' devices take redirected frames (bit p: port p).
    pub fn set_tx_ports(&self, ports: u64) {
        self.tx_ports.store(ports, Relaxed);
    }

    /// Lets frames received on `port` be offloaded (or not).
    pub fn set_rx_port(&self, port: u16, on: bool) {
        if port >= 64 {
            return;
        }
        if on {
            self.rx_ports.fetch_or(1 << port, Relaxed);
        } else {
            self.rx_ports.fetch_and(!(1 << port), Relaxed);
        }
    }

    /// Stops (or resumes) new offloads.
    pub fn pause(&self, paused: bool) {
        self.paused.store(paused, Relaxed);
    }

    pub fn paused(&self) -> bool {
        self.paused.load(Relaxed)
    }

    /// Queues a request; false (counted) when the queue is full.
    pub fn push(&self, r: Request) -> bool {
        let learn = matches!(r, Request::Learn(_));
        if self.queue.push(r).is_err() {
            self.queue_full.fetch_add(1, Relaxed);
            return false;
        }
        if learn {
            self.queued.fetch_add(1, Relaxed);
        }
        true
    }

    /// The next request (the control thread).
    pub fn pop(&self) -> Option<Request> {
        self.queue.pop()
    }
}
