//! Ethernet II and 802.1Q / 802.1ad (QinQ) tags.
//!
//! A tag sits between the source MAC and the EtherType: TPID (0x8100 for
//! 802.1Q, 0x88a8 for an 802.1ad service tag, 0x9100 for pre-standard QinQ)
//! then the TCI (PCP 3 bits, DEI 1 bit, VID 12 bits). Popping a tag moves the
//! two MAC addresses forward by 4 bytes; pushing one moves them back into the
//! frame's headroom. Neither touches the payload.

use super::{ParseError, be16, set_be16};

pub const HEADER_LEN: usize = 14;
pub const TAG_LEN: usize = 4;

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
pub const TPID_8021Q: u16 = 0x8100;
pub const TPID_8021AD: u16 = 0x88a8;
pub const TPID_QINQ_OLD: u16 = 0x9100;

pub const BROADCAST: [u8; 6] = [0xff; 6];

mod field {
    use core::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: usize = 12;
}

#[inline]
pub fn is_vlan_tpid(t: u16) -> bool {
    t == TPID_8021Q || t == TPID_8021AD || t == TPID_QINQ_OLD
}

#[inline]
pub fn is_multicast(mac: &[u8; 6]) -> bool {
    mac[0] & 1 == 1
}

/// Formats a MAC address the way `ip link` shows it.
pub fn fmt_mac(mac: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]
    )
}

/// The IPv6 multicast MAC for an IPv6 multicast address (RFC 2464 section 7).
pub fn ipv6_multicast_mac(addr: &[u8; 16]) -> [u8; 6] {
    [0x33, 0x33, addr[12], addr[13], addr[14], addr[15]]
}

/// A view of an Ethernet II header.
#[derive(Debug)]
pub struct Frame<T: AsRef<[u8]>>(T);

impl<T: AsRef<[u8]>> Frame<T> {
    #[inline]
    pub fn new_unchecked(buf: T) -> Self {
        Frame(buf)
    }

    #[inline]
    pub fn new_checked(buf: T) -> Result<Self, ParseError> {
        if buf.as_ref().len() < HEADER_LEN {
            return Err(ParseError::Truncated);
        }
        Ok(Frame(buf))
    }

    #[inline]
    pub fn dst(&self) -> [u8; 6] {
        self.0.as_ref()[field::DST].try_into().unwrap()
    }

    #[inline]
    pub fn src(&self) -> [u8; 6] {
        self.0.as_ref()[field::SRC].try_into().unwrap()
    }

    /// The EtherType (or TPID of the first tag) at offset 12.
    #[inline]
    pub fn ethertype(&self) -> u16 {
        be16(self.0.as_ref(), field::ETHERTYPE)
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    #[inline]
    pub fn set_dst(&mut self, mac: &[u8; 6]) {
        self.0.as_mut()[field::DST].copy_from_slice(mac);
    }

    #[inline]
    pub fn set_src(&mut self, mac: &[u8; 6]) {
        self.0.as_mut()[field::SRC].copy_from_slice(mac);
    }

    #[inline]
    pub fn set_ethertype(&mut self, t: u16) {
        set_be16(self.0.as_mut(), field::ETHERTYPE, t);
    }
}

/// Up to two VLAN IDs, outermost first (the config's `vlan = [outer, inner]`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct VlanStack {
    pub len: u8,
    pub ids: [u16; 2],
}

impl VlanStack {
    pub const NONE: VlanStack = VlanStack {
        len: 0,
        ids: [0, 0],
    };

    #[inline]
    pub fn from_slice(ids: &[u16]) -> Option<Self> {
        match ids {
            [] => Some(Self::NONE),
            [a] => Some(VlanStack {
                len: 1,
                ids: [*a, 0],
            }),
            [a, b] => Some(VlanStack {
                len: 2,
                ids: [*a, *b],
            }),
            _ => None,
        }
    }

    #[inline]
    pub fn as_slice(&self) -> &[u16] {
        &self.ids[..self.len as usize]
    }
}

/// Result of reading the L2 header: tags and where L3 begins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L2Info {
    pub vlans: VlanStack,
    /// The EtherType after all tags.
    pub ethertype: u16,
    /// Offset of the L3 header.
    pub l3_off: usize,
}

/// Reads the Ethernet header and up to two VLAN tags. More than two tags is
/// `Malformed` (the dataplane classifies at most QinQ).
pub fn parse_l2(buf: &[u8]) -> Result<L2Info, ParseError> {
    if buf.len() < HEADER_LEN {
        return Err(ParseError::Truncated);
    }
    let mut off = field::ETHERTYPE;
    let mut vlans = VlanStack::NONE;
    let mut t = be16(buf, off);
    while is_vlan_tpid(t) {
        if vlans.len == 2 {
            return Err(ParseError::Malformed);
        }
        if buf.len() < off + 2 + TAG_LEN {
            return Err(ParseError::Truncated);
        }
        vlans.ids[vlans.len as usize] = be16(buf, off + 2) & 0x0fff;
        vlans.len += 1;
        off += TAG_LEN;
        t = be16(buf, off);
    }
    if t < 0x0600 {
        // An 802.3 length field (LLC/SNAP): not something a router forwards.
        return Err(ParseError::Malformed);
    }
    Ok(L2Info {
        vlans,
        ethertype: t,
        l3_off: off + 2,
    })
}

/// Removes `n` tags from the frame starting at `frame[0]` by moving the MACs
/// forward. Returns how many bytes the frame start moved (4 per tag).
pub fn pop_tags(frame: &mut [u8], n: usize) -> usize {
    let shift = n * TAG_LEN;
    if shift > 0 {
        frame.copy_within(0..12, shift);
    }
    shift
}

/// Writes tags for `vlans` in a frame whose MACs start at `frame[0]` and
/// whose EtherType sits at offset 12 + 4 * vlans.len (the caller reserved
/// room by moving the frame start back). The outer tag uses 802.1ad when
/// there are two tags (as Linux does for `vlan_protocol 802.1ad` QinQ
/// links), 802.1Q otherwise; PCP and DEI are zero.
pub fn write_tags(frame: &mut [u8], vlans: &VlanStack) {
    let shift = vlans.len as usize * TAG_LEN;
    frame.copy_within(shift..shift + 12, 0);
    for (i, id) in vlans.as_slice().iter().enumerate() {
        let off = 12 + i * TAG_LEN;
        let tpid = if vlans.len == 2 && i == 0 {
            TPID_8021AD
        } else {
            TPID_8021Q
        };
        set_be16(frame, off, tpid);
        set_be16(frame, off + 2, *id & 0x0fff);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_untagged_single_and_qinq() {
        let mut f = vec![0u8; 64];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let i = parse_l2(&f).unwrap();
        assert_eq!((i.vlans.len, i.ethertype, i.l3_off), (0, 0x0800, 14));

        f[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
        f[14..16].copy_from_slice(&0xa00au16.to_be_bytes()); // PCP 5, VID 10
        f[16..18].copy_from_slice(&0x86ddu16.to_be_bytes());
        let i = parse_l2(&f).unwrap();
        assert_eq!(
            (i.vlans.as_slice(), i.ethertype, i.l3_off),
            (&[10u16][..], 0x86dd, 18)
        );

        f[12..14].copy_from_slice(&0x88a8u16.to_be_bytes());
        f[14..16].copy_from_slice(&100u16.to_be_bytes());
        f[16..18].copy_from_slice(&0x8100u16.to_be_bytes());
        f[18..20].copy_from_slice(&10u16.to_be_bytes());
        f[20..22].copy_from_slice(&0x0806u16.to_be_bytes());
        let i = parse_l2(&f).unwrap();
        assert_eq!(
            (i.vlans.as_slice(), i.ethertype, i.l3_off),
            (&[100u16, 10][..], 0x0806, 22)
        );
    }

    #[test]
    fn rejects_short_triple_tag_and_llc() {
        assert_eq!(parse_l2(&[0u8; 13]), Err(ParseError::Truncated));
        let mut f = vec![0u8; 64];
        for off in [12, 16, 20] {
            f[off..off + 2].copy_from_slice(&0x8100u16.to_be_bytes());
        }
        assert_eq!(parse_l2(&f), Err(ParseError::Malformed));
        let mut f = vec![0u8; 64];
        f[12..14].copy_from_slice(&46u16.to_be_bytes());
        assert_eq!(parse_l2(&f), Err(ParseError::Malformed));
        let mut f = vec![0u8; 16];
        f[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
        assert_eq!(parse_l2(&f), Err(ParseError::Truncated));
    }

    #[test]
    fn pop_then_push_round_trips() {
        let mut f: Vec<u8> = (0..12).collect();
        f.extend_from_slice(&[0x81, 0x00, 0x00, 0x0a, 0x08, 0x00, 0xaa]);
        let orig = f.clone();
        let shift = pop_tags(&mut f, 1);
        let popped = f[shift..].to_vec();
        assert_eq!(&popped[..12], &orig[..12]);
        assert_eq!(&popped[12..], &[0x08, 0x00, 0xaa]);
        // Push back into the same 4 bytes of headroom.
        write_tags(&mut f, &VlanStack::from_slice(&[10]).unwrap());
        assert_eq!(f, orig);
    }
}
