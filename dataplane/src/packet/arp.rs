//! ARP for IPv4 over Ethernet (RFC 826): the only hardware/protocol pair a
//! router answers. Anything else is `Malformed`.

use super::{ParseError, be16, set_be16};

pub const LEN: usize = 28;
pub const OP_REQUEST: u16 = 1;
pub const OP_REPLY: u16 = 2;

mod field {
    pub const HTYPE: usize = 0;
    pub const PTYPE: usize = 2;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: usize = 6;
    pub const SHA: usize = 8;
    pub const SPA: usize = 14;
    pub const THA: usize = 18;
    pub const TPA: usize = 24;
}

#[derive(Debug)]
pub struct Packet<T: AsRef<[u8]>>(T);

impl<T: AsRef<[u8]>> Packet<T> {
    #[inline]
    pub fn new_unchecked(buf: T) -> Self {
        Packet(buf)
    }

    /// Checks the length and that this is Ethernet/IPv4 ARP.
    #[inline]
    pub fn new_checked(buf: T) -> Result<Self, ParseError> {
        let b = buf.as_ref();
        if b.len() < LEN {
            return Err(ParseError::Truncated);
        }
        if be16(b, field::HTYPE) != 1
            || be16(b, field::PTYPE) != 0x0800
            || b[field::HLEN] != 6
            || b[field::PLEN] != 4
        {
            return Err(ParseError::Malformed);
        }
        Ok(Packet(buf))
    }

    #[inline]
    pub fn operation(&self) -> u16 {
        be16(self.0.as_ref(), field::OPER)
    }
    #[inline]
    pub fn sender_mac(&self) -> [u8; 6] {
        self.0.as_ref()[field::SHA..field::SHA + 6]
            .try_into()
            .unwrap()
    }
    #[inline]
    pub fn sender_ip(&self) -> [u8; 4] {
        self.0.as_ref()[field::SPA..field::SPA + 4]
            .try_into()
            .unwrap()
    }
    #[inline]
    pub fn target_mac(&self) -> [u8; 6] {
        self.0.as_ref()[field::THA..field::THA + 6]
            .try_into()
            .unwrap()
    }
    #[inline]
    pub fn target_ip(&self) -> [u8; 4] {
        self.0.as_ref()[field::TPA..field::TPA + 4]
            .try_into()
            .unwrap()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Writes a complete Ethernet/IPv4 ARP packet.
    #[inline]
    pub fn emit(&mut self, op: u16, sha: &[u8; 6], spa: &[u8; 4], tha: &[u8; 6], tpa: &[u8; 4]) {
        let b = self.0.as_mut();
        set_be16(b, field::HTYPE, 1);
        set_be16(b, field::PTYPE, 0x0800);
        b[field::HLEN] = 6;
        b[field::PLEN] = 4;
        set_be16(b, field::OPER, op);
        b[field::SHA..field::SHA + 6].copy_from_slice(sha);
        b[field::SPA..field::SPA + 4].copy_from_slice(spa);
        b[field::THA..field::THA + 6].copy_from_slice(tha);
        b[field::TPA..field::TPA + 4].copy_from_slice(tpa);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_request() {
        // who-has 192.168.1.1 tell 192.168.1.100, from a capture.
        let b = [
            0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x00, 0x0c, 0x29, 0x3e, 0x53, 0x7a,
            0xc0, 0xa8, 0x01, 0x64, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0xa8, 0x01, 0x01,
        ];
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.operation(), OP_REQUEST);
        assert_eq!(p.sender_ip(), [192, 168, 1, 100]);
        assert_eq!(p.target_ip(), [192, 168, 1, 1]);
        assert_eq!(p.sender_mac(), [0x00, 0x0c, 0x29, 0x3e, 0x53, 0x7a]);
        let mut out = [0u8; LEN];
        Packet::new_unchecked(&mut out[..]).emit(
            OP_REQUEST,
            &p.sender_mac(),
            &p.sender_ip(),
            &[0; 6],
            &p.target_ip(),
        );
        assert_eq!(out, b);
        let mut bad = b;
        bad[5] = 16;
        assert_eq!(
            Packet::new_checked(&bad[..]).unwrap_err(),
            ParseError::Malformed
        );
        assert_eq!(
            Packet::new_checked(&b[..27]).unwrap_err(),
            ParseError::Truncated
        );
    }
}
