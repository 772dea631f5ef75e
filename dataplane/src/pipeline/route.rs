//! Stage `route`: a first pass prefetches the LPM line of every IPv4 destination
//! of the batch (`Fib::prefetch`), so that their cache misses overlap; then
//! per packet martian checks, then the FIB (policy rules -> table -> LPM)
//! for the destination. Local routes send the packet to the `local` stage;
//! unicast routes pick a next hop by flow hash (ECMP) and set the egress
//! interface; blackhole drops silently; unreachable and prohibit drop with
//! the ICMP error Linux sends for them (host unreachable / packet filtered,
//! IPv6 no route / administratively prohibited); no route at all sends net
//! unreachable (IPv6: no route). Packets the router generated are routed
//! the same way, without iif, and never cause errors themselves. A
//! received packet whose source is one of the router's addresses is a
//! martian; with `rp_filter` on its interface, one whose source is not
//! reachable back (by that interface, when strict) is dropped.
//!
//! Reads: the frame's addresses, `Meta::iif` / `mark` / `hash`, the FIB.
//! Changes: `Meta::next` (local / forward), `oif`, `nexthop`.
//!
//! Drops: martian_source, rp_filter, martian_destination, multicast_not_routed,
//! link_local_not_forwarded, no_route, route_blackhole, route_unreachable,
//! route_prohibit.

use super::icmp::IcmpError;
use super::{Ctx, L3, L3_OFF, Meta, Next, Pipeline, TraceWhat, flags};
use crate::addr::{ip_key, v4_key};
use crate::filter::rpf;
use crate::iface::RpFilter;
use crate::iface::is_link_local_v6;
use crate::io::Port;
use crate::packet::{ipv4, ipv6};
use crate::route::RouteType;
use crate::stats::DropReason;

/// Per first octet: which IPv4 addresses may not be a source or a
/// destination (0/8, 127/8, multicast 224/4), one table read instead of a
/// chain of compares.
const BAD_SRC: u8 = 1;
const MULTICAST: u8 = 2;
const BAD_DST: u8 = 4;
static FIRST_OCTET: [u8; 256] = {
    let mut t = [0u8; 256];
    t[0] = BAD_SRC | BAD_DST;
    t[127] = BAD_SRC | BAD_DST;
    let mut i = 224;
    while i < 240 {
        t[i] = BAD_SRC | MULTICAST;
        i += 1;
    }
    t
};

#[inline]
fn martian_v4(src: u32, dst: u32) -> Option<DropReason> {
    let (s, d) = (
        FIRST_OCTET[(src >> 24) as usize],
        FIRST_OCTET[(dst >> 24) as usize],
    );
    if (s | d) == 0 && src != u32::MAX && dst != u32::MAX {
        return None;
    }
    if s & BAD_SRC != 0 || src == u32::MAX {
        return Some(DropReason::MartianSource);
    }
    if d & MULTICAST != 0 || dst == u32::MAX {
        return Some(DropReason::MulticastNotRouted);
    }
    if d & BAD_DST != 0 {
        return Some(DropReason::MartianDestination);
    }
    None
}

fn martian_v6(src: u128, dst: u128) -> Option<DropReason> {
    if src >> 120 == 0xff || src == 1 {
        return Some(DropReason::MartianSource);
    }
    if dst >> 120 == 0xff {
        return Some(DropReason::MulticastNotRouted);
    }
    if dst == 0 || dst == 1 {
        return Some(DropReason::MartianDestination);
    }
    None
}

/// The limited broadcast, and 0.0.0.0 to 0.0.0.0 (which Linux takes as one).
#[inline]
fn limited_broadcast(src: u32, dst: u32) -> bool {
    dst == u32::MAX || (src == 0 && dst == 0)
}

impl Pipeline {
    /// rp_filter: the route back to `src` (a lookup with source and
    /// destination swapped, as the kernel's) is a unicast route, leaving
    /// by the interface `m` came in on when `Strict` (any of a multipath
    /// route's next hops), or the source is on a connected subnet.
    #[cold]
    #[inline(never)]
    fn reverse_path_ok(&self, m: &Meta, src: u128, dst: u128, mode: RpFilter) -> bool {
        let (src, dst) = if m.l3 == L3::V4 {
            (v4_key(src as u32), v4_key(dst as u32))
        } else {
            (src, dst)
        };
        let found = self.reverse_path(m, src, dst);
        found
            & match mode {
                RpFilter::Loose => rpf::LOOSE,
                _ => rpf::STRICT,
            }
            != 0
    }

    /// The [`rpf`] bits of a received packet from `src` to `dst` (address
    /// keys): the route back to the source, looked up with the addresses
    /// swapped as the kernel does.
    pub(super) fn reverse_path(&self, m: &Meta, src: u128, dst: u128) -> u8 {
        let fib = &self.tables.fib;
        let back = match m.l3 {
            L3::V4 => fib.lookup_v4(dst as u32, src as u32, None, m.mark),
            _ => fib.lookup_v6(dst, src, None, m.mark),
        };
        match back {
            Some((e, _)) if e.rtype == RouteType::Unicast => {
                if e.nexthops().iter().any(|n| n.dev == m.iif) {
                    rpf::LOOSE | rpf::STRICT
                } else {
                    rpf::LOOSE
                }
            }
            _ => 0,
        }
    }

    /// A received broadcast or tap group: local delivery (the host's
    /// services behind a tap: a DHCP server, NetBIOS, mDNS, a routing
    /// daemon), as Linux does with `bc_forwarding=0`.
    #[inline]
    fn group_in(&mut self, m: &mut Meta) {
        m.flags |= flags::TO_GROUP;
        m.next = Next::Local;
    }

    /// A DHCP server's answer (UDP 67 -> 68) to the DHCP client on this
    /// interface's tap, sent to the address it offers, which the
    /// interface does not have yet: Linux's DHCP clients read it from a
    /// packet socket before IP routes it, so it goes to the tap (after
    /// filter INPUT) rather than to no route or back out of the interface.
    #[inline(never)]
    fn dhcp_client_reply<P: Port>(&self, ctx: &Ctx<'_, P>, m: &Meta) -> bool {
        if m.l3 != L3::V4 || m.proto != 17 || self.tables.interfaces.get(m.iif).tap.is_none() {
            return false;
        }
        let l4 = &m.desc.bytes(ctx.umem)[L3_OFF + usize::from(m.l4_off)..];
        l4.len() >= 4 && l4[..4] == [0, 67, 0, 68]
    }

    pub(super) fn route<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, batch: &mut [Meta]) {
        // Start the first LPM read of every packet before looking any up:
        // with a large table it is a cache miss, and the misses of the
        // whole batch then overlap instead of each stalling its packet.
        // (IPv4 only: IPv6's first level stays in cache, see `Prefetch`.)
        let prefetch = self.tables.fib.prefetch();
        for m in batch.iter() {
            if m.next == Next::Continue && m.l3 == L3::V4 {
                let l3 = &m.desc.bytes(ctx.umem)[L3_OFF..];
                prefetch.v4(ipv4::Packet::new_unchecked(l3).dst_u32());
            }
        }
        for (i, m) in batch.iter_mut().enumerate() {
            if m.next != Next::Continue || m.l3 == L3::Arp {
                continue;
            }
            if m.has(flags::BRIDGED) {
                if !self.ct[i].changes_dst() {
                    // Switched: in and out by the bridge's interface, no
                    // route (the bridge stage chose the port).
                    m.oif = m.iif;
                    m.next = Next::Forward;
                    continue;
                }
                // DNAT in PREROUTING moved a bridged packet's destination:
                // it is routed now, as br_netfilter does.
                m.flags &= !flags::BRIDGED;
                m.phys_out = None;
            }
            let local_origin = m.has(flags::LOCAL_ORIGIN);
            let iif = if local_origin { None } else { Some(m.iif) };
            let l3 = &m.desc.bytes(ctx.umem)[L3_OFF..];
            let (src, dst) = match m.l3 {
                L3::V4 => {
                    let ip = ipv4::Packet::new_unchecked(l3);
                    (ip.src_u32() as u128, ip.dst_u32() as u128)
                }
                _ => {
                    let ip = ipv6::Packet::new_unchecked(l3);
                    (ip.src_u128(), ip.dst_u128())
                }
            };
            if !local_origin && m.l3 == L3::V4 && limited_broadcast(src as u32, dst as u32) {
                // Linux's `ip_route_input_slow` takes these before the
                // martian checks (brd_input): a DHCP client's 0.0.0.0 source
                // is allowed; a multicast or broadcast source is not.
                let s = src as u32;
                if FIRST_OCTET[(s >> 24) as usize] & MULTICAST != 0 || s == u32::MAX {
                    self.drop_pkt(ctx, m, DropReason::MartianSource);
                } else {
                    self.group_in(m);
                }
                continue;
            }
            if !local_origin {
                let martian = match m.l3 {
                    L3::V4 => martian_v4(src as u32, dst as u32),
                    _ => martian_v6(src, dst),
                };
                if let Some(r) = martian {
                    let group = if m.l3 == L3::V4 {
                        v4_key(dst as u32)
                    } else {
                        dst
                    };
                    if r == DropReason::MulticastNotRouted
                        && self.tables.interfaces.get(m.iif).tap_group(group)
                    {
                        // A group the host's daemons listen to (mDNS,
                        // OSPF, VRRP): to the tap, never routed.
                        self.group_in(m);
                    } else {
                        self.drop_pkt(ctx, m, r);
                    }
                    continue;
                }
                // Linux's fib_validate_source: one of the router's own
                // addresses as the source of a received packet is a
                // martian (accept_local=0); with rp_filter the way back
                // to the source must exist, by the receiving interface
                // when strict.
                let key = if m.l3 == L3::V4 {
                    v4_key(src as u32)
                } else {
                    src
                };
                if self.tables.interfaces.is_local(key) {
                    self.drop_pkt(ctx, m, DropReason::MartianSource);
                    continue;
                }
                let rp = self.tables.interfaces.hot(m.iif).rp_filter;
                if rp != RpFilter::Off && !self.reverse_path_ok(m, src, dst, rp) {
                    self.drop_pkt(ctx, m, DropReason::RpFilter);
                    continue;
                }
            }
            // The decision as plain values, so the table borrow ends here.
            let decision = {
                let fib = &self.tables.fib;
                let found = match m.l3 {
                    L3::V4 => fib.lookup_v4(src as u32, dst as u32, iif, m.mark),
                    _ => fib.lookup_v6(src, dst, iif, m.mark),
                };
                if m.has(flags::TRACE) {
                    // The matched prefix is on the slow path, off the
                    // forwarding one.
                    let matched = match m.l3 {
                        L3::V4 => fib.route_v4(src as u32, dst as u32, iif, m.mark),
                        _ => fib.route_v6(src, dst, iif, m.mark),
                    };
                    if let Some(r) = matched {
                        let nh = r.nexthop(m.hash);
                        let what = TraceWhat::Route {
                            table: r.table,
                            prefix: r.prefix,
                            len: r.len,
                            rtype: r.rtype,
                            oif: nh.map(|n| n.dev),
                            via: nh.and_then(|n| n.via),
                        };
                        let stage = if local_origin { "out-route" } else { "route" };
                        self.trace.record(m.seq, stage, what);
                    }
                }
                found.map(|(e, _)| {
                    let nh = e.nexthop(m.hash);
                    let gateway = match nh.and_then(|n| n.via) {
                        Some(a) => ip_key(a),
                        None if m.l3 == L3::V4 => v4_key(dst as u32),
                        None => dst,
                    };
                    (e.rtype, nh.map(|n| n.dev), gateway)
                })
            };
            let Some((rtype, oif, gateway)) = decision else {
                if !local_origin && self.dhcp_client_reply(ctx, m) {
                    self.group_in(m);
                    continue;
                }
                if !local_origin {
                    self.restore_dst(ctx, m, i);
                    self.icmp_error(ctx, m, IcmpError::NetUnreachable);
                }
                self.drop_pkt(ctx, m, DropReason::NoRoute);
                continue;
            };
            let err = match (rtype, oif) {
                (RouteType::Unicast, Some(oif)) => {
                    if oif == m.iif && !local_origin && self.dhcp_client_reply(ctx, m) {
                        self.group_in(m);
                        continue;
                    }
                    let link_local =
                        m.l3 == L3::V6 && (is_link_local_v6(src) || is_link_local_v6(dst));
                    if link_local && !local_origin {
                        self.drop_pkt(ctx, m, DropReason::LinkLocalNotForwarded);
                        continue;
                    }
                    m.oif = oif;
                    m.nexthop = gateway;
                    m.next = Next::Forward;
                    continue;
                }
                (RouteType::Broadcast, Some(out))
                    if !local_origin
                        && out != m.iif
                        && self.tables.interfaces.hot(m.iif).bc_forwarding =>
                {
                    // A directed broadcast for another interface's subnet,
                    // forwarded as `bc_forwarding` does it (RFC 1812
                    // 5.3.5.2): out as a link-layer broadcast.
                    m.oif = out;
                    m.nexthop = dst;
                    m.flags |= flags::L2_BROADCAST;
                    m.next = Next::Forward;
                    continue;
                }
                (RouteType::Broadcast, _) => {
                    if local_origin {
                        // The kernel's own broadcasts leave as it built them
                        // (by MAC, before routing); nothing else sends one.
                        self.drop_pkt(ctx, m, DropReason::LocalNoListener);
                    } else {
                        self.group_in(m);
                    }
                    continue;
                }
                (RouteType::Local, _) => {
                    if local_origin {
                        // The router talking to itself: nothing to deliver to.
                        self.drop_pkt(ctx, m, DropReason::LocalNoListener);
                    } else {
                        m.next = Next::Local;
                    }
                    continue;
                }
                (RouteType::Unicast, None) => {
                    self.drop_pkt(ctx, m, DropReason::NoRoute);
                    continue;
                }
                (RouteType::Blackhole, _) => {
                    self.drop_pkt(ctx, m, DropReason::RouteBlackhole);
                    continue;
                }
                (RouteType::Unreachable, _) => {
                    (IcmpError::HostUnreachable, DropReason::RouteUnreachable)
                }
                (RouteType::Prohibit, _) => (IcmpError::Prohibited, DropReason::RouteProhibit),
            };
            if !local_origin {
                self.restore_dst(ctx, m, i);
                self.icmp_error(ctx, m, err.0);
            }
            self.drop_pkt(ctx, m, err.1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn martians() {
        let a = |s: &str| u32::from(s.parse::<std::net::Ipv4Addr>().unwrap());
        assert_eq!(martian_v4(a("10.0.0.1"), a("8.8.8.8")), None);
        assert_eq!(
            martian_v4(a("127.0.0.1"), a("8.8.8.8")),
            Some(DropReason::MartianSource)
        );
        assert_eq!(
            martian_v4(a("0.1.2.3"), a("8.8.8.8")),
            Some(DropReason::MartianSource)
        );
        assert_eq!(
            martian_v4(a("224.0.0.5"), a("8.8.8.8")),
            Some(DropReason::MartianSource)
        );
        assert_eq!(
            martian_v4(a("10.0.0.1"), a("239.1.1.1")),
            Some(DropReason::MulticastNotRouted)
        );
        assert_eq!(
            martian_v4(a("10.0.0.1"), a("255.255.255.255")),
            Some(DropReason::MulticastNotRouted)
        );
        assert_eq!(
            martian_v4(a("10.0.0.1"), a("127.0.0.1")),
            Some(DropReason::MartianDestination)
        );
        assert_eq!(
            martian_v6(0x2001 << 112, 1),
            Some(DropReason::MartianDestination)
        );
        assert_eq!(
            martian_v6(0xff02 << 112, 5),
            Some(DropReason::MartianSource)
        );
        assert_eq!(
            martian_v6(0x2001 << 112, 0xff02 << 112),
            Some(DropReason::MulticastNotRouted)
        );
        assert_eq!(martian_v6(0x2001 << 112, 0x2001 << 112 | 7), None);
    }
}
