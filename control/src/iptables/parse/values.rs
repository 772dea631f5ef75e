//! Option values: addresses, interfaces, protocols, ports, TCP flags,
//! conntrack states, marks, ICMP types, log levels and NAT addresses.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

use super::super::model::*;
use super::R;

/// The words of a rule, read one option at a time.
pub(super) struct Cursor<'a> {
    pub(super) words: &'a [String],
    pub(super) i: usize,
}

impl Cursor<'_> {
    /// The value of `opt`; accepts the old form `opt ! value` when `negatable`.
    pub(super) fn value(&mut self, opt: &str, neg: &mut bool, negatable: bool) -> R<String> {
        let mut v = self
            .words
            .get(self.i)
            .ok_or_else(|| format!("option {opt} needs a value"))?;
        if v == "!" && negatable {
            if *neg {
                return Err(format!("option {opt} negated twice"));
            }
            *neg = true;
            self.i += 1;
            v = self
                .words
                .get(self.i)
                .ok_or_else(|| format!("option {opt} needs a value"))?;
        }
        self.i += 1;
        Ok(v.clone())
    }
}

/// Stores the value of option `opt`, which a rule may give once.
pub(super) fn set<T>(slot: &mut Option<T>, v: T, opt: &str) -> R<()> {
    if slot.is_some() {
        return Err(format!("option {opt} given twice"));
    }
    *slot = Some(v);
    Ok(())
}

/// Longest interface name (IFNAMSIZ - 1).
const MAX_IFNAME: usize = 15;
const MAX_MULTIPORT: usize = 15;

pub(super) fn parse_net(s: &str) -> R<IpNet> {
    if s.contains(',') {
        return Err(format!(
            "address lists ({s}) are not supported; write one rule per address"
        ));
    }
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| format!("invalid address {addr:?}"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match len {
        None => max,
        Some(l) => {
            if let Ok(n) = l.parse::<u8>() {
                if n > max {
                    return Err(format!("invalid prefix length /{l} for {addr}"));
                }
                n
            } else if let (true, Ok(mask)) = (ip.is_ipv4(), l.parse::<Ipv4Addr>()) {
                let bits = u32::from(mask);
                if bits.leading_ones() + bits.trailing_zeros() != 32 {
                    return Err(format!("non-contiguous netmask {l}"));
                }
                bits.leading_ones() as u8
            } else {
                return Err(format!("invalid prefix length /{l}"));
            }
        }
    };
    let net = IpNet::new(ip, prefix).map_err(|e| e.to_string())?;
    Ok(net.trunc())
}

pub(crate) fn parse_iface(s: &str) -> R<Iface> {
    let (name, wildcard) = match s.strip_suffix('+') {
        Some(n) => (n, true),
        None => (s, false),
    };
    // -i / -o name logical interfaces, whose names the config limits to
    // these characters (which also never need quoting when printed back).
    if (name.is_empty() && !wildcard)
        || name.len() > MAX_IFNAME
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return Err(format!(
            "invalid interface name {s:?} (letters, digits, '_', '.', '-', optionally ending in '+')"
        ));
    }
    Ok(Iface {
        name: name.to_string(),
        wildcard,
    })
}

pub(super) fn parse_proto(s: &str) -> R<Protocol> {
    let lower = s.to_ascii_lowercase();
    Ok(match lower.as_str() {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "icmp" => Protocol::Icmp,
        "icmpv6" | "ipv6-icmp" | "icmp6" => Protocol::Icmpv6,
        "all" => Protocol::All,
        "gre" => Protocol::Number(47),
        "esp" => Protocol::Number(50),
        "ah" => Protocol::Number(51),
        "sctp" => Protocol::Number(132),
        _ => Protocol::from_number(lower.parse::<u8>().map_err(|_| {
            format!("unsupported protocol {s:?} (tcp, udp, icmp, icmpv6, all or a number 0-255)")
        })?),
    })
}

/// A port; `min` is 0 in matches (iptables accepts `--dport 0:1023`)
/// and 1 in NAT targets.
/// A service name (`ssh`, `domain`, `https`) is its well-known port, from
/// the table the nft front-end uses (iptables reads /etc/services; xgate
/// does not depend on the host's copy).
fn parse_port(s: &str, min: u32) -> R<u16> {
    match s.parse::<u32>() {
        Ok(p) if (min..=65535).contains(&p) => Ok(p as u16),
        Ok(_) => Err(format!("port {s} out of range {min}-65535")),
        Err(_) => crate::nft::types::symbol(crate::nft::DataType::InetService, s)
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| format!("invalid port {s:?}")),
    }
}

/// `P` or `A<sep>B` (`:` in matches, `-` in NAT targets); `A:` / `:B` open
/// ranges (`:B` starts at 0, as iptables reads it).
pub(super) fn parse_port_range(s: &str, sep: char) -> R<PortRange> {
    let min = u32::from(sep == '-');
    let r = match s.split_once(sep) {
        None => PortRange::single(parse_port(s, min)?),
        Some((a, b)) => PortRange {
            lo: if a.is_empty() && sep == ':' {
                0
            } else {
                parse_port(a, min)?
            },
            hi: if b.is_empty() && sep == ':' {
                65535
            } else {
                parse_port(b, min)?
            },
        },
    };
    if r.lo > r.hi {
        return Err(format!(
            "port range {s} is reversed (first port must not exceed the second)"
        ));
    }
    Ok(r)
}

pub(super) fn parse_port_list(s: &str) -> R<Vec<PortRange>> {
    let mut out = Vec::new();
    let mut slots = 0;
    for part in s.split(',') {
        let r = parse_port_range(part, ':')?;
        slots += if r.lo == r.hi { 1 } else { 2 };
        out.push(r);
    }
    if slots > MAX_MULTIPORT {
        return Err(format!(
            "too many ports in {s} (at most {MAX_MULTIPORT}, a range counts as two)"
        ));
    }
    Ok(out)
}

pub(super) fn parse_flags(s: &str) -> R<u8> {
    let mut bits = 0;
    for f in s.split(',') {
        bits |= match f.to_ascii_uppercase().as_str() {
            "ALL" => tcp_flag::ALL,
            "NONE" => 0,
            name => tcp_flag::NAMES
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, b)| *b)
                .ok_or_else(|| format!("unknown TCP flag {f:?}"))?,
        };
    }
    Ok(bits)
}

pub(super) fn parse_states(s: &str) -> R<CtStates> {
    let mut bits = 0;
    for st in s.split(',') {
        bits |= CtStates::NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(st))
            .map(|(_, b)| *b)
            .ok_or_else(|| {
                format!("unsupported state {st:?} (NEW, ESTABLISHED, RELATED, INVALID, UNTRACKED, SNAT, DNAT)")
            })?;
    }
    Ok(CtStates(bits))
}

fn parse_u32(s: &str) -> Option<u32> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

pub(super) fn parse_mark(s: &str) -> R<Mark> {
    let bad = || format!("invalid mark {s:?} (expected VALUE[/MASK])");
    let (v, m) = match s.split_once('/') {
        Some((v, m)) => (parse_u32(v).ok_or_else(bad)?, parse_u32(m).ok_or_else(bad)?),
        None => (parse_u32(s).ok_or_else(bad)?, u32::MAX),
    };
    Ok(Mark { value: v, mask: m })
}

const ICMP_NAMES: [(&str, u8, Option<u8>); 22] = [
    ("echo-reply", 0, None),
    ("pong", 0, None),
    ("destination-unreachable", 3, None),
    ("network-unreachable", 3, Some(0)),
    ("host-unreachable", 3, Some(1)),
    ("protocol-unreachable", 3, Some(2)),
    ("port-unreachable", 3, Some(3)),
    ("fragmentation-needed", 3, Some(4)),
    ("source-route-failed", 3, Some(5)),
    ("network-prohibited", 3, Some(9)),
    ("host-prohibited", 3, Some(10)),
    ("communication-prohibited", 3, Some(13)),
    ("source-quench", 4, None),
    ("redirect", 5, None),
    ("echo-request", 8, None),
    ("ping", 8, None),
    ("router-advertisement", 9, None),
    ("router-solicitation", 10, None),
    ("time-exceeded", 11, None),
    ("ttl-exceeded", 11, None),
    ("parameter-problem", 12, None),
    ("timestamp-request", 13, None),
];

const ICMP6_NAMES: [(&str, u8, Option<u8>); 11] = [
    ("destination-unreachable", 1, None),
    ("no-route", 1, Some(0)),
    ("port-unreachable", 1, Some(4)),
    ("packet-too-big", 2, None),
    ("time-exceeded", 3, None),
    ("parameter-problem", 4, None),
    ("echo-request", 128, None),
    ("echo-reply", 129, None),
    ("router-solicitation", 133, None),
    ("router-advertisement", 134, None),
    ("neighbour-solicitation", 135, None),
];

pub(super) fn parse_icmp_type(s: &str, v6: bool) -> R<IcmpType> {
    if s == "any" {
        return Ok(IcmpType::Any);
    }
    let table: &[(&str, u8, Option<u8>)] = if v6 { &ICMP6_NAMES } else { &ICMP_NAMES };
    if let Some((_, t, c)) = table.iter().find(|(n, _, _)| *n == s) {
        return Ok(IcmpType::Type { typ: *t, code: *c });
    }
    if s == "neighbor-solicitation" && v6 {
        return Ok(IcmpType::Type {
            typ: 135,
            code: None,
        });
    }
    if (s == "neighbour-advertisement" || s == "neighbor-advertisement") && v6 {
        return Ok(IcmpType::Type {
            typ: 136,
            code: None,
        });
    }
    let bad = || format!("unknown ICMP type {s:?} (a name such as echo-request, or TYPE[/CODE])");
    let (t, c) = match s.split_once('/') {
        Some((t, c)) => (t, Some(c)),
        None => (s, None),
    };
    let typ = t.parse::<u8>().map_err(|_| bad())?;
    let code = c.map(|c| c.parse::<u8>().map_err(|_| bad())).transpose()?;
    Ok(IcmpType::Type { typ, code })
}

pub(super) fn parse_log_level(s: &str) -> R<u8> {
    let names = [
        "emerg", "alert", "crit", "error", "warning", "notice", "info", "debug",
    ];
    if let Some(i) = names.iter().position(|n| *n == s) {
        return Ok(i as u8);
    }
    match s {
        "panic" => return Ok(0),
        "err" => return Ok(3),
        "warn" => return Ok(4),
        _ => {}
    }
    s.parse::<u8>()
        .ok()
        .filter(|&l| l <= 7)
        .ok_or_else(|| format!("invalid --log-level {s:?} (0-7 or a name such as info)"))
}

/// `ADDR[-ADDR][:PORT[-PORT]]`; IPv6 with a port in brackets: `[2001:db8::1]:80`.
pub(super) fn parse_nat_spec(s: &str) -> R<NatSpec> {
    let bad = || format!("invalid NAT address {s:?} (expected ADDR[-ADDR][:PORT[-PORT]])");
    let (addr_part, port_part): (String, Option<&str>) = if s.starts_with('[') {
        // [a]:p, [a]-[b]:p, [a]
        let mut addrs = String::new();
        let mut rest = s;
        loop {
            let inner = rest.strip_prefix('[').ok_or_else(bad)?;
            let (a, after) = inner.split_once(']').ok_or_else(bad)?;
            addrs.push_str(a);
            rest = after;
            if let Some(r) = rest.strip_prefix('-') {
                addrs.push('-');
                rest = r;
                continue;
            }
            break;
        }
        let port = match rest {
            "" => None,
            r => Some(r.strip_prefix(':').ok_or_else(bad)?),
        };
        (addrs, port)
    } else if s.matches(':').count() > 1 {
        (s.to_string(), None)
    } else {
        match s.split_once(':') {
            Some((a, p)) => (a.to_string(), Some(p)),
            None => (s.to_string(), None),
        }
    };
    let (a, b) = match addr_part.split_once('-') {
        Some((a, b)) => (a, b),
        None => (addr_part.as_str(), addr_part.as_str()),
    };
    let a: IpAddr = a.parse().map_err(|_| bad())?;
    let b: IpAddr = b.parse().map_err(|_| bad())?;
    if a.is_ipv4() != b.is_ipv4() {
        return Err(format!("NAT address range {s} mixes IPv4 and IPv6"));
    }
    if a > b {
        return Err(format!("NAT address range {s} is reversed"));
    }
    let ports = port_part.map(|p| parse_port_range(p, '-')).transpose()?;
    Ok(NatSpec {
        addrs: (a, b),
        ports,
    })
}
