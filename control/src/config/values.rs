//! Parsers for the scalar values a config holds as strings: MAC addresses, IP
//! addresses and prefixes, routing table names, fwmarks. Each error is a
//! message ready to be put in a `ConfigError`.

use std::net::IpAddr;

use ipnet::IpNet;

use super::model::{TABLE_DEFAULT, TABLE_LOCAL, TABLE_MAIN};

/// Parses `aa:bb:cc:dd:ee:ff` (six pairs of hex digits, either case).
pub fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let bad =
        || format!("invalid MAC address {s:?}: expected six hex pairs like \"02:00:00:00:00:01\"");
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for byte in &mut mac {
        let part = parts.next().ok_or_else(bad)?;
        if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
    }
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok(mac)
}

/// Parses a MAC address usable as a station address: not all-zero, not multicast/broadcast.
pub fn parse_unicast_mac(s: &str) -> Result<[u8; 6], String> {
    let mac = parse_mac(s)?;
    if mac == [0; 6] {
        return Err(format!("invalid MAC address {s:?}: all-zero"));
    }
    if mac[0] & 1 != 0 {
        return Err(format!(
            "invalid MAC address {s:?}: multicast (low bit of the first octet is set)"
        ));
    }
    Ok(mac)
}

/// Formats a MAC address as `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    let [a, b, c, d, e, f] = *mac;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}

/// Parses an IP address (no prefix, no zone).
pub fn parse_ip(s: &str) -> Result<IpAddr, String> {
    s.parse().map_err(|_| format!("invalid IP address {s:?}"))
}

fn max_len(addr: &IpAddr) -> u8 {
    if addr.is_ipv4() { 32 } else { 128 }
}

/// Splits `addr/len`; `bare_ok` lets a bare address stand for a host prefix.
fn prefix_parts(s: &str, bare_ok: bool) -> Result<(IpAddr, u8), String> {
    let (addr_s, len_s) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let addr: IpAddr = addr_s
        .parse()
        .map_err(|_| format!("{addr_s:?} is not an IP address"))?;
    let max = max_len(&addr);
    let len = match len_s {
        None if bare_ok => max,
        None => {
            return Err(format!(
                "missing prefix length (write \"{addr}/{max}\" for a single address)"
            ));
        }
        Some(l) => {
            if l.is_empty() || l.len() > 3 || !l.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("prefix length {l:?} is not a number"));
            }
            // At most 3 digits, so this fits in a u16.
            let n: u16 = l
                .parse()
                .map_err(|_| format!("prefix length {l:?} is not a number"))?;
            if n > u16::from(max) {
                return Err(format!("prefix length {n} > {max}"));
            }
            u8::try_from(n).map_err(|_| format!("prefix length {n} > {max}"))?
        }
    };
    Ok((addr, len))
}

/// Parses an interface address: `addr/len`, host bits kept (`192.168.10.1/24`).
pub fn parse_host_prefix(s: &str) -> Result<IpNet, String> {
    let (addr, len) = prefix_parts(s, false).map_err(|e| format!("invalid prefix {s:?}: {e}"))?;
    let net = IpNet::new(addr, len).map_err(|e| format!("invalid prefix {s:?}: {e}"))?;
    check_interface_address(&net).map_err(|e| format!("invalid address {s:?}: {e}"))?;
    Ok(net)
}

/// Rejects addresses a router cannot own.
fn check_interface_address(net: &IpNet) -> Result<(), String> {
    let addr = net.addr();
    if addr.is_unspecified() {
        return Err("unspecified address".into());
    }
    if addr.is_multicast() {
        return Err("multicast address".into());
    }
    if addr.is_loopback() {
        return Err("loopback address".into());
    }
    if net.prefix_len() == 0 {
        return Err("prefix length 0".into());
    }
    if let IpNet::V4(v4) = net {
        if v4.addr().is_broadcast() {
            return Err("broadcast address".into());
        }
        // /31 (RFC 3021) and /32 have no network or broadcast address.
        if v4.prefix_len() <= 30 {
            if v4.addr() == v4.network() {
                return Err(format!("it is the network address of {}", v4.trunc()));
            }
            if v4.addr() == v4.broadcast() {
                return Err(format!("it is the broadcast address of {}", v4.trunc()));
            }
        }
    }
    Ok(())
}

/// Parses a route or rule destination like `ip route` does: `addr/len` with
/// zero host bits, or a bare address meaning a host prefix (/32, /128).
pub fn parse_network(s: &str) -> Result<IpNet, String> {
    let (addr, len) = prefix_parts(s, true).map_err(|e| format!("invalid prefix {s:?}: {e}"))?;
    let net = IpNet::new(addr, len).map_err(|e| format!("invalid prefix {s:?}: {e}"))?;
    if net.trunc() != net {
        return Err(format!(
            "invalid prefix {s:?}: invalid prefix for given prefix length (did you mean \"{}\"?)",
            net.trunc()
        ));
    }
    Ok(net)
}

/// Rejects gateway and neighbor addresses that cannot be a next hop.
pub fn check_unicast_ip(ip: &IpAddr) -> Result<(), String> {
    if ip.is_unspecified() {
        return Err(format!("{ip} is the unspecified address"));
    }
    if ip.is_multicast() {
        return Err(format!("{ip} is a multicast address"));
    }
    if ip.is_loopback() {
        return Err(format!("{ip} is a loopback address"));
    }
    if let IpAddr::V4(v4) = ip
        && v4.is_broadcast()
    {
        return Err(format!("{ip} is the broadcast address"));
    }
    Ok(())
}

/// True for IPv6 link-local unicast (fe80::/10).
pub fn is_link_local_v6(ip: &IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80)
}

/// Parses a routing table: `main` (254), `local` (255), `default` (253) or a number 1..=4294967295.
pub fn parse_table(s: &str) -> Result<u32, String> {
    match s {
        "main" => Ok(TABLE_MAIN),
        "local" => Ok(TABLE_LOCAL),
        "default" => Ok(TABLE_DEFAULT),
        _ => match s.parse::<u32>() {
            Ok(0) => Err("table 0 is reserved (unspec)".into()),
            Ok(n) => Ok(n),
            Err(_) => Err(format!(
                "invalid table {s:?}: expected main, local, default or a number 1..=4294967295"
            )),
        },
    }
}

/// The name `ip route` shows for a table id.
pub fn table_name(id: u32) -> String {
    match id {
        TABLE_MAIN => "main".into(),
        TABLE_LOCAL => "local".into(),
        TABLE_DEFAULT => "default".into(),
        n => n.to_string(),
    }
}

fn parse_u32_auto(s: &str) -> Option<u32> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            u32::from_str_radix(hex, 16).ok()
        }
        Some(_) => None,
        None if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
        None => None,
    }
}

/// Parses an fwmark selector `value[/mask]` (decimal or 0x-hex); mask defaults to 0xffffffff.
pub fn parse_fwmark(s: &str) -> Result<(u32, u32), String> {
    let (v, m) = match s.split_once('/') {
        Some((v, m)) => (v, Some(m)),
        None => (s, None),
    };
    let bad = || format!("invalid fwmark {s:?}: expected VALUE or VALUE/MASK, like \"0x10/0xff\"");
    let value = parse_u32_auto(v.trim()).ok_or_else(bad)?;
    let mask = match m {
        Some(m) => parse_u32_auto(m.trim()).ok_or_else(bad)?,
        None => u32::MAX,
    };
    check_fwmark(value, mask).map_err(|e| format!("invalid fwmark {s:?}: {e}"))?;
    Ok((value, mask))
}

/// A mark selector must have a non-zero mask and no value bits outside the mask.
pub fn check_fwmark(value: u32, mask: u32) -> Result<(), String> {
    if mask == 0 {
        return Err("mask 0 would match every packet; leave fwmark out instead".into());
    }
    if value & !mask != 0 {
        return Err(format!("value {value:#x} has bits outside mask {mask:#x}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac() {
        assert_eq!(parse_mac("02:00:00:00:10:2A"), Ok([2, 0, 0, 0, 0x10, 0x2a]));
        for bad in [
            "",
            "02:00:00:00:10",
            "02:00:00:00:10:20:30",
            "2:0:0:0:0:1",
            "02-00-00-00-00-01",
            "0g:00:00:00:00:01",
            "02:00:00:00:00:+1",
        ] {
            assert!(parse_mac(bad).is_err(), "{bad}");
        }
        assert!(
            parse_unicast_mac("00:00:00:00:00:00")
                .unwrap_err()
                .contains("all-zero")
        );
        assert!(
            parse_unicast_mac("01:00:5e:00:00:01")
                .unwrap_err()
                .contains("multicast")
        );
        assert!(
            parse_unicast_mac("ff:ff:ff:ff:ff:ff")
                .unwrap_err()
                .contains("multicast")
        );
        assert_eq!(format_mac(&[2, 0, 0, 0, 0x10, 0x2a]), "02:00:00:00:10:2a");
    }

    #[test]
    fn host_prefix() {
        let n = parse_host_prefix("192.168.10.1/24").unwrap();
        assert_eq!(n.to_string(), "192.168.10.1/24");
        assert_eq!(
            parse_host_prefix("2001:db8:1::2/64").unwrap().prefix_len(),
            64
        );
        assert_eq!(
            parse_host_prefix("192.168.10.1/33").unwrap_err(),
            "invalid prefix \"192.168.10.1/33\": prefix length 33 > 32"
        );
        assert!(
            parse_host_prefix("2001:db8::1/129")
                .unwrap_err()
                .contains("129 > 128")
        );
        assert!(
            parse_host_prefix("192.168.10.1")
                .unwrap_err()
                .contains("missing prefix length")
        );
        assert!(
            parse_host_prefix("192.168.10.1/")
                .unwrap_err()
                .contains("not a number")
        );
        assert!(
            parse_host_prefix("192.168.10.1/99999")
                .unwrap_err()
                .contains("not a number")
        );
        assert!(
            parse_host_prefix("192.168.10.256/24")
                .unwrap_err()
                .contains("not an IP address")
        );
        assert!(
            parse_host_prefix("192.168.10.0/24")
                .unwrap_err()
                .contains("network address")
        );
        assert!(
            parse_host_prefix("192.168.10.255/24")
                .unwrap_err()
                .contains("broadcast address")
        );
        assert!(parse_host_prefix("10.0.0.0/31").is_ok());
        assert!(
            parse_host_prefix("0.0.0.0/8")
                .unwrap_err()
                .contains("unspecified")
        );
        assert!(
            parse_host_prefix("224.0.0.1/4")
                .unwrap_err()
                .contains("multicast")
        );
        assert!(
            parse_host_prefix("127.0.0.1/8")
                .unwrap_err()
                .contains("loopback")
        );
        assert!(
            parse_host_prefix("10.0.0.1/0")
                .unwrap_err()
                .contains("prefix length 0")
        );
    }

    #[test]
    fn network() {
        assert_eq!(parse_network("0.0.0.0/0").unwrap().to_string(), "0.0.0.0/0");
        assert_eq!(
            parse_network("10.1.2.3").unwrap().to_string(),
            "10.1.2.3/32"
        );
        assert_eq!(parse_network("2001:db8::/32").unwrap().prefix_len(), 32);
        assert_eq!(parse_network("::1").unwrap().prefix_len(), 128);
        let e = parse_network("10.0.0.1/8").unwrap_err();
        assert!(e.contains("invalid prefix for given prefix length"), "{e}");
        assert!(e.contains("10.0.0.0/8"), "{e}");
        assert!(parse_network("default").is_err());
    }

    #[test]
    fn unicast_ip() {
        assert!(check_unicast_ip(&"10.0.0.1".parse().unwrap()).is_ok());
        for bad in [
            "0.0.0.0",
            "::",
            "224.0.0.1",
            "ff02::1",
            "127.0.0.1",
            "::1",
            "255.255.255.255",
        ] {
            assert!(check_unicast_ip(&bad.parse().unwrap()).is_err(), "{bad}");
        }
        assert!(is_link_local_v6(&"fe80::1".parse().unwrap()));
        assert!(!is_link_local_v6(&"2001:db8::1".parse().unwrap()));
        assert!(!is_link_local_v6(&"169.254.0.1".parse().unwrap()));
    }

    #[test]
    fn tables() {
        assert_eq!(parse_table("main"), Ok(254));
        assert_eq!(parse_table("local"), Ok(255));
        assert_eq!(parse_table("default"), Ok(253));
        assert_eq!(parse_table("100"), Ok(100));
        assert_eq!(parse_table("4294967295"), Ok(u32::MAX));
        assert!(parse_table("0").is_err());
        assert!(parse_table("4294967296").is_err());
        assert!(parse_table("mian").is_err());
        assert_eq!(table_name(254), "main");
        assert_eq!(table_name(7), "7");
    }

    #[test]
    fn fwmark() {
        assert_eq!(parse_fwmark("0x10/0xff"), Ok((0x10, 0xff)));
        assert_eq!(parse_fwmark("16"), Ok((16, u32::MAX)));
        assert_eq!(parse_fwmark("0x10"), Ok((16, u32::MAX)));
        assert_eq!(parse_fwmark("1/3"), Ok((1, 3)));
        assert!(
            parse_fwmark("0x110/0xff")
                .unwrap_err()
                .contains("outside mask")
        );
        assert!(parse_fwmark("1/0").unwrap_err().contains("mask 0"));
        for bad in ["", "/", "0x", "x10", "-1", "1/", "0x1ffffffff", "1/2/3"] {
            assert!(parse_fwmark(bad).is_err(), "{bad}");
        }
    }
}
