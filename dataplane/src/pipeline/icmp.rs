//! ICMP errors and TCP resets the router sends, and their rate limits.
//!
//! An error quotes the offending packet from its IP header on: as much as
//! fits in 576 bytes for ICMPv4 (RFC 1812 4.3.2.3) and in the IPv6 minimum
//! MTU for ICMPv6 (RFC 4443 2.4(c)). No error is sent about an ICMP error,
//! a non-first fragment, a link-layer or IP broadcast/multicast, or a
//! source that cannot be answered (RFC 1122 3.2.2, RFC 1812 4.3.2.7,
//! RFC 4443 2.4(e)). Errors are rate-limited like Linux: a token bucket for
//! the whole worker (`icmp_msgs_per_sec`, `icmp_msgs_burst`) and one per
//! destination (`icmp_ratelimit`, burst 6), the latter in a fixed array
//! indexed by a hash of the destination (colliding hosts share a bucket,
//! which only makes the limit stricter).
//!
//! The source address is the incoming interface's address on the
//! offender's subnet, else its primary address (Linux with
//! `icmp_errors_use_inbound_ifaddr=1`), so a traceroute shows the
//! interface the probe entered by.

use super::{Ctx, IcmpLimits, L3, L3_OFF, Meta, Next, Pipeline, TraceWhat, flags, flow_hash};
use crate::io::Port;
use crate::packet::icmp::{v4 as icmp4, v6 as icmp6};
use crate::packet::{checksum, ether, ipv4, ipv6, proto, tcp};
use crate::stats::DropReason;
use std::net::IpAddr;

/// Hop limit / TTL of packets the router originates (Linux's default).
pub const DEFAULT_TTL: u8 = 64;
const V4_QUOTE_LIMIT: usize = 576 - ipv4::MIN_HEADER_LEN - 8;
const V6_QUOTE_LIMIT: usize = ipv6::MIN_MTU - ipv6::HEADER_LEN - 8;
const DEST_BUCKETS: usize = 256;

/// The errors the router sends, family-neutral.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpError {
    TimeExceeded,
    /// No route at all.
    NetUnreachable,
    /// An `unreachable` route, or a neighbour that never answered.
    HostUnreachable,
    /// A `prohibit` route.
    Prohibited,
    PortUnreachable,
    ProtocolUnreachable,
    /// IPv4 DF set, or IPv6, and the egress MTU is smaller: carries the MTU.
    TooBig(u16),
    /// A type and code of the packet's family, as `REJECT --reject-with` chose.
    Raw {
        typ: u8,
        code: u8,
    },
}

impl IcmpError {
    fn v4(self) -> (u8, u8, [u8; 4]) {
        match self {
            IcmpError::TimeExceeded => (icmp4::TIME_EXCEEDED, 0, [0; 4]),
            IcmpError::NetUnreachable => (icmp4::DEST_UNREACH, icmp4::NET_UNREACH, [0; 4]),
            IcmpError::HostUnreachable => (icmp4::DEST_UNREACH, icmp4::HOST_UNREACH, [0; 4]),
            IcmpError::Prohibited => (icmp4::DEST_UNREACH, icmp4::PKT_FILTERED, [0; 4]),
            IcmpError::PortUnreachable => (icmp4::DEST_UNREACH, icmp4::PORT_UNREACH, [0; 4]),
            IcmpError::ProtocolUnreachable => (icmp4::DEST_UNREACH, 2, [0; 4]),
            IcmpError::TooBig(mtu) => {
                let m = mtu.to_be_bytes();
                (icmp4::DEST_UNREACH, icmp4::FRAG_NEEDED, [0, 0, m[0], m[1]])
            }
            IcmpError::Raw { typ, code } => (typ, code, [0; 4]),
        }
    }

    fn v6(self) -> (u8, u8, [u8; 4]) {
        match self {
            IcmpError::TimeExceeded => (icmp6::TIME_EXCEEDED, 0, [0; 4]),
            IcmpError::NetUnreachable => (icmp6::DEST_UNREACH, icmp6::NO_ROUTE, [0; 4]),
            IcmpError::HostUnreachable => (icmp6::DEST_UNREACH, icmp6::ADDR_UNREACH, [0; 4]),
            IcmpError::Prohibited => (icmp6::DEST_UNREACH, icmp6::ADMIN_PROHIBITED, [0; 4]),
            IcmpError::PortUnreachable => (icmp6::DEST_UNREACH, icmp6::PORT_UNREACH, [0; 4]),
            // Parameter problem, unrecognized next header, pointing at it.
            IcmpError::ProtocolUnreachable => (icmp6::PARAM_PROBLEM, 1, [0, 0, 0, 6]),
            IcmpError::TooBig(mtu) => (icmp6::PACKET_TOO_BIG, 0, (mtu as u32).to_be_bytes()),
            IcmpError::Raw { typ, code } => (typ, code, [0; 4]),
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    credit: u64,
    last: u64,
}

const FRESH: Bucket = Bucket {
    credit: u64::MAX,
    last: 0,
};

impl Bucket {
    /// Token bucket in nanoseconds of credit: each message costs
    /// `interval`, credit accrues with time up to `burst * interval`.
    fn allow(&mut self, interval: u64, burst: u32, now: u64) -> bool {
        if interval == 0 {
            return true;
        }
        let cap = interval.saturating_mul(burst.max(1) as u64);
        self.credit = if self.credit == u64::MAX {
            cap
        } else {
            self.credit
                .saturating_add(now.saturating_sub(self.last))
                .min(cap)
        };
        self.last = now;
        if self.credit >= interval {
            self.credit -= interval;
            true
        } else {
            false
        }
    }
}

#[derive(Debug)]
pub(super) struct Limiter {
    limits: IcmpLimits,
    global: Bucket,
    per_dest: Box<[Bucket]>,
}

impl Limiter {
    pub fn new(limits: IcmpLimits) -> Self {
        Limiter {
            limits,
            global: FRESH,
            per_dest: vec![FRESH; DEST_BUCKETS].into_boxed_slice(),
        }
    }

    fn allow(&mut self, dest: u128, now: u64) -> bool {
        let l = self.limits;
        let h = flow_hash(dest, 0, 0, 0) as usize % DEST_BUCKETS;
        let per = self.per_dest[h].allow(l.ratelimit_ms as u64 * 1_000_000, l.ratelimit_burst, now);
        let global_interval = if l.msgs_per_sec == 0 {
            0
        } else {
            1_000_000_000 / l.msgs_per_sec as u64
        };
        per && self.global.allow(global_interval, l.msgs_burst, now)
    }
}

fn v4_unanswerable_src(a: u32) -> bool {
    let top = a >> 24;
    top == 0 || top == 127 || (a >> 28) == 0xe || a == u32::MAX
}

impl Pipeline {
    /// Queues an ICMP error about `m` (whose frame the caller still owns)
    /// for local output, if the rules above allow one.
    #[cold]
    pub(super) fn icmp_error<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, m: &Meta, err: IcmpError) {
        let mcast_ok = matches!(err, IcmpError::TooBig(_)) && m.l3 == L3::V6;
        if m.has(flags::LATER_FRAGMENT)
            || m.has(flags::TO_GROUP | flags::L2_BROADCAST)
            || (m.has(flags::L2_MULTICAST) && !mcast_ok)
        {
            return;
        }
        let frame = m.desc.bytes(ctx.umem);
        let l3 = &frame[L3_OFF..L3_OFF + m.l3_len as usize];
        let l4 = &l3[m.l4_off as usize..];
        let src: u128 = match m.l3 {
            L3::V4 => {
                let ip = ipv4::Packet::new_unchecked(l3);
                let (s, d) = (ip.src_u32(), ip.dst_u32());
                if v4_unanswerable_src(s) || (d >> 28) == 0xe || d == u32::MAX {
                    return;
                }
                if m.proto == proto::ICMP && icmp4::is_error(l4[0]) {
                    return;
                }
                s as u128
            }
            L3::V6 => {
                let ip = ipv6::Packet::new_unchecked(l3);
                let (s, d) = (ip.src_u128(), ip.dst_u128());
                if s == 0 || s >> 120 == 0xff || (d >> 120 == 0xff && !mcast_ok) {
                    return;
                }
                if m.proto == proto::ICMPV6 && icmp6::is_error(l4[0]) {
                    return;
                }
                s
            }
            L3::Arp | L3::L2 => return,
        };
        if !self.limiter.allow(src, ctx.now) {
            self.stats.icmp_rate_limited.inc();
            if m.has(flags::TRACE) {
                self.trace.record(m.seq, "icmp", TraceWhat::IcmpRateLimited);
            }
            return;
        }
        let iface = self.tables.interfaces.get(m.iif);
        let our = match m.l3 {
            L3::V4 => iface.source_v4(src as u32).map(IpAddr::V4),
            _ => iface.source_v6(src).map(IpAddr::V6),
        };
        let Some(our) = our else {
            return; // No address on the incoming interface to speak from.
        };
        let Some(mut out) = ctx.pool.alloc() else {
            self.stats.count_drop(DropReason::NoFreeFrame);
            return;
        };
        if self.out.len() == self.out.capacity() {
            ctx.pool.free(out);
            self.stats.count_drop(DropReason::NoFreeFrame);
            return;
        }
        let ident = self.next_ident();
        // Copy the quote first: source and destination frames differ.
        let (umem, quote_from) = (&mut *ctx.umem, m.desc.addr as usize + L3_OFF);
        let (typ, code, hl, total) = match our {
            IpAddr::V4(our) => {
                let (typ, code, rest) = err.v4();
                let quote = (m.l3_len as usize).min(V4_QUOTE_LIMIT);
                let total = ipv4::MIN_HEADER_LEN + 8 + quote;
                let base = out.addr as usize;
                let icmp_at = base + L3_OFF + ipv4::MIN_HEADER_LEN;
                umem.copy_within(quote_from..quote_from + quote, icmp_at + 8);
                let f = &mut umem[base..base + L3_OFF + total];
                f[..12].fill(0);
                f[12..14].copy_from_slice(&ether::ETHERTYPE_IPV4.to_be_bytes());
                let icmp = &mut f[L3_OFF + ipv4::MIN_HEADER_LEN..];
                icmp[0] = typ;
                icmp[1] = code;
                icmp[2..4].fill(0);
                icmp[4..8].copy_from_slice(&rest);
                let c = checksum::checksum(icmp);
                icmp[2..4].copy_from_slice(&c.to_be_bytes());
                let mut ip = ipv4::Packet::new_unchecked(&mut f[L3_OFF..]);
                // TOS 0xc0: internetwork control precedence, as Linux sends errors.
                ip.emit(
                    our.octets(),
                    (src as u32).to_be_bytes(),
                    proto::ICMP,
                    DEFAULT_TTL,
                    total as u16,
                    ident,
                    0xc0,
                );
                (typ, code, ipv4::MIN_HEADER_LEN, total)
            }
            IpAddr::V6(our) => {
                let (typ, code, rest) = err.v6();
                let quote = (m.l3_len as usize).min(V6_QUOTE_LIMIT);
                let plen = 8 + quote;
                let total = ipv6::HEADER_LEN + plen;
                let base = out.addr as usize;
                let icmp_at = base + L3_OFF + ipv6::HEADER_LEN;
                umem.copy_within(quote_from..quote_from + quote, icmp_at + 8);
                let f = &mut umem[base..base + L3_OFF + total];
                f[..12].fill(0);
                f[12..14].copy_from_slice(&ether::ETHERTYPE_IPV6.to_be_bytes());
                let (s, d) = (our.octets(), src.to_be_bytes());
                ipv6::Packet::new_unchecked(&mut f[L3_OFF..]).emit(
                    &s,
                    &d,
                    proto::ICMPV6,
                    DEFAULT_TTL,
                    plen as u16,
                );
                let icmp = &mut f[L3_OFF + ipv6::HEADER_LEN..];
                icmp[0] = typ;
                icmp[1] = code;
                icmp[2..4].fill(0);
                icmp[4..8].copy_from_slice(&rest);
                let c = checksum::finish(checksum::sum(
                    icmp,
                    checksum::pseudo_v6(&s, &d, proto::ICMPV6, plen as u32),
                ));
                icmp[2..4].copy_from_slice(&c.to_be_bytes());
                (typ, code, ipv6::HEADER_LEN, total)
            }
        };
        out.len = (L3_OFF + total) as u32;
        self.stats.icmp_errors.inc();
        if m.has(flags::TRACE) {
            self.trace.record(
                m.seq,
                "icmp",
                TraceWhat::IcmpError {
                    icmp_type: typ,
                    code,
                },
            );
        }
        let proto = if m.l3 == L3::V4 {
            proto::ICMP
        } else {
            proto::ICMPV6
        };
        self.out.push(Meta {
            desc: out,
            seq: m.seq,
            iif: m.iif,
            l3: m.l3,
            proto,
            flags: flags::LOCAL_ORIGIN | (m.flags & flags::TRACE),
            l4_off: hl as u16,
            l3_len: total as u16,
            hash: flow_hash(src, 0, proto, 0),
            ..Meta::default()
        });
    }

    /// Turns a TCP segment addressed to us (no listener) into the RST that
    /// RFC 9293 3.10.7.1 prescribes, in place, and queues it for output.
    #[cold]
    pub(super) fn tcp_reset<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, m: &mut Meta) -> bool {
        let frame = m.desc.bytes_mut(ctx.umem);
        let l3 = &frame[L3_OFF..L3_OFF + m.l3_len as usize];
        let l4_off = m.l4_off as usize;
        let seg = tcp::Packet::new_unchecked(&l3[l4_off..]);
        let fl = seg.flags();
        // No reset answers a reset or a broadcast (Linux's nf_send_reset).
        if fl & tcp::flags::RST != 0 || m.has(flags::TO_GROUP | flags::L2_BROADCAST) {
            return false;
        }
        let data_len = (m.l3_len as usize - l4_off - seg.header_len()) as u32;
        let seg_len =
            data_len + (fl & tcp::flags::SYN != 0) as u32 + (fl & tcp::flags::FIN != 0) as u32;
        let (seq, ack, out_flags) = if fl & tcp::flags::ACK != 0 {
            (seg.ack(), 0, tcp::flags::RST)
        } else {
            (
                0,
                seg.seq().wrapping_add(seg_len),
                tcp::flags::RST | tcp::flags::ACK,
            )
        };
        let (sport, dport) = (seg.dst_port(), seg.src_port());
        let ident = self.next_ident();
        let frame = m.desc.bytes_mut(ctx.umem);
        let l3 = &mut frame[L3_OFF..];
        let hl = match m.l3 {
            L3::V4 => {
                let ip = ipv4::Packet::new_unchecked(&*l3);
                let (s, d) = (ip.dst(), ip.src());
                let total = ipv4::MIN_HEADER_LEN + tcp::MIN_HEADER_LEN;
                let mut ip = ipv4::Packet::new_unchecked(&mut *l3);
                ip.emit(s, d, proto::TCP, DEFAULT_TTL, total as u16, ident, 0);
                let t = &mut l3[ipv4::MIN_HEADER_LEN..total];
                tcp::Packet::new_unchecked(&mut *t).emit(sport, dport, seq, ack, out_flags, 0);
                let c = checksum::finish(checksum::sum(
                    t,
                    checksum::pseudo_v4(s, d, proto::TCP, tcp::MIN_HEADER_LEN as u16),
                ));
                tcp::Packet::new_unchecked(&mut *t).set_checksum(c);
                ipv4::MIN_HEADER_LEN
            }
            _ => {
                let ip = ipv6::Packet::new_unchecked(&*l3);
                let (s, d) = (ip.dst(), ip.src());
                ipv6::Packet::new_unchecked(&mut *l3).emit(
                    &s,
                    &d,
                    proto::TCP,
                    DEFAULT_TTL,
                    tcp::MIN_HEADER_LEN as u16,
                );
                let t = &mut l3[ipv6::HEADER_LEN..ipv6::HEADER_LEN + tcp::MIN_HEADER_LEN];
                tcp::Packet::new_unchecked(&mut *t).emit(sport, dport, seq, ack, out_flags, 0);
                let c = checksum::finish(checksum::sum(
                    t,
                    checksum::pseudo_v6(&s, &d, proto::TCP, tcp::MIN_HEADER_LEN as u32),
                ));
                tcp::Packet::new_unchecked(&mut *t).set_checksum(c);
                ipv6::HEADER_LEN
            }
        };
        m.l4_off = hl as u16;
        m.l3_len = (hl + tcp::MIN_HEADER_LEN) as u16;
        m.desc.len = (L3_OFF + m.l3_len as usize) as u32;
        m.flags = flags::LOCAL_ORIGIN | (m.flags & flags::TRACE);
        m.next = Next::Continue;
        if m.has(flags::TRACE) {
            self.trace.record(m.seq, "local", TraceWhat::TcpReset);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_burst_then_rate() {
        let mut b = FRESH;
        let s = 1_000_000_000;
        for _ in 0..6 {
            assert!(b.allow(s, 6, 10 * s));
        }
        assert!(!b.allow(s, 6, 10 * s));
        assert!(!b.allow(s, 6, 10 * s + s / 2));
        assert!(b.allow(s, 6, 11 * s));
        assert!(!b.allow(s, 6, 11 * s));
        // Credit caps at the burst.
        for _ in 0..6 {
            assert!(b.allow(s, 6, 1000 * s));
        }
        assert!(!b.allow(s, 6, 1000 * s));
        assert!(b.allow(0, 0, 0), "interval 0 disables the limit");
    }

    #[test]
    fn limiter_per_destination_and_global() {
        let mut l = Limiter::new(IcmpLimits {
            msgs_per_sec: 1000,
            msgs_burst: 8,
            ratelimit_ms: 1000,
            ratelimit_burst: 2,
        });
        assert!(l.allow(1, 0));
        assert!(l.allow(1, 0));
        assert!(!l.allow(1, 0), "per-destination burst of 2");
        let mut sent = 0;
        for d in 2..100u128 {
            sent += l.allow(d << 64, 0) as u32;
        }
        assert_eq!(sent, 6, "the global burst of 8 caps the rest");
    }
}
