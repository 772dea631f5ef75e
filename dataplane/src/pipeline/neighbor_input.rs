//! Stage `neighbor-input`: ARP and NDP addressed to the router.
//!
//! Answers ARP requests and IPv6 neighbour solicitations for the addresses
//! of the interface they arrive on (Linux's `arp_ignore=1`: no answers for
//! another interface's address, so a LAN never learns the WAN address),
//! and learns senders into the shared neighbour table: created from
//! messages addressed to us, refreshed from any other. Replies are written
//! in place into the request's frame and sent straight back out.
//!
//! Reads: the frame, interface addresses. Changes: the neighbour table.
//! Drops: arp_malformed, arp_not_for_us, nd_malformed, nd_ignored.

use super::{Ctx, L3, L3_OFF, Meta, Next, Pipeline, TraceWhat, flags};
use crate::addr::{key_v4, v4_key};
use crate::io::Port;
use crate::packet::icmp::v6 as icmp6;
use crate::packet::{arp, checksum, ether, ipv6, proto};
use crate::stats::DropReason;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// All-nodes multicast, ff02::1.
const ALL_NODES: [u8; 16] = [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

impl Pipeline {
    pub(super) fn neighbor_input<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, batch: &mut [Meta]) {
        for m in batch.iter_mut() {
            if m.next != Next::Continue || m.has(flags::BRIDGED) {
                continue;
            }
            match m.l3 {
                L3::Arp => self.arp_input(ctx, m),
                L3::V6 if m.proto == proto::ICMPV6 && !m.has(flags::FRAGMENT) => {
                    let t = m.desc.bytes(ctx.umem)[L3_OFF + m.l4_off as usize];
                    if (icmp6::ROUTER_SOLICIT..=icmp6::REDIRECT).contains(&t) {
                        self.nd_input(ctx, m, t);
                    }
                }
                _ => {}
            }
        }
    }

    fn arp_input<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, m: &mut Meta) {
        let frame = m.desc.bytes(ctx.umem);
        let Ok(a) = arp::Packet::new_checked(&frame[L3_OFF..]) else {
            return self.drop_pkt(ctx, m, DropReason::ArpMalformed);
        };
        let (op, sha, spa, tpa) = (a.operation(), a.sender_mac(), a.sender_ip(), a.target_ip());
        if m.has(flags::TRACE) {
            let what = TraceWhat::Arp {
                op,
                sender: IpAddr::from(spa),
                target: IpAddr::from(tpa),
            };
            self.trace.record(m.seq, "arp", what);
        }
        if ether::is_multicast(&sha) || sha == [0; 6] {
            return self.drop_pkt(ctx, m, DropReason::ArpMalformed);
        }
        let iface = self.tables.interfaces.get(m.iif);
        let (for_us, our_mac) = (iface.has_v4(u32::from_be_bytes(tpa)), iface.mac);
        let spa_u = u32::from_be_bytes(spa);
        // A sender address of 0.0.0.0 is an RFC 5227 probe: nothing to learn.
        if spa_u != 0 {
            self.learn(m, v4_key(spa_u), &sha, ctx.now, for_us, "arp");
        }
        if !for_us {
            return self.drop_pkt(ctx, m, DropReason::ArpNotForUs);
        }
        if op != arp::OP_REQUEST {
            // A reply (or other op) for us: learned above, nothing to send.
            ctx.pool.free(m.desc);
            m.next = Next::Done;
            return;
        }
        let frame = m.desc.bytes_mut(ctx.umem);
        arp::Packet::new_unchecked(&mut frame[L3_OFF..]).emit(
            arp::OP_REPLY,
            &our_mac,
            &tpa,
            &sha,
            &spa,
        );
        m.desc.len = (L3_OFF + arp::LEN) as u32;
        m.oif = m.iif;
        self.stats.arp_replies.inc();
        if m.has(flags::TRACE) {
            self.trace.record(m.seq, "arp", TraceWhat::ArpReply);
        }
        self.l2_out(ctx, m, &sha);
    }

    /// Learns (or refreshes) a neighbour from a message `m` carried,
    /// counting and tracing what changed.
    fn learn(
        &mut self,
        m: &Meta,
        ip: u128,
        mac: &[u8; 6],
        now: u64,
        create: bool,
        stage: &'static str,
    ) {
        if self.shared.neighbors.learn(m.iif, ip, mac, now, create) {
            self.stats.neighbors_learned.inc();
            if m.has(flags::TRACE) {
                let ip = match key_v4(ip) {
                    Some(a) => IpAddr::V4(Ipv4Addr::from(a)),
                    None => IpAddr::V6(Ipv6Addr::from(ip)),
                };
                self.trace
                    .record(m.seq, stage, TraceWhat::Learned { ip, mac: *mac });
            }
        }
    }

    fn nd_input<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, m: &mut Meta, icmp_type: u8) {
        let l4 = m.l4_off as usize;
        let frame = m.desc.bytes(ctx.umem);
        let ip = ipv6::Packet::new_unchecked(&frame[L3_OFF..L3_OFF + m.l3_len as usize]);
        let (src, dst) = (ip.src(), ip.dst());
        let msg = &frame[L3_OFF + l4..L3_OFF + m.l3_len as usize];
        // RFC 4861 7.1.1 / 7.1.2: hop limit 255, code 0, checksum, length.
        let csum_ok = checksum::verify(
            msg,
            checksum::pseudo_v6(&src, &dst, proto::ICMPV6, msg.len() as u32),
        );
        if ip.hop_limit() != 255 || msg[1] != 0 || !csum_ok {
            return self.drop_pkt(ctx, m, DropReason::NdMalformed);
        }
        match icmp_type {
            icmp6::NEIGHBOR_SOLICIT | icmp6::NEIGHBOR_ADVERT => {}
            _ => return self.drop_pkt(ctx, m, DropReason::NdIgnored),
        }
        if msg.len() < 24 {
            return self.drop_pkt(ctx, m, DropReason::NdMalformed);
        }
        let target: [u8; 16] = msg[8..24].try_into().unwrap();
        if target[0] == 0xff {
            return self.drop_pkt(ctx, m, DropReason::NdMalformed);
        }
        let want_opt = if icmp_type == icmp6::NEIGHBOR_SOLICIT {
            icmp6::OPT_SOURCE_LLADDR
        } else {
            icmp6::OPT_TARGET_LLADDR
        };
        let Ok(lladdr) = nd_option_lladdr(&msg[24..], want_opt) else {
            return self.drop_pkt(ctx, m, DropReason::NdMalformed);
        };
        let target_u = u128::from_be_bytes(target);
        let iface = self.tables.interfaces.get(m.iif);
        let (target_ours, our_mac) = (iface.has_v6(target_u), iface.mac);
        let now = ctx.now;
        if icmp_type == icmp6::NEIGHBOR_ADVERT {
            let solicited = msg[4] & icmp6::NA_SOLICITED != 0;
            if let Some(mac) = lladdr {
                self.learn(m, target_u, &mac, now, solicited, "nd");
            }
            ctx.pool.free(m.desc);
            m.next = Next::Done;
            return;
        }
        // Neighbour solicitation.
        let unspecified = src == [0; 16];
        if unspecified && lladdr.is_some() {
            return self.drop_pkt(ctx, m, DropReason::NdMalformed);
        }
        if !target_ours {
            return self.drop_pkt(ctx, m, DropReason::NdIgnored);
        }
        if let (false, Some(mac)) = (unspecified, lladdr) {
            self.learn(m, u128::from_be_bytes(src), &mac, now, true, "nd");
        }
        // Answer: unicast to the solicitor, or all-nodes for a DAD probe.
        let (na_dst, eth_dst, na_flags) = if unspecified {
            (
                ALL_NODES,
                ether::ipv6_multicast_mac(&ALL_NODES),
                icmp6::NA_ROUTER | icmp6::NA_OVERRIDE,
            )
        } else {
            let eth_src: [u8; 6] = frame[6..12].try_into().unwrap();
            (
                src,
                lladdr.unwrap_or(eth_src),
                icmp6::NA_ROUTER | icmp6::NA_SOLICITED | icmp6::NA_OVERRIDE,
            )
        };
        let frame = m.desc.bytes_mut(ctx.umem);
        let len = write_na(&mut frame[L3_OFF..], &target, &na_dst, na_flags, &our_mac);
        m.desc.len = (L3_OFF + len) as u32;
        frame[12..14].copy_from_slice(&ether::ETHERTYPE_IPV6.to_be_bytes());
        m.oif = m.iif;
        self.stats.nd_adverts.inc();
        if m.has(flags::TRACE) {
            self.trace.record(
                m.seq,
                "nd",
                TraceWhat::NdAdvert {
                    target: IpAddr::V6(Ipv6Addr::from(target)),
                },
            );
        }
        self.l2_out(ctx, m, &eth_dst);
    }
}

/// Finds a link-layer address option of type `want` (RFC 4861 4.6.1).
/// Err on a zero-length option (which RFC 4861 says to discard on).
pub(super) fn nd_option_lladdr(mut opts: &[u8], want: u8) -> Result<Option<[u8; 6]>, ()> {
    let mut found = None;
    while opts.len() >= 2 {
        let len = opts[1] as usize * 8;
        if len == 0 || len > opts.len() {
            return Err(());
        }
        if opts[0] == want && len == 8 {
            found = Some(opts[2..8].try_into().unwrap());
        }
        opts = &opts[len..];
    }
    Ok(found)
}

/// Writes an IPv6 neighbour advertisement with a target link-layer address
/// option at `l3`; returns its length.
fn write_na(
    l3: &mut [u8],
    target: &[u8; 16],
    dst: &[u8; 16],
    na_flags: u8,
    mac: &[u8; 6],
) -> usize {
    const LEN: usize = 32;
    ipv6::Packet::new_unchecked(&mut l3[..]).emit(target, dst, proto::ICMPV6, 255, LEN as u16);
    let msg = &mut l3[ipv6::HEADER_LEN..ipv6::HEADER_LEN + LEN];
    msg[0] = icmp6::NEIGHBOR_ADVERT;
    msg[1] = 0;
    msg[2..4].fill(0);
    msg[4] = na_flags;
    msg[5..8].fill(0);
    msg[8..24].copy_from_slice(target);
    msg[24] = icmp6::OPT_TARGET_LLADDR;
    msg[25] = 1;
    msg[26..32].copy_from_slice(mac);
    let c = checksum::finish(checksum::sum(
        msg,
        checksum::pseudo_v6(target, dst, proto::ICMPV6, LEN as u32),
    ));
    msg[2..4].copy_from_slice(&c.to_be_bytes());
    ipv6::HEADER_LEN + LEN
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nd_options() {
        let opts = [1, 1, 2, 0, 0, 0, 0, 9, 2, 1, 2, 0, 0, 0, 0, 8];
        assert_eq!(nd_option_lladdr(&opts, 1), Ok(Some([2, 0, 0, 0, 0, 9])));
        assert_eq!(nd_option_lladdr(&opts, 2), Ok(Some([2, 0, 0, 0, 0, 8])));
        assert_eq!(nd_option_lladdr(&opts[..8], 2), Ok(None));
        assert_eq!(nd_option_lladdr(&[1, 0, 0, 0, 0, 0, 0, 0], 1), Err(()));
        assert_eq!(nd_option_lladdr(&[1, 2, 0, 0, 0, 0, 0, 0], 1), Err(()));
    }
}
