//! `TCPMSS` / nftables' `tcp option maxseg size set`: a SYN's MSS option
//! lowered to what the rule allows (a value, or the egress MTU less the
//! IP and TCP headers), never raised (a larger MSS can stall the
//! connection: the kernel's rule too), the checksum updated incrementally
//! (RFC 1624). A SYN without an MSS option is left alone: Linux would add
//! one at the protocol default (536 for IPv4, 1220 for IPv6), which any
//! clamp at or above that default leaves meaning the same.

use super::{L3, L3_OFF, Meta, Pipeline, flags};
use crate::filter::MSS_PMTU;
use crate::packet::checksum::update16;

const PROTO_TCP: u8 = 6;

impl Pipeline {
    /// Lowers the MSS of TCP SYN `m` to `want` ([`MSS_PMTU`]: its egress
    /// interface's MTU less 40 bytes of headers, 60 for IPv6).
    #[cold]
    #[inline(never)]
    pub(super) fn clamp_mss(&self, umem: &mut [u8], m: &Meta, want: u16) {
        if m.proto != PROTO_TCP || m.has(flags::LATER_FRAGMENT) {
            return;
        }
        let v4 = m.l3 == L3::V4;
        let max = if want == MSS_PMTU {
            let mtu = self.tables.interfaces.hot(m.oif).mtu;
            mtu.saturating_sub(if v4 { 40 } else { 60 })
        } else {
            want
        };
        let len = m.l3_len as usize;
        let l3 = &mut m.desc.bytes_mut(umem)[L3_OFF..L3_OFF + len];
        if let Some(tcp) = l3.get_mut(m.l4_off as usize..) {
            lower_mss(tcp, max);
        }
    }
}

/// In TCP segment `tcp` (header first), a SYN's MSS option lowered to
/// `max` when it announces more; whether it changed. Malformed options
/// end the search.
pub(crate) fn lower_mss(tcp: &mut [u8], max: u16) -> bool {
    if tcp.len() < 20 || tcp[13] & 0x02 == 0 {
        return false;
    }
    let hl = usize::from(tcp[12] >> 4) * 4;
    if hl < 20 || hl > tcp.len() {
        return false;
    }
    let mut i = 20;
    while i < hl {
        match tcp[i] {
            0 => break,
            1 => i += 1,
            kind => {
                let Some(&l) = tcp.get(i + 1) else { break };
                let l = usize::from(l);
                if l < 2 || i + l > hl {
                    break;
                }
                if kind == 2 && l == 4 {
                    let old = u16::from_be_bytes([tcp[i + 2], tcp[i + 3]]);
                    if old <= max {
                        return false;
                    }
                    // The 16-bit words (aligned to the header) the value
                    // spans: one, or two when it starts at an odd offset.
                    let (s, e) = ((i + 2) & !1, (i + 5) & !1);
                    let word = |t: &[u8], k: usize| u16::from_be_bytes([t[k], t[k + 1]]);
                    let before = [word(tcp, s), if e - s > 2 { word(tcp, s + 2) } else { 0 }];
                    tcp[i + 2..i + 4].copy_from_slice(&max.to_be_bytes());
                    let mut csum = word(tcp, 16);
                    for (k, old) in before.into_iter().enumerate().take((e - s) / 2) {
                        csum = update16(csum, old, word(tcp, s + 2 * k));
                    }
                    tcp[16..18].copy_from_slice(&csum.to_be_bytes());
                    return true;
                }
                i += l;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::checksum::{fold, sum};

    /// A SYN with `opts`, its checksum over a zero pseudo-header sum.
    fn syn(opts: &[u8]) -> Vec<u8> {
        let hl = 20 + opts.len();
        let mut t = vec![0u8; hl];
        t[0..4].copy_from_slice(&[0x9c, 0x40, 0x00, 0x50]);
        t[12] = ((hl / 4) as u8) << 4;
        t[13] = 0x02;
        t[20..].copy_from_slice(opts);
        let c = !fold(sum(&t, 0));
        t[16..18].copy_from_slice(&c.to_be_bytes());
        t
    }

    fn valid(t: &[u8]) -> bool {
        fold(sum(t, 0)) == 0xffff
    }

    #[test]
    fn lowers_at_even_and_odd_offsets_keeping_the_checksum() {
        for opts in [
            &[2u8, 4, 0x05, 0xb4, 1, 1, 4, 2][..],
            &[1, 2, 4, 0x05, 0xb4, 1, 4, 2],
            &[1, 1, 1, 2, 4, 0x05, 0xb4, 0],
        ] {
            let mut t = syn(opts);
            assert!(valid(&t));
            assert!(lower_mss(&mut t, 1400), "{opts:?}");
            let i = t[20..].windows(2).position(|w| w == [2, 4]).unwrap() + 20;
            assert_eq!(u16::from_be_bytes([t[i + 2], t[i + 3]]), 1400);
            assert!(valid(&t), "{opts:?}");
        }
    }

    #[test]
    fn never_raises_and_leaves_odd_segments() {
        let mut t = syn(&[2, 4, 0x05, 0x00]);
        let copy = t.clone();
        assert!(!lower_mss(&mut t, 1400), "1280 stays");
        assert_eq!(t, copy);
        let mut ack = syn(&[2, 4, 0x05, 0xb4]);
        ack[13] = 0x10;
        assert!(!lower_mss(&mut ack, 1000), "not a SYN");
        // Malformed: an option running past the header, a zero length.
        for opts in [&[3u8, 9, 0, 0][..], &[8, 0, 2, 4]] {
            let mut t = syn(opts);
            assert!(!lower_mss(&mut t, 1000));
        }
        assert!(!lower_mss(&mut [0u8; 10], 1000));
    }
}
