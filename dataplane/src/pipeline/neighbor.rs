//! Neighbour resolution for the `rewrite` stage (`rewrite.rs`), and the
//! worker's neighbour cache it reads first.
//!
//! A next hop with no usable entry gets an ARP request (broadcast) or a
//! neighbour solicitation (to its solicited-node multicast group), and the
//! packet waits in this worker's pending table: at most
//! `PENDING_PER_NEIGHBOR` packets for each of `PENDING_NEIGHBORS`
//! neighbours, like Linux's `unres_qlen`. Requests repeat once a second; after
//! `RESOLVE_TRIES` unanswered requests the waiting packets are dropped with
//! a host unreachable error. Another worker may learn the answer, so the
//! pending table is polled every batch and on idle ticks.
//!
//! Drops: neighbor_queue_full, neighbor_pending_full, neighbor_unresolved,
//! no_free_frame.

use super::icmp::IcmpError;
use super::{Ctx, L3, L3_OFF, Meta, Next, Pipeline, TraceWhat, flags};
use crate::addr::{key_ip, key_v4};
use crate::iface::IfIndex;
use crate::io::Port;
use crate::packet::icmp::v6 as icmp6;
use crate::packet::{arp, checksum, ether, ipv6, proto};
use crate::route::neighbor::{CacheToken, RETRANS_NS, Resolution};
use crate::stats::DropReason;

pub const PENDING_NEIGHBORS: usize = 64;
pub const PENDING_PER_NEIGHBOR: usize = 4;
pub const RESOLVE_TRIES: u8 = 3;

#[derive(Clone, Copy, Debug, Default)]
struct PendingEntry {
    used: bool,
    oif: IfIndex,
    ip: u128,
    n: u8,
    tries: u8,
    last_request: u64,
    packets: [Meta; PENDING_PER_NEIGHBOR],
}

/// Slots of a worker's neighbour cache (direct-mapped).
const CACHE_SLOTS: usize = 256;

/// A worker's private cache in front of the shared neighbour table: a hit
/// costs a key compare and one load of the slot's sequence number instead
/// of a hash-table probe.
#[derive(Debug)]
pub(super) struct NeighborCache {
    pub(super) slots: Box<[(IfIndex, u128, CacheToken)]>,
}

impl NeighborCache {
    pub fn new() -> Self {
        // Key (0, 0) with a token valid until 0 never hits.
        NeighborCache {
            slots: vec![(0, 0, CacheToken::default()); CACHE_SLOTS].into_boxed_slice(),
        }
    }

    #[inline]
    pub(super) fn index(oif: IfIndex, ip: u128) -> usize {
        let x = (ip as u64 ^ (ip >> 64) as u64 ^ oif as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (x >> 56) as usize % CACHE_SLOTS
    }
}

/// Packets of one worker waiting for a neighbour.
#[derive(Debug)]
pub(super) struct Pending {
    entries: Box<[PendingEntry]>,
    used: usize,
}

impl Pending {
    pub fn new() -> Self {
        Pending {
            entries: vec![PendingEntry::default(); PENDING_NEIGHBORS].into_boxed_slice(),
            used: 0,
        }
    }

    pub fn packets(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| e.used)
            .map(|e| e.n as usize)
            .sum()
    }
}

impl Pipeline {
    /// Holds `m` until its next hop resolves.
    #[cold]
    pub(super) fn park<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, m: &mut Meta) {
        let (oif, ip) = (m.oif, m.nexthop);
        let found = self
            .pending
            .entries
            .iter()
            .position(|e| e.used && e.oif == oif && e.ip == ip);
        let idx = match found {
            Some(i) => i,
            None => {
                let Some(i) = self.pending.entries.iter().position(|e| !e.used) else {
                    return self.drop_pkt(ctx, m, DropReason::NeighborPendingFull);
                };
                self.pending.entries[i] = PendingEntry {
                    used: true,
                    oif,
                    ip,
                    ..PendingEntry::default()
                };
                self.pending.used += 1;
                i
            }
        };
        let e = &mut self.pending.entries[idx];
        if e.n as usize == PENDING_PER_NEIGHBOR {
            return self.drop_pkt(ctx, m, DropReason::NeighborQueueFull);
        }
        m.next = Next::Done;
        e.packets[e.n as usize] = *m;
        e.n += 1;
        let first = e.tries == 0;
        if first {
            e.tries = 1;
            e.last_request = ctx.now;
        }
        if m.has(flags::TRACE) {
            self.trace.record(
                m.seq,
                "rewrite",
                TraceWhat::NeighborQueued { ip: key_ip(ip) },
            );
        }
        if first {
            self.send_request(ctx, oif, ip, None, m);
        }
    }

    /// Releases packets whose neighbour resolved, repeats requests, and
    /// gives up on neighbours that never answered.
    pub(super) fn poll_neighbors<P: Port>(&mut self, ctx: &mut Ctx<'_, P>) {
        if self.pending.used == 0 {
            return;
        }
        for i in 0..self.pending.entries.len() {
            let e = self.pending.entries[i];
            if !e.used {
                continue;
            }
            let res = self.shared.neighbors.resolve(e.oif, e.ip, ctx.now);
            let mac = match res {
                Resolution::Reachable(mac) | Resolution::Probe(mac) => Some(mac),
                Resolution::Miss => None,
            };
            if let Some(mac) = mac {
                self.pending.entries[i].used = false;
                self.pending.used -= 1;
                for p in &e.packets[..e.n as usize] {
                    let mut p = *p;
                    self.send_to(ctx, &mut p, &mac);
                }
                continue;
            }
            if ctx.now.saturating_sub(e.last_request) < RETRANS_NS {
                continue;
            }
            if e.tries >= RESOLVE_TRIES {
                self.pending.entries[i].used = false;
                self.pending.used -= 1;
                for p in &e.packets[..e.n as usize] {
                    let mut p = *p;
                    if !p.has(flags::LOCAL_ORIGIN) {
                        self.icmp_error(ctx, &p, IcmpError::HostUnreachable);
                    }
                    self.drop_pkt(ctx, &mut p, DropReason::NeighborUnresolved);
                }
                continue;
            }
            self.pending.entries[i].tries += 1;
            self.pending.entries[i].last_request = ctx.now;
            let cause = e.packets[0];
            self.send_request(ctx, e.oif, e.ip, None, &cause);
        }
    }

    /// Sends an ARP request or neighbour solicitation for `ip` on `oif`:
    /// broadcast / solicited-node multicast, or unicast to `known` (a probe
    /// of a stale entry).
    #[cold]
    pub(super) fn send_request<P: Port>(
        &mut self,
        ctx: &mut Ctx<'_, P>,
        oif: IfIndex,
        ip: u128,
        known: Option<[u8; 6]>,
        cause: &Meta,
    ) {
        let iface = self.tables.interfaces.get(oif);
        let mac = iface.mac;
        let built = match key_v4(ip) {
            Some(a) => iface.source_v4(a).map(|src| (src.octets().to_vec(), true)),
            None => iface
                .link_local_v6()
                .or_else(|| iface.source_v6(ip))
                .map(|s| (s.octets().to_vec(), false)),
        };
        let Some((src, is_v4)) = built else {
            return; // No address on this interface to ask from.
        };
        let Some(mut d) = ctx.pool.alloc() else {
            self.stats.count_drop(DropReason::NoFreeFrame);
            return;
        };
        let f = &mut ctx.umem[d.addr as usize..d.addr as usize + 86];
        let (len, dst_mac) = if is_v4 {
            let target = key_v4(ip).unwrap().to_be_bytes();
            let spa: [u8; 4] = src[..4].try_into().unwrap();
            f[12..14].copy_from_slice(&ether::ETHERTYPE_ARP.to_be_bytes());
            arp::Packet::new_unchecked(&mut f[L3_OFF..]).emit(
                arp::OP_REQUEST,
                &mac,
                &spa,
                &[0; 6],
                &target,
            );
            (L3_OFF + arp::LEN, known.unwrap_or(ether::BROADCAST))
        } else {
            let target = ip.to_be_bytes();
            let s: [u8; 16] = src[..16].try_into().unwrap();
            // Solicited-node multicast ff02::1:ffXX:XXXX (RFC 4291 2.7.1).
            let mut dst = [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 0];
            dst[13..].copy_from_slice(&target[13..]);
            if known.is_some() {
                dst = target;
            }
            f[12..14].copy_from_slice(&ether::ETHERTYPE_IPV6.to_be_bytes());
            const PLEN: usize = 32;
            ipv6::Packet::new_unchecked(&mut f[L3_OFF..]).emit(
                &s,
                &dst,
                proto::ICMPV6,
                255,
                PLEN as u16,
            );
            let msg = &mut f[L3_OFF + ipv6::HEADER_LEN..L3_OFF + ipv6::HEADER_LEN + PLEN];
            msg[0] = icmp6::NEIGHBOR_SOLICIT;
            msg[1..8].fill(0);
            msg[8..24].copy_from_slice(&target);
            msg[24] = icmp6::OPT_SOURCE_LLADDR;
            msg[25] = 1;
            msg[26..32].copy_from_slice(&mac);
            let c = checksum::finish(checksum::sum(
                msg,
                checksum::pseudo_v6(&s, &dst, proto::ICMPV6, PLEN as u32),
            ));
            msg[2..4].copy_from_slice(&c.to_be_bytes());
            (
                L3_OFF + ipv6::HEADER_LEN + PLEN,
                known.unwrap_or(ether::ipv6_multicast_mac(&dst)),
            )
        };
        d.len = len as u32;
        if is_v4 {
            self.stats.arp_requests.inc();
        } else {
            self.stats.nd_solicits.inc();
        }
        let mut m = Meta {
            desc: d,
            seq: cause.seq,
            oif,
            l3: if is_v4 { L3::Arp } else { L3::V6 },
            flags: flags::LOCAL_ORIGIN | (cause.flags & flags::TRACE),
            ..Meta::default()
        };
        if m.has(flags::TRACE) {
            self.trace.record(
                m.seq,
                "rewrite",
                TraceWhat::NeighborRequest { ip: key_ip(ip) },
            );
        }
        self.l2_out(ctx, &mut m, &dst_mac);
    }
}
