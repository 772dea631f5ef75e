//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! One module for every checksum in the dataplane: IPv4 header, ICMP,
//! ICMPv6/TCP/UDP with their pseudo-headers. Sums are accumulated in a `u32`
//! of big-endian 16-bit words and folded at the end. Rewrites (TTL, addresses,
//! ports) never recompute a whole packet: they apply RFC 1624 eqn. 3,
//! `HC' = ~(~HC + ~m + m')`, which stays correct for the 0x0000/0xFFFF corner
//! cases that the older RFC 1141 formula gets wrong.

/// Adds `data` as big-endian 16-bit words to `acc` (an odd trailing byte is
/// padded with zero, as RFC 1071 says). The result is not folded.
#[inline]
pub fn sum(data: &[u8], acc: u32) -> u32 {
    let mut acc = acc as u64;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        // Four words at a time; a u64 cannot overflow for any frame size.
        let v = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        acc += (v >> 48) + ((v >> 32) & 0xffff) + ((v >> 16) & 0xffff) + (v & 0xffff);
    }
    let rest = chunks.remainder();
    let mut pairs = rest.chunks_exact(2);
    for p in &mut pairs {
        acc += u16::from_be_bytes([p[0], p[1]]) as u64;
    }
    if let [last] = pairs.remainder() {
        acc += (*last as u64) << 8;
    }
    fold64(acc)
}

/// Folds a 64-bit accumulator into 32 bits (end-around carry). Two steps
/// always suffice: the first leaves at most 0x1_ffff_fffe, whose fold
/// cannot carry again; no loop, no branch.
#[inline]
fn fold64(acc: u64) -> u32 {
    let acc = (acc & 0xffff_ffff) + (acc >> 32);
    ((acc & 0xffff_ffff) + (acc >> 32)) as u32
}

/// Folds a 32-bit accumulator into 16 bits (end-around carry), in two
/// steps as [`fold64`].
#[inline]
pub fn fold(acc: u32) -> u16 {
    let acc = (acc & 0xffff) + (acc >> 16);
    ((acc & 0xffff) + (acc >> 16)) as u16
}

/// The checksum field value for `data` with an initial (pseudo-header) sum.
#[inline]
pub fn finish(acc: u32) -> u16 {
    !fold(acc)
}

/// Checksum of a buffer whose checksum field is zeroed (e.g. an IPv4 header).
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    finish(sum(data, 0))
}

/// True when `data`, checksum field included, sums to 0xFFFF.
#[inline]
pub fn verify(data: &[u8], acc: u32) -> bool {
    fold(sum(data, acc)) == 0xffff
}

/// True when an IPv4 header (checksum field included) sums to 0xFFFF. The
/// option-less 20-byte header, nearly every packet, takes an unrolled path.
#[inline(always)]
pub fn verify_ipv4_header(h: &[u8]) -> bool {
    if let Ok(w) = <&[u8; 20]>::try_from(h) {
        let word = |i: usize| u32::from_be_bytes([w[i], w[i + 1], w[i + 2], w[i + 3]]) as u64;
        // Five 32-bit words: the sum fits in 35 bits; three folds reach 16.
        let acc = word(0) + word(4) + word(8) + word(12) + word(16);
        let acc = (acc & 0xffff) + ((acc >> 16) & 0xffff) + (acc >> 32);
        let acc = (acc & 0xffff) + (acc >> 16);
        let acc = (acc & 0xffff) + (acc >> 16);
        return acc == 0xffff;
    }
    verify(h, 0)
}

/// Pseudo-header sum for TCP/UDP over IPv4 (RFC 793 / 768).
#[inline]
pub fn pseudo_v4(src: [u8; 4], dst: [u8; 4], proto: u8, len: u16) -> u32 {
    let s = sum(&src, 0);
    let s = sum(&dst, s);
    s + proto as u32 + len as u32
}

/// Pseudo-header sum for upper layers over IPv6 (RFC 8200 section 8.1).
#[inline]
pub fn pseudo_v6(src: &[u8; 16], dst: &[u8; 16], next_header: u8, len: u32) -> u32 {
    let s = sum(src, 0);
    let s = sum(dst, s);
    s + (len >> 16) + (len & 0xffff) + next_header as u32
}

/// RFC 1624 eqn. 3 for one 16-bit word changing from `old` to `new`.
#[inline]
pub fn update16(csum: u16, old: u16, new: u16) -> u16 {
    let acc = (!csum as u32) + (!old as u32) + new as u32;
    !fold(acc)
}

/// RFC 1624 for a 32-bit field (an IPv4 address, a TCP sequence number).
#[inline]
pub fn update32(csum: u16, old: u32, new: u32) -> u16 {
    let acc = (!csum as u32)
        + (!(old >> 16) as u16 as u32)
        + (!(old as u16) as u32)
        + (new >> 16)
        + (new & 0xffff);
    !fold(acc)
}

/// RFC 1624 for an even-length byte field (an IPv6 address, a MAC-less
/// header block). `old` and `new` must have the same even length.
#[inline]
pub fn update_bytes(csum: u16, old: &[u8], new: &[u8]) -> u16 {
    debug_assert_eq!(old.len(), new.len());
    debug_assert_eq!(old.len() % 2, 0);
    let mut acc = !csum as u32;
    for (o, n) in old.chunks_exact(2).zip(new.chunks_exact(2)) {
        acc += !u16::from_be_bytes([o[0], o[1]]) as u32;
        acc += u16::from_be_bytes([n[0], n[1]]) as u32;
        // Fold early so that very long fields cannot overflow.
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !fold(acc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: words 0001 f203 f4f5 f6f7 sum to ddf2 (folded).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&data, 0)), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn real_ipv4_header() {
        // An IPv4 header from a capture, checksum 0xb861.
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert!(verify(&h, 0));
        h[10] = 0;
        h[11] = 0;
        assert_eq!(checksum(&h), 0xb861);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(fold(sum(&[0x12, 0x34, 0x56], 0)), 0x1234 + 0x5600);
    }

    fn full(data: &[u8]) -> u16 {
        let mut d = data.to_vec();
        d[0] = 0;
        d[1] = 0;
        checksum(&d)
    }

    proptest! {
        /// Changing any 16-bit word and updating incrementally gives the same
        /// checksum as recomputing the whole buffer.
        #[test]
        fn update16_matches_recompute(mut data in proptest::collection::vec(any::<u8>(), 4..200),
                                      idx in any::<prop::sample::Index>(), new in any::<u16>()) {
            if data.len() % 2 == 1 { data.pop(); }
            let c = full(&data);
            data[0..2].copy_from_slice(&c.to_be_bytes());
            let words = data.len() / 2;
            let w = 1 + idx.index(words - 1);
            let old = u16::from_be_bytes([data[2 * w], data[2 * w + 1]]);
            data[2 * w..2 * w + 2].copy_from_slice(&new.to_be_bytes());
            let inc = update16(c, old, new);
            let want = full(&data);
            // Both 0x0000 and 0xFFFF represent zero in ones' complement; RFC
            // 1624 never produces -0 from a non-zero sum, so they must match.
            prop_assert_eq!(inc, want);
        }

        #[test]
        fn update32_and_bytes_match_recompute(mut data in proptest::collection::vec(any::<u8>(), 40..120),
                                              new4 in any::<u32>(), new16 in any::<[u8; 16]>()) {
            if data.len() % 2 == 1 { data.pop(); }
            let c = full(&data);
            data[0..2].copy_from_slice(&c.to_be_bytes());
            let old4 = u32::from_be_bytes([data[2], data[3], data[4], data[5]]);
            data[2..6].copy_from_slice(&new4.to_be_bytes());
            let c2 = update32(c, old4, new4);
            prop_assert_eq!(c2, full(&data));
            let old16: [u8; 16] = data[8..24].try_into().unwrap();
            data[8..24].copy_from_slice(&new16);
            let c3 = update_bytes(c2, &old16, &new16);
            prop_assert_eq!(c3, full(&data));
        }

        #[test]
        fn ipv4_header_fast_path_agrees(h in any::<[u8; 20]>()) {
            prop_assert_eq!(verify_ipv4_header(&h), verify(&h, 0));
        }

        #[test]
        fn sum_matches_naive(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut naive: u32 = 0;
            for (i, b) in data.iter().enumerate() {
                naive += if i % 2 == 0 { (*b as u32) << 8 } else { *b as u32 };
            }
            prop_assert_eq!(fold(sum(&data, 0)), fold(naive));
        }
    }
}
