//! Payload rewriting for helpers (Linux's `nf_nat_mangle_tcp_packet` /
//! `nf_nat_mangle_udp_packet`): replaces a byte range of a TCP or UDP
//! payload with text of another length, moving the rest of the packet,
//! then fixes the IP length (and the IPv4 header checksum) and recomputes
//! the transport checksum over the new segment. The TCP sequence numbers
//! that the length change shifts are `seqadj.rs`'s business.
//!
//! Works in place in the frame: the caller gives the packet's bytes from
//! its L3 header to the end of the frame (the tailroom included), so a
//! longer text grows into the tailroom. No allocation.

use crate::conntrack::{PROTO_TCP, PROTO_UDP};
use crate::packet::checksum;

/// Why a rewrite was not done (the packet goes on unchanged).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MangleError {
    /// The range is not inside the payload, or the headers are short.
    Bounds,
    /// The longer packet would not fit the frame or the IP length field.
    NoRoom,
}

/// Replaces `old_len` bytes at `at` (an offset from the L3 header, inside
/// the transport payload) with `new`. `buf` holds the packet from its L3
/// header (`l3_len` bytes) and the free room after it; `l4_off` is the
/// transport header's offset, `proto` TCP or UDP. Returns the new L3
/// length.
#[allow(clippy::too_many_arguments)]
pub fn replace(
    buf: &mut [u8],
    l3_len: usize,
    v4: bool,
    l4_off: usize,
    proto: u8,
    at: usize,
    old_len: usize,
    new: &[u8],
) -> Result<usize, MangleError> {
    let hdr = match proto {
        PROTO_TCP => 20,
        PROTO_UDP => 8,
        _ => return Err(MangleError::Bounds),
    };
    if l3_len > buf.len() || l4_off + hdr > l3_len || at < l4_off + hdr || at + old_len > l3_len {
        return Err(MangleError::Bounds);
    }
    let new_len = l3_len - old_len + new.len();
    let l3_limit = if v4 { 65_535 } else { 40 + 65_535 };
    if new_len > buf.len() || new_len > l3_limit {
        return Err(MangleError::NoRoom);
    }
    buf.copy_within(at + old_len..l3_len, at + new.len());
    buf[at..at + new.len()].copy_from_slice(new);
    let l4_len = new_len - l4_off;
    let pkt = &mut buf[..new_len];
    if v4 {
        pkt[2..4].copy_from_slice(&(new_len as u16).to_be_bytes());
        let hl = usize::from(pkt[0] & 0xf) * 4;
        pkt[10..12].copy_from_slice(&[0, 0]);
        let c = checksum::checksum(&pkt[..hl]);
        pkt[10..12].copy_from_slice(&c.to_be_bytes());
    } else {
        pkt[4..6].copy_from_slice(&((new_len - 40) as u16).to_be_bytes());
    }
    let pseudo = if v4 {
        let a = |i: usize| [pkt[i], pkt[i + 1], pkt[i + 2], pkt[i + 3]];
        checksum::pseudo_v4(a(12), a(16), proto, l4_len as u16)
    } else {
        let mut s = [0u8; 16];
        let mut d = [0u8; 16];
        s.copy_from_slice(&pkt[8..24]);
        d.copy_from_slice(&pkt[24..40]);
        checksum::pseudo_v6(&s, &d, proto, l4_len as u32)
    };
    let (l4, coff) = if proto == PROTO_TCP {
        (&mut pkt[l4_off..], 16)
    } else {
        let l4 = &mut pkt[l4_off..];
        l4[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
        (l4, 6)
    };
    // An IPv4 UDP datagram sent without a checksum keeps none.
    if proto == PROTO_UDP && v4 && l4[6..8] == [0, 0] {
        return Ok(new_len);
    }
    l4[coff..coff + 2].copy_from_slice(&[0, 0]);
    let mut c = checksum::finish(checksum::sum(l4, pseudo));
    if proto == PROTO_UDP && c == 0 {
        c = 0xffff;
    }
    l4[coff..coff + 2].copy_from_slice(&c.to_be_bytes());
    Ok(new_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 TCP segment 10.0.0.1:1 -> 10.0.0.2:21 with `payload`.
    fn segment(payload: &[u8], room: usize) -> (Vec<u8>, usize) {
        let l3_len = 40 + payload.len();
        let mut b = vec![0u8; l3_len + room];
        b[0] = 0x45;
        b[2..4].copy_from_slice(&(l3_len as u16).to_be_bytes());
        b[8] = 64;
        b[9] = PROTO_TCP;
        b[12..16].copy_from_slice(&[10, 0, 0, 1]);
        b[16..20].copy_from_slice(&[10, 0, 0, 2]);
        b[20..22].copy_from_slice(&1u16.to_be_bytes());
        b[22..24].copy_from_slice(&21u16.to_be_bytes());
        b[32] = 0x50;
        b[40..l3_len].copy_from_slice(payload);
        (b, l3_len)
    }

    fn valid(b: &[u8], l3_len: usize) -> bool {
        let a = |i: usize| [b[i], b[i + 1], b[i + 2], b[i + 3]];
        let p = checksum::pseudo_v4(a(12), a(16), PROTO_TCP, (l3_len - 20) as u16);
        checksum::verify(&b[..20], 0) && checksum::verify(&b[20..l3_len], p)
    }

    #[test]
    fn grows_and_shrinks_with_valid_checksums() {
        let (mut b, len) = segment(b"PORT 10,0,0,1,4,1\r\n", 64);
        let at = 40 + 5;
        let n = replace(
            &mut b,
            len,
            true,
            20,
            PROTO_TCP,
            at,
            12,
            b"192,168,100,200,4,1",
        )
        .unwrap();
        assert_eq!(n, len + 7);
        assert_eq!(&b[40..n], b"PORT 192,168,100,200,4,1\r\n");
        assert!(valid(&b, n));
        let m = replace(&mut b, n, true, 20, PROTO_TCP, at, 19, b"1,2,3,4,0,21").unwrap();
        assert_eq!(&b[40..m], b"PORT 1,2,3,4,0,21\r\n");
        assert!(valid(&b, m));
    }

    #[test]
    fn refuses_without_room_or_out_of_bounds() {
        let (mut b, len) = segment(b"PORT 1,2,3,4,5,6\r\n", 2);
        assert_eq!(
            replace(
                &mut b,
                len,
                true,
                20,
                PROTO_TCP,
                45,
                11,
                b"100,200,100,200,5,6"
            ),
            Err(MangleError::NoRoom)
        );
        assert_eq!(
            replace(&mut b, len, true, 20, PROTO_TCP, 30, 4, b"x"),
            Err(MangleError::Bounds)
        );
        assert_eq!(
            replace(&mut b, len, true, 20, PROTO_TCP, 50, 400, b"x"),
            Err(MangleError::Bounds)
        );
    }
}
