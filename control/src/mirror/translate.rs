//! Kernel (rtnetlink) routes and addresses -> xgate's. Pure functions over
//! parsed netlink messages, so every rule below is unit-tested without a
//! socket or root.
//!
//! A route is mirrored when it is in one of the chosen tables and every
//! next hop leaves by the tap of an interface that mirrors routes. Routes
//! the kernel derives from addresses (`proto kernel`: connected subnets,
//! IPv6's fe80::/64 and multicast) and the routes xgate itself gave the
//! kernel ([`RTPROT_XGATE`]) are ignored: xgate has them already. A route
//! xgate cannot carry (a device without a tap, a source-specific or TOS
//! route, nexthop objects, encapsulation, an IPv6 next hop for IPv4, types
//! other than unicast/blackhole/unreachable/prohibit) is [`Unusable`],
//! with the reason, and counted by the mirror.
//!
//! [`Unusable`]: RouteVerdict::Unusable

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::address::{AddressAttribute, AddressHeaderFlags, AddressMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteType as KType,
};
use xgate_dataplane::iface::IfIndex;
use xgate_dataplane::route::{NextHop, Route, RouteType};

/// The `rtm_protocol` of the routes `xgate run` gives the kernel for its
/// taps (`control/src/host.rs`), so the mirror knows them for its own.
pub const RTPROT_XGATE: u8 = 200;

/// `rtm_protocol` of the kernel's own routes (connected subnets).
const RTPROT_KERNEL: u8 = 2;

/// A mirrored route's identity, as the kernel keys a route: table,
/// destination, length and metric (`ip route del` needs no more).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteKey {
    pub table: u32,
    pub prefix: IpAddr,
    pub len: u8,
    pub metric: u32,
}

/// A kernel route as xgate will hold it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MirroredRoute {
    pub key: RouteKey,
    pub route: Route,
    /// The kernel's `rtm_protocol` (`ip route`'s `proto`).
    pub proto: u8,
}

/// What to do with one kernel route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteVerdict {
    Mirror(MirroredRoute),
    /// Not ours to mirror (another table, a kernel or xgate route, a tap
    /// whose interface does not mirror routes).
    Ignore,
    /// In a mirrored table but not something xgate can carry.
    Unusable {
        key: RouteKey,
        reason: String,
    },
}

/// The kernel's devices that are xgate's taps: kernel ifindex -> the
/// interface and what it mirrors.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TapMap {
    pub taps: HashMap<u32, TapIface>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TapIface {
    pub iface: IfIndex,
    pub name: String,
    pub addresses: bool,
    pub routes: bool,
}

/// The name `ip route` gives a protocol number (`/etc/iproute2/rt_protos`).
pub fn proto_name(p: u8) -> String {
    match p {
        0 => "unspec".into(),
        1 => "redirect".into(),
        2 => "kernel".into(),
        3 => "boot".into(),
        4 => "static".into(),
        8 => "gated".into(),
        9 => "ra".into(),
        10 => "mrt".into(),
        11 => "zebra".into(),
        12 => "bird".into(),
        13 => "dnrouted".into(),
        14 => "xorp".into(),
        15 => "ntk".into(),
        16 => "dhcp".into(),
        17 => "mrouted".into(),
        18 => "keepalived".into(),
        42 => "babel".into(),
        99 => "openr".into(),
        186 => "bgp".into(),
        187 => "isis".into(),
        188 => "ospf".into(),
        189 => "rip".into(),
        192 => "eigrp".into(),
        RTPROT_XGATE => "xgate".into(),
        n => n.to_string(),
    }
}

fn ip_of(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v) => Some(IpAddr::V4(*v)),
        RouteAddress::Inet6(v) => Some(IpAddr::V6(*v)),
        _ => None,
    }
}

/// The key of a kernel route, if it is an IPv4/IPv6 route at all.
pub fn route_key(msg: &RouteMessage) -> Option<RouteKey> {
    let h = &msg.header;
    let mut table = u32::from(h.table);
    let mut dst = None;
    let mut metric = 0;
    for a in &msg.attributes {
        match a {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(d) => dst = ip_of(d),
            RouteAttribute::Priority(p) => metric = *p,
            _ => {}
        }
    }
    let prefix = match (h.address_family, dst) {
        (AddressFamily::Inet, None) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        (AddressFamily::Inet6, None) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        (AddressFamily::Inet, Some(d @ IpAddr::V4(_)))
        | (AddressFamily::Inet6, Some(d @ IpAddr::V6(_))) => d,
        _ => return None,
    };
    let len = h.destination_prefix_length;
    let net = IpNet::new(prefix, len).ok()?.trunc();
    Some(RouteKey {
        table,
        prefix: net.addr(),
        len,
        metric,
    })
}

/// Translates one kernel route (`RTM_NEWROUTE`, from a dump or an event).
pub fn route_from_kernel(msg: &RouteMessage, taps: &TapMap, tables: &[u32]) -> RouteVerdict {
    let Some(key) = route_key(msg) else {
        return RouteVerdict::Ignore;
    };
    if !tables.contains(&key.table) {
        return RouteVerdict::Ignore;
    }
    let h = &msg.header;
    let proto = u8::from(h.protocol);
    if proto == RTPROT_KERNEL || proto == RTPROT_XGATE || h.protocol == RouteProtocol::IcmpRedirect
    {
        return RouteVerdict::Ignore;
    }
    let unusable = |reason: String| RouteVerdict::Unusable { key, reason };
    let rtype = match h.kind {
        KType::Unicast => RouteType::Unicast,
        KType::BlackHole => RouteType::Blackhole,
        KType::Unreachable => RouteType::Unreachable,
        KType::Prohibit => RouteType::Prohibit,
        other => return unusable(format!("type {} is not mirrored", kind_name(other))),
    };
    if h.tos != 0 {
        return unusable(format!(
            "tos {:#x}: xgate routes by destination only",
            h.tos
        ));
    }
    if h.source_prefix_length != 0 {
        return unusable("a source-specific route (from ...)".into());
    }
    let mut oif = None;
    let mut gateway = None;
    let mut multipath = None;
    for a in &msg.attributes {
        match a {
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Gateway(g) => gateway = ip_of(g),
            RouteAttribute::MultiPath(hops) => multipath = Some(hops),
            RouteAttribute::NhId(id) => {
                return unusable(format!("nexthop object {id}: nhid routes are not mirrored"));
            }
            RouteAttribute::Via(_) => {
                return unusable("a next hop of the other family (via inet6)".into());
            }
            RouteAttribute::Encap(_) | RouteAttribute::EncapType(_) => {
                return unusable("an encapsulating route (encap)".into());
            }
            _ => {}
        }
    }
    let mut nexthops = Vec::new();
    if rtype == RouteType::Unicast {
        // (kernel ifindex, gateway, weight)
        let mut hops: Vec<(u32, Option<IpAddr>, u16)> = Vec::new();
        match multipath {
            Some(list) => {
                for nh in list {
                    let mut gw = None;
                    for a in &nh.attributes {
                        match a {
                            RouteAttribute::Gateway(g) => gw = ip_of(g),
                            RouteAttribute::Via(_) => {
                                return unusable(
                                    "a next hop of the other family (via inet6)".into(),
                                );
                            }
                            RouteAttribute::Encap(_) | RouteAttribute::EncapType(_) => {
                                return unusable("an encapsulating route (encap)".into());
                            }
                            _ => {}
                        }
                    }
                    hops.push((nh.interface_index, gw, u16::from(nh.hops) + 1));
                }
            }
            None => match oif {
                Some(i) => hops.push((i, gateway, 1)),
                None => return unusable("a unicast route without a device".into()),
            },
        }
        let mut ignored = false;
        for (ifindex, via, weight) in hops {
            match taps.taps.get(&ifindex) {
                Some(t) if t.routes => nexthops.push(NextHop {
                    via,
                    dev: t.iface,
                    weight,
                }),
                Some(_) => ignored = true,
                None => {
                    return unusable(format!(
                        "device {ifindex} is not the tap of an xgate interface"
                    ));
                }
            }
        }
        if ignored {
            // A tap whose interface does not mirror routes: the operator
            // did not ask for it.
            return RouteVerdict::Ignore;
        }
    }
    RouteVerdict::Mirror(MirroredRoute {
        key,
        route: Route {
            prefix: key.prefix,
            len: key.len,
            metric: key.metric,
            rtype,
            nexthops,
        },
        proto,
    })
}

/// The one next hop an IPv6 `RTM_DELROUTE` names when it removes a next
/// hop of a multipath route (the kernel keeps the others and says so in
/// no other message): its gateway and xgate interface. None when the
/// message deletes a whole route (IPv4, a multipath message, no gateway).
pub fn deleted_nexthop(msg: &RouteMessage, taps: &TapMap) -> Option<(Option<IpAddr>, IfIndex)> {
    if msg.header.address_family != AddressFamily::Inet6 {
        return None;
    }
    let mut oif = None;
    let mut gateway = None;
    for a in &msg.attributes {
        match a {
            RouteAttribute::MultiPath(_) => return None,
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Gateway(g) => gateway = ip_of(g),
            _ => {}
        }
    }
    let t = taps.taps.get(&oif?)?;
    Some((Some(gateway?), t.iface))
}

fn kind_name(k: KType) -> String {
    match k {
        KType::Local => "local".into(),
        KType::Broadcast => "broadcast".into(),
        KType::Anycast => "anycast".into(),
        KType::Multicast => "multicast".into(),
        KType::Throw => "throw".into(),
        KType::Nat => "nat".into(),
        KType::ExternalResolve => "xresolve".into(),
        other => format!("{}", u8::from(other)),
    }
}

/// One kernel address of a tap: (kernel ifindex, address with its prefix
/// length, primary?). `None` for what xgate does not take: another family,
/// an address still in duplicate address detection or that failed it.
pub fn address_from_kernel(msg: &AddressMessage) -> Option<(u32, IpNet, bool)> {
    let h = &msg.header;
    let mut local = None;
    let mut address = None;
    let mut flags = u32::from(h.flags.bits());
    for a in &msg.attributes {
        match a {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            AddressAttribute::Flags(f) => flags = f.bits(),
            _ => {}
        }
    }
    // IFA_LOCAL is the address of IPv4 (IFA_ADDRESS is the peer on a
    // point-to-point link); IPv6 has only IFA_ADDRESS.
    let ip = match h.family {
        AddressFamily::Inet => local.or(address)?,
        AddressFamily::Inet6 => address?,
        _ => return None,
    };
    const TENTATIVE: u32 = AddressHeaderFlags::Tentative.bits() as u32;
    const DADFAILED: u32 = AddressHeaderFlags::Dadfailed.bits() as u32;
    const SECONDARY: u32 = AddressHeaderFlags::Secondary.bits() as u32;
    if flags & (TENTATIVE | DADFAILED) != 0 {
        return None;
    }
    let net = IpNet::new(ip, h.prefix_len).ok()?;
    Some((h.index, net, flags & SECONDARY == 0))
}

#[cfg(test)]
mod tests;
