//! Rewrite tests: real bytes (a masqueraded TCP SYN, a router's ICMP error
//! about it, an ICMPv6 echo), then property tests that build random valid
//! packets and ICMP errors quoting them (truncated anywhere), rewrite them,
//! and check every checksum against a full recomputation, every field
//! against the target, and that translating back restores the bytes.

use proptest::prelude::*;

use super::*;
use crate::conntrack::{PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};
use crate::packet::checksum::{checksum, pseudo_v4, pseudo_v6, verify};

// Built by an independent script (Python, full checksums): H 192.168.1.10
// masqueraded to E 203.0.113.5 talks to D 93.184.216.34:80; router R
// 198.51.100.1 answers a SYN with time exceeded, quoting 28 bytes.
const SYN_INSIDE: [u8; 40] = [
    0x45, 0x00, 0x00, 0x28, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0x26, 0xfd, 0xc0, 0xa8, 0x01, 0x0a,
    0x5d, 0xb8, 0xd8, 0x22, 0x9c, 0x40, 0x00, 0x50, 0x12, 0x34, 0x56, 0x78, 0x00, 0x00, 0x00, 0x00,
    0x50, 0x02, 0xfa, 0xf0, 0xb8, 0x27, 0x00, 0x00,
];
const SYN_OUTSIDE: [u8; 40] = [
    0x45, 0x00, 0x00, 0x28, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0xac, 0xa9, 0xcb, 0x00, 0x71, 0x05,
    0x5d, 0xb8, 0xd8, 0x22, 0x07, 0xd0, 0x00, 0x50, 0x12, 0x34, 0x56, 0x78, 0x00, 0x00, 0x00, 0x00,
    0x50, 0x02, 0xfa, 0xf0, 0xd2, 0x44, 0x00, 0x00,
];
const TTL_EXCEEDED_OUTSIDE: [u8; 56] = [
    0x45, 0x00, 0x00, 0x38, 0x0b, 0xad, 0x40, 0x00, 0x40, 0x01, 0xc8, 0xdd, 0xc6, 0x33, 0x64, 0x01,
    0xcb, 0x00, 0x71, 0x05, 0x0b, 0x00, 0x84, 0x33, 0x00, 0x00, 0x00, 0x00, 0x45, 0x00, 0x00, 0x28,
    0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0xac, 0xa9, 0xcb, 0x00, 0x71, 0x05, 0x5d, 0xb8, 0xd8, 0x22,
    0x07, 0xd0, 0x00, 0x50, 0x12, 0x34, 0x56, 0x78,
];
const TTL_EXCEEDED_INSIDE: [u8; 56] = [
    0x45, 0x00, 0x00, 0x38, 0x0b, 0xad, 0x40, 0x00, 0x40, 0x01, 0x43, 0x31, 0xc6, 0x33, 0x64, 0x01,
    0xc0, 0xa8, 0x01, 0x0a, 0x0b, 0x00, 0xef, 0xc2, 0x00, 0x00, 0x00, 0x00, 0x45, 0x00, 0x00, 0x28,
    0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0x26, 0xfd, 0xc0, 0xa8, 0x01, 0x0a, 0x5d, 0xb8, 0xd8, 0x22,
    0x9c, 0x40, 0x00, 0x50, 0x12, 0x34, 0x56, 0x78,
];
const ECHO6_INSIDE: [u8; 56] = [
    0x60, 0x00, 0x00, 0x00, 0x00, 0x10, 0x3a, 0x40, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0xff, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x80, 0x00, 0x7f, 0x67, 0x12, 0x34, 0x00, 0x01,
    0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
];
const ECHO6_OUTSIDE: [u8; 56] = [
    0x60, 0x00, 0x00, 0x00, 0x00, 0x10, 0x3a, 0x40, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x0e, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0xff, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x80, 0x00, 0x8a, 0x22, 0x07, 0x77, 0x00, 0x01,
    0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
];

const H: u32 = 0xc0a8_010a;
const E: u32 = 0xcb00_7105;
const D: u32 = 0x5db8_d822;

fn masqueraded_syn() -> (FlowKey, FlowKey) {
    let original = FlowKey::v4(H, D, PROTO_TCP, 40000, 80);
    let reply = FlowKey::v4(D, E, PROTO_TCP, 80, 2000);
    (original, reply)
}

#[test]
fn masquerade_tcp_syn_real_bytes() {
    let (original, reply) = masqueraded_syn();
    let mut p = SYN_INSIDE;
    // Original direction: T = reply reversed; the destination part is a no-op.
    let t = reply.reverse();
    rewrite_dst(&mut p, true, 20, PROTO_TCP, false, &t);
    assert_eq!(p, SYN_INSIDE);
    rewrite_src(&mut p, true, 20, PROTO_TCP, false, &t);
    assert_eq!(p, SYN_OUTSIDE);
    // Writing the original source back restores the packet exactly.
    rewrite_src(&mut p, true, 20, PROTO_TCP, false, &original);
    assert_eq!(p, SYN_INSIDE);
}

#[test]
fn router_error_about_masqueraded_syn_real_bytes() {
    let (original, reply) = masqueraded_syn();
    let mut p = TTL_EXCEEDED_OUTSIDE;
    let quoted = quoted_key(&p, true, 20).expect("an error quoting TCP");
    assert_eq!(quoted, FlowKey::v4(E, D, PROTO_TCP, 2000, 80));
    // The quoted tuple reversed is the reply tuple: the error travels in the
    // reply direction, T = original reversed.
    assert_eq!(quoted.reverse(), reply);
    let t = original.reverse();
    rewrite_icmp_error(&mut p, true, 20, &t, Part::Dst);
    assert_eq!(p, TTL_EXCEEDED_INSIDE);
    // Asked for the source part too, it writes T.src (D) into the outer
    // source and the quoted destination (already D), and T.sport (80) into
    // the quoted destination port.
    let mut q = p;
    rewrite_icmp_error(&mut q, true, 20, &t, Part::Src);
    assert_eq!(&q[12..16], &D.to_be_bytes());
    assert_eq!(&q[28..], &TTL_EXCEEDED_INSIDE[28..]);
    check(&q, true).unwrap();
}

#[test]
fn masquerade_icmpv6_echo_real_bytes() {
    let a: u128 = 0x2001_0db8_0001_0000_0000_0000_0000_0010;
    let b: u128 = 0x2001_0db8_00ff_0000_0000_0000_0000_0001;
    let x: u128 = 0x2001_0db8_000e_0000_0000_0000_0000_0005;
    let original = FlowKey::icmp_v6(a, b, 128, 0x1234);
    assert_eq!(key_of(&ECHO6_INSIDE, false), original);
    let reply = FlowKey::icmp_v6(b, x, 129, 0x0777);
    let t = reply.reverse();
    let mut p = ECHO6_INSIDE;
    rewrite_src(&mut p, false, 40, PROTO_ICMPV6, false, &t);
    assert_eq!(p, ECHO6_OUTSIDE);
    // Writing the original's source part back restores address and id.
    rewrite_src(&mut p, false, 40, PROTO_ICMPV6, false, &original);
    assert_eq!(p, ECHO6_INSIDE);
}

#[test]
fn not_errors_and_short_quotes_have_no_quoted_key() {
    assert_eq!(quoted_key(&SYN_INSIDE, true, 20), None);
    assert_eq!(quoted_key(&ECHO6_INSIDE, false, 40), None);
    // Quote one byte short of IP header + 8 bytes of TCP.
    assert_eq!(quoted_key(&TTL_EXCEEDED_OUTSIDE[..55], true, 20), None);
    assert_eq!(quoted_key(&TTL_EXCEEDED_OUTSIDE, true, 60), None);
    // A short quote is rewritten as far as it goes; the outer checksum
    // stays right.
    let t = masqueraded_syn().0.reverse();
    for cut in 20..=TTL_EXCEEDED_OUTSIDE.len() {
        let mut p = TTL_EXCEEDED_OUTSIDE[..cut].to_vec();
        if cut >= 28 {
            p[22..24].copy_from_slice(&[0, 0]);
            let c = checksum(&p[20..]);
            p[22..24].copy_from_slice(&c.to_be_bytes());
        }
        rewrite_icmp_error(&mut p, true, 20, &t, Part::Dst);
        assert_eq!(&p[16..20], &H.to_be_bytes(), "{cut}");
        assert_eq!(p[..20], TTL_EXCEEDED_INSIDE[..20], "{cut}");
        // The quoted header only when whole, the port only when whole.
        let done = match cut {
            ..28 => 20,
            28..48 => 28,
            48..50 => 48,
            _ => 50,
        };
        assert_eq!(
            p[28.min(done)..done],
            TTL_EXCEEDED_INSIDE[28.min(done)..done],
            "{cut}"
        );
        assert_eq!(p[done..], TTL_EXCEEDED_OUTSIDE[done..cut], "{cut}");
        if cut >= 28 {
            assert!(verify(&p[20..], 0), "{cut}");
        }
    }
}

#[test]
fn udp_checksum_computing_to_zero_is_sent_as_ffff() {
    let key = FlowKey::v4(0x0a00_0001, 0x0a00_0002, PROTO_UDP, 1234, 53);
    let s = Spec {
        v4: true,
        key,
        opts: 0,
        frag: false,
        payload: b"abc".to_vec(),
        udp_zero: false,
    };
    let (orig, l4) = build(&s);
    let c = u16::from_be_bytes([orig[l4 + 6], orig[l4 + 7]]);
    // The destination port that makes the new checksum 0: ~c + ~53 + port
    // must fold to 0xFFFF.
    let x = crate::packet::checksum::fold(u32::from(!c) + u32::from(!53u16));
    let port = 0xffff - x;
    let t = FlowKey { dport: port, ..key };
    let mut p = orig.clone();
    rewrite_dst(&mut p, true, l4, PROTO_UDP, false, &t);
    assert_eq!(&p[l4 + 6..l4 + 8], &[0xff, 0xff]);
    assert_eq!(check(&p, true), Ok(()));
    rewrite_dst(&mut p, true, l4, PROTO_UDP, false, &key);
    assert_eq!(p, orig);
}

// ---- a test-side packet model, independent of the code under test ----

/// A packet to build: `key` gives addresses and ports (ICMP: `sport` the
/// identifier, `dport >> 8` the type).
#[derive(Clone, Debug)]
struct Spec {
    v4: bool,
    key: FlowKey,
    /// IPv4 option words (0..=3); IPv6: non-zero adds a Destination Options
    /// header.
    opts: usize,
    /// A later fragment (IPv4 fragment offset; IPv6 Fragment header).
    frag: bool,
    payload: Vec<u8>,
    udp_zero: bool,
}

fn addr(v4: bool, a: u128) -> Vec<u8> {
    if v4 {
        (a as u32).to_be_bytes().to_vec()
    } else {
        a.to_be_bytes().to_vec()
    }
}

fn l4_pseudo(v4: bool, src: &[u8], dst: &[u8], proto: u8, len: usize) -> u32 {
    if v4 {
        if proto == PROTO_ICMP {
            0
        } else {
            pseudo_v4(
                src.try_into().unwrap(),
                dst.try_into().unwrap(),
                proto,
                len as u16,
            )
        }
    } else {
        pseudo_v6(
            src.try_into().unwrap(),
            dst.try_into().unwrap(),
            proto,
            len as u32,
        )
    }
}

/// A valid packet with correct checksums, and its transport offset.
fn build(s: &Spec) -> (Vec<u8>, usize) {
    let k = &s.key;
    let (src, dst) = (addr(s.v4, k.src), addr(s.v4, k.dst));
    let mut l4 = Vec::new();
    match k.proto {
        PROTO_TCP => {
            l4.extend_from_slice(&k.sport.to_be_bytes());
            l4.extend_from_slice(&k.dport.to_be_bytes());
            l4.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
        }
        PROTO_UDP => {
            l4.extend_from_slice(&k.sport.to_be_bytes());
            l4.extend_from_slice(&k.dport.to_be_bytes());
            l4.extend_from_slice(&((8 + s.payload.len()) as u16).to_be_bytes());
            l4.extend_from_slice(&[0, 0]);
        }
        _ => {
            l4.extend_from_slice(&[(k.dport >> 8) as u8, 0, 0, 0]);
            l4.extend_from_slice(&k.sport.to_be_bytes());
            l4.extend_from_slice(&[0, 7]);
        }
    }
    l4.extend_from_slice(&s.payload);
    let coff = match k.proto {
        PROTO_TCP => 16,
        PROTO_UDP => 6,
        _ => 2,
    };
    let acc = l4_pseudo(s.v4, &src, &dst, k.proto, l4.len());
    let mut c = crate::packet::checksum::finish(crate::packet::checksum::sum(&l4, acc));
    if k.proto == PROTO_UDP && (s.udp_zero || c == 0) {
        c = if s.udp_zero { 0 } else { 0xffff };
    }
    l4[coff..coff + 2].copy_from_slice(&c.to_be_bytes());
    let mut p = Vec::new();
    if s.v4 {
        let hl = 20 + 4 * s.opts;
        p.push(0x40 | (hl / 4) as u8);
        p.push(0);
        p.extend_from_slice(&((hl + l4.len()) as u16).to_be_bytes());
        p.extend_from_slice(&[0x12, 0x34]);
        p.extend_from_slice(&(if s.frag { 0x00b9u16 } else { 0x4000 }).to_be_bytes());
        p.extend_from_slice(&[64, k.proto, 0, 0]);
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.resize(hl, 1);
        let c = checksum(&p);
        p[10..12].copy_from_slice(&c.to_be_bytes());
    } else {
        let mut ext = Vec::new();
        let mut next = k.proto;
        if s.frag {
            ext.splice(0..0, [next, 0, 0x01, 0x70, 0, 0, 0, 9]);
            next = 44;
        }
        if s.opts > 0 {
            ext.splice(0..0, [next, 0, 1, 4, 0, 0, 0, 0]);
            next = 60;
        }
        p.extend_from_slice(&[0x60, 0, 0, 0]);
        p.extend_from_slice(&((ext.len() + l4.len()) as u16).to_be_bytes());
        p.extend_from_slice(&[next, 64]);
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(&ext);
    }
    let off = p.len();
    p.extend_from_slice(&l4);
    (p, off)
}

/// The transport offset and protocol of a packet (test-side parse) and
/// whether it is a later fragment.
fn layout(p: &[u8], v4: bool) -> (usize, u8, bool) {
    if v4 {
        let frag = u16::from_be_bytes([p[6], p[7]]) & 0x1fff != 0;
        (usize::from(p[0] & 0xf) * 4, p[9], frag)
    } else {
        let (mut next, mut off, mut frag) = (p[6], 40, false);
        loop {
            match next {
                60 => {}
                44 => frag = u16::from_be_bytes([p[off + 2], p[off + 3]]) & 0xfff8 != 0,
                _ => return (off, next, frag),
            }
            next = p[off];
            off += 8;
        }
    }
}

fn key_of(p: &[u8], v4: bool) -> FlowKey {
    let (l4, proto, frag) = layout(p, v4);
    let (src, dst) = if v4 {
        let a = |o: usize| v4_key(u32::from_be_bytes(p[o..o + 4].try_into().unwrap()));
        (a(12), a(16))
    } else {
        let a = |o: usize| u128::from_be_bytes(p[o..o + 16].try_into().unwrap());
        (a(8), a(24))
    };
    let be = |o: usize| u16::from_be_bytes([p[l4 + o], p[l4 + o + 1]]);
    let (sport, dport) = match proto {
        _ if frag => (0, 0),
        PROTO_TCP | PROTO_UDP => (be(0), be(2)),
        _ => (be(4), u16::from(p[l4]) << 8),
    };
    FlowKey {
        src,
        dst,
        sport,
        dport,
        proto,
    }
}

/// Every checksum of a packet recomputed from scratch: IPv4 header, the
/// transport (unless a later fragment or a UDP zero checksum), and for an
/// ICMP error the quoted IPv4 header, and the whole quoted packet when the
/// quote holds all of it.
fn check(p: &[u8], v4: bool) -> Result<(), String> {
    let (l4, proto, frag) = layout(p, v4);
    if v4 && !verify(&p[..l4], 0) {
        return Err("IPv4 header checksum".into());
    }
    if frag {
        return Ok(());
    }
    let (sa, da) = if v4 { (12, 16) } else { (8, 24) };
    let n = if v4 { 4 } else { 16 };
    let acc = l4_pseudo(v4, &p[sa..sa + n], &p[da..da + n], proto, p.len() - l4);
    let seg = &p[l4..];
    if proto == PROTO_UDP && seg[6..8] == [0, 0] {
        return Ok(());
    }
    if !verify(seg, acc) {
        return Err(format!("proto {proto} checksum"));
    }
    let icmp = if v4 { PROTO_ICMP } else { PROTO_ICMPV6 };
    if proto == icmp && quoting_error(v4, seg[0]) {
        let q = &seg[8..];
        let whole = if v4 {
            q.len() >= 20 && usize::from(u16::from_be_bytes([q[2], q[3]])) == q.len()
        } else {
            q.len() >= 40 && usize::from(u16::from_be_bytes([q[4], q[5]])) + 40 == q.len()
        };
        if whole {
            return check(q, v4).map_err(|e| format!("quoted: {e}"));
        }
        if v4 && q.len() >= 20 {
            let hl = usize::from(q[0] & 0xf) * 4;
            if q.len() >= hl && !verify(&q[..hl], 0) {
                return Err("quoted IPv4 header checksum".into());
            }
        }
    }
    Ok(())
}

/// An ICMP error about `q` from `from` to `q`'s source, quoting `cut` bytes.
fn error_about(q: &[u8], v4: bool, from: u128, ty: u8, cut: usize) -> Vec<u8> {
    let k = key_of(q, v4);
    let mut msg = vec![ty, 0, 0, 0, 0, 0, 0, 0];
    msg.extend_from_slice(&q[..cut]);
    let proto = if v4 { PROTO_ICMP } else { PROTO_ICMPV6 };
    let (src, dst) = (addr(v4, from), addr(v4, k.src));
    let acc = l4_pseudo(v4, &src, &dst, proto, msg.len());
    let c = crate::packet::checksum::finish(crate::packet::checksum::sum(&msg, acc));
    msg[2..4].copy_from_slice(&c.to_be_bytes());
    let mut p = Vec::new();
    if v4 {
        p.extend_from_slice(&[0x45, 0]);
        p.extend_from_slice(&((20 + msg.len()) as u16).to_be_bytes());
        p.extend_from_slice(&[0, 1, 0, 0, 64, proto, 0, 0]);
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        let c = checksum(&p);
        p[10..12].copy_from_slice(&c.to_be_bytes());
    } else {
        p.extend_from_slice(&[0x60, 0, 0, 0]);
        p.extend_from_slice(&(msg.len() as u16).to_be_bytes());
        p.extend_from_slice(&[proto, 64]);
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
    }
    p.extend_from_slice(&msg);
    p
}

fn family(v4: bool, a: u128) -> u128 {
    if v4 { v4_key(a as u32) } else { a }
}

prop_compose! {
    fn spec()(v4 in any::<bool>(), which in 0..4u8, src in any::<u128>(), dst in any::<u128>(),
              sport in any::<u16>(), dport in any::<u16>(), opts in 0..4usize, frag in prop::bool::weighted(0.15),
              payload in prop::collection::vec(any::<u8>(), 0..24), udp_zero in prop::bool::weighted(0.2)) -> Spec {
        let icmp = if v4 { PROTO_ICMP } else { PROTO_ICMPV6 };
        let (proto, dport) = match which {
            0 => (PROTO_TCP, dport),
            1 => (PROTO_UDP, dport),
            // Echo request / reply.
            2 => (icmp, u16::from(if v4 { 8u8 } else { 128 }) << 8),
            _ => (icmp, u16::from(if v4 { 0u8 } else { 129 }) << 8),
        };
        Spec {
            v4,
            key: FlowKey { src: family(v4, src), dst: family(v4, dst), sport, dport, proto },
            opts,
            frag,
            payload,
            udp_zero: udp_zero && proto == PROTO_UDP,
        }
    }
}

fn target(v4: bool, src: u128, dst: u128, sport: u16, dport: u16, proto: u8) -> FlowKey {
    FlowKey {
        src: family(v4, src),
        dst: family(v4, dst),
        sport,
        dport,
        proto,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Destination part, then source part: fields equal the target, every
    /// checksum equals a recomputation; translating back to the packet's own
    /// tuple restores every byte (the conntrack round trip).
    #[test]
    fn rewrite_matches_model(s in spec(), ts in any::<u128>(), td in any::<u128>(),
                             tsp in any::<u16>(), tdp in any::<u16>()) {
        let (orig, l4) = build(&s);
        prop_assert_eq!(check(&orig, s.v4), Ok(()));
        let proto = s.key.proto;
        let t = target(s.v4, ts, td, tsp, tdp, proto);
        let k = key_of(&orig, s.v4);
        let ports = matches!(proto, PROTO_TCP | PROTO_UDP);
        let mut p = orig.clone();

        rewrite_dst(&mut p, s.v4, l4, proto, s.frag, &t);
        prop_assert_eq!(check(&p, s.v4), Ok(()));
        let mut want = FlowKey { dst: t.dst, ..k };
        if !s.frag {
            if ports { want.dport = t.dport } else { want.sport = t.sport }
        }
        prop_assert_eq!(key_of(&p, s.v4), want);

        rewrite_src(&mut p, s.v4, l4, proto, s.frag, &t);
        prop_assert_eq!(check(&p, s.v4), Ok(()));
        want.src = t.src;
        if !s.frag && ports {
            want.sport = t.sport;
        }
        prop_assert_eq!(key_of(&p, s.v4), want);
        if s.frag {
            prop_assert_eq!(&p[l4..], &orig[l4..]);
        }
        if s.udp_zero {
            prop_assert_eq!(&p[l4 + 6..l4 + 8], &[0, 0]);
        }

        rewrite_dst(&mut p, s.v4, l4, proto, s.frag, &k);
        rewrite_src(&mut p, s.v4, l4, proto, s.frag, &k);
        prop_assert_eq!(&p, &orig);
    }

    /// Truncated packets: no panic; the IP header is still right.
    #[test]
    fn truncated_packets_are_safe(s in spec(), cut in any::<prop::sample::Index>(),
                                  ts in any::<u128>(), tsp in any::<u16>()) {
        let (orig, l4) = build(&s);
        let mut p = orig[..cut.index(orig.len() + 1)].to_vec();
        let t = target(s.v4, ts, ts, tsp, tsp, s.key.proto);
        rewrite_dst(&mut p, s.v4, l4, s.key.proto, s.frag, &t);
        rewrite_src(&mut p, s.v4, l4, s.key.proto, s.frag, &t);
        rewrite_icmp_error(&mut p, s.v4, l4, &t, Part::Dst);
        let _ = quoted_key(&p, s.v4, l4);
        for far in [p.len() + 1, usize::MAX] {
            rewrite_dst(&mut p, s.v4, far, s.key.proto, false, &t);
            rewrite_icmp_error(&mut p, s.v4, far, &t, Part::Src);
            prop_assert_eq!(quoted_key(&p, s.v4, far), None);
        }
        if s.v4 && p.len() >= l4 {
            prop_assert!(verify(&p[..l4], 0));
        }
    }

    /// ICMP errors quoting random packets, cut anywhere: the quoted key is
    /// the quoted packet's tuple; both parts give the outer and quoted
    /// fields their targets with every checksum right; translating back
    /// restores the bytes.
    #[test]
    fn icmp_error_matches_model(s in spec(), router in prop::option::of(any::<u128>()),
                                whole in any::<bool>(), cut in any::<prop::sample::Index>(),
                                second in any::<bool>(),
                                ts in any::<u128>(), td in any::<u128>(),
                                tsp in any::<u16>(), tdp in any::<u16>()) {
        let v4 = s.v4;
        let (q, ql4) = build(&s);
        let qk = key_of(&q, v4);
        let cut = if whole { q.len() } else { cut.index(q.len() + 1) };
        let ty = match (v4, second) {
            (true, false) => 3,
            (true, true) => 11,
            (false, false) => 1,
            (false, true) => 3,
        };
        let from = router.map_or(qk.dst, |r| family(v4, r));
        let orig = error_about(&q, v4, from, ty, cut);
        let l4 = if v4 { 20 } else { 40 };
        prop_assert_eq!(check(&orig, v4), Ok(()));

        let ported = matches!(qk.proto, PROTO_TCP | PROTO_UDP | PROTO_ICMP | PROTO_ICMPV6);
        let want_key = if s.frag {
            (cut >= ql4).then_some(FlowKey { sport: 0, dport: 0, ..qk })
        } else {
            (cut >= ql4 + if ported { 8 } else { 0 }).then_some(qk)
        };
        prop_assert_eq!(quoted_key(&orig, v4, l4), want_key);

        let t = target(v4, ts, td, tsp, tdp, qk.proto);
        let tcp_udp = matches!(qk.proto, PROTO_TCP | PROTO_UDP);
        let quote = |p: &[u8]| p[l4 + 8..].to_vec();
        let be = |b: &[u8], o: usize| (o + 2 <= b.len()).then(|| u16::from_be_bytes([b[o], b[o + 1]]));
        let (sa, da, n) = if v4 { (12, 16, 4) } else { (8, 24, 16) };
        let hdr = if v4 { 20 } else { 40 };
        let mut p = orig.clone();

        rewrite_icmp_error(&mut p, v4, l4, &t, Part::Dst);
        prop_assert_eq!(check(&p, v4), Ok(()));
        prop_assert_eq!(&p[da..da + n], &addr(v4, t.dst)[..]);
        let qq = quote(&p);
        if cut >= hdr {
            prop_assert_eq!(&qq[sa..sa + n], &addr(v4, t.dst)[..]);
        }
        if !s.frag {
            if tcp_udp {
                prop_assert_eq!(be(&qq, ql4), be(&q[..cut], ql4).map(|_| t.dport));
            } else {
                prop_assert_eq!(be(&qq, ql4 + 4), be(&q[..cut], ql4 + 4).map(|_| t.sport));
            }
        }

        rewrite_icmp_error(&mut p, v4, l4, &t, Part::Src);
        prop_assert_eq!(check(&p, v4), Ok(()));
        prop_assert_eq!(&p[sa..sa + n], &addr(v4, t.src)[..]);
        let qq = quote(&p);
        if cut >= hdr {
            prop_assert_eq!(&qq[da..da + n], &addr(v4, t.src)[..]);
        }
        if !s.frag && tcp_udp {
            prop_assert_eq!(be(&qq, ql4 + 2), be(&q[..cut], ql4 + 2).map(|_| t.sport));
        }

        // Back: the quoted tuple reversed puts every field where it was (the
        // outer source too when the error came from the quoted destination).
        let back = qk.reverse();
        if router.is_none() {
            rewrite_icmp_error(&mut p, v4, l4, &back, Part::Dst);
            rewrite_icmp_error(&mut p, v4, l4, &back, Part::Src);
            prop_assert_eq!(&p, &orig);
        } else {
            let mut r = orig.clone();
            rewrite_icmp_error(&mut r, v4, l4, &t, Part::Dst);
            rewrite_icmp_error(&mut r, v4, l4, &back, Part::Dst);
            prop_assert_eq!(&r, &orig);
        }
    }
}
