//! NAT packet rewrites: one part (source or destination) of a translation
//! target written into a packet, every checksum updated incrementally.
//!
//! In the packet walk PREROUTING applies the destination part of a
//! connection's target and POSTROUTING the source part (see `nat/mod.rs`).
//! These functions read the L3 packet (from the IPv4/IPv6 header on), the
//! transport header offset the parser found, and the target [`FlowKey`]; they
//! change addresses, ports, ICMP query identifiers and the checksums covering
//! them, and for an ICMP error the packet it quotes (RFC 5508 section 4.2,
//! Linux's `nf_nat_icmp_reply_translation`). They drop nothing and never
//! panic: a field that is not wholly inside the buffer is left alone, so a
//! truncated transport header or quote is rewritten as far as it goes.
//!
//! Checksums: the IPv4 header checksum for an address; TCP, UDP and ICMPv6
//! for the pseudo-header address and the port or identifier; ICMPv4 for the
//! identifier only. A zero UDP checksum ("none" over IPv4; invalid over IPv6)
//! is left zero, as Linux does; a UDP checksum that computes to zero is sent
//! as 0xFFFF (RFC 768). For an ICMP error, every changed byte of the quote
//! (addresses, ports, the quoted checksums themselves) goes into the outer
//! ICMP checksum, as do the outer addresses for ICMPv6. No allocation.

use crate::addr::v4_key;
use crate::conntrack::{FlowKey, icmp_inverse};
use crate::packet::checksum::{update_bytes, update16, update32};
use crate::packet::{be16, be32, icmp, ipv4, ipv6, proto, set_be16, tcp, udp};

/// Which part of a translation target a rewrite applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Part {
    /// Source address and port (POSTROUTING: SNAT, masquerade).
    Src,
    /// Destination address and port (PREROUTING: DNAT, and un-SNAT of replies).
    Dst,
}

impl Part {
    fn opposite(self) -> Part {
        match self {
            Part::Src => Part::Dst,
            Part::Dst => Part::Src,
        }
    }
}

/// Rewrites the destination part of `t` into the packet: destination address
/// := `t.dst`, TCP/UDP destination port := `t.dport`, ICMP(v6) query
/// identifier := `t.sport` (Linux writes the identifier for either part).
/// `l4_off` is the transport header's offset from the start of `pkt`;
/// `later_fragment` says there is no transport header (only the IP header
/// changes). `t` must be of the packet's family.
#[inline]
pub fn rewrite_dst(
    pkt: &mut [u8],
    v4: bool,
    l4_off: usize,
    proto: u8,
    later_fragment: bool,
    t: &FlowKey,
) {
    if v4 && !later_fragment && fast_v4(pkt, l4_off, proto, Part::Dst, t.dst as u32, t.dport) {
        return;
    }
    let l4 = (!later_fragment && l4_off <= pkt.len()).then_some((l4_off, proto));
    manip(pkt, v4, l4, &Manip::own(t, Part::Dst), &mut None);
}

/// Rewrites the source part of `t` into the packet: source address :=
/// `t.src`, TCP/UDP source port := `t.sport`, ICMP(v6) query identifier :=
/// `t.sport`. Arguments as for [`rewrite_dst`].
#[inline]
pub fn rewrite_src(
    pkt: &mut [u8],
    v4: bool,
    l4_off: usize,
    proto: u8,
    later_fragment: bool,
    t: &FlowKey,
) {
    if v4 && !later_fragment && fast_v4(pkt, l4_off, proto, Part::Src, t.src as u32, t.sport) {
        return;
    }
    let l4 = (!later_fragment && l4_off <= pkt.len()).then_some((l4_off, proto));
    manip(pkt, v4, l4, &Manip::own(t, Part::Src), &mut None);
}

/// The common case in a straight line: one side (address and port) of an
/// IPv4 TCP or UDP packet with its whole header, each checksum patched
/// with one 32-bit and one 16-bit update. False (nothing done) for
/// anything else, which [`manip`] handles.
#[inline(always)]
fn fast_v4(pkt: &mut [u8], l4: usize, proto: u8, side: Part, addr: u32, port: u16) -> bool {
    let (csum_off, udp) = match proto {
        proto::TCP => (tcp::field::CHECKSUM, false),
        proto::UDP => (udp::field::CHECKSUM, true),
        _ => return false,
    };
    if l4 < ipv4::MIN_HEADER_LEN || pkt.len().saturating_sub(l4) < csum_off + 2 {
        return false;
    }
    // The IP header as a fixed-size array and the checksum's bytes taken
    // up front: the compiler then drops the bounds checks of the field
    // accesses below (measured: 11 instructions a packet fewer than
    // reading the segment by offset alone).
    let (ip, seg) = pkt.split_at_mut(l4);
    let (Some(ip), Some(csum)) = (
        ip.first_chunk_mut::<{ ipv4::MIN_HEADER_LEN }>(),
        seg.get_mut(csum_off..csum_off + 2),
    ) else {
        return false;
    };
    let (a_off, p_off) = match side {
        Part::Src => (ipv4::field::SRC, tcp::field::SRC_PORT),
        Part::Dst => (ipv4::field::DST, tcp::field::DST_PORT),
    };
    let a: &mut [u8; 4] = (&mut ip[a_off..a_off + 4]).try_into().expect("4 bytes");
    let old_addr = u32::from_be_bytes(*a);
    *a = addr.to_be_bytes();
    let ip_csum = u16::from_be_bytes([ip[ipv4::field::CHECKSUM], ip[ipv4::field::CHECKSUM + 1]]);
    ip[ipv4::field::CHECKSUM..ipv4::field::CHECKSUM + 2]
        .copy_from_slice(&update32(ip_csum, old_addr, addr).to_be_bytes());
    let c = u16::from_be_bytes([csum[0], csum[1]]);
    let old_port = be16(seg, p_off);
    set_be16(seg, p_off, port);
    if udp && c == 0 {
        // No UDP checksum: stays none.
        return true;
    }
    let c = update16(update32(c, old_addr, addr), old_port, port);
    let c = if udp && c == 0 { 0xffff } else { c };
    seg[csum_off..csum_off + 2].copy_from_slice(&c.to_be_bytes());
    true
}

/// Rewrites `part` of `t` into an ICMP(v6) error and the packet it quotes.
///
/// `t` is the target for the error's direction (the quoted packet went the
/// other way). The outer header gets `part` as any packet would; the quoted
/// packet gets the opposite part, taken from `t` reversed: at [`Part::Dst`]
/// the quoted source := `t.dst` and its source port := `t.dport`; at
/// [`Part::Src`] the quoted destination := `t.src` and its destination port :=
/// `t.sport`; a quoted ICMP query's identifier := `t.sport` at either part.
///
/// Example: inside H:1000 masqueraded to E:2000 talks to D:80, so the
/// connection is (H:1000 -> D:80) / (D:80 -> E:2000). A router sends E an
/// error quoting (E:2000 -> D:80); the quoted tuple reversed is the reply
/// tuple, so the error travels in the reply direction and `t` = original
/// reversed = (D:80 -> H:1000). The destination part makes the outer
/// destination H and the quote (H:1000 -> D:80): what H sent.
///
/// If the ICMP message is not an error that quotes a packet, this is
/// [`rewrite_dst`] or [`rewrite_src`] of the message.
pub fn rewrite_icmp_error(pkt: &mut [u8], v4: bool, l4_off: usize, t: &FlowKey, part: Part) {
    let proto = if v4 { proto::ICMP } else { proto::ICMPV6 };
    let own = Manip::own(t, part);
    let l4 = (l4_off <= pkt.len()).then_some((l4_off, proto));
    let quote_off = l4_off.saturating_add(icmp::HEADER_LEN);
    let is_error = pkt.get(l4_off).is_some_and(|&ty| quoting_error(v4, ty));
    if is_error && quote_off <= pkt.len() {
        let csum_off = l4_off + icmp::field::CHECKSUM;
        let mut outer = Some(be16(pkt, csum_off));
        let quote = &mut pkt[quote_off..];
        if let Some(q) = Quote::parse(quote, v4) {
            manip(quote, v4, q.l4(), &Manip::quoted(t, part), &mut outer);
        }
        if let Some(c) = outer {
            set_be16(pkt, csum_off, c);
        }
    }
    // The outer header last: for ICMPv6 its address change enters the
    // (already updated) message checksum through the pseudo-header. For an
    // error the identifier rewrite does not apply (not a query type).
    manip(pkt, v4, l4, &own, &mut None);
}

/// For an ICMP(v6) error, the tuple of the packet it quotes, as that packet
/// travelled: addresses, protocol, and ports (ICMP: identifier and type as
/// [`FlowKey::icmp_v4`] builds them). `None` if the message is not an error
/// that quotes a packet (ICMPv4 types 3, 4, 5, 11, 12; ICMPv6 1 to 4) or if
/// the quote is shorter than its IP header plus, for TCP, UDP and ICMP, 8
/// bytes of transport header. A quoted later fragment, or a protocol without
/// ports, has ports 0.
pub fn quoted_key(pkt: &[u8], v4: bool, l4_off: usize) -> Option<FlowKey> {
    let msg = pkt.get(l4_off..)?;
    if msg.len() < icmp::HEADER_LEN || !quoting_error(v4, msg[icmp::field::TYPE]) {
        return None;
    }
    let quote = &msg[icmp::HEADER_LEN..];
    let q = Quote::parse(quote, v4)?;
    let proto = q.proto?;
    if quote.len() < q.header_end {
        return None;
    }
    let (src, dst) = if v4 {
        let a = |off| v4_key(be32(quote, off));
        (a(ipv4::field::SRC), a(ipv4::field::DST))
    } else {
        let a = |off: usize| u128::from_be_bytes(quote[off..off + 16].try_into().unwrap());
        (a(ipv6::field::SRC), a(ipv6::field::DST))
    };
    let icmp_proto = if v4 { proto::ICMP } else { proto::ICMPV6 };
    let (sport, dport) = match q.l4() {
        Some((l4, p)) if matches!(p, proto::TCP | proto::UDP) || p == icmp_proto => {
            let h = quote.get(l4..l4 + 8)?;
            if p == icmp_proto {
                let ty = h[icmp::field::TYPE];
                (be16(h, icmp::field::IDENT), u16::from(ty) << 8)
            } else {
                (be16(h, tcp::field::SRC_PORT), be16(h, tcp::field::DST_PORT))
            }
        }
        _ => (0, 0),
    };
    Some(FlowKey {
        src,
        dst,
        sport,
        dport,
        proto,
    })
}

/// ICMP(v6) errors that carry the packet that caused them.
pub(crate) fn quoting_error(v4: bool, ty: u8) -> bool {
    if v4 {
        icmp::v4::is_error(ty)
    } else {
        matches!(
            ty,
            icmp::v6::DEST_UNREACH
                | icmp::v6::PACKET_TOO_BIG
                | icmp::v6::TIME_EXCEEDED
                | icmp::v6::PARAM_PROBLEM
        )
    }
}

/// Whether an ICMP(v6) message of type `ty` is a query (has an identifier).
fn is_query(proto: u8, ty: u8) -> bool {
    icmp_inverse(proto, ty).is_some()
}

/// The layout of a quoted packet.
struct Quote {
    /// Transport protocol; `None` when the quote ends inside the IPv6
    /// extension headers.
    proto: Option<u8>,
    /// End of the IP header (options, extension headers) in the quote.
    header_end: usize,
    later_fragment: bool,
}

impl Quote {
    /// `None` unless the quote holds the fixed IP header of the right
    /// version (and a sane IPv4 header length); options or extension headers
    /// may be cut.
    fn parse(q: &[u8], v4: bool) -> Option<Quote> {
        if v4 {
            if q.len() < ipv4::MIN_HEADER_LEN || q[ipv4::field::VER_IHL] >> 4 != 4 {
                return None;
            }
            let hl = usize::from(q[ipv4::field::VER_IHL] & 0xf) * 4;
            if hl < ipv4::MIN_HEADER_LEN {
                return None;
            }
            Some(Quote {
                proto: Some(q[ipv4::field::PROTO]),
                header_end: hl,
                later_fragment: be16(q, ipv4::field::FLAGS_FRAG) & ipv4::FRAG_OFFSET_MASK != 0,
            })
        } else {
            if q.len() < ipv6::HEADER_LEN || q[ipv6::field::VER_TC_FLOW] >> 4 != 6 {
                return None;
            }
            Some(match ipv6::walk_extensions(q) {
                Ok(up) => Quote {
                    proto: Some(up.proto),
                    header_end: up.offset,
                    later_fragment: up.later_fragment,
                },
                Err(_) => Quote {
                    proto: None,
                    header_end: q.len(),
                    later_fragment: false,
                },
            })
        }
    }

    /// The transport header (offset, protocol), if the quote has one.
    fn l4(&self) -> Option<(usize, u8)> {
        let proto = self.proto.filter(|_| !self.later_fragment)?;
        Some((self.header_end, proto))
    }
}

/// One side of a packet to rewrite and the values it gets.
struct Manip {
    side: Part,
    addr: u128,
    /// TCP/UDP port on `side`.
    port: u16,
    /// ICMP query identifier.
    id: u16,
}

impl Manip {
    /// `part` of `t` for a packet travelling as `t` says.
    fn own(t: &FlowKey, part: Part) -> Manip {
        let (addr, port) = match part {
            Part::Src => (t.src, t.sport),
            Part::Dst => (t.dst, t.dport),
        };
        Manip {
            side: part,
            addr,
            port,
            id: t.sport,
        }
    }

    /// What an error's `part` of `t` does to the packet it quotes: the
    /// opposite side gets the same values, as `t` reversed puts them there
    /// (Linux: `!manip` with the other tuple): at `Dst` the quoted source :=
    /// `t.dst` and source port := `t.dport`. An ICMP query's identifier
    /// survives reversal.
    fn quoted(t: &FlowKey, part: Part) -> Manip {
        Manip {
            side: part.opposite(),
            ..Manip::own(t, part)
        }
    }
}

/// Writes a 16-bit field, adjusting the enclosing checksum `outer` (for a
/// quote: the ICMP error's checksum) if there is one.
fn put16(pkt: &mut [u8], off: usize, new: u16, outer: &mut Option<u16>) {
    let old = be16(pkt, off);
    if old != new {
        set_be16(pkt, off, new);
        if let Some(c) = outer {
            *c = update16(*c, old, new);
        }
    }
}

/// Rewrites one side of the IP header at the start of `pkt` and of its
/// transport header `l4` = (offset, protocol), if any.
fn manip(pkt: &mut [u8], v4: bool, l4: Option<(usize, u8)>, m: &Manip, outer: &mut Option<u16>) {
    let (header, off, len) = match (v4, m.side) {
        (true, Part::Src) => (ipv4::MIN_HEADER_LEN, ipv4::field::SRC, 4),
        (true, Part::Dst) => (ipv4::MIN_HEADER_LEN, ipv4::field::DST, 4),
        (false, Part::Src) => (ipv6::HEADER_LEN, ipv6::field::SRC, 16),
        (false, Part::Dst) => (ipv6::HEADER_LEN, ipv6::field::DST, 16),
    };
    if pkt.len() < header {
        return;
    }
    let wide = m.addr.to_be_bytes();
    let new = &wide[16 - len..];
    let mut was = [0u8; 16];
    was[..len].copy_from_slice(&pkt[off..off + len]);
    let old = &was[..len];
    let moved = old != new;
    if moved {
        pkt[off..off + len].copy_from_slice(new);
        if let Some(c) = outer {
            *c = update_bytes(*c, old, new);
        }
        if v4 {
            let c = be16(pkt, ipv4::field::CHECKSUM);
            put16(pkt, ipv4::field::CHECKSUM, update_bytes(c, old, new), outer);
        }
    }
    let Some((l4, proto)) = l4 else {
        return;
    };
    let pseudo = moved.then_some((old, new));
    // TCP and UDP ports sit at the same offsets.
    let port_off = match m.side {
        Part::Src => tcp::field::SRC_PORT,
        Part::Dst => tcp::field::DST_PORT,
    };
    match proto {
        proto::TCP => {
            let port = Some((port_off, m.port));
            transport(pkt, l4, tcp::field::CHECKSUM, port, pseudo, false, outer);
        }
        proto::UDP => {
            let port = Some((port_off, m.port));
            transport(pkt, l4, udp::field::CHECKSUM, port, pseudo, true, outer);
        }
        proto::ICMP | proto::ICMPV6 if (proto == proto::ICMP) == v4 => {
            let query = pkt
                .get(l4 + icmp::field::TYPE)
                .is_some_and(|&ty| is_query(proto, ty));
            let id = query.then_some((icmp::field::IDENT, m.id));
            // ICMPv4 has no pseudo-header.
            let pseudo = if v4 { None } else { pseudo };
            transport(pkt, l4, icmp::field::CHECKSUM, id, pseudo, false, outer);
        }
        _ => {}
    }
}

/// Sets the 16-bit transport field `field` = (offset, value) and updates the
/// transport checksum at `csum_off` for it and for the pseudo-header address
/// change `pseudo` = (old, new). Offsets are from `l4`; absent fields are
/// skipped. `udp`: a zero checksum stays zero and a zero result becomes
/// 0xFFFF.
fn transport(
    pkt: &mut [u8],
    l4: usize,
    csum_off: usize,
    field: Option<(usize, u16)>,
    pseudo: Option<(&[u8], &[u8])>,
    udp: bool,
    outer: &mut Option<u16>,
) {
    let mut changed = None;
    if let Some((off, new)) = field {
        let at = l4 + off;
        if at + 2 <= pkt.len() {
            let old = be16(pkt, at);
            put16(pkt, at, new, outer);
            changed = Some((old, new));
        }
    }
    let at = l4 + csum_off;
    if at + 2 > pkt.len() {
        return;
    }
    let old = be16(pkt, at);
    if udp && old == 0 {
        return;
    }
    let mut c = old;
    if let Some((o, n)) = pseudo {
        c = update_bytes(c, o, n);
    }
    if let Some((o, n)) = changed {
        c = update16(c, o, n);
    }
    if udp && c == 0 {
        c = 0xffff;
    }
    put16(pkt, at, c, outer);
}

#[cfg(test)]
mod tests;
