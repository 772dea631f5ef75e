//! ipsets as `ipset save` writes them (`create NAME TYPE [options]`, `add
//! NAME ELEMENT [options]`), for `-m set --match-set NAME src|dst`: the
//! sets of addresses and networks rulesets name (fail2ban's, a country
//! block list, a VPN's peers). Types `hash:ip`, `hash:net` and
//! `bitmap:ip`, IPv4 (`family inet`) or IPv6 (`family inet6`); elements
//! are addresses, networks (`10.0.0.0/8`) and ranges (`10.0.0.1-10.0.0.9`).
//! The contents are those of the file: `ipset add` at run time is not
//! seen (reload the config), an element's `timeout` is not kept
//! (the element stays), `nomatch` elements and other types are refused.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use xgate_dataplane::addr::ip_key;

/// One set: its IPv4-ness, its bound (`maxelem`, default 65536) and its
/// members as inclusive key ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpSet {
    pub v4: bool,
    pub maxelem: usize,
    pub ranges: Vec<(u128, u128)>,
    /// `hash:ip,port`: its entries (address, protocol, port), each
    /// address and port of an element's ranges one entry, as the kernel
    /// stores them.
    pub ports: Option<Vec<(u128, u8, u16)>>,
}

/// ipset's default `maxelem`.
pub const MAXELEM: usize = 65536;

/// Parses `ipset save` text; errors name the line (counted from `first`).
pub fn parse(text: &str, first: usize) -> Result<BTreeMap<String, IpSet>, (usize, String)> {
    let mut sets: BTreeMap<String, IpSet> = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = first + i;
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let w: Vec<&str> = l.split_whitespace().collect();
        match w[0] {
            "create" | "-N" | "-exist" => {
                let (Some(name), Some(ty)) = (w.get(1), w.get(2)) else {
                    return Err((line, "create NAME TYPE".into()));
                };
                if !matches!(*ty, "hash:ip" | "hash:net" | "bitmap:ip" | "hash:ip,port") {
                    return Err((
                        line,
                        format!(
                            "ipset type {ty}: xgate reads hash:ip, hash:net, bitmap:ip and hash:ip,port"
                        ),
                    ));
                }
                let v4 = match w
                    .iter()
                    .position(|x| *x == "family")
                    .and_then(|p| w.get(p + 1))
                {
                    None | Some(&"inet") => true,
                    Some(&"inet6") => false,
                    Some(f) => return Err((line, format!("family {f}: inet or inet6"))),
                };
                let maxelem = match w.iter().position(|x| *x == "maxelem").map(|p| w.get(p + 1)) {
                    None => MAXELEM,
                    Some(Some(n)) => match n.parse::<usize>() {
                        Ok(n) if (1..=1 << 24).contains(&n) => n,
                        _ => return Err((line, format!("maxelem {n}: 1 to {}", 1 << 24))),
                    },
                    Some(None) => return Err((line, "maxelem needs a number".into())),
                };
                if sets.contains_key(*name) {
                    return Err((line, format!("set {name} is created twice")));
                }
                sets.insert(
                    name.to_string(),
                    IpSet {
                        v4,
                        maxelem,
                        ranges: Vec::new(),
                        ports: (*ty == "hash:ip,port").then(Vec::new),
                    },
                );
            }
            "add" | "-A" => {
                let (Some(name), Some(elem)) = (w.get(1), w.get(2)) else {
                    return Err((line, "add NAME ELEMENT".into()));
                };
                if w.contains(&"nomatch") {
                    return Err((line, "nomatch elements are not supported".into()));
                }
                let Some(set) = sets.get_mut(*name) else {
                    return Err((line, format!("add to set {name}, never created")));
                };
                let family = |v4: bool| {
                    if v4 == set.v4 {
                        Ok(())
                    } else {
                        Err((
                            line,
                            format!(
                                "{elem} in set {name} of family {}",
                                if set.v4 { "inet" } else { "inet6" }
                            ),
                        ))
                    }
                };
                if let Some(entries) = &mut set.ports {
                    let room = set.maxelem.saturating_sub(entries.len());
                    let t = port_element(elem, room).map_err(|e| (line, e))?;
                    family(t.first().is_none_or(|&(a, _, _)| a >> 32 == 0xffff))?;
                    entries.extend(t);
                    continue;
                }
                let r = element(elem).map_err(|e| (line, e))?;
                if set.ranges.len() >= set.maxelem {
                    return Err((
                        line,
                        format!("set {name} is full (maxelem {})", set.maxelem),
                    ));
                }
                family(r.0 >> 32 == 0xffff && r.1 >> 32 == 0xffff)?;
                set.ranges.push(r);
            }
            other => {
                return Err((
                    line,
                    format!("`{other}`: an ipset save file holds create and add lines"),
                ));
            }
        }
    }
    Ok(sets)
}

/// An address, a network or a range, as key bounds.
pub fn element(s: &str) -> Result<(u128, u128), String> {
    if let Some((a, b)) = s.split_once('-') {
        let (a, b): (IpAddr, IpAddr) = (
            a.parse().map_err(|_| format!("invalid address {a}"))?,
            b.parse().map_err(|_| format!("invalid address {b}"))?,
        );
        let (lo, hi) = (ip_key(a), ip_key(b));
        if a.is_ipv4() != b.is_ipv4() || lo > hi {
            return Err(format!("invalid range {s}"));
        }
        return Ok((lo, hi));
    }
    if let Ok(n) = s.parse::<IpNet>() {
        let (lo, hi) = (ip_key(n.network()), ip_key(n.broadcast()));
        return Ok((lo, hi));
    }
    let a: IpAddr = s
        .parse()
        .map_err(|_| format!("invalid element {s} (an address, network or range)"))?;
    Ok((ip_key(a), ip_key(a)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_ipset_save_writes() {
        let sets = parse(
            "create bad hash:net family inet hashsize 1024 maxelem 65536\nadd bad 10.0.0.0/8\nadd bad 192.0.2.7\nadd bad 198.51.100.1-198.51.100.9 timeout 600\ncreate six hash:ip family inet6\nadd six 2001:db8::1\n",
            1,
        )
        .unwrap();
        assert_eq!(sets["bad"].ranges.len(), 3);
        let texts: Vec<String> = sets["bad"]
            .ranges
            .iter()
            .map(|&(l, h)| element_text(l, h))
            .collect();
        assert_eq!(
            texts,
            ["10.0.0.0/8", "192.0.2.7", "198.51.100.1-198.51.100.9"]
        );
        let sets = parse(
            "create p hash:ip,port family inet maxelem 8\nadd p 192.0.2.1,tcp:22\nadd p 192.0.2.2-192.0.2.3,udp:53-54\n",
            1,
        )
        .unwrap();
        assert_eq!(sets["p"].ports.as_ref().unwrap().len(), 5);
        let (l, e) =
            parse("create p hash:ip,port maxelem 2\nadd p 10.0.0.0/30,80\n", 1).unwrap_err();
        assert!(l == 2 && e.contains("room"), "{e}");
        let all = element("::/0").unwrap();
        assert_eq!(element_text(all.0, all.1), "::/0");
        assert!(sets["bad"].v4 && !sets["six"].v4);
        for (text, line, needle) in [
            ("create x list:set\n", 1, "list:set"),
            ("add x 1.2.3.4\n", 1, "never created"),
            ("create x hash:ip\nadd x 2001:db8::1\n", 2, "family inet"),
            ("create x hash:ip\nadd x 10.0.0.1 nomatch\n", 2, "nomatch"),
            ("flush\n", 1, "create and add"),
            (
                "create x hash:ip maxelem 1\nadd x 10.0.0.1\nadd x 10.0.0.2\n",
                3,
                "full",
            ),
        ] {
            let (l, e) = parse(text, 1).unwrap_err();
            assert_eq!(l, line, "{text}");
            assert!(e.contains(needle), "{text}: {e}");
        }
    }
}

/// A `hash:ip,port` element (`ADDR,PORT`, `ADDR,PROTO:PORT`, with an
/// address range or network and a port range `A-B`; the protocol tcp when
/// not given) as its entries, refused when they would be more than
/// `room` (ipset expands ranges the same way, bounded by maxelem).
pub fn port_element(s: &str, room: usize) -> Result<Vec<(u128, u8, u16)>, String> {
    let (addr, port) = s
        .split_once(',')
        .ok_or_else(|| format!("{s}: a hash:ip,port element is ADDRESS,[PROTO:]PORT"))?;
    let (lo, hi) = element(addr)?;
    let (proto, ports) = match port.split_once(':') {
        Some((p, rest)) => (
            match p {
                "tcp" => 6u8,
                "udp" => 17,
                "sctp" => 132,
                "udplite" => 136,
                _ => return Err(format!("{s}: protocol {p}: tcp, udp, sctp or udplite")),
            },
            rest,
        ),
        None => (6, port),
    };
    let num = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| format!("{s}: invalid port {p}"))
    };
    let (plo, phi) = match ports.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => (num(ports)?, num(ports)?),
    };
    if plo > phi {
        return Err(format!("{s}: reversed port range"));
    }
    let n = (hi - lo)
        .saturating_add(1)
        .saturating_mul(u128::from(phi - plo) + 1);
    if n > room as u128 {
        return Err(format!(
            "{s}: {n} entries, more than the set has room for ({room})"
        ));
    }
    let mut out = Vec::with_capacity(n as usize);
    for a in lo..=hi {
        for p in plo..=phi {
            out.push((a, proto, p));
        }
    }
    Ok(out)
}

/// Element text `s` for `set`: `ADDR,[PROTO:]PORT` for a hash:ip,port
/// set, an address, network or range for the others.
pub fn element_for(
    set: &xgate_dataplane::filter::ipset::IpSetTable,
    s: &str,
) -> Result<xgate_dataplane::filter::ipset::Element, String> {
    use xgate_dataplane::filter::ipset::Element;
    if set.has_ports() {
        port_element(s, set.maxelem()).map(Element::Tuples)
    } else {
        element(s).map(|(lo, hi)| Element::Range(lo, hi))
    }
}

/// A `hash:ip,port` entry as `ipset list` prints it.
pub fn port_entry_text(a: u128, proto: u8, port: u16) -> String {
    let p = match proto {
        6 => "tcp".to_string(),
        17 => "udp".to_string(),
        132 => "sctp".to_string(),
        136 => "udplite".to_string(),
        n => n.to_string(),
    };
    format!("{},{p}:{port}", xgate_dataplane::addr::key_ip(a))
}

/// An element's text as `ipset list` prints it: an address, a network
/// when the range is one, else `A-B`.
pub fn element_text(lo: u128, hi: u128) -> String {
    use xgate_dataplane::addr::key_ip;
    let (a, b) = (key_ip(lo), key_ip(hi));
    if lo == hi {
        return a.to_string();
    }
    let bits = if a.is_ipv4() { 32 } else { 128 };
    match (hi - lo).checked_add(1) {
        // ::/0
        None => return format!("{a}/0"),
        Some(span) if span.is_power_of_two() && lo.is_multiple_of(span) => {
            let len = bits - span.trailing_zeros().min(bits);
            return format!("{a}/{len}");
        }
        _ => {}
    }
    format!("{a}-{b}")
}
