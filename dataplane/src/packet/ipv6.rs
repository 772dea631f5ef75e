//! IPv6 (RFC 8200) and the walk over its extension headers to the upper
//! layer. The walk follows Hop-by-Hop, Routing, Fragment, Destination
//! Options and AH (RFC 4302 lengths); it stops at ESP, No Next Header or any
//! upper-layer protocol, and gives up after `MAX_EXT_HEADERS` headers.

use super::{ParseError, be16, be32, proto, set_be16};

pub const HEADER_LEN: usize = 40;
pub const MIN_MTU: usize = 1280;
pub const MAX_EXT_HEADERS: usize = 8;

pub(crate) mod field {
    pub const VER_TC_FLOW: usize = 0;
    pub const PAYLOAD_LEN: usize = 4;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: usize = 8;
    pub const DST: usize = 24;
}

#[derive(Debug)]
pub struct Packet<T: AsRef<[u8]>>(T);

impl<T: AsRef<[u8]>> Packet<T> {
    #[inline]
    pub fn new_unchecked(buf: T) -> Self {
        Packet(buf)
    }

    /// Version 6, header and payload inside the buffer. A zero payload length
    /// (a jumbogram) is refused: no link here carries one.
    #[inline]
    pub fn new_checked(buf: T) -> Result<Self, ParseError> {
        let b = buf.as_ref();
        if b.len() < HEADER_LEN {
            return Err(ParseError::Truncated);
        }
        let p = Packet(buf);
        if p.version() != 6 {
            return Err(ParseError::Malformed);
        }
        if HEADER_LEN + p.payload_len() as usize > p.0.as_ref().len() {
            return Err(ParseError::Truncated);
        }
        Ok(p)
    }

    #[inline]
    pub fn version(&self) -> u8 {
        self.0.as_ref()[field::VER_TC_FLOW] >> 4
    }
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (be16(self.0.as_ref(), 0) >> 4) as u8
    }
    #[inline]
    pub fn flow_label(&self) -> u32 {
        be32(self.0.as_ref(), 0) & 0x000f_ffff
    }
    #[inline]
    pub fn payload_len(&self) -> u16 {
        be16(self.0.as_ref(), field::PAYLOAD_LEN)
    }
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.0.as_ref()[field::NEXT_HEADER]
    }
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.0.as_ref()[field::HOP_LIMIT]
    }
    #[inline]
    pub fn src(&self) -> [u8; 16] {
        self.0.as_ref()[field::SRC..field::SRC + 16]
            .try_into()
            .unwrap()
    }
    #[inline]
    pub fn dst(&self) -> [u8; 16] {
        self.0.as_ref()[field::DST..field::DST + 16]
            .try_into()
            .unwrap()
    }
    #[inline]
    pub fn src_u128(&self) -> u128 {
        u128::from_be_bytes(self.src())
    }
    #[inline]
    pub fn dst_u128(&self) -> u128 {
        u128::from_be_bytes(self.dst())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    pub fn decrement_hop_limit(&mut self) {
        self.0.as_mut()[field::HOP_LIMIT] -= 1;
    }
    #[inline]
    pub fn set_hop_limit(&mut self, h: u8) {
        self.0.as_mut()[field::HOP_LIMIT] = h;
    }
    #[inline]
    pub fn set_src(&mut self, a: &[u8; 16]) {
        self.0.as_mut()[field::SRC..field::SRC + 16].copy_from_slice(a);
    }
    #[inline]
    pub fn set_dst(&mut self, a: &[u8; 16]) {
        self.0.as_mut()[field::DST..field::DST + 16].copy_from_slice(a);
    }
    #[inline]
    pub fn set_payload_len(&mut self, l: u16) {
        set_be16(self.0.as_mut(), field::PAYLOAD_LEN, l);
    }

    /// Writes a fixed header (traffic class and flow label zero).
    #[inline]
    pub fn emit(&mut self, src: &[u8; 16], dst: &[u8; 16], next: u8, hop: u8, payload_len: u16) {
        let b = self.0.as_mut();
        b[0..4].copy_from_slice(&[0x60, 0, 0, 0]);
        set_be16(b, field::PAYLOAD_LEN, payload_len);
        b[field::NEXT_HEADER] = next;
        b[field::HOP_LIMIT] = hop;
        b[field::SRC..field::SRC + 16].copy_from_slice(src);
        b[field::DST..field::DST + 16].copy_from_slice(dst);
    }
}

/// Where the upper layer starts after the extension headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpperLayer {
    /// Upper-layer protocol (or ESP / No Next Header when the walk stopped there).
    pub proto: u8,
    /// Offset from the start of the IPv6 header.
    pub offset: usize,
    /// A Fragment header was seen.
    pub fragment: bool,
    /// The fragment offset is non-zero: no upper-layer header in this packet.
    pub later_fragment: bool,
    /// The Fragment header's identification (when `fragment`).
    pub fragment_id: Option<u32>,
    /// The fragment's offset in bytes (0 when not a later fragment).
    pub fragment_bytes: u16,
}

/// Walks the extension headers of the IPv6 packet `pkt` (header included,
/// already validated by `Packet::new_checked`, truncated to header +
/// payload length).
pub fn walk_extensions(pkt: &[u8]) -> Result<UpperLayer, ParseError> {
    let mut next = pkt[field::NEXT_HEADER];
    let mut off = HEADER_LEN;
    let mut fragment = false;
    let mut later_fragment = false;
    let mut fragment_id = None;
    for _ in 0..=MAX_EXT_HEADERS {
        match next {
            // Hop-by-Hop is only valid first (RFC 8200 section 4.1).
            proto::HOPOPT if off != HEADER_LEN => return Err(ParseError::Malformed),
            proto::HOPOPT | proto::IPV6_ROUTE | proto::IPV6_OPTS => {
                if pkt.len() < off + 8 {
                    return Err(ParseError::Truncated);
                }
                let len = (pkt[off + 1] as usize + 1) * 8;
                next = pkt[off];
                off += len;
            }
            proto::IPV6_FRAG => {
                if pkt.len() < off + 8 {
                    return Err(ParseError::Truncated);
                }
                fragment = true;
                let fo = be16(pkt, off + 2) & 0xfff8;
                later_fragment = fo != 0;
                fragment_id = Some(u32::from_be_bytes([
                    pkt[off + 4],
                    pkt[off + 5],
                    pkt[off + 6],
                    pkt[off + 7],
                ]));
                next = pkt[off];
                off += 8;
                if later_fragment {
                    return Ok(UpperLayer {
                        proto: next,
                        offset: off,
                        fragment,
                        later_fragment,
                        fragment_id,
                        fragment_bytes: fo,
                    });
                }
            }
            proto::AH => {
                if pkt.len() < off + 8 {
                    return Err(ParseError::Truncated);
                }
                let len = (pkt[off + 1] as usize + 2) * 4;
                next = pkt[off];
                off += len;
            }
            _ => {
                if off > pkt.len() {
                    return Err(ParseError::Truncated);
                }
                return Ok(UpperLayer {
                    proto: next,
                    offset: off,
                    fragment,
                    later_fragment,
                    fragment_id,
                    fragment_bytes: 0,
                });
            }
        }
        if off > pkt.len() {
            return Err(ParseError::Truncated);
        }
    }
    Err(ParseError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(next: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; HEADER_LEN];
        Packet::new_unchecked(&mut v[..]).emit(
            &[0xfe; 16],
            &[0x20; 16],
            next,
            64,
            payload.len() as u16,
        );
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn plain_udp() {
        let p = pkt(17, &[0; 8]);
        let v = Packet::new_checked(&p[..]).unwrap();
        assert_eq!(v.hop_limit(), 64);
        assert_eq!(v.payload_len(), 8);
        assert_eq!(
            walk_extensions(&p).unwrap(),
            UpperLayer {
                proto: 17,
                offset: 40,
                fragment: false,
                later_fragment: false,
                fragment_id: None,
                fragment_bytes: 0,
            }
        );
    }

    #[test]
    fn hop_by_hop_dest_opts_fragment() {
        let mut payload = vec![60, 0, 0, 0, 0, 0, 0, 0]; // HBH -> DestOpts, 8 bytes
        payload.extend_from_slice(&[44, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // DestOpts -> Frag, 16 bytes
        payload.extend_from_slice(&[6, 0, 0, 1, 0, 0, 0, 7]); // Frag -> TCP, offset 0, M=1
        payload.extend_from_slice(&[0; 20]);
        let p = pkt(0, &payload);
        let u = walk_extensions(&p).unwrap();
        assert_eq!(
            u,
            UpperLayer {
                proto: 6,
                offset: 40 + 32,
                fragment: true,
                later_fragment: false,
                fragment_id: Some(7),
                fragment_bytes: 0,
            }
        );
        // A later fragment has no upper-layer header.
        let mut payload = vec![17, 0, 0x05, 0xa8, 0, 0, 0, 7];
        payload.extend_from_slice(&[0; 16]);
        let p = pkt(44, &payload);
        assert!(walk_extensions(&p).unwrap().later_fragment);
    }

    #[test]
    fn malformed_chains() {
        // HBH not first.
        let p = pkt(60, &[0, 0, 0, 0, 0, 0, 0, 0, 17, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(walk_extensions(&p), Err(ParseError::Malformed));
        // Extension header length runs past the packet.
        let p = pkt(60, &[17, 4, 0, 0, 0, 0, 0, 0]);
        assert_eq!(walk_extensions(&p), Err(ParseError::Truncated));
        // Endless chain of destination options.
        let mut payload = Vec::new();
        for _ in 0..12 {
            payload.extend_from_slice(&[60, 0, 0, 0, 0, 0, 0, 0]);
        }
        let p = pkt(60, &payload);
        assert_eq!(walk_extensions(&p), Err(ParseError::Malformed));
        let mut p = pkt(17, &[0; 8]);
        p[0] = 0x40;
        assert_eq!(
            Packet::new_checked(&p[..]).unwrap_err(),
            ParseError::Malformed
        );
        assert_eq!(
            Packet::new_checked(&p[..39]).unwrap_err(),
            ParseError::Truncated
        );
    }
}
