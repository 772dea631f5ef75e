//! Flow keys: the 5-tuple of one direction of a connection.
//!
//! A [`FlowKey`] is what a packet carries: source and destination address
//! (IPv4 as IPv4-mapped IPv6, as the neighbour table keys them, so one table
//! holds both families), transport protocol, and two 16-bit "ports". For TCP
//! and UDP (and any protocol with ports) they are the ports; for ICMP and
//! ICMPv6 queries `sport` is the identifier and `dport` the message type in
//! its high byte, as Linux's tuple keeps (id, type): the reverse of an echo
//! request is an echo reply with the same id, so a request in the other
//! direction with the same id is a different flow. Other protocols have
//! zero ports.
//!
//! The table stores both tuples of a connection (original and reply), so
//! the hash does not need to be symmetric: [`FlowKey::hash`] is a plain
//! seeded multiply-mix of the key's words (three 64x64->128 multiplies).
//! The seed is per table (random by default) so that remote hosts cannot
//! aim many flows at one bucket.
//!
//! Nothing here touches shared state; the table (`table.rs`) uses these.

use crate::addr::v4_key;

/// IP protocol numbers conntrack treats specially.
pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_ICMPV6: u8 = 58;

/// One direction of a connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// Source address (IPv4 mapped: `::ffff:a.b.c.d`).
    pub src: u128,
    /// Destination address (IPv4 mapped).
    pub dst: u128,
    /// Source port, or the ICMP query identifier.
    pub sport: u16,
    /// Destination port, or the ICMP query type in the high byte.
    pub dport: u16,
    /// IP protocol number.
    pub proto: u8,
}

/// The ICMP query type that answers `ty`, if `ty` is a query ICMP type.
pub(crate) fn icmp_inverse(proto: u8, ty: u8) -> Option<u8> {
    match (proto, ty) {
        // Echo, timestamp, information, address mask: request <-> reply.
        (PROTO_ICMP, 8) => Some(0),
        (PROTO_ICMP, 0) => Some(8),
        (PROTO_ICMP, 13) => Some(14),
        (PROTO_ICMP, 14) => Some(13),
        (PROTO_ICMP, 15) => Some(16),
        (PROTO_ICMP, 16) => Some(15),
        (PROTO_ICMP, 17) => Some(18),
        (PROTO_ICMP, 18) => Some(17),
        // ICMPv6 echo request <-> echo reply.
        (PROTO_ICMPV6, 128) => Some(129),
        (PROTO_ICMPV6, 129) => Some(128),
        _ => None,
    }
}

impl FlowKey {
    /// An IPv4 flow (addresses as host-order `u32`).
    pub fn v4(src: u32, dst: u32, proto: u8, sport: u16, dport: u16) -> Self {
        FlowKey {
            src: v4_key(src),
            dst: v4_key(dst),
            sport,
            dport,
            proto,
        }
    }

    /// An IPv6 flow.
    pub fn v6(src: u128, dst: u128, proto: u8, sport: u16, dport: u16) -> Self {
        FlowKey {
            src,
            dst,
            sport,
            dport,
            proto,
        }
    }

    /// An ICMP (IPv4) query, e.g. echo request (`ty` 8) with identifier `id`.
    pub fn icmp_v4(src: u32, dst: u32, ty: u8, id: u16) -> Self {
        Self::v4(src, dst, PROTO_ICMP, id, u16::from(ty) << 8)
    }

    /// An ICMPv6 query, e.g. echo request (`ty` 128) with identifier `id`.
    pub fn icmp_v6(src: u128, dst: u128, ty: u8, id: u16) -> Self {
        Self::v6(src, dst, PROTO_ICMPV6, id, u16::from(ty) << 8)
    }

    /// Whether both addresses are IPv4 (mapped).
    #[inline]
    pub fn is_v4(&self) -> bool {
        // As 64-bit words: the high halves zero, the low halves' high
        // 32 bits 0xffff (u128 shifts and compares cost several times more).
        let high = (self.src >> 64) as u64 | (self.dst >> 64) as u64;
        let mark = ((self.src as u64) >> 32 ^ 0xffff) | ((self.dst as u64) >> 32 ^ 0xffff);
        high | mark == 0
    }

    /// Whether the protocol is ICMP or ICMPv6.
    pub fn is_icmp(&self) -> bool {
        self.proto == PROTO_ICMP || self.proto == PROTO_ICMPV6
    }

    /// The ICMP type of an ICMP key.
    pub fn icmp_type(&self) -> u8 {
        (self.dport >> 8) as u8
    }

    /// Whether a packet with this key may open a connection as far as the
    /// key tells: for ICMP only a query request (echo, timestamp, ...) does.
    pub fn may_open(&self) -> bool {
        match self.proto {
            PROTO_ICMP => matches!(self.icmp_type(), 8 | 13 | 15 | 17),
            PROTO_ICMPV6 => self.icmp_type() == 128,
            _ => true,
        }
    }

    /// The key of the answer: addresses swapped, and ports swapped (or for
    /// an ICMP query the type turned into its reply type, same identifier).
    #[inline]
    pub fn reverse(&self) -> Self {
        let (sport, dport) = reverse_ports(self.proto, self.sport, self.dport);
        FlowKey {
            src: self.dst,
            dst: self.src,
            sport,
            dport,
            proto: self.proto,
        }
    }

    /// A seeded 64-bit hash. Not symmetric: `k` and `k.reverse()` hash
    /// apart (the table indexes both tuples).
    #[inline]
    pub fn hash(&self, seed: u64) -> u64 {
        const K0: u64 = 0xa076_1d64_78bd_642f;
        const K1: u64 = 0xe703_7ed1_a0b4_28db;
        const K2: u64 = 0x8ebc_6af0_9c88_c6e3;
        const K3: u64 = 0x5899_65cc_7537_4cc3;
        let ports =
            u64::from(self.sport) | u64::from(self.dport) << 16 | u64::from(self.proto) << 32;
        let a = mix(self.src as u64 ^ seed ^ K0, (self.src >> 64) as u64 ^ K1);
        let b = mix(
            self.dst as u64 ^ K2,
            (self.dst >> 64) as u64 ^ seed.rotate_left(29) ^ K3,
        );
        mix(a ^ ports ^ K1, b ^ K0)
    }
}

/// The ports of the answer to a packet with protocol `proto` and ports
/// `sport`, `dport`: swapped, or for an ICMP query the same identifier and
/// the type turned into its reply type.
#[inline(always)]
pub(crate) fn reverse_ports(proto: u8, sport: u16, dport: u16) -> (u16, u16) {
    if proto == PROTO_ICMP || proto == PROTO_ICMPV6 {
        let ty = (dport >> 8) as u8;
        let ty = icmp_inverse(proto, ty).unwrap_or(ty);
        (sport, u16::from(ty) << 8 | (dport & 0xff))
    } else {
        (dport, sport)
    }
}

/// 64x64 -> 128 multiply, folded (wyhash's mum).
#[inline]
pub(crate) fn mix(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    p as u64 ^ (p >> 64) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_tcp_udp() {
        let k = FlowKey::v4(0x0a00_0001, 0x0808_0808, PROTO_TCP, 40000, 443);
        let r = k.reverse();
        assert_eq!(
            r,
            FlowKey::v4(0x0808_0808, 0x0a00_0001, PROTO_TCP, 443, 40000)
        );
        assert_eq!(r.reverse(), k);
        assert!(k.is_v4());
        let k6 = FlowKey::v6(1, 2, PROTO_UDP, 53, 5353);
        assert!(!k6.is_v4());
        assert_eq!(k6.reverse().reverse(), k6);
        assert_ne!(k.hash(1), r.hash(1));
        assert_ne!(k.hash(1), k.hash(2));
    }

    #[test]
    fn reverse_icmp_echo() {
        let req = FlowKey::icmp_v4(1, 2, 8, 77);
        let rep = FlowKey::icmp_v4(2, 1, 0, 77);
        assert_eq!(req.reverse(), rep);
        assert_eq!(rep.reverse(), req);
        assert!(req.may_open() && !rep.may_open());
        // A request the other way with the same id is another flow.
        assert_ne!(FlowKey::icmp_v4(2, 1, 8, 77), req.reverse());
        let req6 = FlowKey::icmp_v6(1, 2, 128, 5);
        assert_eq!(req6.reverse(), FlowKey::icmp_v6(2, 1, 129, 5));
        assert!(req6.may_open());
    }
}
