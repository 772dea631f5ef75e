//! Routing: longest-prefix match tables for IPv4 ([`Lpm4`], DIR-24-8) and
//! IPv6 ([`Lpm6`], a 24-8-8-... multibit trie with compressed nodes), route
//! tables with metrics, route types and ECMP ([`RouteTable`]), `ip
//! rule`-style policy over several tables ([`Fib`]), and the neighbour table
//! (`neighbor`).
//!
//! In the packet walk this is the "routing" stage. The hot path asks
//! [`Fib::lookup_v4`] / [`Fib::lookup_v6`] for the forwarding entry of a
//! destination (route type and next hops, shared by all the prefixes with
//! the same: 16 entries for the 606k-prefix RIB with 16 gateways, so the
//! only likely cache miss is the LPM's) and picks the next hop with
//! [`RouteEntry::nexthop`] and the flow hash. Before its lookups, a batch
//! prefetches the first-level LPM line of each IPv4 destination
//! ([`Fib::prefetch`]) so that the misses overlap. The slow path,
//! [`Fib::route_v4`] / [`Fib::route_v6`], gives the same answer with the
//! matched table, prefix, length and metric (`ip route get`, traces).
//! All lookups take `&self` and never allocate; the control plane builds
//! and updates tables and publishes them as immutable snapshots.
//!
//! Measured (`pipeline_routed`, 2-core VM): with one 64-byte entry per
//! prefix (38 MB for the RIB) the entry read was a second, dependent miss
//! and the pipeline took 52-56 ns per packet with the RIB against 34-35 ns
//! with 16 routes; with shared entries 40-42 ns, and with the prefetch
//! 36-39 ns. The bench sends the same 4096 destinations every run, so its
//! LPM lines are in L2/L3; with a new set of 4096 (of 1M) per run, i.e.
//! from DRAM, the prefetch halves the cost: 85-92 -> 48-52 ns per packet
//! (141-154 ns with per-prefix entries).
//!
//! Files: `dir.rs` (the 2^24-entry first level and 256-entry groups shared
//! by both LPMs, entry encoding, the prefetch hint), `lpm4.rs`, `lpm6.rs`,
//! `prefixes.rs` (what both LPMs share: the prefixes per length, the small
//! list and its filter, updates), `nodes.rs` (IPv6 trie nodes), `table.rs`
//! (routes, shared entries, ECMP), `policy.rs` (policy rules `ip rule`, the FIB).

mod dir;
pub mod lpm4;
pub mod lpm6;
pub mod neighbor;
mod nodes;
pub mod policy;
mod prefixes;
pub mod table;

pub use lpm4::Lpm4;
pub use lpm6::Lpm6;
pub use policy::*;
pub use table::*;

/// Tables of at most this many prefixes are scanned linearly instead of
/// building the first-level arrays (see `lpm4.rs`).
pub(crate) const SMALL: usize = 16;

/// Rejected input of the checked LPM API (`try_insert`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LpmError {
    #[error("prefix length {len} is longer than {max}")]
    PrefixLen { len: u8, max: u8 },
    #[error("value {0:#x} does not fit in 31 bits")]
    Value(u32),
    #[error("the table has no room left for another second-level group")]
    Full,
}
