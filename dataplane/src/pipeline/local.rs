//! Stage `local`: packets addressed to the router itself.
//!
//! ICMP and ICMPv6 echo requests are answered in place (addresses swapped,
//! type changed, checksums patched incrementally) and sent back through
//! routing. When the interface the packet came in by has a tap, everything
//! else goes to the host kernel (`punt.rs`): its listeners, its answers,
//! its reassembly. Without a tap, everything else finds no listener, as on
//! a host with no open port: UDP gets a port unreachable, TCP a reset (RFC
//! 9293 3.10.7.1), other protocols a protocol unreachable; fragments
//! addressed to the router are not reassembled.
//!
//! Reads: `Meta` (packets with `Next::Local`), the frame. Changes: the
//! frame (turned into the answer, pushed to the local-output batch).
//!
//! Drops: local_fragment, local_no_listener, local_icmp_ignored,
//! icmp_checksum, punt_queue_full.

use super::icmp::{DEFAULT_TTL, IcmpError};
use super::{Ctx, L3, L3_OFF, Meta, Next, Pipeline, TraceWhat, flags};
use crate::io::Port;
use crate::packet::icmp::{v4 as icmp4, v6 as icmp6};
use crate::packet::{checksum, ipv4, ipv6, proto};
use crate::stats::DropReason;

impl Pipeline {
    pub(super) fn local<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, batch: &mut [Meta]) {
        for m in batch.iter_mut() {
            if m.next != Next::Local {
                continue;
            }
            self.stats.local_delivered.inc();
            if m.has(flags::TRACE) {
                self.trace.record(m.seq, "local", TraceWhat::Local);
            }
            let tap = self.tap_of(m.iif);
            let icmp = matches!(
                (m.l3, m.proto),
                (L3::V4, proto::ICMP) | (L3::V6, proto::ICMPV6)
            );
            if m.has(flags::TO_GROUP) {
                // To the host's services if the interface has a tap (a
                // DHCP server, mDNS, a routing daemon); echo requests are
                // ignored, as Linux's icmp_echo_ignore_broadcasts=1;
                // nothing is answered.
                let l4 = m.l4_off as usize;
                let echo_type = if m.l3 == L3::V4 {
                    icmp4::ECHO_REQUEST
                } else {
                    icmp6::ECHO_REQUEST
                };
                let echo = icmp
                    && !m.has(flags::LATER_FRAGMENT)
                    && m.desc.bytes(ctx.umem).get(L3_OFF + l4) == Some(&echo_type);
                match tap {
                    Some(tap) if !echo => self.punt_to_kernel(ctx, m, tap),
                    _ if echo => self.drop_pkt(ctx, m, DropReason::LocalIcmpIgnored),
                    _ => self.drop_pkt(ctx, m, DropReason::LocalNoListener),
                }
                continue;
            }
            if let Some(tap) = tap
                && (!icmp || m.has(flags::FRAGMENT))
            {
                self.punt_to_kernel(ctx, m, tap);
                continue;
            }
            if m.has(flags::FRAGMENT) {
                self.drop_pkt(ctx, m, DropReason::LocalFragment);
                continue;
            }
            match (m.l3, m.proto) {
                (L3::V4, proto::ICMP) | (L3::V6, proto::ICMPV6) => self.local_icmp(ctx, m, tap),
                (_, proto::UDP) => {
                    self.icmp_error(ctx, m, IcmpError::PortUnreachable);
                    self.drop_pkt(ctx, m, DropReason::LocalNoListener);
                }
                (_, proto::TCP) => {
                    if self.tcp_reset(ctx, m) {
                        self.push_out(ctx, m);
                    } else {
                        self.drop_pkt(ctx, m, DropReason::LocalNoListener);
                    }
                }
                _ => {
                    self.icmp_error(ctx, m, IcmpError::ProtocolUnreachable);
                    self.drop_pkt(ctx, m, DropReason::LocalNoListener);
                }
            }
        }
    }

    fn local_icmp<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, m: &mut Meta, tap: Option<u16>) {
        let l3_len = m.l3_len as usize;
        let l4 = m.l4_off as usize;
        let frame = m.desc.bytes_mut(ctx.umem);
        let l3 = &mut frame[L3_OFF..L3_OFF + l3_len];
        let v4 = m.l3 == L3::V4;
        let (req, rep) = if v4 {
            (icmp4::ECHO_REQUEST, icmp4::ECHO_REPLY)
        } else {
            (icmp6::ECHO_REQUEST, icmp6::ECHO_REPLY)
        };
        let (typ, code) = (l3[l4], l3[l4 + 1]);
        if typ != req || code != 0 {
            // Echo replies to the kernel's pings, errors about its flows.
            return match tap {
                Some(tap) => self.punt_to_kernel(ctx, m, tap),
                None => self.drop_pkt(ctx, m, DropReason::LocalIcmpIgnored),
            };
        }
        let ok = if v4 {
            checksum::verify(&l3[l4..], 0)
        } else {
            let ip = ipv6::Packet::new_unchecked(&l3[..]);
            let ph = checksum::pseudo_v6(&ip.src(), &ip.dst(), proto::ICMPV6, (l3_len - l4) as u32);
            checksum::verify(&l3[l4..], ph)
        };
        if !ok {
            return self.drop_pkt(ctx, m, DropReason::IcmpChecksum);
        }
        if v4 {
            let mut ip = ipv4::Packet::new_unchecked(&mut l3[..]);
            let (s, d) = (ip.src(), ip.dst());
            // Swapping addresses leaves every checksum as it was.
            ip.set_src(d);
            ip.set_dst(s);
            ip.set_ttl(DEFAULT_TTL);
            ip.fill_checksum();
        } else {
            let mut ip = ipv6::Packet::new_unchecked(&mut l3[..]);
            let (s, d) = (ip.src(), ip.dst());
            ip.set_src(&d);
            ip.set_dst(&s);
            ip.set_hop_limit(DEFAULT_TTL);
        }
        let old = u16::from_be_bytes([req, 0]);
        let new = u16::from_be_bytes([rep, 0]);
        let c = checksum::update16(u16::from_be_bytes([l3[l4 + 2], l3[l4 + 3]]), old, new);
        l3[l4] = rep;
        l3[l4 + 2..l4 + 4].copy_from_slice(&c.to_be_bytes());
        self.stats.echo_replies.inc();
        if m.has(flags::TRACE) {
            self.trace.record(m.seq, "local", TraceWhat::EchoReply);
        }
        m.flags = flags::LOCAL_ORIGIN | (m.flags & flags::TRACE);
        m.next = Next::Continue;
        self.push_out(ctx, m);
    }
}
