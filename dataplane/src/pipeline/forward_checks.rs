//! Stage `forward-checks`, for forwarded packets, in Linux's `ip_forward`
//! order: TTL / hop limit (time exceeded), then the egress MTU
//! (fragmentation needed for IPv4 with DF, packet too big for IPv6). IPv4
//! without DF that is too big is fragmented by `rewrite`. The ICMP error
//! quotes what the sender sent (its destination translation undone).
//!
//! Reads: the frame's TTL / hop limit and DF bit, the egress MTU. Changes:
//! nothing on packets that pass.
//!
//! Drops: not_for_us (a frame to a link-layer group), ttl_exceeded,
//! frag_needed, packet_too_big.

use super::icmp::IcmpError;
use super::{Ctx, L3, L3_OFF, Meta, Next, Pipeline, flags};
use crate::io::Port;
use crate::packet::{ipv4, ipv6};
use crate::stats::DropReason;

impl Pipeline {
    pub(super) fn forward_checks<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, batch: &mut [Meta]) {
        for (i, m) in batch.iter_mut().enumerate() {
            // A bridge does not look at TTLs (nor fragment).
            if m.next != Next::Forward || m.has(flags::LOCAL_ORIGIN | flags::BRIDGED) {
                continue;
            }
            // Linux's ip_forward first: a frame sent to a link-layer
            // broadcast or multicast address is not forwarded (only a
            // frame for this host is), whatever its IP destination.
            if m.has(flags::L2_MULTICAST) {
                self.drop_pkt(ctx, m, DropReason::NotForUs);
                continue;
            }
            let mtu = self.tables.interfaces.hot(m.oif).mtu;
            let l3 = &m.desc.bytes(ctx.umem)[L3_OFF..];
            let (ttl, too_big, df) = match m.l3 {
                L3::V4 => {
                    let ip = ipv4::Packet::new_unchecked(l3);
                    (ip.ttl(), m.l3_len > mtu, ip.dont_fragment())
                }
                _ => (
                    ipv6::Packet::new_unchecked(l3).hop_limit(),
                    m.l3_len > mtu,
                    true,
                ),
            };
            if ttl <= 1 {
                self.restore_dst(ctx, m, i);
                self.icmp_error(ctx, m, IcmpError::TimeExceeded);
                self.drop_pkt(ctx, m, DropReason::TtlExceeded);
            } else if too_big && df {
                self.restore_dst(ctx, m, i);
                self.icmp_error(ctx, m, IcmpError::TooBig(mtu));
                let r = if m.l3 == L3::V4 {
                    DropReason::FragNeeded
                } else {
                    DropReason::PacketTooBig
                };
                self.drop_pkt(ctx, m, r);
            }
        }
    }
}
