//! xgate's dataplane: everything that touches a packet.
//!
//! `addr` (the address key every table uses), `packet` (views, checksums), `iface` (logical interfaces), `route` (LPM,
//! route tables, policy, neighbours), `conntrack` (the shared connection
//! table and protocol state machines), `filter` (the compiled iptables
//! ruleset and its evaluator), `nat` (address translation: packet rewrites
//! and the port allocator), `pipeline` (the stages over a batch), `io`
//! (ports and frame ownership), `stats` (counters and drop reasons).

pub mod addr;
pub mod bridge;
pub mod conntrack;
pub mod filter;
pub mod iface;
pub mod io;
pub mod mem;
pub mod nat;
pub mod offload;
pub mod packet;
pub mod pipeline;
pub mod route;
pub mod stats;
pub mod worker;
