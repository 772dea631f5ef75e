//! IPv4 (RFC 791). `new_checked` validates version, IHL, total length
//! against the buffer and the header checksum, so a view that exists is a
//! header a router may act on. Options are kept and skipped; fragments are
//! recognised (only the first carries the L4 header).

use super::{ParseError, be16, checksum, set_be16};

pub const MIN_HEADER_LEN: usize = 20;
pub const FLAG_DF: u16 = 0x4000;
pub const FLAG_MF: u16 = 0x2000;
pub const FRAG_OFFSET_MASK: u16 = 0x1fff;

pub(crate) mod field {
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const TOTAL_LEN: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLAGS_FRAG: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTO: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: usize = 12;
    pub const DST: usize = 16;
}

#[derive(Debug)]
pub struct Packet<T: AsRef<[u8]>>(T);

impl<T: AsRef<[u8]>> Packet<T> {
    #[inline]
    pub fn new_unchecked(buf: T) -> Self {
        Packet(buf)
    }

    /// Validates the header as `ip_rcv` does: version 4, IHL >= 5, header
    /// and total length inside the buffer, total length >= IHL, checksum.
    #[inline]
    pub fn new_checked(buf: T) -> Result<Self, ParseError> {
        let b = buf.as_ref();
        if b.len() < MIN_HEADER_LEN {
            return Err(ParseError::Truncated);
        }
        let p = Packet(buf);
        let hl = p.header_len();
        if p.version() != 4 || hl < MIN_HEADER_LEN {
            return Err(ParseError::Malformed);
        }
        let total = p.total_len() as usize;
        let b = p.0.as_ref();
        if b.len() < hl {
            return Err(ParseError::Truncated);
        }
        if total < hl {
            return Err(ParseError::Malformed);
        }
        if total > b.len() {
            return Err(ParseError::Truncated);
        }
        if !checksum::verify_ipv4_header(&b[..hl]) {
            return Err(ParseError::Checksum);
        }
        Ok(p)
    }

    #[inline]
    pub fn version(&self) -> u8 {
        self.0.as_ref()[field::VER_IHL] >> 4
    }
    #[inline]
    pub fn header_len(&self) -> usize {
        ((self.0.as_ref()[field::VER_IHL] & 0x0f) as usize) * 4
    }
    #[inline]
    pub fn tos(&self) -> u8 {
        self.0.as_ref()[field::TOS]
    }
    #[inline]
    pub fn total_len(&self) -> u16 {
        be16(self.0.as_ref(), field::TOTAL_LEN)
    }
    #[inline]
    pub fn ident(&self) -> u16 {
        be16(self.0.as_ref(), field::IDENT)
    }
    #[inline]
    pub fn flags_frag(&self) -> u16 {
        be16(self.0.as_ref(), field::FLAGS_FRAG)
    }
    #[inline]
    pub fn dont_fragment(&self) -> bool {
        self.flags_frag() & FLAG_DF != 0
    }
    #[inline]
    pub fn more_fragments(&self) -> bool {
        self.flags_frag() & FLAG_MF != 0
    }
    /// Fragment offset in bytes.
    #[inline]
    pub fn frag_offset(&self) -> usize {
        ((self.flags_frag() & FRAG_OFFSET_MASK) as usize) * 8
    }
    /// Part of a fragmented datagram (first or later).
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.flags_frag() & (FLAG_MF | FRAG_OFFSET_MASK) != 0
    }
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.0.as_ref()[field::TTL]
    }
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.0.as_ref()[field::PROTO]
    }
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.0.as_ref(), field::CHECKSUM)
    }
    #[inline]
    pub fn src(&self) -> [u8; 4] {
        self.0.as_ref()[field::SRC..field::SRC + 4]
            .try_into()
            .unwrap()
    }
    #[inline]
    pub fn dst(&self) -> [u8; 4] {
        self.0.as_ref()[field::DST..field::DST + 4]
            .try_into()
            .unwrap()
    }
    #[inline]
    pub fn src_u32(&self) -> u32 {
        u32::from_be_bytes(self.src())
    }
    #[inline]
    pub fn dst_u32(&self) -> u32 {
        u32::from_be_bytes(self.dst())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Decrements the TTL and patches the header checksum (RFC 1624): TTL
    /// and protocol share one 16-bit word.
    #[inline]
    pub fn decrement_ttl(&mut self) {
        let b = self.0.as_mut();
        let old = be16(b, field::TTL);
        b[field::TTL] -= 1;
        let new = be16(b, field::TTL);
        let c = checksum::update16(be16(b, field::CHECKSUM), old, new);
        set_be16(b, field::CHECKSUM, c);
    }

    #[inline]
    pub fn set_src(&mut self, a: [u8; 4]) {
        self.0.as_mut()[field::SRC..field::SRC + 4].copy_from_slice(&a);
    }
    #[inline]
    pub fn set_dst(&mut self, a: [u8; 4]) {
        self.0.as_mut()[field::DST..field::DST + 4].copy_from_slice(&a);
    }
    #[inline]
    pub fn set_ttl(&mut self, ttl: u8) {
        self.0.as_mut()[field::TTL] = ttl;
    }
    #[inline]
    pub fn set_total_len(&mut self, len: u16) {
        set_be16(self.0.as_mut(), field::TOTAL_LEN, len);
    }
    #[inline]
    pub fn set_flags_frag(&mut self, v: u16) {
        set_be16(self.0.as_mut(), field::FLAGS_FRAG, v);
    }
    #[inline]
    pub fn set_checksum(&mut self, c: u16) {
        set_be16(self.0.as_mut(), field::CHECKSUM, c);
    }

    /// Recomputes the header checksum from scratch (for headers we build).
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = self.header_len();
        let c = checksum::checksum(&self.0.as_ref()[..hl]);
        self.set_checksum(c);
    }

    /// Writes a 20-byte header without options and fills its checksum.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub fn emit(
        &mut self,
        src: [u8; 4],
        dst: [u8; 4],
        proto: u8,
        ttl: u8,
        total_len: u16,
        ident: u16,
        tos: u8,
    ) {
        let b = self.0.as_mut();
        b[field::VER_IHL] = 0x45;
        b[field::TOS] = tos;
        set_be16(b, field::TOTAL_LEN, total_len);
        set_be16(b, field::IDENT, ident);
        set_be16(b, field::FLAGS_FRAG, 0);
        b[field::TTL] = ttl;
        b[field::PROTO] = proto;
        b[field::SRC..field::SRC + 4].copy_from_slice(&src);
        b[field::DST..field::DST + 4].copy_from_slice(&dst);
        self.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HDR: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];

    fn packet() -> Vec<u8> {
        let mut v = HDR.to_vec();
        v.resize(0x73, 0);
        v
    }

    #[test]
    fn accessors() {
        let b = packet();
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 0x73);
        assert!(p.dont_fragment());
        assert!(!p.is_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), 17);
        assert_eq!(p.src(), [192, 168, 0, 1]);
        assert_eq!(p.dst(), [192, 168, 0, 199]);
    }

    #[test]
    fn validation() {
        let b = packet();
        assert_eq!(
            Packet::new_checked(&b[..19]).unwrap_err(),
            ParseError::Truncated
        );
        assert_eq!(
            Packet::new_checked(&b[..0x72]).unwrap_err(),
            ParseError::Truncated
        );
        let mut bad = b.clone();
        bad[0] = 0x44;
        assert_eq!(
            Packet::new_checked(&bad[..]).unwrap_err(),
            ParseError::Malformed
        );
        let mut bad = b.clone();
        bad[0] = 0x65;
        assert_eq!(
            Packet::new_checked(&bad[..]).unwrap_err(),
            ParseError::Malformed
        );
        let mut bad = b.clone();
        bad[15] ^= 1;
        assert_eq!(
            Packet::new_checked(&bad[..]).unwrap_err(),
            ParseError::Checksum
        );
    }

    #[test]
    fn ttl_decrement_keeps_checksum_valid() {
        let mut b = packet();
        let mut p = Packet::new_unchecked(&mut b[..]);
        for _ in 0..63 {
            p.decrement_ttl();
            assert!(checksum::verify(&p.0[..20], 0));
        }
        assert_eq!(p.ttl(), 1);
    }
}
