//! Connection tracking: one entry per connection, found from either
//! direction, with the states iptables' `-m conntrack --ctstate` matches.
//!
//! In the packet walk this is PREROUTING's lookup (and, for a first packet
//! the filter accepts, POSTROUTING's confirm = [`Conntrack::insert`]). It
//! reads a packet's [`FlowKey`], TCP flags and length; it changes only the
//! shared table (connection state, counters, expiry). It drops nothing
//! itself: it answers [`CtState::Invalid`] or refuses an insert
//! ([`InsertError::Full`]) and the caller drops with its own reason.
//! A NAT'd connection (reply tuple not the original reversed) carries a
//! status bit; [`Conntrack::translation`] gives its packets' target tuple.
//!
//! # Design
//!
//! All workers share one [`Conntrack`]. Per-core shards would need a
//! hand-off whenever the two directions of a flow arrive on different
//! queues (always the case with NAT, whose reply tuple RSS hashes
//! elsewhere), so the table is shared and lock-free instead:
//!
//! - **Entries**: preallocated, `capacity` records of 112 bytes (plus a
//!   32-byte TCP window record in a third array: `tcp.rs`, `table/window.rs`), every
//!   field an atomic, split in two arrays: a 64-byte, line-aligned hot
//!   record (state, ports, counters, mark, and the addresses of an IPv4
//!   connection, packed) and a 48-byte cold one with the other three
//!   addresses of an IPv6 connection. A packet of an IPv4 connection thus
//!   touches one cache line of the entries (a 112-byte record straddled
//!   two or three), the difference that counts beyond the caches. The
//!   first word packs the entry's life (LIVE /
//!   BUSY bits and a 10-bit generation), protocol, TCP state, status bits
//!   (seen reply, assured, NAT'd, IPv4, has a helper: `helper/`) and the expiry time (35 bits of milliseconds,
//!   compared modulo 2^35), so a packet's state transition and timeout
//!   refresh is one compare-and-swap on that word, retried if another core
//!   moved the connection meanwhile; when only the expiry would move, by
//!   less than 1/64 of the timeout, the write is skipped (so a connection
//!   may expire that much early). The two tuples are written only while
//!   the entry is private to its inserter and read under the generation,
//!   seqlock style: a reader that raced with the entry's reuse sees a
//!   different generation and treats it as a miss. Counters are relaxed
//!   loads and stores, not locked adds (packets 32-bit per direction,
//!   wrapping like SNMP Counter32; bytes 64-bit): two workers counting one
//!   direction at the same instant may lose a count.
//! - **Index**: open addressing over 64-byte buckets of 15 `AtomicU32`
//!   slots plus an overflow count. A slot holds entry index + 1, the
//!   direction and the hash's spare bits as a tag, so a lookup reads one
//!   cache line and compares keys only on a tag match. Each connection has
//!   two slots (original and reply tuple) pointing at one entry, like
//!   Linux's two `tuplehash` nodes, so the hash need not be symmetric and
//!   NAT is just a reply tuple that is not `original.reverse()`. A full
//!   bucket sends inserts to the next one and counts that in its overflow
//!   field; a lookup stops at the first bucket whose overflow is zero. The
//!   index is sized for 2 x capacity slots at <= 80% load: ~10.7 bytes per
//!   flow, so ~155 bytes per flow in all ([`Conntrack::bytes_per_flow`]).
//! - **Free list**: a Treiber stack of entry indices with a 32-bit ABA tag
//!   in the head word; the link of a free entry lives in its `mark` field.
//!   One CAS per insert and per removal.
//! - **Insert** never blocks another insert: the entry is written privately
//!   (BUSY), both slots are published with CAS, then both tuples' bucket
//!   chains are scanned for another BUSY or LIVE entry with the same tuple.
//!   Publications and scans are sequentially consistent, so of two racing
//!   inserts of one tuple at least one sees the other, and whoever sees a
//!   rival backs out ([`InsertError::Clash`], rare; the caller looks up
//!   again). No duplicate can survive; an unlucky pair may both back out.
//!   Only then does the entry become LIVE, visible to lookups.
//! - **Full table**: when the free list is empty the insert scans the
//!   buckets around the new original tuple's hash (60 slots, like Linux's
//!   `early_drop` walking one hash chain) and takes the first expired
//!   entry, else the first not-assured, not-ESTABLISHED one (counted as an
//!   eviction). If none, the insert is refused and counted. Assured and
//!   ESTABLISHED connections are never evicted.
//! - **Expiry** never stops a worker: a lookup that finds an expired entry
//!   removes it (lazy expiry), and [`Conntrack::expire`]`(now, budget)` is an
//!   incremental sweep any thread may call: each call claims the next
//!   `budget` entries from a shared cursor and removes the expired ones.
//!   Removal is a CAS that clears LIVE (exactly one remover wins), then the
//!   winner clears both index slots and pushes the entry on the free list.
//!   An optional hook sees every removed connection (for NAT to release its
//!   port), on whichever thread removed it.
//!
//! Measured (`cargo bench --bench conntrack -- --quick`, 2 shared cores,
//! noisy): random lookups cost 12 ns with 1k flows, 154 ns with 100k and
//! 190 ns with 1M: beyond the caches a lookup is two dependent misses
//! (bucket, then entry). So the pipeline hashes a whole batch and
//! prefetches buckets ([`Conntrack::prefetch_bucket`]), then entries
//! ([`Conntrack::prefetch_entries`]: the first slot whose tag matches,
//! handed to [`Conntrack::find_hinted`] as its hint), before looking any
//! packet up.
//! Lookups from 2 threads gave 1.7x one thread's throughput.
//!
//! Time is the caller's: `now` in nanoseconds (monotonic, or pcap time in
//! replay), so nothing here makes a system call. No allocation after
//! [`Conntrack::new`], no lock, no `unsafe`.

pub mod expect;
pub mod helper;
mod key;
pub mod limit;
mod table;
pub mod tcp;
mod timeouts;

#[cfg(test)]
mod tests;

pub use key::{FlowKey, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};
pub(crate) use key::{icmp_inverse, mix};
pub use table::{
    ConnId, Conntrack, CtConfig, CtStats, Flow, Found, InsertError, RetireHook, Retired, Tracked,
};
pub use tcp::{TcpSeg, TcpState};
pub use timeouts::{MAX_TIMEOUT_SECS, TimeoutError, Timeouts};

/// Direction of a packet relative to the connection's first packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Dir {
    Original = 0,
    Reply = 1,
}

pub use expect::{ExpectError, Expectation};
pub use helper::{HelperKind, HelperStats};

/// A packet's connection state, as `-m conntrack --ctstate` matches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CtState {
    /// The first packet(s) of a connection, before any reply.
    New,
    /// A packet of a connection that has seen traffic both ways (or any
    /// reply-direction packet).
    Established,
    /// A packet related to a tracked connection: an ICMP error quoting it
    /// (the caller decides this from a lookup of the quoted tuple), or
    /// the first packet of a connection a helper expected
    /// ([`Conntrack::take_expected`]).
    Related,
    /// A packet that fits no connection or breaks its state machine.
    Invalid,
}
