//! TCP (RFC 9293) header: ports, sequence numbers, data offset, flags.

use super::{ParseError, be16, be32, set_be16, set_be32};

pub const MIN_HEADER_LEN: usize = 20;

pub mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

pub(crate) mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const SEQ: usize = 4;
    pub const ACK: usize = 8;
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: usize = 14;
    pub const CHECKSUM: usize = 16;
    pub const URGENT: usize = 18;
}

#[derive(Debug)]
pub struct Packet<T: AsRef<[u8]>>(T);

impl<T: AsRef<[u8]>> Packet<T> {
    #[inline]
    pub fn new_unchecked(buf: T) -> Self {
        Packet(buf)
    }
    /// Data offset at least 5 words and inside the buffer.
    #[inline]
    pub fn new_checked(buf: T) -> Result<Self, ParseError> {
        let b = buf.as_ref();
        if b.len() < MIN_HEADER_LEN {
            return Err(ParseError::Truncated);
        }
        let p = Packet(buf);
        let hl = p.header_len();
        if hl < MIN_HEADER_LEN {
            return Err(ParseError::Malformed);
        }
        if hl > p.0.as_ref().len() {
            return Err(ParseError::Truncated);
        }
        Ok(p)
    }
    #[inline]
    pub fn src_port(&self) -> u16 {
        be16(self.0.as_ref(), field::SRC_PORT)
    }
    #[inline]
    pub fn dst_port(&self) -> u16 {
        be16(self.0.as_ref(), field::DST_PORT)
    }
    #[inline]
    pub fn seq(&self) -> u32 {
        be32(self.0.as_ref(), field::SEQ)
    }
    #[inline]
    pub fn ack(&self) -> u32 {
        be32(self.0.as_ref(), field::ACK)
    }
    #[inline]
    pub fn header_len(&self) -> usize {
        ((self.0.as_ref()[field::DATA_OFF] >> 4) as usize) * 4
    }
    #[inline]
    pub fn flags(&self) -> u8 {
        self.0.as_ref()[field::FLAGS]
    }
    #[inline]
    pub fn window(&self) -> u16 {
        be16(self.0.as_ref(), field::WINDOW)
    }
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.0.as_ref(), field::CHECKSUM)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    pub fn set_src_port(&mut self, p: u16) {
        set_be16(self.0.as_mut(), field::SRC_PORT, p);
    }
    #[inline]
    pub fn set_dst_port(&mut self, p: u16) {
        set_be16(self.0.as_mut(), field::DST_PORT, p);
    }
    #[inline]
    pub fn set_checksum(&mut self, c: u16) {
        set_be16(self.0.as_mut(), field::CHECKSUM, c);
    }

    /// Writes a 20-byte header without options (checksum left zero).
    #[inline]
    pub fn emit(&mut self, sport: u16, dport: u16, seq: u32, ack: u32, flags: u8, window: u16) {
        let b = self.0.as_mut();
        set_be16(b, field::SRC_PORT, sport);
        set_be16(b, field::DST_PORT, dport);
        set_be32(b, field::SEQ, seq);
        set_be32(b, field::ACK, ack);
        b[field::DATA_OFF] = 5 << 4;
        b[field::FLAGS] = flags;
        set_be16(b, field::WINDOW, window);
        set_be16(b, field::CHECKSUM, 0);
        set_be16(b, field::URGENT, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_syn() {
        // SYN 49152 -> 80 with MSS option, from a capture.
        let b = [
            0xc0, 0x00, 0x00, 0x50, 0x12, 0x34, 0x56, 0x78, 0x00, 0x00, 0x00, 0x00, 0x60, 0x02,
            0xfa, 0xf0, 0x00, 0x00, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4,
        ];
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(
            (p.src_port(), p.dst_port(), p.seq()),
            (49152, 80, 0x12345678)
        );
        assert_eq!((p.header_len(), p.flags()), (24, flags::SYN));
        assert_eq!(
            Packet::new_checked(&b[..23]).unwrap_err(),
            ParseError::Truncated
        );
        let mut bad = b;
        bad[12] = 0x40;
        assert_eq!(
            Packet::new_checked(&bad[..]).unwrap_err(),
            ParseError::Malformed
        );
    }
}
