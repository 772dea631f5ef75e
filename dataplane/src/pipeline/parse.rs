//! Stage `parse`: Ethernet and VLAN tags -> logical interface; IPv4/IPv6
//! header validation; transport header located and length-checked.
//!
//! Reads: the frame, the interface table. Changes: pops VLAN tags (the frame
//! is untagged from here on), trims Ethernet padding after the IP packet.
//! Drops: eth_truncated, eth_malformed, unknown_vlan, not_for_us,
//! unsupported_ethertype, ipv4_*, ipv6_*, l4_truncated, l4_malformed.

use super::{Ctx, L3, L3_OFF, Meta, Next, Pipeline, TraceWhat, flags, flow_hash};
use crate::io::{Desc, Port};
use crate::packet::{ParseError, ether, ipv4, ipv6, proto, tcp, udp};
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
        for d in descs {
            self.seq += 1;
            let mut m = Meta {
                desc: *d,
                seq: self.seq,
                ..Meta::default()
            };
            if self.trace.enabled {
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
            match self.parse_one(ctx.umem, rx_port, &mut m) {
                Ok(()) => batch.push(m),
                Err(r) => self.drop_pkt(ctx, &mut m, r),
            }
        }
    }

    fn parse_one(&mut self, umem: &mut [u8], rx_port: u16, m: &mut Meta) -> Result<(), DropReason> {
        let frame = m.desc.bytes_mut(umem);
        let l2 = ether::parse_l2(frame).map_err(|e| match e {
            ParseError::Truncated => DropReason::EthTruncated,
            _ => DropReason::EthMalformed,
        })?;
        let ifs = &self.tables.interfaces;
        let iif = ifs
            .classify(rx_port, &l2.vlans)
            .ok_or(DropReason::UnknownVlan)?;
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
        let shift = ether::pop_tags(frame, l2.vlans.len as usize);
        m.desc.addr += shift as u64;
        m.desc.len -= shift as u32;
        let frame = m.desc.bytes_mut(umem);
        let l3 = &frame[L3_OFF..];
        match l2.ethertype {
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
                m.l3_len = total as u16;
                m.proto = ip.protocol();
                m.l4_off = hl as u16;
                if ip.is_fragment() {
                    m.flags |= flags::FRAGMENT;
                    if ip.frag_offset() != 0 {
                        m.flags |= flags::LATER_FRAGMENT;
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
                m.hash = flow_hash(src as u128, dst as u128, m.proto, ports);
                Ok(())
            }
            ether::ETHERTYPE_IPV6 => {
                m.l3 = L3::V6;
                let ip = ipv6::Packet::new_checked(l3).map_err(|e| match e {
                    ParseError::Truncated => DropReason::Ipv6Truncated,
                    _ => DropReason::Ipv6Malformed,
                })?;
                let total = ipv6::HEADER_LEN + ip.payload_len() as usize;
                m.l3_len = total as u16;
                let pkt = &l3[..total];
                let up = ipv6::walk_extensions(pkt).map_err(|e| match e {
                    ParseError::Truncated => DropReason::Ipv6Truncated,
                    _ => DropReason::Ipv6Malformed,
                })?;
                m.proto = up.proto;
                m.l4_off = up.offset as u16;
                if up.fragment {
                    m.flags |= flags::FRAGMENT;
                }
                if up.later_fragment {
                    m.flags |= flags::LATER_FRAGMENT;
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
