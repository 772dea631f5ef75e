//! Routes written the way `ip route` takes them: the lines of a
//! `routes_file` (a large RIB loaded at start and on reload) and the
//! arguments of `xgate ctl route add/del`.
//!
//! ```text
//! # comment
//! 203.0.113.0/24 via 192.0.2.1 [dev wan] [metric N] [table T]
//! 10.9.0.0/16 dev lan                 # on-link
//! default via 192.0.2.1               # 0.0.0.0/0 (::/0 with an IPv6 gateway)
//! blackhole 198.51.100.0/24           # also unreachable, prohibit
//! ```
//!
//! A gateway without `dev` is resolved like the config's routes: the
//! interface whose connected subnet contains it, else a link route (`dev`
//! without `via`) of table main that contains it.

use std::io::{BufRead, IsTerminal, Write};
use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;
use xgate_dataplane::iface::{IfIndex, Interfaces, same_subnet_v4, same_subnet_v6};
use xgate_dataplane::route::{self as rt, Fib, NextHop, Route, RouteType};

use crate::config::ConfigError;
use crate::config::values::parse_table;

/// One route as written, before its gateway is resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteSpec {
    pub to: IpNet,
    pub via: Option<IpAddr>,
    pub dev: Option<String>,
    pub metric: u32,
    pub table: u32,
    pub rtype: RouteType,
}

/// Parses `[type] PREFIX [via GW] [dev NAME] [metric N] [table T]`
/// (`ip route` also spells metric `preference`/`priority`).
pub fn parse_spec<'a>(words: impl IntoIterator<Item = &'a str>) -> Result<RouteSpec, String> {
    let mut it = words.into_iter();
    let mut first = it.next().ok_or("missing prefix")?;
    let rtype = match first {
        "blackhole" => RouteType::Blackhole,
        "unreachable" => RouteType::Unreachable,
        "prohibit" => RouteType::Prohibit,
        "unicast" => RouteType::Unicast,
        _ => RouteType::Unicast,
    };
    if matches!(first, "blackhole" | "unreachable" | "prohibit" | "unicast") {
        first = it.next().ok_or("missing prefix")?;
    }
    let prefix = first;
    let (mut via, mut dev, mut metric, mut table) = (None, None, 0u32, rt::TABLE_MAIN);
    while let Some(w) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("`{w}` needs a value"));
        match w {
            "via" => {
                let v = val()?;
                via = Some(
                    v.parse::<IpAddr>()
                        .map_err(|_| format!("invalid gateway {v:?}"))?,
                );
            }
            "dev" => dev = Some(val()?.to_owned()),
            "metric" | "preference" | "priority" => {
                let v = val()?;
                metric = v.parse().map_err(|_| format!("invalid metric {v:?}"))?;
            }
            "table" => table = parse_table(val()?)?,
            other => return Err(format!("unknown word {other:?}")),
        }
    }
    let to = if prefix == "default" {
        match via {
            Some(IpAddr::V6(_)) => "::/0".parse().expect("literal"),
            _ => "0.0.0.0/0".parse().expect("literal"),
        }
    } else if let Ok(n) = prefix.parse::<IpNet>() {
        n
    } else if let Ok(a) = prefix.parse::<IpAddr>() {
        IpNet::from(a)
    } else {
        return Err(format!("invalid prefix {prefix:?}"));
    };
    if to != to.trunc() {
        return Err(format!(
            "{to} has host bits set (did you mean {}?)",
            to.trunc()
        ));
    }
    if let Some(v) = via {
        if v.is_ipv4() != to.addr().is_ipv4() {
            return Err(format!("gateway {v} is not of the family of {to}"));
        }
        if rtype != RouteType::Unicast {
            return Err("a blackhole/unreachable/prohibit route takes no gateway".into());
        }
    }
    if rtype == RouteType::Unicast && via.is_none() && dev.is_none() {
        return Err("a unicast route needs `via` or `dev`".into());
    }
    Ok(RouteSpec {
        to,
        via,
        dev,
        metric,
        table,
        rtype,
    })
}

/// The interface a gateway is reached on: the longest connected subnet
/// containing it, else a link route of table main containing it.
pub fn gateway_dev(via: IpAddr, interfaces: &Interfaces, fib: &Fib) -> Option<IfIndex> {
    let mut best: Option<(u8, IfIndex)> = None;
    for (i, ic) in interfaces.iter() {
        let hit = match via {
            IpAddr::V4(a) => ic
                .v4
                .iter()
                .filter(|(n, l)| same_subnet_v4(u32::from(*n), u32::from(a), *l))
                .map(|(_, l)| *l)
                .max(),
            IpAddr::V6(a) => ic
                .v6
                .iter()
                .filter(|(n, _)| !n.is_unicast_link_local())
                .filter(|(n, l)| same_subnet_v6(u128::from(*n), u128::from(a), *l))
                .map(|(_, l)| *l)
                .max(),
        };
        if let Some(l) = hit.filter(|&l| best.is_none_or(|(b, _)| l > b)) {
            best = Some((l, i));
        }
    }
    if let Some((_, i)) = best {
        return Some(i);
    }
    let (route, _) = fib.table(rt::TABLE_MAIN)?.route(via)?;
    match route.nexthops.as_slice() {
        [NextHop { via: None, dev, .. }] if route.rtype == RouteType::Unicast => Some(*dev),
        _ => None,
    }
}

/// Resolves a spec's interface names and gateway into a dataplane route.
pub fn resolve(spec: &RouteSpec, interfaces: &Interfaces, fib: &Fib) -> Result<Route, String> {
    let mut nexthops = Vec::new();
    if spec.rtype == RouteType::Unicast {
        let dev = match (&spec.dev, spec.via) {
            (Some(d), _) => interfaces
                .by_name(d)
                .ok_or_else(|| format!("no interface {d:?}"))?,
            (None, Some(v)) => gateway_dev(v, interfaces, fib).ok_or_else(|| {
                format!("gateway {v} is not on a connected subnet of any interface; add `dev`")
            })?,
            (None, None) => unreachable!("parse_spec requires via or dev"),
        };
        nexthops.push(NextHop {
            via: spec.via,
            dev,
            weight: 1,
        });
    }
    Ok(Route {
        prefix: spec.to.addr(),
        len: spec.to.prefix_len(),
        metric: spec.metric,
        rtype: spec.rtype,
        nexthops,
    })
}

/// Errors reported per routes file at most; the rest are counted.
const MAX_ERRORS: usize = 50;

/// Loads a routes file into `fib`. Errors name the routes file and line
/// (field `routes_file`). Prints progress on stderr when it is a terminal.
/// Returns the number of routes added.
pub fn load_file(
    path: &Path,
    interfaces: &Interfaces,
    fib: &mut Fib,
) -> Result<usize, Vec<ConfigError>> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path)
        .map_err(|e| vec![ConfigError::new(&name, 1, "routes_file", e.to_string())])?;
    let progress = std::io::stderr().is_terminal();
    let size = file.metadata().map(|m| m.len()).unwrap_or(0).max(1);
    let mut errors = Vec::new();
    let mut more = 0usize;
    let mut added = 0usize;
    let mut read = 0u64;
    let mut reader = std::io::BufReader::with_capacity(1 << 16, file);
    let mut line = String::new();
    let mut n = 0usize;
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => break,
            Ok(k) => read += k as u64,
            Err(e) => {
                errors.push(ConfigError::new(&name, n + 1, "routes_file", e.to_string()));
                break;
            }
        }
        n += 1;
        let text = line.split('#').next().unwrap_or("");
        let mut words = text.split_whitespace().peekable();
        if words.peek().is_none() {
            continue;
        }
        let res = parse_spec(words).and_then(|spec| {
            let r = resolve(&spec, interfaces, fib)?;
            fib.table_mut(spec.table).add(r).map_err(|e| e.to_string())
        });
        match res {
            Ok(()) => added += 1,
            Err(msg) if errors.len() < MAX_ERRORS => {
                errors.push(ConfigError::new(&name, n, "routes_file", msg))
            }
            Err(_) => more += 1,
        }
        if progress && n & 0xffff == 0 {
            let _ = write!(
                std::io::stderr(),
                "\r{name}: {added} routes ({}%)",
                read * 100 / size
            );
        }
    }
    if progress && n >= 65536 {
        let _ = writeln!(std::io::stderr(), "\r{name}: {added} routes (100%)");
    }
    if more > 0 {
        errors.push(ConfigError::new(
            &name,
            n,
            "routes_file",
            format!("{more} more errors not shown"),
        ));
    }
    if errors.is_empty() {
        Ok(added)
    } else {
        Err(errors)
    }
}

/// One route as `ip route` prints it (without the table).
pub fn format_route(r: &Route, interfaces: &Interfaces) -> String {
    let dst = if r.len == 0 {
        "default".to_owned()
    } else if (r.prefix.is_ipv4() && r.len == 32) || (r.prefix.is_ipv6() && r.len == 128) {
        r.prefix.to_string()
    } else {
        format!("{}/{}", r.prefix, r.len)
    };
    let name = |d: IfIndex| {
        if (d as usize) < interfaces.len() {
            interfaces.get(d).name.clone()
        } else {
            format!("if{d}")
        }
    };
    let mut s = match r.rtype {
        RouteType::Unicast => dst,
        RouteType::Local => format!("local {dst}"),
        RouteType::Broadcast => format!("broadcast {dst}"),
        RouteType::Blackhole => format!("blackhole {dst}"),
        RouteType::Unreachable => format!("unreachable {dst}"),
        RouteType::Prohibit => format!("prohibit {dst}"),
    };
    if let [nh] = r.nexthops.as_slice() {
        if let Some(v) = nh.via {
            s.push_str(&format!(" via {v}"));
        }
        s.push_str(&format!(" dev {}", name(nh.dev)));
    }
    if r.metric != 0 {
        s.push_str(&format!(" metric {}", r.metric));
    }
    if r.nexthops.len() > 1 {
        for nh in &r.nexthops {
            s.push_str("\n\tnexthop");
            if let Some(v) = nh.via {
                s.push_str(&format!(" via {v}"));
            }
            s.push_str(&format!(" dev {} weight {}", name(nh.dev), nh.weight));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(s: &str) -> Result<RouteSpec, String> {
        parse_spec(s.split_whitespace())
    }

    #[test]
    fn parses_ip_route_syntax() {
        let r = spec("10.9.0.0/16 via 192.168.1.2 dev lan metric 5 table 100").unwrap();
        assert_eq!(r.to.to_string(), "10.9.0.0/16");
        assert_eq!(r.via, Some("192.168.1.2".parse().unwrap()));
        assert_eq!(r.dev.as_deref(), Some("lan"));
        assert_eq!((r.metric, r.table), (5, 100));
        let r = spec("default via 2001:db8::1").unwrap();
        assert_eq!(r.to.to_string(), "::/0");
        let r = spec("blackhole 198.51.100.0/24 table main").unwrap();
        assert_eq!(r.rtype, RouteType::Blackhole);
        assert_eq!(r.table, rt::TABLE_MAIN);
        assert!(spec("10.9.0.1/16 via 192.168.1.2").is_err(), "host bits");
        assert!(spec("10.9.0.0/16").is_err(), "no next hop");
        assert!(spec("10.9.0.0/16 via 2001:db8::1").is_err(), "family");
        assert!(
            spec("10.9.0.0/16 via 1.2.3.4 mtu 3").is_err(),
            "unknown word"
        );
        assert!(spec("10.9.0.0/16 via").is_err(), "missing value");
    }
}
