//! What the connection table hands out and takes: handles
//! ([`ConnId`], [`Found`]), results ([`InsertError`], [`Tracked`],
//! [`Retired`]), its configuration and a consistent copy of a connection
//! ([`Flow`]), and its event counters.

use super::super::key::FlowKey;
use super::super::tcp::TcpState;
use super::super::timeouts::Timeouts;
use super::super::{CtState, Dir};
use super::{EXP_BITS, EXP_MASK, now_ms};

/// A handle on a connection, from one direction: the entry and the
/// generation it had when found. Stale handles are detected (the
/// operations answer "gone"), never misapplied to another connection's
/// state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnId {
    pub(in crate::conntrack) idx: u32,
    pub(in crate::conntrack) generation: u16,
    pub(in crate::conntrack) dir: Dir,
}

impl ConnId {
    /// The direction of the packet that found the connection.
    pub fn dir(&self) -> Dir {
        self.dir
    }

    /// The entry's index in the table (stable for the connection's life).
    pub fn index(&self) -> u32 {
        self.idx
    }

    /// Whether both handles name the same connection (any direction).
    pub fn same_conn(&self, other: &ConnId) -> bool {
        self.idx == other.idx && self.generation == other.generation
    }
}

/// A live connection found by [`Conntrack::find_hinted`].
#[derive(Clone, Copy, Debug)]
pub struct Found {
    pub id: ConnId,
    /// The state word read (where [`Conntrack::update_found`] starts).
    pub(super) state: u64,
}

impl Found {
    /// Whether a helper is attached: the packet takes the helper's slow
    /// path. One bit of the state word the lookup read.
    #[inline(always)]
    pub fn has_helper(&self) -> bool {
        self.state & super::HELPER != 0
    }
}

/// Why an insert did not create a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InsertError {
    /// The packet cannot open a connection (TCP flags, an ICMP reply, ...):
    /// its state is INVALID.
    #[error("packet cannot open a connection")]
    Invalid,
    /// A live connection already has one of the two tuples.
    #[error("a connection with this tuple exists")]
    Exists(ConnId),
    /// Lost a race with a concurrent insert of the same tuple: look up again.
    #[error("concurrent insert of the same tuple")]
    Clash,
    /// No free entry and nothing evictable near the new connection's hash.
    #[error("connection table full")]
    Full,
    /// The original source holds its limit of connections
    /// ([`CtConfig::per_source`]).
    #[error("per-source connection limit")]
    SourceLimit,
}

/// The outcome of [`Conntrack::track`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tracked {
    /// The connection, if the packet has one.
    pub conn: Option<ConnId>,
    pub state: CtState,
}

/// Why a connection left the table (given to the retire hook).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retired {
    Expired,
    /// Evicted to make room (early drop).
    Evicted,
    /// Closed by a packet (RST answering a SYN, a reopen) or `remove`.
    Killed,
}

/// Called for every connection removed from the table, on the removing
/// thread (a worker, for lazy expiry): must not block or allocate.
pub type RetireHook = Box<dyn Fn(&Flow, Retired) + Send + Sync>;

/// How to build a [`Conntrack`].
pub struct CtConfig {
    /// Capacity: connections the table holds at most.
    pub flows: usize,
    pub timeouts: Timeouts,
    /// Hash seed; `None` draws a random one.
    pub seed: Option<u64>,
    /// Pick up TCP connections mid-stream from a lone ACK (Linux's
    /// `nf_conntrack_tcp_loose`, default on).
    pub tcp_loose: bool,
    /// Accept TCP segments outside the window (Linux's
    /// `nf_conntrack_tcp_be_liberal`, default off): windows are then not
    /// tracked. Changeable later ([`Conntrack::set_tcp_be_liberal`]).
    pub tcp_be_liberal: bool,
    pub on_retire: Option<RetireHook>,
    /// Live connections one original source address may hold (0: no
    /// limit). Counted approximately: see [`crate::conntrack::limit`].
    pub per_source: u32,
    /// Connections that may have a helper attached at once (FTP, TFTP
    /// control connections; at most 65535). Attaching beyond is refused
    /// and counted.
    pub helper_conns: usize,
    /// Expectations held at once, all masters together (Linux's
    /// `nf_conntrack_expect_max`).
    pub expectations: usize,
    /// Keep a word per connection for the XDP offload (`offload.rs`).
    pub offload: bool,
}

impl CtConfig {
    pub fn new(flows: usize) -> Self {
        CtConfig {
            flows,
            timeouts: Timeouts::default(),
            seed: None,
            tcp_loose: true,
            tcp_be_liberal: false,
            on_retire: None,
            per_source: 0,
            helper_conns: 4096,
            expectations: 1024,
            offload: false,
        }
    }
}

/// A consistent copy of one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flow {
    pub original: FlowKey,
    pub reply: FlowKey,
    /// `TcpState::None` for other protocols.
    pub tcp: TcpState,
    pub seen_reply: bool,
    pub assured: bool,
    pub mark: u32,
    /// Per direction (`Dir as usize`); 32-bit, wrapping.
    pub packets: [u32; 2],
    pub bytes: [u64; 2],
    /// Expiry time in milliseconds, modulo 2^35.
    pub expires_ms: u64,
    /// The helper attached to the connection (`conntrack -L`'s `helper=`).
    pub helper: Option<crate::conntrack::helper::HelperKind>,
    /// Some direction is forwarded by the XDP offload now (`conntrack
    /// -L`'s `[OFFLOAD]`).
    pub offloaded: bool,
}

impl Flow {
    /// Milliseconds until expiry at `now` (ns), 0 if past.
    pub fn remaining_ms(&self, now: u64) -> u64 {
        let d = self.expires_ms.wrapping_sub(now_ms(now)) & EXP_MASK;
        if d >= 1 << (EXP_BITS - 1) { 0 } else { d }
    }
}

/// Table-wide event counters (see [`Conntrack::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtStats {
    /// Connections in the table now.
    pub live: u64,
    pub inserted: u64,
    /// Unassured connections dropped to make room.
    pub evicted: u64,
    /// Inserts refused because the table was full.
    pub refused: u64,
    pub expired: u64,
    /// Closed by RST, reopened, or removed.
    pub killed: u64,
    /// Inserts that backed out for a concurrent or existing duplicate.
    pub clashes: u64,
    /// Inserts refused because the source held its limit of connections.
    pub source_limited: u64,
    /// TCP segments outside their connection's window (INVALID).
    pub tcp_out_of_window: u64,
}
