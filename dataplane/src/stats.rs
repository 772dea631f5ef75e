//! Per-worker counters and the named reasons a packet can be dropped for.
//!
//! Like VPP's error counters, every drop in the dataplane names one
//! [`DropReason`]; the counter of that reason is the only record of it.
//! A worker is the only writer of its [`WorkerStats`], so an increment is a
//! relaxed load and store (no locked instruction); readers (the control
//! thread) sum the workers' values with relaxed loads.

use crossbeam_utils::CachePadded;
use std::sync::atomic::{AtomicU64, Ordering};

/// A counter written by one thread and read by any.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    #[inline]
    pub fn add(&self, n: u64) {
        // Single writer: no read-modify-write needed.
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    #[inline]
    pub fn inc(&self) {
        self.add(1)
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

macro_rules! drop_reasons {
    ($($name:ident => $text:literal,)*) => {
        /// Why the dataplane dropped a packet.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum DropReason { $($name,)* }

        impl DropReason {
            pub const ALL: &'static [DropReason] = &[$(DropReason::$name,)*];
            pub const COUNT: usize = Self::ALL.len();

            /// The snake_case name used in counters, traces and metrics.
            pub fn name(self) -> &'static str {
                match self { $(DropReason::$name => $text,)* }
            }
        }
    };
}

drop_reasons! {
    EthTruncated => "eth_truncated",
    EthMalformed => "eth_malformed",
    UnknownVlan => "unknown_vlan",
    NotForUs => "not_for_us",
    UnsupportedEthertype => "unsupported_ethertype",
    ArpMalformed => "arp_malformed",
    ArpNotForUs => "arp_not_for_us",
    Ipv4Truncated => "ipv4_truncated",
    Ipv4Malformed => "ipv4_malformed",
    Ipv4Checksum => "ipv4_checksum",
    Ipv4BadOptions => "ipv4_bad_options",
    Ipv4SourceRoute => "ipv4_source_route",
    Ipv6Truncated => "ipv6_truncated",
    Ipv6Malformed => "ipv6_malformed",
    L4Truncated => "l4_truncated",
    L4Malformed => "l4_malformed",
    MartianSource => "martian_source",
    RpFilter => "rp_filter",
    MartianDestination => "martian_destination",
    MulticastNotRouted => "multicast_not_routed",
    LinkLocalNotForwarded => "link_local_not_forwarded",
    NdMalformed => "nd_malformed",
    NdIgnored => "nd_ignored",
    NoRoute => "no_route",
    RouteBlackhole => "route_blackhole",
    RouteUnreachable => "route_unreachable",
    RouteProhibit => "route_prohibit",
    TtlExceeded => "ttl_exceeded",
    FragNeeded => "frag_needed",
    PacketTooBig => "packet_too_big",
    LocalFragment => "local_fragment",
    LocalNoListener => "local_no_listener",
    LocalIcmpIgnored => "local_icmp_ignored",
    PuntQueueFull => "punt_queue_full",
    KernelMalformed => "kernel_malformed",
    IcmpChecksum => "icmp_checksum",
    FilterPrerouting => "filter_prerouting",
    FilterMangle => "filter_mangle",
    FilterInput => "filter_input",
    FilterForward => "filter_forward",
    FilterOutput => "filter_output",
    FilterReject => "filter_reject",
    ConntrackFull => "conntrack_full",
    ConntrackClash => "conntrack_clash",
    NatPortsExhausted => "nat_ports_exhausted",
    NatNoAddress => "nat_no_address",
    NatSourceLimit => "nat_source_limit",
    ConntrackSourceLimit => "conntrack_source_limit",
    NatFragment => "nat_fragment",
    HelperPartial => "helper_partial",
    FragmentUnforwarded => "fragment_unforwarded",
    FragmentOverlap => "fragment_overlap",
    NeighborQueueFull => "neighbor_queue_full",
    NeighborPendingFull => "neighbor_pending_full",
    NeighborUnresolved => "neighbor_unresolved",
    NoFreeFrame => "no_free_frame",
    BridgeBadSource => "bridge_bad_source",
    BridgeVlanFiltered => "bridge_vlan_filtered",
    BridgeSamePort => "bridge_same_port",
    BridgeFloodLimited => "bridge_flood_limited",
    TxRingFull => "tx_ring_full",
}

/// The pipeline's stages, as `xgate ctl stats` lists their cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Stage {
    Parse,
    Bridge,
    NeighborInput,
    Conntrack,
    Prerouting,
    Route,
    Input,
    Local,
    ForwardChecks,
    Forward,
    Rewrite,
    LocalOut,
    /// Neighbour queues, transmit flushes, requested traces: once per call.
    Tx,
}

impl Stage {
    pub const ALL: [Stage; 13] = [
        Stage::Parse,
        Stage::Bridge,
        Stage::NeighborInput,
        Stage::Conntrack,
        Stage::Prerouting,
        Stage::Route,
        Stage::Input,
        Stage::Local,
        Stage::ForwardChecks,
        Stage::Forward,
        Stage::Rewrite,
        Stage::LocalOut,
        Stage::Tx,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Parse => "parse",
            Stage::Bridge => "bridge",
            Stage::NeighborInput => "neighbor-input",
            Stage::Conntrack => "conntrack",
            Stage::Prerouting => "prerouting",
            Stage::Route => "route",
            Stage::Input => "input",
            Stage::Local => "local",
            Stage::ForwardChecks => "forward-checks",
            Stage::Forward => "forward",
            Stage::Rewrite => "rewrite",
            Stage::LocalOut => "local-out",
            Stage::Tx => "tx",
        }
    }
}

/// One stage's cost on one worker: calls (one per batch), packets (the
/// batch's live packets when the stage ran: "vectors"), nanoseconds.
#[derive(Debug, Default)]
pub struct StageStats {
    pub calls: Counter,
    pub packets: Counter,
    pub nanos: Counter,
}

/// Counters of one port (device) as one worker sees it.
#[derive(Debug, Default)]
pub struct PortStats {
    pub rx_packets: Counter,
    pub rx_bytes: Counter,
    pub tx_packets: Counter,
    pub tx_bytes: Counter,
}

/// Everything one worker counts. Cache-padded so two workers never share a
/// line.
#[derive(Debug)]
pub struct WorkerStats {
    pub drops: CachePadded<[Counter; DropReason::COUNT]>,
    pub ports: Vec<CachePadded<PortStats>>,
    pub batches: Counter,
    /// Polls of the worker loop that found no packet on any queue (the
    /// worker loop counts them; the pipeline never sees them).
    pub idle_polls: Counter,
    pub forwarded: Counter,
    pub local_delivered: Counter,
    pub arp_replies: Counter,
    pub arp_requests: Counter,
    pub nd_adverts: Counter,
    pub nd_solicits: Counter,
    pub icmp_errors: Counter,
    pub icmp_rate_limited: Counter,
    pub echo_replies: Counter,
    pub neighbors_learned: Counter,
    /// Packets for the router handed to the host kernel's TAP.
    pub punted: Counter,
    /// Frames the host kernel sent through a TAP, taken by this worker.
    pub from_kernel: Counter,
    /// Frames a bridge switched to one known port.
    pub bridged: Counter,
    /// Frames a bridge flooded (broadcast, multicast, unknown unicast),
    /// and the copies it sent.
    pub flooded: Counter,
    pub flood_copies: Counter,
    /// MAC addresses learned (new, or moved to another port), and those
    /// the full MAC table could not take (frames to them flood).
    pub fdb_learned: Counter,
    pub fdb_full: Counter,
    /// Per-stage cost, counted while profiling is on (`Shared::profile`).
    pub stages: [StageStats; Stage::ALL.len()],
}

impl WorkerStats {
    pub fn new(ports: usize) -> Self {
        WorkerStats {
            drops: CachePadded::new(std::array::from_fn(|_| Counter::default())),
            ports: (0..ports)
                .map(|_| CachePadded::new(PortStats::default()))
                .collect(),
            batches: Counter::default(),
            idle_polls: Counter::default(),
            forwarded: Counter::default(),
            local_delivered: Counter::default(),
            arp_replies: Counter::default(),
            arp_requests: Counter::default(),
            nd_adverts: Counter::default(),
            nd_solicits: Counter::default(),
            icmp_errors: Counter::default(),
            icmp_rate_limited: Counter::default(),
            echo_replies: Counter::default(),
            neighbors_learned: Counter::default(),
            punted: Counter::default(),
            from_kernel: Counter::default(),
            bridged: Counter::default(),
            flooded: Counter::default(),
            flood_copies: Counter::default(),
            fdb_learned: Counter::default(),
            fdb_full: Counter::default(),
            stages: Default::default(),
        }
    }

    /// Counts one timed run of `stage` over `packets` packets.
    pub fn stage(&self, stage: Stage, packets: usize, took: std::time::Duration) {
        let s = &self.stages[stage as usize];
        s.calls.inc();
        s.packets.add(packets as u64);
        s.nanos.add(took.as_nanos() as u64);
    }

    #[inline]
    pub fn count_drop(&self, r: DropReason) {
        self.drops[r as usize].inc();
    }

    pub fn drops(&self, r: DropReason) -> u64 {
        self.drops[r as usize].get()
    }

    /// (reason, count) for every reason with a non-zero count.
    pub fn nonzero_drops(&self) -> Vec<(DropReason, u64)> {
        DropReason::ALL
            .iter()
            .map(|r| (*r, self.drops(*r)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    pub fn total_drops(&self) -> u64 {
        self.drops.iter().map(Counter::get).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case() {
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        assert!(names.iter().all(|n| {
            n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        }));
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
    }

    #[test]
    fn counting() {
        let s = WorkerStats::new(2);
        s.count_drop(DropReason::NoRoute);
        s.count_drop(DropReason::NoRoute);
        s.count_drop(DropReason::TtlExceeded);
        assert_eq!(s.drops(DropReason::NoRoute), 2);
        assert_eq!(s.total_drops(), 3);
        assert_eq!(s.nonzero_drops().len(), 2);
    }
}
