//! Network address translation (not yet wired into the pipeline).
//!
//! `rewrite`: a translation target's source or destination part written
//! into a packet or an ICMP error and the packet it quotes, checksums
//! updated incrementally. `ports`: the shared, lock-free allocator of
//! external ports with endpoint-independent mapping.

pub mod ports;
pub mod rewrite;
