//! ICMPv4 (RFC 792) and ICMPv6 (RFC 4443, and RFC 4861 neighbour discovery)
//! headers: type, code, checksum, then a 4-byte field (echo id/sequence,
//! next-hop MTU, pointer) and the body. ICMPv4 checksums cover the message;
//! ICMPv6 checksums add the IPv6 pseudo-header.

use super::{ParseError, be16, set_be16};

pub const HEADER_LEN: usize = 8;

/// ICMPv4 types and codes used by the router.
pub mod v4 {
    pub const ECHO_REPLY: u8 = 0;
    pub const DEST_UNREACH: u8 = 3;
    pub const ECHO_REQUEST: u8 = 8;
    pub const TIME_EXCEEDED: u8 = 11;
    pub const PARAM_PROBLEM: u8 = 12;

    pub const NET_UNREACH: u8 = 0;
    pub const HOST_UNREACH: u8 = 1;
    pub const PORT_UNREACH: u8 = 3;
    pub const FRAG_NEEDED: u8 = 4;
    pub const PKT_FILTERED: u8 = 13;

    /// True for error messages (never answered with another error, RFC 1122 3.2.2).
    #[inline]
    pub fn is_error(t: u8) -> bool {
        matches!(t, 3 | 4 | 5 | 11 | 12)
    }
}

/// ICMPv6 types and codes used by the router.
pub mod v6 {
    pub const DEST_UNREACH: u8 = 1;
    pub const PACKET_TOO_BIG: u8 = 2;
    pub const TIME_EXCEEDED: u8 = 3;
    pub const PARAM_PROBLEM: u8 = 4;
    pub const ECHO_REQUEST: u8 = 128;
    pub const ECHO_REPLY: u8 = 129;
    pub const ROUTER_SOLICIT: u8 = 133;
    pub const ROUTER_ADVERT: u8 = 134;
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    pub const NEIGHBOR_ADVERT: u8 = 136;
    pub const REDIRECT: u8 = 137;

    pub const NO_ROUTE: u8 = 0;
    pub const ADMIN_PROHIBITED: u8 = 1;
    pub const ADDR_UNREACH: u8 = 3;
    pub const PORT_UNREACH: u8 = 4;
    pub const REJECT_ROUTE: u8 = 6;

    /// Error messages have types 0..=127 (RFC 4443 section 2.1).
    #[inline]
    pub fn is_error(t: u8) -> bool {
        t < 128
    }

    /// Neighbour discovery option types (RFC 4861 section 4.6).
    pub const OPT_SOURCE_LLADDR: u8 = 1;
    pub const OPT_TARGET_LLADDR: u8 = 2;
    /// NA flags (first byte of the 4-byte field).
    pub const NA_ROUTER: u8 = 0x80;
    pub const NA_SOLICITED: u8 = 0x40;
    pub const NA_OVERRIDE: u8 = 0x20;
}

pub(crate) mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const IDENT: usize = 4;
    pub const SEQ: usize = 6;
}

#[derive(Debug)]
pub struct Packet<T: AsRef<[u8]>>(T);

impl<T: AsRef<[u8]>> Packet<T> {
    #[inline]
    pub fn new_unchecked(buf: T) -> Self {
        Packet(buf)
    }
    #[inline]
    pub fn new_checked(buf: T) -> Result<Self, ParseError> {
        if buf.as_ref().len() < HEADER_LEN {
            return Err(ParseError::Truncated);
        }
        Ok(Packet(buf))
    }
    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.0.as_ref()[field::TYPE]
    }
    #[inline]
    pub fn code(&self) -> u8 {
        self.0.as_ref()[field::CODE]
    }
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.0.as_ref(), field::CHECKSUM)
    }
    /// Echo identifier (echo request / reply only).
    #[inline]
    pub fn ident(&self) -> u16 {
        be16(self.0.as_ref(), field::IDENT)
    }
    #[inline]
    pub fn seq(&self) -> u16 {
        be16(self.0.as_ref(), field::SEQ)
    }
    /// The bytes after the 8-byte header: echo data, or the quoted packet of
    /// an error message.
    #[inline]
    pub fn body(&self) -> &[u8] {
        &self.0.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    pub fn set_type(&mut self, t: u8) {
        self.0.as_mut()[field::TYPE] = t;
    }
    #[inline]
    pub fn set_code(&mut self, c: u8) {
        self.0.as_mut()[field::CODE] = c;
    }
    #[inline]
    pub fn set_checksum(&mut self, c: u16) {
        set_be16(self.0.as_mut(), field::CHECKSUM, c);
    }
    /// The 4-byte field after the checksum (unused / MTU / pointer / id+seq).
    #[inline]
    pub fn set_rest(&mut self, v: [u8; 4]) {
        self.0.as_mut()[4..8].copy_from_slice(&v);
    }
    #[inline]
    pub fn body_mut(&mut self) -> &mut [u8] {
        &mut self.0.as_mut()[HEADER_LEN..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::checksum;

    #[test]
    fn real_echo_request() {
        // ping -c1 payload from a capture (first bytes), checksum covers all.
        let b = [0x08, 0x00, 0xf7, 0xfc, 0x00, 0x01, 0x00, 0x02];
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!((p.msg_type(), p.code(), p.ident(), p.seq()), (8, 0, 1, 2));
        assert!(checksum::verify(&b, 0));
        assert!(Packet::new_checked(&b[..7]).is_err());
    }
}
