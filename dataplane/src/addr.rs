//! The address key: one `u128` for an IPv4 or IPv6 address, the form every
//! table (connections, NAT ports, neighbours, rules) keys addresses by. An
//! IPv4 address is stored IPv4-mapped (`::ffff:a.b.c.d`, RFC 4291 2.5.5.2),
//! so one key type serves both families and the family of a key is a
//! compare of its upper 96 bits.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address as a table key (IPv4-mapped for IPv4).
pub type AddrKey = u128;

/// An IPv4 address as a table key.
#[inline]
pub fn v4_key(a: u32) -> AddrKey {
    0xffff_0000_0000 | a as u128
}

/// The IPv4 address of a key, if it is one.
#[inline]
pub fn key_v4(k: AddrKey) -> Option<u32> {
    (k >> 32 == 0xffff).then_some(k as u32)
}

/// The key of an address, the inverse of [`key_ip`].
pub fn ip_key(a: IpAddr) -> AddrKey {
    match a {
        IpAddr::V4(a) => v4_key(a.into()),
        IpAddr::V6(a) => a.into(),
    }
}

/// The address a key stands for.
pub fn key_ip(k: AddrKey) -> IpAddr {
    match key_v4(k) {
        Some(a) => Ipv4Addr::from(a).into(),
        None => Ipv6Addr::from(k).into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_keep_families_apart() {
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(key_ip(ip_key(v4)), v4);
        assert_eq!(key_ip(ip_key(v6)), v6);
        assert_eq!(key_v4(ip_key(v4)), Some(0xc000_0201));
        assert_eq!(key_v4(ip_key(v6)), None);
        assert_eq!(ip_key("::ffff:192.0.2.1".parse().unwrap()), ip_key(v4));
    }
}
