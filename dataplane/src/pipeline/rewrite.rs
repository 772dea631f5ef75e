//! Stage `rewrite`: for each routed packet, decrement TTL / hop limit
//! (forwarded packets only; RFC 1624 checksum patch), fragment an
//! oversized IPv4 packet without DF, look up the next hop's MAC (the
//! worker's cache, then the shared neighbour table), write the MACs, push
//! the egress interface's VLAN tags, and queue the frame for transmission
//! on its port (`tx.rs`). A next hop without a usable entry parks the
//! packet in `neighbor.rs` until it resolves.
//!
//! Reads: `Meta` (packets with `Next::Forward`), the interfaces, the
//! neighbour table. Changes: the frame (TTL, checksum, MACs, tags; new
//! frames for fragments), the worker's neighbour cache, the transmit
//! queues.
//!
//! Drops: no_free_frame, frag_needed (IPv4 header too long for the MTU),
//! and those of `neighbor.rs` for parked packets.

use super::neighbor::NeighborCache;
use super::{Ctx, L3, L3_OFF, Meta, Next, Pipeline, TraceWhat, flags};
use crate::iface::{Bridging, IfHot};
use crate::io::Port;
use crate::packet::{ether, ipv4, ipv6};
use crate::route::neighbor::Resolution;
use crate::stats::DropReason;

impl Pipeline {
    pub(super) fn rewrite<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, batch: &mut [Meta]) {
        let mut forwarded = 0;
        for (i, m) in batch.iter_mut().enumerate() {
            if m.next != Next::Forward {
                continue;
            }
            if m.has(flags::BRIDGED) {
                // Switched: as it came, out of its port (or flooded).
                let c = self.ct[i];
                self.bridge_out(ctx, m, Some(c));
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
                && hot.bridge == Bridging::None
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
    pub(super) fn resolve_and_send<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, m: &mut Meta) {
        if m.has(flags::L2_BROADCAST) {
            return self.send_to(ctx, m, &[0xff; 6]);
        }
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
    pub(super) fn send_to<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, m: &mut Meta, mac: &[u8; 6]) {
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
            mac,
            vlans,
            port,
            bridge,
            ..
        } = self.tables.interfaces.hot(m.oif);
        if let Bridging::Bvi(b) = bridge {
            if let Some(macs) = m.desc.bytes_mut(ctx.umem).first_chunk_mut::<12>() {
                macs[..6].copy_from_slice(dst);
                macs[6..].copy_from_slice(&mac);
            }
            return self.bvi_out(ctx, m, b, dst);
        }
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

    /// Splits an IPv4 datagram larger than `mtu` into fragments (RFC 791),
    /// each in a new frame; options without the copy flag stay in the first.
    #[cold]
    pub(super) fn fragment_v4<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, m: &mut Meta, mtu: u16) {
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
