//! Config -> the immutable tables the dataplane reads.
//!
//! Interfaces get a port per distinct device (in config order) and their
//! addresses; every address yields a `local` route in table local (255) and
//! its connected subnet in table main, as the kernel adds them; an
//! interface with IPv6 addresses but no link-local one gets the EUI-64
//! link-local address Linux would give it (NDP speaks from it). Routes,
//! policy rules and static neighbours follow the config. A gateway given
//! without `dev` is resolved against connected subnets and link routes.
//! Errors name the config line like validation errors do; nothing is
//! returned from a config with any error.

pub mod firewall;

pub use firewall::{compile_firewall, compile_firewall_with_field};

use crate::config::{self, Config, ConfigError};
use ipnet::IpNet;
use std::net::{IpAddr, Ipv6Addr};
use xgate_dataplane::iface::{IfIndex, Interface, Interfaces};
use xgate_dataplane::packet::ether::VlanStack;
use xgate_dataplane::pipeline::{IcmpLimits, Tables};
use xgate_dataplane::route::neighbor::v4_key;
use xgate_dataplane::route::{self as rt, Fib, NextHop, PolicyRule, Route};

/// What the control plane publishes for one config.
#[derive(Debug)]
pub struct Compiled {
    pub tables: Tables,
    /// Kernel device of each port, index = port number.
    pub devices: Vec<String>,
    /// Permanent neighbour entries: (interface, key as in the neighbour table, MAC).
    pub static_neighbors: Vec<(IfIndex, u128, [u8; 6])>,
}

/// A stable locally administered MAC for a device that has none (used by
/// `replay`, where no kernel device exists): 02:00:00:00:00:NN, NN = port + 1.
pub fn synthetic_mac(port: usize) -> [u8; 6] {
    [0x02, 0, 0, 0, (port >> 8) as u8, (port & 0xff) as u8 + 1]
}

/// The EUI-64 link-local address for `mac` (RFC 4291 appendix A).
pub fn eui64_link_local(mac: &[u8; 6]) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a[0] = 0xfe;
    a[1] = 0x80;
    a[8] = mac[0] ^ 0x02;
    a[9] = mac[1];
    a[10] = mac[2];
    a[11] = 0xff;
    a[12] = 0xfe;
    a[13] = mac[3];
    a[14] = mac[4];
    a[15] = mac[5];
    Ipv6Addr::from(a)
}

fn prefix_of(n: &IpNet) -> (IpAddr, u8) {
    (n.trunc().addr(), n.prefix_len())
}

/// Compiles a validated config. `device_mac` gives a device's MAC when the
/// config sets none (port number as the second argument).
pub fn compile(
    cfg: &Config,
    device_mac: &dyn Fn(&str, usize) -> Option<[u8; 6]>,
) -> Result<Compiled, Vec<ConfigError>> {
    let file = cfg.source.as_str();
    let mut errors = Vec::new();
    let mut devices: Vec<String> = Vec::new();
    let mut list = Vec::new();
    for (i, ic) in cfg.interfaces.iter().enumerate() {
        let port = match devices.iter().position(|d| *d == ic.device) {
            Some(p) => p,
            None => {
                devices.push(ic.device.clone());
                devices.len() - 1
            }
        };
        let mac = match ic.mac.or_else(|| device_mac(&ic.device, port)) {
            Some(m) => m,
            None => {
                errors.push(ConfigError::new(
                    file,
                    ic.line,
                    format!("interface[{i}].mac"),
                    format!(
                        "device {:?} has no MAC address to use; set `mac`",
                        ic.device
                    ),
                ));
                [0; 6]
            }
        };
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for a in &ic.addresses {
            match a {
                IpNet::V4(n) => v4.push((n.addr(), n.prefix_len())),
                IpNet::V6(n) => v6.push((n.addr(), n.prefix_len())),
            }
        }
        if !v6.is_empty() && !v6.iter().any(|(a, _)| a.segments()[0] & 0xffc0 == 0xfe80) {
            v6.push((eui64_link_local(&mac), 64));
        }
        list.push(Interface {
            name: ic.name.clone(),
            device: ic.device.clone(),
            port: port as u16,
            vlans: VlanStack::from_slice(&ic.vlan).unwrap_or_default(),
            mac,
            mtu: ic.mtu,
            v4,
            v6,
        });
    }
    let interfaces = Interfaces::new(list);
    let ifindex = |name: &str| interfaces.by_name(name);

    let mut fib = Fib::new();
    for (idx, ic) in interfaces.iter() {
        let line = cfg.interfaces[idx as usize].line;
        let addrs = ic
            .v4
            .iter()
            .map(|(a, l)| (IpAddr::V4(*a), *l))
            .chain(ic.v6.iter().map(|(a, l)| (IpAddr::V6(*a), *l)));
        for (addr, len) in addrs {
            fib.table_mut(rt::TABLE_LOCAL)
                .replace(rt::local_route(addr, idx));
            let link_local = matches!(addr, IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80);
            if link_local {
                // fe80::/64 exists on every link; scoped routes are not modelled.
                continue;
            }
            let r = rt::connected_route(addr, len, idx);
            if let Err(e) = fib.table_mut(rt::TABLE_MAIN).add(r) {
                errors.push(ConfigError::new(
                    file,
                    line,
                    format!("interface[{idx}].address"),
                    format!(
                        "connected subnet of {addr}/{len} clashes with another interface's: {e}"
                    ),
                ));
            }
        }
    }

    for (i, r) in cfg.routes.iter().enumerate() {
        let field = |f: &str| format!("route[{i}].{f}");
        let (prefix, len) = prefix_of(&r.to);
        let rtype = match r.rtype {
            config::RouteType::Unicast => rt::RouteType::Unicast,
            config::RouteType::Blackhole => rt::RouteType::Blackhole,
            config::RouteType::Unreachable => rt::RouteType::Unreachable,
            config::RouteType::Prohibit => rt::RouteType::Prohibit,
        };
        let mut nexthops = Vec::new();
        if rtype == rt::RouteType::Unicast {
            let hops: Vec<(Option<IpAddr>, Option<&str>, u16, String)> = if r.nexthops.is_empty() {
                vec![(
                    r.via,
                    r.dev.as_deref(),
                    1,
                    field(if r.via.is_some() { "via" } else { "dev" }),
                )]
            } else {
                r.nexthops
                    .iter()
                    .enumerate()
                    .map(|(k, n)| {
                        (
                            Some(n.via),
                            n.dev.as_deref(),
                            n.weight,
                            field(&format!("nexthops[{k}].via")),
                        )
                    })
                    .collect()
            };
            for (via, dev, weight, fname) in hops {
                let dev_idx = match (dev, via) {
                    (Some(d), _) => ifindex(d),
                    (None, Some(v)) => cfg.gateway_dev(v).and_then(|ic| ifindex(&ic.name)),
                    (None, None) => None,
                };
                match dev_idx {
                    Some(d) => nexthops.push(NextHop {
                        via,
                        dev: d,
                        weight,
                    }),
                    None => errors.push(ConfigError::new(
                        file,
                        r.line,
                        fname,
                        format!(
                            "gateway {} is not on a connected subnet of any interface; add `dev`",
                            via.map(|v| v.to_string()).unwrap_or_default()
                        ),
                    )),
                }
            }
        }
        let route = Route {
            prefix,
            len,
            metric: r.metric,
            rtype,
            nexthops,
        };
        if let Err(e) = fib.table_mut(r.table).add(route) {
            errors.push(ConfigError::new(file, r.line, field("to"), format!("{e}")));
        }
    }

    for r in &cfg.rules {
        let net = |n: &Option<IpNet>| n.as_ref().map(prefix_of);
        fib.add_rule(PolicyRule {
            priority: r.priority,
            from: net(&r.from),
            to: net(&r.to),
            iif: r.iif.as_deref().and_then(ifindex),
            fwmark: r.fwmark,
            table: r.table,
        });
    }

    let mut static_neighbors = Vec::new();
    for n in &cfg.neighbors {
        if let Some(d) = ifindex(&n.dev) {
            let key = match n.ip {
                IpAddr::V4(a) => v4_key(a.into()),
                IpAddr::V6(a) => a.into(),
            };
            static_neighbors.push((d, key, n.mac));
        }
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Compiled {
        tables: Tables {
            interfaces,
            fib,
            icmp: IcmpLimits::default(),
        },
        devices,
        static_neighbors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eui64() {
        let a = eui64_link_local(&[0x02, 0x00, 0x5e, 0x10, 0x00, 0x01]);
        assert_eq!(a, "fe80::5eff:fe10:1".parse::<Ipv6Addr>().unwrap());
    }
}
