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

pub use firewall::{compile_firewall, compile_firewall_with_field, compile_rules};

use crate::config::{self, Config, ConfigError};
use crate::iptables;
use ipnet::IpNet;
use std::net::{IpAddr, Ipv6Addr};
use xgate_dataplane::addr::{ip_key, v4_key};
use xgate_dataplane::bridge::{Bridge, BridgePort, Bridges, Fdb};
use xgate_dataplane::conntrack::CtConfig;
use xgate_dataplane::conntrack::Timeouts;
use xgate_dataplane::filter::Ruleset;
use xgate_dataplane::iface::{self, Bridging, IfIndex, Interface, Interfaces};
use xgate_dataplane::packet::ether::VlanStack;
use xgate_dataplane::pipeline::{IcmpLimits, Shared, Tables};
use xgate_dataplane::route::{self as rt, Fib, NextHop, PolicyRule, Route};

use xgate_dataplane::pipeline::MAX_NAT_ADDRESSES;

/// What the control plane publishes for one config.
#[derive(Debug)]
pub struct Compiled {
    pub tables: Tables,
    /// Kernel device of each port, index = port number.
    pub devices: Vec<String>,
    /// TAP device of each tap id ([`Interface::tap`]), in config order.
    pub taps: Vec<String>,
    /// Permanent neighbour entries: (interface, key as in the neighbour table, MAC).
    pub static_neighbors: Vec<(IfIndex, u128, [u8; 6])>,
    /// Addresses NAT may allocate source ports on (neighbour-table keys):
    /// every interface address (MASQUERADE, hairpin) and every SNAT
    /// address, each once. Registered with the shared port allocator.
    pub nat_addresses: Vec<u128>,
    /// Connection timeouts (`[timeouts]` over Linux's defaults).
    pub timeouts: Timeouts,
    /// `[conntrack] tcp_be_liberal`: no TCP window checks.
    pub tcp_be_liberal: bool,
    /// `[dataplane] offload` is not `off`: the connection table keeps a
    /// word per connection for the XDP offload (which directions).
    pub offload: bool,
    /// The `[firewall]` rules as parsed, the model `tables.filter` was
    /// compiled from (`ctl rules` prints it: it describes what runs).
    pub iptables: iptables::FirewallRules,
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
    let mut taps: Vec<String> = Vec::new();
    let mut list = Vec::new();
    let bridge_of = |device: &str| cfg.bridges.iter().position(|b| b.name == device);
    let port_of = |name: &str| {
        cfg.bridges
            .iter()
            .position(|b| b.ports.iter().any(|p| p.interface == name))
    };
    // Devices' interfaces first: a bridge's interface takes the MAC of
    // its first port unless it sets one (Linux gives a bridge a port's).
    let mut macs: Vec<Option<[u8; 6]>> = vec![None; cfg.interfaces.len()];
    for (i, ic) in cfg.interfaces.iter().enumerate() {
        if bridge_of(&ic.device).is_some() {
            continue;
        }
        let port = match devices.iter().position(|d| *d == ic.device) {
            Some(p) => p,
            None => {
                devices.push(ic.device.clone());
                devices.len() - 1
            }
        };
        macs[i] = ic.mac.or_else(|| device_mac(&ic.device, port));
    }
    let bridge_mac = |b: usize| {
        let first = cfg.bridges[b].ports.first()?;
        let i = cfg
            .interfaces
            .iter()
            .position(|x| x.name == first.interface)?;
        macs[i]
    };
    for (i, ic) in cfg.interfaces.iter().enumerate() {
        let bridge = bridge_of(&ic.device);
        let port = match bridge {
            Some(_) => iface::NO_PORT,
            None => devices.iter().position(|d| *d == ic.device).unwrap_or(0) as u16,
        };
        let mac = match macs[i].or_else(|| ic.mac.or_else(|| bridge_mac(bridge?))) {
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
            port,
            vlans: VlanStack::from_slice(&ic.vlan).unwrap_or_default(),
            mac,
            mtu: ic.mtu,
            v4,
            v6,
            tap: ic.tap.as_ref().map(|name| {
                taps.push(name.clone());
                (taps.len() - 1) as u16
            }),
            rp_filter: ic.rp_filter,
            bc_forwarding: ic.bc_forwarding,
            bridge: match (bridge, port_of(&ic.name)) {
                (Some(b), _) => Bridging::Bvi(b as u8),
                (None, Some(b)) => Bridging::Port(b as u8),
                (None, None) => Bridging::None,
            },
            tap_groups: ic
                .tap_groups
                .iter()
                .map(|n| match n {
                    IpNet::V4(n) => (
                        xgate_dataplane::addr::v4_key(n.network().into()),
                        96 + n.prefix_len(),
                    ),
                    IpNet::V6(n) => (n.network().into(), n.prefix_len()),
                })
                .collect(),
        });
    }
    // A bridge without an untagged interface of its own gets one, without
    // addresses: `-i br0` names it, as on Linux.
    for (b, bc) in cfg.bridges.iter().enumerate() {
        if !list.iter().any(|i| i.device == bc.name && i.vlans.len == 0) {
            list.push(Interface {
                name: bc.name.clone(),
                device: bc.name.clone(),
                port: iface::NO_PORT,
                vlans: VlanStack::NONE,
                mac: bridge_mac(b).unwrap_or([0; 6]),
                mtu: config::DEFAULT_MTU,
                v4: Vec::new(),
                v6: Vec::new(),
                tap: None,
                rp_filter: Default::default(),
                bc_forwarding: false,
                bridge: Bridging::Bvi(b as u8),
                tap_groups: Vec::new(),
            });
        }
    }
    let interfaces = Interfaces::new(list);
    let ifindex = |name: &str| interfaces.by_name(name);
    let mut bridges = bridges(cfg, &interfaces);

    let mut fib = Fib::new();
    for (idx, ic) in interfaces.iter() {
        let line = cfg.interfaces.get(idx as usize).map_or(0, |c| c.line);
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
            if let IpAddr::V4(a4) = addr
                && let Some(b) = rt::broadcast_route(a4, len, idx)
            {
                fib.table_mut(rt::TABLE_LOCAL).replace(b);
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

    if let Some((path, _)) = &cfg.routes_file {
        // A large RIB: `ip route`-like lines, resolved like the routes above.
        if let Err(e) = crate::routes::load_file(path, &interfaces, &mut fib) {
            errors.extend(e);
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
            static_neighbors.push((d, ip_key(n.ip), n.mac));
        }
    }

    let timeouts = Timeouts::from_overrides(cfg.timeouts.iter().map(|(n, s, _)| (n.as_str(), *s)))
        .unwrap_or_else(|e| {
            let line = cfg.timeouts.first().map_or(0, |t| t.2);
            errors.push(ConfigError::new(file, line, "timeouts", e.to_string()));
            Timeouts::default()
        });

    let mut nat_addresses: Vec<u128> = Vec::new();
    for (_, ic) in interfaces.iter() {
        nat_addresses.extend(ic.v4.iter().map(|(a, _)| v4_key(u32::from(*a))));
        nat_addresses.extend(
            ic.v6
                .iter()
                .filter(|(a, _)| !a.is_unicast_link_local())
                .map(|(a, _)| u128::from(*a)),
        );
    }
    let (filter, tracking, iptables) = match firewall(cfg, &interfaces, &mut nat_addresses) {
        Ok(f) => f,
        Err(e) => {
            errors.extend(e);
            (
                Ruleset::default(),
                false,
                iptables::FirewallRules::default(),
            )
        }
    };
    bridges.physdev_out = filter.uses_physdev_out();
    let helper_ports = xgate_dataplane::pipeline::HelperPorts {
        ports: cfg
            .conntrack
            .helpers
            .iter()
            .flat_map(|h| h.ports.iter().map(move |p| (h.helper, *p)))
            .collect(),
    };
    let mut seen = std::collections::HashSet::new();
    nat_addresses.retain(|a| seen.insert(*a));
    if nat_addresses.len() > MAX_NAT_ADDRESSES {
        let line = cfg.firewall.as_ref().map_or(0, |f| f.line);
        errors.push(ConfigError::new(
            file,
            line,
            "firewall",
            format!(
                "{} NAT addresses (interface addresses and SNAT ranges); at most {MAX_NAT_ADDRESSES} \
                 are supported, each holds a 1.5 MiB port map",
                nat_addresses.len()
            ),
        ));
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Compiled {
        tables: Tables {
            interfaces,
            fib,
            icmp: IcmpLimits::default(),
            filter,
            // Helpers need connections even without stateful rules.
            tracking: tracking || !helper_ports.is_empty(),
            helper_ports,
            ct_checksum: cfg.conntrack.checksum,
            bridges,
        },
        devices,
        taps,
        static_neighbors,
        nat_addresses,
        timeouts,
        tcp_be_liberal: cfg.conntrack.tcp_be_liberal,
        offload: cfg.dataplane.offload != crate::config::Offload::Off,
        iptables,
    })
}

/// The bridges as the packet path reads them (interfaces already numbered).
fn bridges(cfg: &Config, interfaces: &Interfaces) -> Bridges {
    let idx = |name: &str| interfaces.by_name(name).unwrap_or(0);
    let mut out = Bridges::default();
    for (id, bc) in cfg.bridges.iter().enumerate() {
        let id = id as u8;
        let untagged = if bc.vlan_filtering {
            bc.default_pvid
        } else {
            0
        };
        let ports = bc
            .ports
            .iter()
            .map(|p| {
                let pvid = if bc.vlan_filtering {
                    p.pvid.unwrap_or(bc.default_pvid)
                } else {
                    0
                };
                BridgePort::new(idx(&p.interface), pvid, &p.vlans)
            })
            .collect();
        let bvis: Vec<(u16, IfIndex)> = interfaces
            .iter()
            .filter(|(_, i)| i.device == bc.name)
            .map(|(x, i)| (i.vlans.as_slice().first().copied().unwrap_or(untagged), x))
            .collect();
        let iface = interfaces
            .iter()
            .find(|(_, i)| i.device == bc.name && i.vlans.len == 0)
            .map_or(0, |(x, _)| x);
        for e in &bc.fdb {
            out.static_fdb
                .push((id, e.vlan.unwrap_or(untagged), e.mac, idx(&e.port)));
        }
        out.list.push(Bridge {
            name: bc.name.clone(),
            id,
            iface,
            ports,
            bvis,
            vlan_filtering: bc.vlan_filtering,
            nf_call_v4: bc.nf_call_iptables,
            nf_call_v6: bc.nf_call_ip6tables,
            ageing_ns: bc.ageing.saturating_mul(1_000_000_000),
            flood_rate: bc.flood_rate,
            flood_burst: bc.flood_burst,
        });
        out.fdb_slots += bc.fdb_max as usize;
    }
    out
}

/// The shared state of a dataplane built from `compiled`: connection table
/// (`flows` entries, the config's timeouts, hash seed `seed`), NAT
/// addresses registered, static neighbours.
pub fn shared_state(compiled: &Compiled, flows: usize, seed: Option<u64>) -> Shared {
    let ct = CtConfig {
        timeouts: compiled.timeouts.clone(),
        seed,
        tcp_be_liberal: compiled.tcp_be_liberal,
        offload: compiled.offload,
        ..CtConfig::new(flows)
    };
    let mut shared = Shared::with_conntrack(4096, ct);
    let bridges = &compiled.tables.bridges;
    if !bridges.is_empty() {
        shared.fdb = Fdb::new(bridges.fdb_slots);
        // Validation checked the entries; a full slot window is the
        // only way one can be left out, and it is reported by the run.
        let _ = bridges.install_static(&shared.fdb);
    }
    for a in &compiled.nat_addresses {
        // `compile` refuses more addresses than the allocator holds.
        let _ = shared.nat.register(*a);
    }
    for (dev, key, mac) in &compiled.static_neighbors {
        shared.neighbors.insert_static(*dev, *key, mac);
    }
    shared
}

/// The `[firewall]` ruleset compiled for the dataplane, whether it needs
/// connection tracking (any `--ctstate` / `--state` match or any nat
/// rule), and the parsed model it was compiled from (read and parsed once
/// here: `rules_file` is not read again). Adds SNAT addresses to
/// `nat_addresses`.
fn firewall(
    cfg: &Config,
    interfaces: &Interfaces,
    nat_addresses: &mut Vec<u128>,
) -> Result<(Ruleset, bool, iptables::FirewallRules), Vec<ConfigError>> {
    let Some(fw) = &cfg.firewall else {
        return Ok((
            Ruleset::default(),
            false,
            iptables::FirewallRules::default(),
        ));
    };
    let mut all = iptables::load_all(fw, &cfg.source)?;
    let (compiled, nft) = firewall::compile_all(&all, interfaces)?;
    let mut tracking = false;
    if let Some(n) = nft {
        tracking |= n.tracking;
        if let Some(rules) = all.nft.as_mut() {
            rules.counters = n.counters;
        }
        for (lo, hi) in n.snat {
            let (lo, hi) = (ip_key(lo), ip_key(hi));
            let n = (hi - lo).min(MAX_NAT_ADDRESSES as u128);
            nat_addresses.extend((0..=n).map(|i| lo + i));
        }
    }
    for t in all.sets.iter().flat_map(|s| &s.ruleset.tables) {
        for r in t.chains.iter().flat_map(|c| &c.rules) {
            // What reads or sets connection state needs tracking.
            tracking |= matches!(t.kind, iptables::TableKind::Nat | iptables::TableKind::Raw)
                || r.matches.ctstate.is_some()
                || r.matches.ext.iter().any(|x| {
                    matches!(
                        x,
                        iptables::ext::Ext::Conntrack(_)
                            | iptables::ext::Ext::Connmark(_)
                            | iptables::ext::Ext::ConnLimit(_)
                    )
                })
                || matches!(r.target, iptables::Target::ConnMark(_));
            if let iptables::Target::Snat(spec) = &r.target {
                let (lo, hi) = (ip_key(spec.addrs.0), ip_key(spec.addrs.1));
                // Bounded: ranges beyond the cap are refused after the loop.
                let n = (hi - lo).min(MAX_NAT_ADDRESSES as u128);
                nat_addresses.extend((0..=n).map(|i| lo + i));
            }
        }
    }
    Ok((compiled, tracking, all))
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
