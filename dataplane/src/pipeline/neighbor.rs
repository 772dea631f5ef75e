//! Stage `rewrite`, and neighbour resolution for it.
//!
//! For each routed packet: decrement TTL / hop limit (forwarded packets
//! only; RFC 1624 checksum patch), fragment an oversized IPv4 packet
//! without DF, look up the next hop's MAC in the shared neighbour table,
//! write the MACs, push the egress interface's VLAN tags, and queue for
//! transmission on its port.
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
//! no_free_frame, frag_needed (IPv4 header too long for the MTU).

use super::icmp::IcmpError;
use super::{Ctx, L3, L3_OFF, Meta, Next, Pipeline, TraceWhat, flags};
use crate::iface::{IfHot, IfIndex};
use crate::io::Port;
use crate::packet::icmp::v6 as icmp6;
use crate::packet::{arp, checksum, ether, ipv4, ipv6, proto};
use crate::route::neighbor::{CacheToken, RETRANS_NS, Resolution, key_v4};
use crate::stats::DropReason;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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
    slots: Box<[(IfIndex, u128, CacheToken)]>,
}

impl NeighborCache {
    pub fn new() -> Self {
        // Key (0, 0) with a token valid until 0 never hits.
        NeighborCache {
            slots: vec![(0, 0, CacheToken::default()); CACHE_SLOTS].into_boxed_slice(),
        }
    }

    #[inline]
    fn index(oif: IfIndex, ip: u128) -> usize {
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

fn key_ip(k: u128) -> IpAddr {
    match key_v4(k) {
        Some(a) => IpAddr::V4(Ipv4Addr::from(a)),
        None => IpAddr::V6(Ipv6Addr::from(k)),
    }
}

impl Pipeline {
    pub(super) fn rewrite<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, batch: &mut [Meta]) {
        let mut forwarded = 0;
        for m in batch.iter_mut() {
            if m.next != Next::Forward {
                continue;
            }
            if !m.has(flags::LOCAL_ORIGIN) {
                let l3 = &mut m.desc.bytes_mut(ctx.umem)[L3_OFF..];
                match m.l3 {
                    L3::V4 => ipv4::Packet::new_unchecked(l3).decrement_ttl(),
                    _ => ipv6::Packet::new_unchecked(l3).decrement_hop_limit(),
                }
                forwarded += 1;
            }
            let hot = *self.tables.interfaces.hot(m.oif);
            if m.l3 == L3::V4 && m.l3_len > hot.mtu {
                self.fragment_v4(ctx, m, hot.mtu);
                continue;
            }
            // The common case in a straight line: the next hop is in this
            // worker's cache and the egress interface is untagged.
            let (oif, ip, tok) = &self.ncache.slots[NeighborCache::index(m.oif, m.nexthop)];
            let hit = *oif == m.oif
                && *ip == m.nexthop
                && hot.vlans.len == 0
                && !m.has(flags::TRACE)
                && self.shared.neighbors.token_valid(tok, ctx.now);
            if hit {
                let dst = tok.mac;
                if let Some(macs) = m.desc.bytes_mut(ctx.umem).first_chunk_mut::<12>() {
                    macs[..6].copy_from_slice(&dst);
                    macs[6..].copy_from_slice(&hot.mac);
                }
                self.enqueue_tx(ctx, hot.port as usize, m);
                m.next = Next::Done;
                continue;
            }
            self.resolve_and_send(ctx, m);
        }
        self.stats.forwarded.add(forwarded);
    }

    /// Finds the next hop's MAC and sends, or parks the packet.
    #[inline]
    fn resolve_and_send<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, m: &mut Meta) {
        let i = NeighborCache::index(m.oif, m.nexthop);
        let (oif, ip, tok) = &self.ncache.slots[i];
        if *oif == m.oif && *ip == m.nexthop && self.shared.neighbors.token_valid(tok, ctx.now) {
            let mac = tok.mac;
            return self.send_to(ctx, m, &mac);
        }
        match self.shared.neighbors.resolve(m.oif, m.nexthop, ctx.now) {
            Resolution::Reachable(mac) => {
                if let Some(t) = self.shared.neighbors.token(m.oif, m.nexthop, ctx.now) {
                    self.ncache.slots[i] = (m.oif, m.nexthop, t);
                }
                self.send_to(ctx, m, &mac)
            }
            Resolution::Probe(mac) => {
                self.send_request(ctx, m.oif, m.nexthop, Some(mac), m);
                self.send_to(ctx, m, &mac);
            }
            Resolution::Miss => self.park(ctx, m),
        }
    }

    #[inline]
    fn send_to<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, m: &mut Meta, mac: &[u8; 6]) {
        if m.has(flags::TRACE) {
            self.trace
                .record(m.seq, "rewrite", TraceWhat::Neighbor { mac: *mac });
        }
        self.l2_out(ctx, m, mac);
    }

    /// Writes the Ethernet header for `m.oif` with destination `dst`, pushes
    /// the interface's VLAN tags and queues the frame for transmission.
    #[inline]
    pub(super) fn l2_out<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, m: &mut Meta, dst: &[u8; 6]) {
        let &IfHot {
            mac, vlans, port, ..
        } = self.tables.interfaces.hot(m.oif);
        let push = vlans.len as usize * ether::TAG_LEN;
        if push > m.desc.headroom() {
            return self.drop_pkt(ctx, m, DropReason::NoFreeFrame);
        }
        m.desc.addr -= push as u64;
        m.desc.len += push as u32;
        let frame = m.desc.bytes_mut(ctx.umem);
        // MACs at the position they have before the tags are written.
        if let Some(macs) = frame[push..].first_chunk_mut::<12>() {
            macs[..6].copy_from_slice(dst);
            macs[6..].copy_from_slice(&mac);
        }
        if push > 0 {
            ether::write_tags(frame, &vlans);
        }
        self.enqueue_tx(ctx, port as usize, m);
        m.next = Next::Done;
    }

    /// Holds `m` until its next hop resolves.
    #[cold]
    fn park<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, m: &mut Meta) {
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
    fn send_request<P: Port>(
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

    /// Splits an IPv4 datagram larger than `mtu` into fragments (RFC 791),
    /// each in a new frame; options without the copy flag stay in the first.
    #[cold]
    fn fragment_v4<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, m: &mut Meta, mtu: u16) {
        let base = m.desc.addr as usize + L3_OFF;
        let l3 = &ctx.umem[base..base + m.l3_len as usize];
        let ip = ipv4::Packet::new_unchecked(l3);
        let hl = ip.header_len();
        let (orig_off, orig_mf) = (ip.frag_offset(), ip.more_fragments());
        let flags_hi = ip.flags_frag() & !(ipv4::FLAG_MF | ipv4::FRAG_OFFSET_MASK);
        // Options copied into later fragments (RFC 791: copied flag 0x80).
        let mut later_opts = [0u8; 40];
        let mut lo = 0;
        let mut i = ipv4::MIN_HEADER_LEN;
        while i < hl {
            let t = l3[i];
            if t == 0 {
                break;
            }
            if t == 1 {
                i += 1;
                continue;
            }
            let len = if i + 1 < hl { l3[i + 1] as usize } else { 0 };
            if len < 2 || i + len > hl {
                break;
            }
            if t & 0x80 != 0 {
                later_opts[lo..lo + len].copy_from_slice(&l3[i..i + len]);
                lo += len;
            }
            i += len;
        }
        let hl2 = ipv4::MIN_HEADER_LEN + lo.div_ceil(4) * 4;
        let payload = m.l3_len as usize - hl;
        let (mtu, mut off, mut count) = (mtu as usize, 0usize, 0u8);
        if mtu < hl + 8 || mtu < hl2 + 8 {
            return self.drop_pkt(ctx, m, DropReason::FragNeeded);
        }
        let trace = m.has(flags::TRACE);
        while off < payload {
            let h = if off == 0 { hl } else { hl2 };
            let max = (mtu - h) / 8 * 8;
            let chunk = max.min(payload - off);
            let last = off + chunk == payload;
            let Some(mut d) = ctx.pool.alloc() else {
                self.stats.count_drop(DropReason::NoFreeFrame);
                break;
            };
            let dst = d.addr as usize;
            // Ethernet header, then the IP header (full or reduced), then data.
            ctx.umem
                .copy_within(m.desc.addr as usize..base + ipv4::MIN_HEADER_LEN, dst);
            if off == 0 {
                ctx.umem.copy_within(
                    base + ipv4::MIN_HEADER_LEN..base + hl,
                    dst + L3_OFF + ipv4::MIN_HEADER_LEN,
                );
            } else {
                let o = dst + L3_OFF + ipv4::MIN_HEADER_LEN;
                ctx.umem[o..o + lo].copy_from_slice(&later_opts[..lo]);
                ctx.umem[o + lo..dst + L3_OFF + hl2].fill(0);
            }
            ctx.umem
                .copy_within(base + hl + off..base + hl + off + chunk, dst + L3_OFF + h);
            let f = &mut ctx.umem[dst + L3_OFF..dst + L3_OFF + h + chunk];
            f[0] = 0x40 | (h / 4) as u8;
            let mut ip = ipv4::Packet::new_unchecked(f);
            ip.set_total_len((h + chunk) as u16);
            let mf = !last || orig_mf;
            let fo = ((orig_off + off) / 8) as u16;
            ip.set_flags_frag(flags_hi | if mf { ipv4::FLAG_MF } else { 0 } | fo);
            ip.fill_checksum();
            d.len = (L3_OFF + h + chunk) as u32;
            let mut fm = *m;
            fm.desc = d;
            fm.l3_len = (h + chunk) as u16;
            fm.flags |= flags::FRAGMENT;
            if off != 0 {
                fm.flags |= flags::LATER_FRAGMENT;
            }
            self.resolve_and_send(ctx, &mut fm);
            off += chunk;
            count += 1;
        }
        if trace {
            self.trace
                .record(m.seq, "rewrite", TraceWhat::Fragmented { count });
        }
        ctx.pool.free(m.desc);
        m.next = Next::Done;
    }
}
