//! The pipeline: the stages of the packet walk, each run over a whole batch
//! (up to [`BATCH`] packets) before the next, as VPP runs graph nodes. One
//! file per stage, named as [`Stage`] names it, in the order they run:
//!
//! ```text
//! rx burst -> parse.rs           eth, VLAN pop -> logical interface, L3/L4 checks
//!          -> bridge.rs          bridge ports: learn, switch or flood (with [[bridge]])
//!          -> neighbor_input.rs  ARP, NDP: answer for our addresses, learn
//!          -> conntrack.rs       PREROUTING conntrack lookup, ctstate
//!          -> prerouting.rs      mangle / nat PREROUTING (MARK, DNAT, REDIRECT)
//!          -> route.rs           policy rules -> table -> LPM; local or forward
//!          -> input.rs           filter INPUT, confirm
//!          -> local.rs           echo reply, punt to the kernel, unreachable, reset
//!          -> forward_checks.rs  TTL, MTU: time exceeded, frag needed
//!          -> forward.rs         filter FORWARD, nat POSTROUTING + confirm, SNAT
//!          -> rewrite.rs         TTL, MACs from the neighbour cache/table, VLAN push
//!          -> local_out.rs       the router's own packets: NAT, route, OUTPUT, rewrite
//!          -> tx.rs              once per call: neighbour queues, tx flush, traces
//! ```
//! Beside them: `netfilter.rs` (the packet view, table evaluation, filter
//! verdicts and REJECT every hook stage shares), `nat.rs` (applying and
//! undoing translations), `confirm.rs` (nat POSTROUTING and the insert of
//! a new connection), `neighbor.rs` (neighbour resolution and the pending
//! queues rewrite parks packets in), `icmp.rs` (ICMP errors, TCP resets,
//! rate limits), `frag.rs` (what later fragments inherit from their
//! first), `punt.rs` (to and from the host kernel's taps), `trace.rs`.
//!
//! A stage either leaves a packet for the next stage or decides its fate:
//! drop (counted under one [`DropReason`]), consumed (queued for a
//! neighbour, or transmitted). Nothing on this path locks, allocates or
//! makes a system call: batches, transmit queues and the trace buffer are
//! allocated once with their full capacity.

mod bridge;
mod confirm;
mod conntrack;
mod forward;
mod forward_checks;
mod frag;
mod helper;
mod icmp;
mod input;
mod local;
mod local_out;
mod mss;
mod nat;
mod neighbor;
mod neighbor_input;
mod netfilter;
mod offload;
mod parse;
mod prerouting;
mod punt;
mod rewrite;
mod route;
pub mod trace;
mod tx;

use crate::bridge::{Bridges, Fdb};
use crate::conntrack::{Conntrack, CtConfig};
use crate::filter::{EvalCtx, LogRing, Ruleset};
use crate::iface::{IfIndex, Interfaces};
use crate::io::punt::PuntChannel;
use crate::io::{Desc, FramePool, Port};
use crate::nat::NatPorts;
use crate::route::Fib;
use crate::route::neighbor::NeighborTable;
use crate::stats::{DropReason, Stage, WorkerStats};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Instant;
pub use trace::{Trace, TraceFilter, TraceRecord, TraceRequest, TraceWhat};

/// Packets per batch: every stage runs over a batch before the next.
pub const BATCH: usize = 64;
/// Packets a worker takes from an rx ring at once, run through the
/// pipeline a batch at a time by one `Pipeline::process` call (whose own
/// costs, the transmit flush and the expiry sweep, are then paid once per
/// four batches).
pub const RX_BURST: usize = 4 * BATCH;

/// The immutable tables a pipeline reads: built by the control plane from
/// the config and replaced as a whole on reload.
#[derive(Debug)]
pub struct Tables {
    pub interfaces: Interfaces,
    pub fib: Fib,
    pub icmp: IcmpLimits,
    /// The iptables ruleset (filter, nat, mangle).
    pub filter: Ruleset,
    /// Whether packets are matched to connections: the ruleset uses
    /// connection states or NAT. Without, every packet is UNTRACKED and
    /// the conntrack stage costs nothing.
    pub tracking: bool,
    /// The config's `[conntrack] helpers`: which helper a new connection
    /// to a port gets when the raw table gave it none.
    pub helper_ports: HelperPorts,
    /// `[conntrack] checksum` (Linux's `nf_conntrack_checksum`, on by
    /// default): a packet that would open or change a connection with a
    /// wrong transport checksum is INVALID.
    pub ct_checksum: bool,
    /// The bridge domains (empty: a router only).
    pub bridges: Bridges,
}

/// Helpers by transport protocol and server port (the config shortcut for
/// users without a raw table: `[conntrack] helpers`). Looked at once per
/// confirmed connection, and only when the list is not empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HelperPorts {
    /// (helper, port): the helper's protocol and this destination port.
    pub ports: Vec<(crate::conntrack::HelperKind, u16)>,
}

impl HelperPorts {
    /// The helper for a connection of `proto` to port `dport`.
    #[inline]
    pub fn lookup(&self, proto: u8, dport: u16) -> Option<crate::conntrack::HelperKind> {
        self.ports
            .iter()
            .find(|(h, p)| h.proto() == proto && *p == dport)
            .map(|(h, _)| *h)
    }

    pub fn is_empty(&self) -> bool {
        self.ports.is_empty()
    }
}

/// ICMP error rate limits, as Linux's `icmp_msgs_per_sec`/`icmp_msgs_burst`
/// (whole worker) and `icmp_ratelimit` (per destination, burst 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpLimits {
    pub msgs_per_sec: u32,
    pub msgs_burst: u32,
    /// Minimum interval between errors to one destination, in ms (0: no limit).
    pub ratelimit_ms: u32,
    pub ratelimit_burst: u32,
}

impl Default for IcmpLimits {
    fn default() -> Self {
        IcmpLimits {
            msgs_per_sec: 1000,
            msgs_burst: 50,
            ratelimit_ms: 1000,
            ratelimit_burst: 6,
        }
    }
}

/// State every worker shares and writes (lock-free). Survives config
/// reloads: connections and their NAT bindings live here.
pub struct Shared {
    pub neighbors: NeighborTable,
    pub conntrack: Conntrack,
    /// NAT source ports; connections release theirs when they leave the
    /// table (the conntrack retire hook).
    pub nat: Arc<NatPorts>,
    /// LOG lines on their way to the control thread.
    pub log: Arc<LogRing>,
    /// Packet traces the control thread asked for.
    pub trace: TraceRequest,
    /// Per-stage timing (`xgate ctl stats`, like VPP's `show runtime`):
    /// off by default, read once per batch.
    pub profile: AtomicBool,
    /// The bridges' MAC table (survives reloads that keep the bridges).
    pub fdb: Fdb,
    /// Directions on their way to the XDP offload (`offload.rs`).
    pub offload: crate::offload::OffloadQueue,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("conntrack", &self.conntrack)
            .finish_non_exhaustive()
    }
}

/// NAT external addresses the allocator can hold.
pub const MAX_NAT_ADDRESSES: usize = 64;
/// MAC table slots unless the config says otherwise (`fdb_max`).
pub const FDB_DEFAULT: usize = 4096;
/// LOG lines waiting for the control thread at most.
const LOG_RING: usize = 1024;
/// Requested trace records waiting for the control thread at most.
const TRACE_RECORDS: usize = 16384;

impl Shared {
    /// Shared state with a small connection table (4096 flows, default
    /// timeouts): for tests and tools.
    pub fn new(neighbor_capacity: usize) -> Self {
        Self::with_conntrack(neighbor_capacity, CtConfig::new(4096))
    }

    /// Shared state with the connection table `ct` describes; its retire
    /// hook is set here (NAT port release).
    pub fn with_conntrack(neighbor_capacity: usize, mut ct: CtConfig) -> Self {
        // A fixed conntrack seed (replay, tests) fixes the port choices too.
        let nat = Arc::new(match ct.seed {
            Some(seed) => NatPorts::with_seed(MAX_NAT_ADDRESSES, seed),
            None => NatPorts::new(MAX_NAT_ADDRESSES),
        });
        ct.on_retire = Some(NatPorts::retire_hook(nat.clone()));
        Shared {
            neighbors: NeighborTable::new(neighbor_capacity),
            conntrack: Conntrack::with_config(ct),
            nat,
            log: Arc::new(LogRing::new(LOG_RING)),
            trace: TraceRequest::new(TRACE_RECORDS),
            profile: AtomicBool::new(false),
            fdb: Fdb::new(FDB_DEFAULT),
            offload: crate::offload::OffloadQueue::default(),
        }
    }
}

/// Layer-3 kind of a parsed packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum L3 {
    #[default]
    Arp,
    V4,
    V6,
    /// A bridged frame the bridge switches without looking at layer 3.
    L2,
}

/// What happens to the packet next.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Next {
    /// Still walking the stages.
    #[default]
    Continue,
    /// For this router (local delivery).
    Local,
    /// Routed out of `oif`.
    Forward,
    /// Left the batch (transmitted, queued, or dropped and freed).
    Done,
}

pub(crate) mod flags {
    /// Generated by the router: no TTL decrement, no iif in policy lookups.
    pub const LOCAL_ORIGIN: u16 = 1;
    /// Part of a fragmented datagram.
    pub const FRAGMENT: u16 = 2;
    /// A non-first fragment: no transport header.
    pub const LATER_FRAGMENT: u16 = 4;
    /// Arrived as link-layer broadcast or multicast.
    pub const L2_MULTICAST: u16 = 8;
    /// Record this packet's stages in the trace.
    pub const TRACE: u16 = 16;
    /// Sent by the host kernel through a tap (with LOCAL_ORIGIN): it may
    /// open connections of its own.
    pub const KERNEL: u16 = 32;
    /// Addressed to a group, not to the router alone: an IPv4 broadcast
    /// (255.255.255.255, a subnet's broadcast address) or a multicast
    /// group of the interface's `tap_groups`. Delivered locally, never
    /// answered with an ICMP error or a reset, never forwarded.
    pub const TO_GROUP: u16 = 64;
    /// A directed broadcast being forwarded (`bc_forwarding`): sent to
    /// the link's broadcast MAC, never ARPed for.
    pub const L2_BROADCAST: u16 = 128;
    /// Switched by a bridge, not routed (its destination MAC is not the
    /// bridge's): `phys_in` is the port it came by, `phys_out` the port
    /// it leaves by (None: flooded). Walks conntrack and the netfilter
    /// hooks only when the bridge calls them (br_netfilter), never the
    /// route, TTL or neighbour stages.
    pub const BRIDGED: u16 = 256;
    /// Its connection's direction may be offloaded to XDP (`offload.rs`):
    /// `Meta::cap` holds its headers as they arrived.
    pub const OFFLOAD: u16 = 512;
}

/// Per-packet metadata, the "buffer opaque" of the walk. After parsing, the
/// frame in `desc` is untagged: the Ethernet header is at 0 and L3 at 14.
#[derive(Clone, Copy, Debug, Default)]
pub struct Meta {
    pub desc: Desc,
    pub seq: u64,
    pub iif: IfIndex,
    pub oif: IfIndex,
    pub l3: L3,
    /// Transport protocol (after IPv6 extension headers).
    pub proto: u8,
    pub flags: u16,
    pub next: Next,
    /// Offset of the transport header from the start of L3.
    pub l4_off: u16,
    /// Length of the L3 packet (IPv4 total length; IPv6 40 + payload).
    pub l3_len: u16,
    pub hash: u32,
    pub mark: u32,
    /// The connection mark a rule set for a connection not yet in the
    /// table (a first packet): stored when confirm inserts it.
    pub ctmark: u32,
    /// Neighbour to send to (IPv4-mapped for IPv4), set by routing.
    pub nexthop: u128,
    /// The bridge port the frame arrived by (`-m physdev --physdev-in`).
    pub phys_in: Option<IfIndex>,
    /// The bridge port a bridged frame leaves by (None: flooded).
    pub phys_out: Option<IfIndex>,
    /// The bridge VLAN of a frame that arrived by a bridge port (0 on a
    /// bridge without VLAN filtering).
    pub vid: u16,
    /// An offload candidate's capture in this batch, + 1 (0: none).
    pub cap: u8,
}

impl Meta {
    #[inline]
    pub fn has(&self, f: u16) -> bool {
        self.flags & f != 0
    }
}

pub const L3_OFF: usize = crate::packet::ether::HEADER_LEN;

/// One worker's pipeline: its private state plus references to the shared
/// tables.
pub struct Pipeline {
    pub tables: Arc<Tables>,
    /// The generation of `tables` as the control plane published them
    /// (offload records carry it: one made with older tables is void).
    pub tables_gen: u64,
    pub shared: Arc<Shared>,
    pub stats: Arc<WorkerStats>,
    pub trace: Trace,
    /// The firewall's per-worker state: per-rule packet and byte
    /// counters, LOG rate limit, random matches.
    pub eval: EvalCtx,
    ct: Vec<conntrack::CtMeta>,
    /// Offload candidates' headers, this batch (`offload.rs`).
    caps: Vec<offload::Cap>,
    /// Conntrack found a packet of the batch that PREROUTING must look at
    /// (a first packet, a translated destination, a fragment, ...).
    prerouting_work: bool,
    /// What became of the first fragments of fragmented datagrams.
    frags: frag::FragTable,
    /// The way to the host kernel's taps (`xgate run` with taps).
    punt: Option<Arc<PuntChannel>>,
    /// This call queued frames for the kernel: wake the punt thread.
    punted: bool,
    /// A packet of this call was selected by a trace request: its records
    /// go to the control thread at the end of the call.
    trace_requested: bool,
    pending: neighbor::Pending,
    ncache: neighbor::NeighborCache,
    /// Per bridge: the flood token bucket (tokens x 10^9, last refill).
    flood: [(u64, u64); crate::bridge::MAX_BRIDGES],
    limiter: icmp::Limiter,
    batch: Vec<Meta>,
    out: Vec<Meta>,
    tx: Vec<Vec<Desc>>,
    /// Per port: (queue position, packet, interface) of traced packets.
    tx_meta: Vec<Vec<(u32, u64, IfIndex)>>,
    seq: u64,
    ident: u16,
}

impl Pipeline {
    pub fn new(tables: Arc<Tables>, shared: Arc<Shared>) -> Self {
        let ports = tables.interfaces.ports();
        let stats = Arc::new(WorkerStats::new(ports));
        let limiter = icmp::Limiter::new(tables.icmp);
        let eval = EvalCtx::new(
            Arc::new(tables.filter.new_counters()),
            shared.log.clone(),
            0x5eed,
        );
        Pipeline {
            tables,
            tables_gen: 0,
            shared,
            stats,
            eval,
            ct: Vec::with_capacity(BATCH),
            caps: Vec::with_capacity(BATCH),
            prerouting_work: true,
            frags: frag::FragTable::default(),
            punt: None,
            punted: false,
            trace_requested: false,
            trace: Trace::new(1 << 16),
            pending: neighbor::Pending::new(),
            ncache: neighbor::NeighborCache::new(),
            limiter,
            // Room for a local copy of each packet (bridged broadcasts).
            batch: Vec::with_capacity(2 * BATCH),
            flood: [(0, 0); crate::bridge::MAX_BRIDGES],
            out: Vec::with_capacity(4 * BATCH),
            tx: (0..ports)
                .map(|_| Vec::with_capacity(tx::TX_QUEUE))
                .collect(),
            tx_meta: (0..ports)
                .map(|_| Vec::with_capacity(tx::TX_QUEUE))
                .collect(),
            seq: 0,
            ident: 0,
        }
    }

    /// Runs one received burst from `rx_port` through every stage and
    /// transmits the results on `ports`. `now` is the time in nanoseconds
    /// (monotonic when live, the capture's timestamp in replay). Never
    /// inlined: it runs once per batch, and profiles stay readable.
    #[inline(never)]
    pub fn process<P: Port>(
        &mut self,
        umem: &mut [u8],
        pool: &mut FramePool,
        ports: &mut [P],
        rx_port: u16,
        descs: &[Desc],
        now: u64,
    ) {
        let mut ctx = Ctx {
            umem,
            pool,
            ports,
            now,
        };
        self.stats.batches.inc();
        let profile = self.shared.profile.load(Relaxed);
        for chunk in descs.chunks(BATCH) {
            let mut batch = std::mem::take(&mut self.batch);
            batch.clear();
            // Each stage over the whole batch; with profiling on, timed.
            macro_rules! stage {
                ($stage:expr, $call:expr) => {
                    if profile {
                        let live = batch.iter().filter(|m| m.next != Next::Done).count();
                        let t = Instant::now();
                        $call;
                        self.stats.stage($stage, live, t.elapsed());
                    } else {
                        $call;
                    }
                };
            }
            let t = profile.then(Instant::now);
            self.parse(&mut ctx, rx_port, chunk, &mut batch);
            if let Some(t) = t {
                self.stats.stage(Stage::Parse, chunk.len(), t.elapsed());
            }
            if !self.tables.bridges.is_empty() {
                stage!(Stage::Bridge, self.bridge(&mut ctx, &mut batch));
            }
            stage!(
                Stage::NeighborInput,
                self.neighbor_input(&mut ctx, &mut batch)
            );
            if self.tables.tracking {
                stage!(Stage::Conntrack, self.conntrack(&mut ctx, &mut batch));
            } else {
                self.ct.clear();
                self.ct.resize(batch.len(), conntrack::CtMeta::untracked());
            }
            stage!(Stage::Prerouting, self.prerouting(&mut ctx, &mut batch));
            stage!(Stage::Route, self.route(&mut ctx, &mut batch));
            stage!(Stage::Input, self.input(&mut ctx, &mut batch));
            stage!(Stage::Local, self.local(&mut ctx, &mut batch));
            stage!(
                Stage::ForwardChecks,
                self.forward_checks(&mut ctx, &mut batch)
            );
            stage!(Stage::Forward, self.forward(&mut ctx, &mut batch));
            stage!(Stage::Rewrite, self.rewrite(&mut ctx, &mut batch));
            self.batch = batch;
            let t = profile.then(Instant::now);
            let out = self.out.len();
            self.local_out(&mut ctx);
            if let Some(t) = t
                && out > 0
            {
                self.stats.stage(Stage::LocalOut, out, t.elapsed());
            }
        }
        let t = profile.then(Instant::now);
        self.finish(&mut ctx);
        if let Some(t) = t {
            self.stats.stage(Stage::Tx, descs.len(), t.elapsed());
        }
    }

    /// Time passes without traffic: retries neighbour resolution, releases
    /// packets whose neighbour another worker learned, times out the rest.
    pub fn tick<P: Port>(
        &mut self,
        umem: &mut [u8],
        pool: &mut FramePool,
        ports: &mut [P],
        now: u64,
    ) {
        let mut ctx = Ctx {
            umem,
            pool,
            ports,
            now,
        };
        self.finish(&mut ctx);
    }

    /// Switches to tables the control plane published (a reload), between
    /// two batches. Connections, NAT bindings and neighbours live in
    /// `Shared` and are untouched; the per-rule counters start again for a
    /// new ruleset (as `iptables-restore` without `-c`), and the worker's
    /// neighbour cache is dropped (interface numbers may mean other
    /// interfaces now). The tables must describe the same ports: adding
    /// or removing a device needs a restart (the control plane checks).
    /// Allocates (counters, rate-limit buckets): runs once per reload.
    pub fn set_tables(&mut self, tables: Arc<Tables>) {
        if Arc::ptr_eq(&self.tables, &tables) {
            return;
        }
        self.eval.counters = Arc::new(tables.filter.new_counters());
        if tables.icmp != self.tables.icmp {
            self.limiter = icmp::Limiter::new(tables.icmp);
        }
        self.ncache = neighbor::NeighborCache::new();
        self.tables = tables;
    }

    /// Packets held waiting for a neighbour.
    pub fn pending_packets(&self) -> usize {
        self.pending.packets()
    }

    /// Frees a packet's frame and counts the reason.
    #[inline]
    fn drop_pkt<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, m: &mut Meta, r: DropReason) {
        self.stats.count_drop(r);
        if m.has(flags::TRACE) {
            self.trace.record(m.seq, "drop", TraceWhat::Drop(r));
        }
        ctx.pool.free(m.desc);
        m.next = Next::Done;
    }

    fn next_ident(&mut self) -> u16 {
        self.ident = self.ident.wrapping_add(1);
        self.ident
    }
}

/// What a stage needs besides the pipeline itself.
pub(crate) struct Ctx<'a, P: Port> {
    pub umem: &'a mut [u8],
    pub pool: &'a mut FramePool,
    pub ports: &'a mut [P],
    pub now: u64,
}

/// The flow hash of an IPv4 packet: the same function as [`flow_hash`]
/// gives for IPv4 addresses, without 128-bit arithmetic.
#[inline]
pub(crate) fn flow_hash_v4(src: u32, dst: u32, proto: u8, ports: u32) -> u32 {
    let mut h = src as u64;
    h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (dst as u64);
    h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ ((proto as u64) << 32 | ports as u64);
    h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h >> 32) as u32 ^ h as u32
}

/// A flow hash for ECMP: the same for every packet of one flow, spread
/// over the 32 bits.
#[inline]
pub(crate) fn flow_hash(src: u128, dst: u128, proto: u8, ports: u32) -> u32 {
    let mut h = (src as u64) ^ ((src >> 64) as u64).rotate_left(17);
    h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (dst as u64) ^ ((dst >> 64) as u64).rotate_left(31);
    h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ ((proto as u64) << 32 | ports as u64);
    h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h >> 32) as u32 ^ h as u32
}
