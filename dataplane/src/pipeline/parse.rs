//! Stage `parse`: Ethernet and VLAN tags -> logical interface; IPv4/IPv6
//! header validation; transport header located and length-checked.
//!
//! Reads: the frame, the interface table. Changes: pops VLAN tags (the frame
//! is untagged from here on), trims Ethernet padding after the IP packet.
//! Drops: eth_truncated, eth_malformed, unknown_vlan, not_for_us,
//! unsupported_ethertype, ipv4_*, ipv6_*, l4_truncated, l4_malformed.

use super::{Ctx, L3, L3_OFF, Meta, Next, Pipeline, TraceWhat, flags, flow_hash, flow_hash_v4};
use crate::iface::{Bridging, IfIndex};
use crate::io::{Desc, Port};
use crate::packet::{ParseError, checksum, ether, ipv4, ipv6, proto, tcp, udp};
use crate::stats::DropReason;
use std::net::IpAddr;

impl Pipeline {
    pub(super) fn parse<P: Port>(
        &mut self,
        ctx: &mut Ctx<'_, P>,
        rx_port: u16,
        descs: &[Desc],
        batch: &mut Vec<Meta>,
    ) {
        let ps = &self.stats.ports[rx_port as usize];
        for d in descs {
            ps.rx_packets.inc();
            ps.rx_bytes.add(d.len as u64);
        }
        let tracing_requested = self.shared.trace.active();
        for d in descs {
            self.seq += 1;
            let mut m = Meta {
                desc: *d,
                seq: self.seq,
                ..Meta::default()
            };
            let requested = tracing_requested
                && self.shared.trace.filter().matches(d.bytes(ctx.umem))
                && self.shared.trace.take();
            if requested {
                self.trace_requested = true;
            }
            if self.trace.enabled() || requested {
                m.flags |= flags::TRACE;
                self.trace.record(
                    m.seq,
                    "rx",
                    TraceWhat::Rx {
                        port: rx_port,
                        len: d.len,
                    },
                );
            }
            // Parsed in its batch slot, so the metadata is not copied again.
            batch.push(m);
            let slot = batch.len() - 1;
            if let Err(r) = self.parse_one(ctx.umem, rx_port, &mut batch[slot]) {
                let mut m = batch.pop().unwrap_or(m);
                self.drop_pkt(ctx, &mut m, r);
            }
        }
    }

    /// The path nearly every packet takes: untagged Ethernet II to our MAC,
    /// IPv4 with a 20-byte header, not a fragment, a complete TCP/UDP/ICMP
    /// header. Returns false, having changed nothing, for anything else
    /// (and for traced packets), which then takes the general path below;
    /// that path alone decides drops, so both agree on every drop reason.
    #[inline]
    fn parse_fast_v4(&self, frame: &[u8], rx_port: u16, m: &mut Meta) -> bool {
        let Some(h) = frame.first_chunk::<34>() else {
            return false;
        };
        if h[12..15] != [0x08, 0x00, 0x45] || m.has(flags::TRACE) {
            return false;
        }
        let ifs = &self.tables.interfaces;
        let Some(iif) = ifs.untagged(rx_port) else {
            return false;
        };
        if h[..6] != ifs.hot(iif).mac {
            return false;
        }
        let total = u16::from_be_bytes([h[16], h[17]]) as usize;
        let ff = u16::from_be_bytes([h[20], h[21]]);
        if total < ipv4::MIN_HEADER_LEN
            || L3_OFF + total > frame.len()
            || ff & (ipv4::FLAG_MF | ipv4::FRAG_OFFSET_MASK) != 0
            || !checksum::verify_ipv4_header(&h[L3_OFF..])
        {
            return false;
        }
        let proto = h[23];
        let l4 = &frame[L3_OFF + ipv4::MIN_HEADER_LEN..L3_OFF + total];
        let ports = match proto {
            proto::TCP => {
                let hl = (l4.get(12).copied().unwrap_or(0) >> 4) as usize * 4;
                if hl < tcp::MIN_HEADER_LEN || hl > l4.len() {
                    return false;
                }
                u32::from_be_bytes([l4[0], l4[1], l4[2], l4[3]])
            }
            proto::UDP => {
                let Some(u) = l4.first_chunk::<8>() else {
                    return false;
                };
                let len = u16::from_be_bytes([u[4], u[5]]) as usize;
                if len < udp::HEADER_LEN || len > l4.len() {
                    return false;
                }
                u32::from_be_bytes([u[0], u[1], u[2], u[3]])
            }
            proto::ICMP if l4.len() < crate::packet::icmp::HEADER_LEN => return false,
            _ => 0,
        };
        let src = u32::from_be_bytes([h[26], h[27], h[28], h[29]]);
        let dst = u32::from_be_bytes([h[30], h[31], h[32], h[33]]);
        m.iif = iif;
        m.l3 = L3::V4;
        m.l3_len = total as u16;
        m.proto = proto;
        m.l4_off = ipv4::MIN_HEADER_LEN as u16;
        m.desc.len = (L3_OFF + total) as u32;
        m.hash = flow_hash_v4(src, dst, proto, ports);
        m.next = Next::Continue;
        true
    }

    fn parse_one(&mut self, umem: &mut [u8], rx_port: u16, m: &mut Meta) -> Result<(), DropReason> {
        if self.parse_fast_v4(m.desc.bytes(umem), rx_port, m) {
            return Ok(());
        }
        self.parse_general(umem, rx_port, m)
    }

    /// Out of line: the fast path above serves nearly every packet.
    #[inline(never)]
    fn parse_general(
        &mut self,
        umem: &mut [u8],
        rx_port: u16,
        m: &mut Meta,
    ) -> Result<(), DropReason> {
        let frame = m.desc.bytes_mut(umem);
        let l2 = ether::parse_l2(frame).map_err(|e| match e {
            ParseError::Truncated => DropReason::EthTruncated,
            _ => DropReason::EthMalformed,
        })?;
        let ifs = &self.tables.interfaces;
        let iif = match ifs.classify(rx_port, &l2.vlans) {
            Some(i) => i,
            // Tags no sub-interface claims: the bridge's, when the port's
            // untagged interface is a bridge port.
            None => {
                let port = ifs.bridge_port(rx_port).ok_or(DropReason::UnknownVlan)?;
                return self.parse_bridge_port(umem, m, port, &l2, false);
            }
        };
        if let Bridging::Port(_) = ifs.hot(iif).bridge {
            return self.parse_bridge_port(umem, m, iif, &l2, true);
        }
        m.iif = iif;
        if m.has(flags::TRACE) {
            self.trace.record(
                m.seq,
                "parse",
                TraceWhat::Classified {
                    iif,
                    vlans: l2.vlans.ids,
                    tags: l2.vlans.len,
                },
            );
        }
        let dst_mac: [u8; 6] = frame[0..6].try_into().unwrap();
        if ether::is_multicast(&dst_mac) {
            m.flags |= flags::L2_MULTICAST;
        } else if dst_mac != ifs.get(iif).mac {
            return Err(DropReason::NotForUs);
        }
        // Pop the tags: from here on the frame is plain Ethernet II.
        if l2.vlans.len > 0 {
            let shift = ether::pop_tags(frame, l2.vlans.len as usize);
            m.desc.addr += shift as u64;
            m.desc.len -= shift as u32;
        }
        self.parse_l3(umem, m, l2.ethertype)
    }

    /// A frame that arrived by bridge port `port`: its bridge VLAN, tags
    /// popped (`exact`: the port's interface claimed the frame's tags,
    /// all of them are the interface's; otherwise a VLAN-aware bridge
    /// takes the outer tag and a bridge without VLANs carries the tags
    /// as they are). A frame to the bridge's routed interface of its VLAN
    /// continues as that interface's; every other frame is marked
    /// BRIDGED for the bridge stage, which switches it (L3 is parsed only
    /// when the bridge sends its IP traffic through netfilter).
    #[inline(never)]
    fn parse_bridge_port(
        &mut self,
        umem: &mut [u8],
        m: &mut Meta,
        port: IfIndex,
        l2: &ether::L2Info,
        exact: bool,
    ) -> Result<(), DropReason> {
        let Bridging::Port(b) = self.tables.interfaces.hot(port).bridge else {
            return Err(DropReason::UnknownVlan);
        };
        let br = self.tables.bridges.get(b);
        let bp = br.port(port).ok_or(DropReason::UnknownVlan)?;
        let (tag, pop) = match (exact, br.vlan_filtering) {
            (true, _) => (None, l2.vlans.len as usize),
            (false, true) => (Some(l2.vlans.ids[0]), 1),
            (false, false) => (None, 0),
        };
        let vid = bp
            .ingress(br.vlan_filtering, tag)
            .ok_or(DropReason::BridgeVlanFiltered)?;
        m.phys_in = Some(port);
        m.vid = vid;
        if m.has(flags::TRACE) {
            self.trace.record(
                m.seq,
                "parse",
                TraceWhat::Classified {
                    iif: port,
                    vlans: l2.vlans.ids,
                    tags: l2.vlans.len,
                },
            );
        }
        let frame = m.desc.bytes_mut(umem);
        let dst: [u8; 6] = frame[0..6].try_into().unwrap();
        let src: [u8; 6] = frame[6..12].try_into().unwrap();
        // Linux's bridge drops frames from a multicast or zero source.
        if ether::is_multicast(&src) || src == [0; 6] {
            return Err(DropReason::BridgeBadSource);
        }
        // The EtherType after the popped tags.
        let ethertype = if pop == l2.vlans.len as usize {
            l2.ethertype
        } else {
            let off = 12 + pop * ether::TAG_LEN;
            u16::from_be_bytes([frame[off], frame[off + 1]])
        };
        if pop > 0 {
            let shift = ether::pop_tags(frame, pop);
            m.desc.addr += shift as u64;
            m.desc.len -= shift as u32;
        }
        let ifs = &self.tables.interfaces;
        if let Some(bvi) = br.bvi(vid)
            && dst == ifs.hot(bvi).mac
        {
            m.iif = bvi;
            return self.parse_l3(umem, m, ethertype);
        }
        m.iif = br.iface;
        m.flags |= flags::BRIDGED;
        if ether::is_multicast(&dst) {
            m.flags |= flags::L2_MULTICAST;
        }
        let nf = match ethertype {
            ether::ETHERTYPE_IPV4 => br.nf_call_v4,
            ether::ETHERTYPE_IPV6 => br.nf_call_v6,
            _ => false,
        };
        if nf {
            // br_netfilter's checks: a bad IP header is dropped.
            self.parse_l3(umem, m, ethertype)
        } else {
            m.l3 = L3::L2;
            m.next = Next::Continue;
            Ok(())
        }
    }

    /// The L3 and L4 checks of an untagged frame whose logical interface
    /// is known: `m.l3`, `l3_len`, `proto`, `l4_off`, fragment flags and
    /// the flow hash are set, Ethernet padding is trimmed. ARP is left to
    /// the neighbour stage.
    pub(super) fn parse_l3(
        &mut self,
        umem: &mut [u8],
        m: &mut Meta,
        ethertype: u16,
    ) -> Result<(), DropReason> {
        let frame = m.desc.bytes_mut(umem);
        let l3 = &frame[L3_OFF..];
        match ethertype {
            ether::ETHERTYPE_ARP => {
                m.l3 = L3::Arp;
                Ok(())
            }
            ether::ETHERTYPE_IPV4 => {
                m.l3 = L3::V4;
                let ip = ipv4::Packet::new_checked(l3).map_err(|e| match e {
                    ParseError::Truncated => DropReason::Ipv4Truncated,
                    ParseError::Checksum => DropReason::Ipv4Checksum,
                    ParseError::Malformed => DropReason::Ipv4Malformed,
                })?;
                let total = ip.total_len() as usize;
                let hl = ip.header_len();
                if hl > ipv4::MIN_HEADER_LEN {
                    check_v4_options(&l3[ipv4::MIN_HEADER_LEN..hl])?;
                }
                m.l3_len = total as u16;
                m.proto = ip.protocol();
                m.l4_off = hl as u16;
                if ip.is_fragment() {
                    m.flags |= flags::FRAGMENT;
                    if ip.frag_offset() != 0 {
                        m.flags |= flags::LATER_FRAGMENT;
                        overlaps_header(m.proto, ip.frag_offset())?;
                    }
                }
                let (src, dst) = (ip.src_u32(), ip.dst_u32());
                if m.has(flags::TRACE) {
                    let what = TraceWhat::Ip {
                        src: IpAddr::from(ip.src()),
                        dst: IpAddr::from(ip.dst()),
                        proto: m.proto,
                        len: total as u16,
                        ttl: ip.ttl(),
                    };
                    self.trace.record(m.seq, "parse", what);
                }
                // Trim Ethernet padding after the datagram.
                m.desc.len = (L3_OFF + total) as u32;
                let ports = check_l4(&l3[hl..total], m)?;
                m.hash = flow_hash_v4(src, dst, m.proto, ports);
                Ok(())
            }
            ether::ETHERTYPE_IPV6 => {
                m.l3 = L3::V6;
                let ip = ipv6::Packet::new_checked(l3).map_err(v6_drop)?;
                let total = ipv6::HEADER_LEN + ip.payload_len() as usize;
                m.l3_len = total as u16;
                let pkt = &l3[..total];
                let up = ipv6::walk_extensions(pkt).map_err(v6_drop)?;
                m.proto = up.proto;
                m.l4_off = up.offset as u16;
                if up.fragment {
                    m.flags |= flags::FRAGMENT;
                }
                if up.later_fragment {
                    m.flags |= flags::LATER_FRAGMENT;
                    overlaps_header(m.proto, usize::from(up.fragment_bytes))?;
                }
                if m.has(flags::TRACE) {
                    let what = TraceWhat::Ip {
                        src: IpAddr::from(ip.src()),
                        dst: IpAddr::from(ip.dst()),
                        proto: m.proto,
                        len: total as u16,
                        ttl: ip.hop_limit(),
                    };
                    self.trace.record(m.seq, "parse", what);
                }
                m.desc.len = (L3_OFF + total) as u32;
                let ports = check_l4(&pkt[up.offset..], m)?;
                // RFC 6437: the flow label alone may carry the flow; we hash
                // the 5-tuple so that labelled and unlabelled packets agree.
                m.hash = flow_hash(ip.src_u128(), ip.dst_u128(), m.proto, ports);
                Ok(())
            }
            _ => Err(DropReason::UnsupportedEthertype),
        }
        .map(|()| {
            m.next = Next::Continue;
        })
    }
}

/// The drop reason for an IPv6 header or extension-header chain that fails.
/// IPv4 options as Linux's `ip_options_compile` and `ip_rcv_options`
/// take them on a router: each option whole (an end-of-list ends the
/// walk), and no loose or strict source route (`accept_source_route=0`:
/// a sender must not choose the path through the router).
fn check_v4_options(mut opts: &[u8]) -> Result<(), DropReason> {
    const EOL: u8 = 0;
    const NOP: u8 = 1;
    const LSRR: u8 = 131;
    const SSRR: u8 = 137;
    while let Some(&kind) = opts.first() {
        match kind {
            EOL => return Ok(()),
            NOP => opts = &opts[1..],
            _ => {
                let len = usize::from(*opts.get(1).ok_or(DropReason::Ipv4BadOptions)?);
                if len < 2 || len > opts.len() {
                    return Err(DropReason::Ipv4BadOptions);
                }
                if kind == LSRR || kind == SSRR {
                    return Err(DropReason::Ipv4SourceRoute);
                }
                opts = &opts[len..];
            }
        }
    }
    Ok(())
}

fn v6_drop(e: ParseError) -> DropReason {
    match e {
        ParseError::Truncated => DropReason::Ipv6Truncated,
        _ => DropReason::Ipv6Malformed,
    }
}

/// A later fragment starting inside the transport header would rewrite
/// what the filter saw in the first fragment (RFC 1858's overlapping
/// fragment attack: TCP flags or ports replaced after the check); Linux
/// drops overlapping fragments when it reassembles. `offset` in bytes.
fn overlaps_header(proto: u8, offset: usize) -> Result<(), DropReason> {
    let header = match proto {
        proto::TCP => tcp::MIN_HEADER_LEN,
        proto::UDP => udp::HEADER_LEN,
        _ => 0,
    };
    if offset < header {
        Err(DropReason::FragmentOverlap)
    } else {
        Ok(())
    }
}

/// Checks that the transport header is complete; returns the port pair for
/// the flow hash (0 when the protocol has none or this is a later fragment).
fn check_l4(l4: &[u8], m: &Meta) -> Result<u32, DropReason> {
    if m.has(flags::LATER_FRAGMENT) {
        return Ok(0);
    }
    if m.has(flags::FRAGMENT) {
        // A first fragment: the transport length fields describe the whole
        // datagram, so only the fixed header must be here.
        let need = match m.proto {
            proto::TCP => tcp::MIN_HEADER_LEN,
            proto::UDP => udp::HEADER_LEN,
            proto::ICMP | proto::ICMPV6 => crate::packet::icmp::HEADER_LEN,
            _ => 0,
        };
        if l4.len() < need {
            return Err(DropReason::L4Truncated);
        }
        return Ok(
            if need >= 4 && m.proto != proto::ICMP && m.proto != proto::ICMPV6 {
                u32::from_be_bytes([l4[0], l4[1], l4[2], l4[3]])
            } else {
                0
            },
        );
    }
    let map = |e| match e {
        ParseError::Truncated => DropReason::L4Truncated,
        _ => DropReason::L4Malformed,
    };
    match m.proto {
        proto::TCP => {
            let t = tcp::Packet::new_checked(l4).map_err(map)?;
            Ok((t.src_port() as u32) << 16 | t.dst_port() as u32)
        }
        proto::UDP => {
            let u = udp::Packet::new_checked(l4).map_err(map)?;
            Ok((u.src_port() as u32) << 16 | u.dst_port() as u32)
        }
        proto::ICMP | proto::ICMPV6 => {
            if l4.len() < crate::packet::icmp::HEADER_LEN {
                return Err(DropReason::L4Truncated);
            }
            Ok(0)
        }
        _ => Ok(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iface::{Interface, Interfaces};
    use crate::io::{FRAME_SIZE, FramePool};
    use crate::packet::ether::VlanStack;
    use crate::pipeline::{IcmpLimits, Shared, Tables};
    use crate::route::Fib;
    use proptest::prelude::*;
    use std::sync::Arc;

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

    fn pipeline() -> Pipeline {
        let ifs = Interfaces::new(vec![Interface {
            name: "lan".into(),
            device: "eth0".into(),
            port: 0,
            vlans: VlanStack::NONE,
            mac: MAC,
            mtu: 1500,
            v4: vec![("10.0.0.1".parse().unwrap(), 24)],
            v6: vec![],
            tap: None,
            tap_groups: Vec::new(),
            rp_filter: Default::default(),
            bc_forwarding: false,
            bridge: crate::iface::Bridging::None,
        }]);
        let tables = Tables {
            interfaces: ifs,
            fib: Fib::new(),
            icmp: IcmpLimits::default(),
            filter: Default::default(),
            tracking: false,
            helper_ports: Default::default(),
            ct_checksum: true,
            bridges: Default::default(),
        };
        Pipeline::new(Arc::new(tables), Arc::new(Shared::new(64)))
    }

    fn frame(proto: u8, l4: &[u8]) -> Vec<u8> {
        let mut f = MAC.to_vec();
        f.extend_from_slice(&[2, 0, 0, 0, 0, 9, 0x08, 0x00]);
        let total = (20 + l4.len()) as u16;
        let mut ip = [
            0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, proto, 0, 0, 10, 0, 0, 5, 192, 0, 2, 1,
        ];
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        let c = checksum::checksum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(l4);
        f
    }

    proptest! {
        /// Whatever the fast path accepts, the general path accepts with the
        /// same result: the fast path is only a shortcut.
        #[test]
        fn fast_path_agrees_with_general_path(
            proto in prop::sample::select(vec![1u8, 6, 17, 47]),
            l4 in proptest::collection::vec(any::<u8>(), 0..40),
            flips in proptest::collection::vec((0usize..80, any::<u8>()), 0..3),
            trailer in 0usize..6,
        ) {
            let mut f = frame(proto, &l4);
            for (at, v) in flips {
                if let Some(b) = f.get_mut(at) {
                    *b = v;
                }
            }
            f.extend(std::iter::repeat_n(0, trailer));
            let mut p = pipeline();
            let mut pool = FramePool::new(2);
            let mut umem = vec![0u8; 2 * FRAME_SIZE];
            let mut d = pool.alloc().unwrap();
            d.len = f.len() as u32;
            d.bytes_mut(&mut umem).copy_from_slice(&f);
            let mut fast = Meta { desc: d, ..Meta::default() };
            let mut general = fast;
            if p.parse_fast_v4(d.bytes(&umem), 0, &mut fast) {
                prop_assert_eq!(p.parse_general(&mut umem, 0, &mut general), Ok(()));
                prop_assert_eq!(
                    (fast.iif, fast.l3, fast.l3_len, fast.proto, fast.l4_off, fast.desc, fast.hash, fast.flags),
                    (general.iif, general.l3, general.l3_len, general.proto, general.l4_off, general.desc, general.hash, general.flags)
                );
            }
        }
    }

    #[test]
    fn ipv4_options_whole_and_no_source_route() {
        assert_eq!(check_v4_options(&[1, 1, 1, 0]), Ok(()));
        // Record route (7), length 7, pointer 4, one slot; then end.
        assert_eq!(check_v4_options(&[7, 7, 4, 0, 0, 0, 0, 0]), Ok(()));
        assert_eq!(
            check_v4_options(&[131, 7, 4, 10, 0, 0, 1, 0]),
            Err(DropReason::Ipv4SourceRoute)
        );
        assert_eq!(
            check_v4_options(&[1, 137, 7, 4, 10, 0, 0, 1]),
            Err(DropReason::Ipv4SourceRoute)
        );
        for bad in [&[7u8][..], &[7, 0, 0, 0], &[7, 1, 0, 0], &[7, 9, 4, 0]] {
            assert_eq!(
                check_v4_options(bad),
                Err(DropReason::Ipv4BadOptions),
                "{bad:?}"
            );
        }
        // After the end of the list nothing is read.
        assert_eq!(check_v4_options(&[0, 131, 0, 0]), Ok(()));
    }

    #[test]
    fn fragments_over_the_transport_header_are_dropped() {
        // TCP at offset 8 or 16 would rewrite ports or flags (RFC 1858);
        // 24 and UDP at 8 do not touch the fixed header.
        for (proto, off, bad) in [
            (6u8, 8, true),
            (6, 16, true),
            (6, 24, false),
            (17, 8, false),
            (1, 8, false),
        ] {
            assert_eq!(
                overlaps_header(proto, off) == Err(DropReason::FragmentOverlap),
                bad,
                "proto {proto} offset {off}"
            );
        }
    }

    #[test]
    fn fast_path_takes_plain_udp_and_tcp() {
        let p = pipeline();
        for (proto, l4) in [
            (17u8, vec![0, 1, 0, 2, 0, 8, 0, 0]),
            (6, {
                let mut t = vec![0u8; 20];
                t[12] = 0x50;
                t
            }),
        ] {
            let f = frame(proto, &l4);
            let mut m = Meta {
                desc: crate::io::Desc {
                    addr: 0,
                    len: f.len() as u32,
                },
                ..Meta::default()
            };
            assert!(p.parse_fast_v4(&f, 0, &mut m), "proto {proto}");
        }
    }
}
