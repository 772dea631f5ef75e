//! UDP (RFC 768). A zero checksum over IPv4 means "none"; over IPv6 it is
//! invalid (RFC 8200 section 8.1).

use super::{ParseError, be16, set_be16};

pub const HEADER_LEN: usize = 8;

pub(crate) mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const LENGTH: usize = 4;
    pub const CHECKSUM: usize = 6;
}

#[derive(Debug)]
pub struct Packet<T: AsRef<[u8]>>(T);

impl<T: AsRef<[u8]>> Packet<T> {
    #[inline]
    pub fn new_unchecked(buf: T) -> Self {
        Packet(buf)
    }
    /// Length field at least the header and no longer than the buffer.
    #[inline]
    pub fn new_checked(buf: T) -> Result<Self, ParseError> {
        let b = buf.as_ref();
        if b.len() < HEADER_LEN {
            return Err(ParseError::Truncated);
        }
        let l = be16(b, field::LENGTH) as usize;
        if l < HEADER_LEN {
            return Err(ParseError::Malformed);
        }
        if l > b.len() {
            return Err(ParseError::Truncated);
        }
        Ok(Packet(buf))
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
    pub fn length(&self) -> u16 {
        be16(self.0.as_ref(), field::LENGTH)
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
    pub fn set_length(&mut self, l: u16) {
        set_be16(self.0.as_mut(), field::LENGTH, l);
    }
    #[inline]
    pub fn set_checksum(&mut self, c: u16) {
        set_be16(self.0.as_mut(), field::CHECKSUM, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_dns_query_header() {
        let b = [
            0xd4, 0x31, 0x00, 0x35, 0x00, 0x0c, 0x12, 0x34, 0xaa, 0xbb, 0xcc, 0xdd,
        ];
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port(), p.length()), (54321, 53, 12));
        assert_eq!(
            Packet::new_checked(&b[..11]).unwrap_err(),
            ParseError::Truncated
        );
        let mut bad = b;
        bad[5] = 7;
        assert_eq!(
            Packet::new_checked(&bad[..]).unwrap_err(),
            ParseError::Malformed
        );
    }
}
