//! The packet header views and the checksum code over arbitrary bytes.
//! Invariants: no panic; a header `new_checked` accepts keeps every length
//! it reports inside the buffer; the IPv6 extension-header walk ends inside
//! the packet; the checksum sum equals a naive RFC 1071 model; RFC 1624
//! incremental updates (16-bit, 32-bit, byte fields) give the checksum a
//! recomputation gives.

#![no_main]

use libfuzzer_sys::fuzz_target;
use xgate_dataplane::packet::{arp, checksum, ether, icmp, ipv4, ipv6, proto, tcp, udp};

/// RFC 1071 the slow way: one 16-bit word at a time, folded at the end.
fn naive_sum(data: &[u8]) -> u16 {
    let mut acc: u64 = 0;
    for (i, b) in data.iter().enumerate() {
        acc += if i % 2 == 0 { u64::from(*b) << 8 } else { u64::from(*b) };
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// One's complement has two zeros; an incremental update may land on either.
fn same_checksum(a: u16, b: u16) -> bool {
    a == b || (a | b == 0xffff && a & b == 0)
}

fn checksums(data: &[u8]) {
    assert_eq!(checksum::fold(checksum::sum(data, 0)), naive_sum(data));
    // A buffer of whole words whose first word is the checksum field.
    let n = data.len() & !1;
    if n < 8 {
        return;
    }
    let mut buf = data[..n].to_vec();
    buf[0] = 0;
    buf[1] = 0;
    let c = checksum::checksum(&buf);
    buf[..2].copy_from_slice(&c.to_be_bytes());
    assert!(checksum::verify(&buf, 0), "a filled-in checksum verifies");
    // Change one word, then a 32-bit field, then a byte field, each to the
    // value found at the end of the input.
    let words = n / 2;
    let i = 1 + usize::from(data[2]) % (words - 1);
    let new = u16::from_be_bytes([data[n - 2], data[n - 1]]);
    let old = u16::from_be_bytes([buf[2 * i], buf[2 * i + 1]]);
    buf[2 * i..2 * i + 2].copy_from_slice(&new.to_be_bytes());
    let c = checksum::update16(c, old, new);
    let mut zeroed = buf.clone();
    zeroed[..2].fill(0);
    assert!(same_checksum(c, checksum::checksum(&zeroed)), "update16");
    buf[..2].copy_from_slice(&c.to_be_bytes());
    if words >= 3 {
        let j = 1 + usize::from(data[3]) % (words - 2);
        let at = 2 * j;
        let old = u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
        let new = u32::from_be_bytes([data[n - 4], data[n - 3], data[n - 2], data[n - 1]]);
        buf[at..at + 4].copy_from_slice(&new.to_be_bytes());
        let c = checksum::update32(c, old, new);
        let mut zeroed = buf.clone();
        zeroed[..2].fill(0);
        assert!(same_checksum(c, checksum::checksum(&zeroed)), "update32");
        buf[..2].copy_from_slice(&c.to_be_bytes());
        // The field from word 1 to the middle, replaced by the words before
        // the end of the input.
        let len = 2 * ((words - 1) / 2).max(1);
        let old = buf[2..2 + len].to_vec();
        let new = data[n - len..n].to_vec();
        buf[2..2 + len].copy_from_slice(&new);
        let c = checksum::update_bytes(c, &old, &new);
        let mut zeroed = buf.clone();
        zeroed[..2].fill(0);
        assert!(same_checksum(c, checksum::checksum(&zeroed)), "update_bytes");
    }
}

fn transport(p: u8, l4: &[u8]) {
    match p {
        proto::TCP => {
            if let Ok(t) = tcp::Packet::new_checked(l4) {
                assert!(t.header_len() >= 20 && t.header_len() <= l4.len());
                let _ = (t.src_port(), t.dst_port(), t.seq(), t.ack(), t.flags(), t.window());
            }
        }
        proto::UDP => {
            if let Ok(u) = udp::Packet::new_checked(l4) {
                let _ = (u.src_port(), u.dst_port(), u.length(), u.checksum());
            }
        }
        proto::ICMP | proto::ICMPV6 => {
            if let Ok(i) = icmp::Packet::new_checked(l4) {
                assert!(i.body().len() <= l4.len());
                let _ = (i.msg_type(), i.code(), i.ident(), i.seq());
            }
        }
        _ => {}
    }
}

fn headers(data: &[u8]) {
    let Ok(e) = ether::Frame::new_checked(data) else {
        return;
    };
    let _ = (e.dst(), e.src(), e.ethertype());
    let Ok(l2) = ether::parse_l2(data) else {
        return;
    };
    assert!(l2.l3_off == 14 + 4 * usize::from(l2.vlans.len) && l2.l3_off <= data.len());
    assert!(l2.vlans.as_slice().iter().all(|v| *v < 4096));
    // Popping the tags moves the MACs forward and keeps them.
    let mut popped = data.to_vec();
    let shift = ether::pop_tags(&mut popped, usize::from(l2.vlans.len));
    assert_eq!(shift, l2.l3_off - 14);
    assert_eq!(popped[shift..shift + 12], data[..12]);
    let ty = l2.ethertype;
    let l3 = &data[l2.l3_off..];
    match ty {
        0x0800 => {
            if let Ok(ip) = ipv4::Packet::new_checked(l3) {
                let hl = ip.header_len();
                let total = usize::from(ip.total_len());
                assert!(hl >= 20 && hl <= total && total <= l3.len());
                let _ = (ip.tos(), ip.ident(), ip.ttl(), ip.src(), ip.dst(), ip.frag_offset());
                if !ip.is_fragment() || ip.frag_offset() == 0 {
                    transport(ip.protocol(), &l3[hl..total]);
                }
            }
        }
        0x86dd => {
            if let Ok(ip) = ipv6::Packet::new_checked(l3) {
                let total = ipv6::HEADER_LEN + usize::from(ip.payload_len());
                assert!(total <= l3.len());
                let pkt = &l3[..total];
                if let Ok(up) = ipv6::walk_extensions(pkt) {
                    assert!(up.offset >= ipv6::HEADER_LEN && up.offset <= pkt.len());
                    assert!(!up.later_fragment || up.fragment);
                    if !up.later_fragment {
                        transport(up.proto, &pkt[up.offset..]);
                    }
                }
            }
        }
        0x0806 => {
            if let Ok(a) = arp::Packet::new_checked(l3) {
                let _ = (a.operation(), a.sender_mac(), a.sender_ip(), a.target_mac(), a.target_ip());
            }
        }
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    checksums(data);
    headers(data);
});
