//! Routing: longest-prefix match tables for IPv4 ([`Lpm4`], DIR-24-8) and
//! IPv6 ([`Lpm6`], a 24-8-8-... multibit trie with compressed nodes), route
//! tables with metrics, route types and ECMP ([`RouteTable`]), `ip
//! rule`-style policy over several tables ([`Fib`]), and the neighbour table
//! (`neighbor`).
//!
//! In the packet walk this is the "routing" stage: the pipeline asks
//! [`Fib::lookup_v4`] / [`Fib::lookup_v6`] for the route of a destination and
//! picks the next hop with [`RouteEntry::nexthop`] and the flow hash. All
//! lookups take `&self` and never allocate; the control plane builds and
//! updates tables and publishes them as immutable snapshots.
//!
//! Files: `dir.rs` (the 2^24-entry first level and 256-entry groups shared
//! by both LPMs, entry encoding), `lpm4.rs`, `lpm6.rs`, `nodes.rs` (IPv6
//! trie nodes), `table.rs` (routes, entries, ECMP), `policy.rs` (rules, FIB).

mod dir;
pub mod lpm4;
pub mod lpm6;
pub mod neighbor;
mod nodes;
pub mod policy;
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
