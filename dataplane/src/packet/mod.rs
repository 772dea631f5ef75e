//! Zero-copy views over frame bytes, and the incremental checksum.
//!
//! Each protocol is one file. A view `Foo<T: AsRef<[u8]>>` wraps a buffer;
//! `Foo::new_checked` verifies the length (and, where cheap, the header's own
//! consistency) once, so accessors never fail afterwards; setters exist when
//! `T: AsMut<[u8]>`. Field offsets are named constants in a private `field`
//! module. The parse stage (pipeline::parse) validates a frame once and
//! records layer offsets in the packet's metadata; later stages build views
//! at those offsets with `new_unchecked`.

pub mod arp;
pub mod checksum;
pub mod ether;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;
pub mod tcp;
pub mod udp;

/// Why a frame could not be parsed. Each maps to a drop reason counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Shorter than the header it claims to carry.
    Truncated,
    /// A header field has an impossible value (version, IHL, lengths).
    Malformed,
    /// Checksum does not verify.
    Checksum,
}

#[inline]
pub(crate) fn be16(b: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([b[off], b[off + 1]])
}

#[inline]
pub(crate) fn be32(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

#[inline]
pub(crate) fn set_be16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_be_bytes());
}

#[inline]
pub(crate) fn set_be32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_be_bytes());
}

/// IP protocol numbers used by the dataplane.
pub mod proto {
    pub const HOPOPT: u8 = 0;
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const IPV6_ROUTE: u8 = 43;
    pub const IPV6_FRAG: u8 = 44;
    pub const ESP: u8 = 50;
    pub const AH: u8 = 51;
    pub const ICMPV6: u8 = 58;
    pub const IPV6_NONXT: u8 = 59;
    pub const IPV6_OPTS: u8 = 60;
}
