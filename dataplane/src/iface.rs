//! Logical interfaces: what routes, rules and stats name.
//!
//! A logical interface is a (port, VLAN stack) pair with a MAC, an MTU and
//! addresses, like a Linux netdev or VLAN sub-interface. Ingress classifies
//! a frame by the port it arrived on and its tags; egress pushes the tags of
//! the chosen interface. A frame whose (port, tags) names no interface is
//! dropped (`unknown_vlan`).

use crate::packet::ether::VlanStack;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Index of a logical interface in [`Interfaces`].
pub type IfIndex = u16;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    /// Kernel device name (the AF_XDP binding).
    pub device: String,
    /// Index of the device's port in the worker's port list.
    pub port: u16,
    pub vlans: VlanStack,
    pub mac: [u8; 6],
    /// IP MTU: the largest L3 packet sent out of this interface.
    pub mtu: u16,
    /// Addresses with prefix length, host bits kept (`192.168.1.1/24`).
    pub v4: Vec<(Ipv4Addr, u8)>,
    pub v6: Vec<(Ipv6Addr, u8)>,
    /// The host kernel's TAP for this interface (index into the run's tap
    /// list, see `crate::punt`): traffic for the router that xgate does
    /// not answer itself is handed to it. None: no punt.
    pub tap: Option<u16>,
    /// Multicast groups (address keys with prefix lengths) that go to the
    /// tap when they arrive by this interface (`tap_groups`): mDNS, OSPF,
    /// RIP, VRRP for the host's daemons. Empty: multicast is not routed.
    pub tap_groups: Vec<(u128, u8)>,
    /// Reverse-path filtering of packets received here (`rp_filter`).
    pub rp_filter: RpFilter,
    /// Directed broadcasts received here to another interface's subnet
    /// are forwarded (Linux's `bc_forwarding` of the input interface).
    pub bc_forwarding: bool,
    /// Whether this interface is a bridge's port or a bridge's own
    /// (routed) interface.
    pub bridge: Bridging,
}

/// An interface's part in a bridge domain (`crate::bridge`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Bridging {
    /// A routed interface of its own.
    #[default]
    None,
    /// A port of bridge N: its frames are switched, not routed.
    Port(u8),
    /// A routed interface of bridge N (the BVI, Linux's `br0`, or `br0.10`
    /// on a VLAN-aware bridge): no device of its own; it sends through the
    /// bridge's ports.
    Bvi(u8),
}

/// The port number of an interface without a device (a bridge's routed
/// interface).
pub const NO_PORT: u16 = u16::MAX;

/// Linux's `net.ipv4.conf.*.rp_filter` (applied to IPv6 too): whether a
/// packet's source must be reachable back (`Loose`: by any interface;
/// `Strict`: by the one it came in on). Spoofed sources fail it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RpFilter {
    #[default]
    Off,
    Strict,
    Loose,
}

impl Interface {
    /// Whether a multicast packet to `dst` (an address key) goes to the tap.
    pub fn tap_group(&self, dst: u128) -> bool {
        self.tap.is_some()
            && self.tap_groups.iter().any(|&(g, len)| {
                let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
                (g ^ dst) & mask == 0
            })
    }

    /// True when `a` is one of this interface's IPv4 addresses.
    pub fn has_v4(&self, a: u32) -> bool {
        self.v4.iter().any(|(x, _)| u32::from(*x) == a)
    }

    pub fn has_v6(&self, a: u128) -> bool {
        self.v6.iter().any(|(x, _)| u128::from(*x) == a)
    }

    /// The address to speak from towards `peer` on this link: the one whose
    /// subnet holds `peer`, else the first (Linux's primary address).
    pub fn source_v4(&self, peer: u32) -> Option<Ipv4Addr> {
        self.v4
            .iter()
            .find(|(a, l)| same_subnet_v4(u32::from(*a), peer, *l))
            .or(self.v4.first())
            .map(|(a, _)| *a)
    }

    /// IPv6 source towards `peer`: same subnet first, then a global address,
    /// then any (link-local for link-local peers comes from the subnet match).
    pub fn source_v6(&self, peer: u128) -> Option<Ipv6Addr> {
        self.v6
            .iter()
            .find(|(a, l)| same_subnet_v6(u128::from(*a), peer, *l))
            .or_else(|| {
                self.v6
                    .iter()
                    .find(|(a, _)| !is_link_local_v6(u128::from(*a)))
            })
            .or(self.v6.first())
            .map(|(a, _)| *a)
    }

    pub fn source_for(&self, peer: IpAddr) -> Option<IpAddr> {
        match peer {
            IpAddr::V4(p) => self.source_v4(p.into()).map(IpAddr::V4),
            IpAddr::V6(p) => self.source_v6(p.into()).map(IpAddr::V6),
        }
    }

    /// The link-local address NDP should use, if any.
    pub fn link_local_v6(&self) -> Option<Ipv6Addr> {
        self.v6
            .iter()
            .find(|(a, _)| is_link_local_v6(u128::from(*a)))
            .map(|(a, _)| *a)
    }
}

pub fn same_subnet_v4(a: u32, b: u32, len: u8) -> bool {
    len == 0 || (a ^ b) >> (32 - len.min(32) as u32) == 0
}

pub fn same_subnet_v6(a: u128, b: u128, len: u8) -> bool {
    len == 0 || (a ^ b) >> (128 - len.min(128) as u32) == 0
}

pub fn is_link_local_v6(a: u128) -> bool {
    a >> 118 == 0xfe80 >> 6
}

/// What the packet path reads of an interface, packed in 16 bytes so that
/// every interface of a router shares a cache line or two.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IfHot {
    pub mac: [u8; 6],
    pub port: u16,
    pub mtu: u16,
    pub vlans: VlanStack,
    pub rp_filter: RpFilter,
    pub bc_forwarding: bool,
    pub bridge: Bridging,
}

/// All logical interfaces, and the classifier from (port, tags).
#[derive(Clone, Debug, Default)]
pub struct Interfaces {
    list: Vec<Interface>,
    hot: Vec<IfHot>,
    /// Per port: (tags, interface). Ports carry few sub-interfaces, so a
    /// short linear scan beats hashing.
    by_port: Vec<Vec<(VlanStack, IfIndex)>>,
    /// Per port: the untagged interface, if any and not a bridge port
    /// (the common case of the routed walk, found without a scan).
    untagged: Vec<Option<IfIndex>>,
    /// Per port: the untagged interface when it is a bridge port (frames
    /// with tags no sub-interface claims are the bridge's).
    bridge_port: Vec<Option<IfIndex>>,
    /// Every interface address as a key (IPv4-mapped for IPv4), sorted:
    /// what a packet from outside may not carry as its source.
    local: Vec<u128>,
    /// Bit `key % 64` set for each of `local`: most sources are told
    /// apart by one test, without the search.
    local_bits: u64,
}

impl Interfaces {
    /// Builds the table; (port, tags) pairs must be unique (the config
    /// validator guarantees it; a duplicate keeps the first).
    pub fn new(list: Vec<Interface>) -> Self {
        let ports = list
            .iter()
            .filter(|i| i.port != NO_PORT)
            .map(|i| i.port as usize + 1)
            .max()
            .unwrap_or(0);
        let mut by_port = vec![Vec::new(); ports];
        for (idx, i) in list.iter().enumerate() {
            if i.port == NO_PORT {
                continue;
            }
            let v: &mut Vec<(VlanStack, IfIndex)> = &mut by_port[i.port as usize];
            if !v.iter().any(|(s, _)| *s == i.vlans) {
                v.push((i.vlans, idx as IfIndex));
            }
        }
        let untagged_any: Vec<Option<IfIndex>> = by_port
            .iter()
            .map(|v| v.iter().find(|(s, _)| s.len == 0).map(|(_, i)| *i))
            .collect();
        let is_port = |i: &IfIndex| matches!(list[*i as usize].bridge, Bridging::Port(_));
        let untagged = untagged_any
            .iter()
            .map(|u| u.filter(|i| !is_port(i)))
            .collect();
        let bridge_port = untagged_any.iter().map(|u| u.filter(is_port)).collect();
        let hot = list
            .iter()
            .map(|i| IfHot {
                rp_filter: i.rp_filter,
                bc_forwarding: i.bc_forwarding,
                bridge: i.bridge,
                mac: i.mac,
                port: i.port,
                mtu: i.mtu,
                vlans: i.vlans,
            })
            .collect();
        let mut local: Vec<u128> = list
            .iter()
            .flat_map(|i| {
                i.v4.iter()
                    .map(|(a, _)| crate::addr::v4_key(u32::from(*a)))
                    .chain(i.v6.iter().map(|(a, _)| u128::from(*a)))
            })
            .collect();
        local.sort_unstable();
        local.dedup();
        let local_bits = local.iter().fold(0u64, |b, &k| b | 1 << (k % 64));
        Interfaces {
            list,
            hot,
            by_port,
            untagged,
            bridge_port,
            local,
            local_bits,
        }
    }

    /// Whether `key` (an address key) is one of the router's addresses.
    #[inline]
    pub fn is_local(&self, key: u128) -> bool {
        self.local_bits >> (key as u64 % 64) & 1 != 0 && self.local.binary_search(&key).is_ok()
    }

    /// The untagged interface of `port`.
    #[inline]
    pub fn untagged(&self, port: u16) -> Option<IfIndex> {
        *self.untagged.get(port as usize)?
    }

    /// The bridge port that takes `port`'s frames no sub-interface claims.
    #[inline]
    pub fn bridge_port(&self, port: u16) -> Option<IfIndex> {
        *self.bridge_port.get(port as usize)?
    }

    /// The packet path's view of interface `i`.
    #[inline]
    pub fn hot(&self, i: IfIndex) -> &IfHot {
        &self.hot[i as usize]
    }

    #[inline]
    pub fn classify(&self, port: u16, vlans: &VlanStack) -> Option<IfIndex> {
        self.by_port
            .get(port as usize)?
            .iter()
            .find(|(s, _)| s == vlans)
            .map(|(_, i)| *i)
    }

    #[inline]
    pub fn get(&self, i: IfIndex) -> &Interface {
        &self.list[i as usize]
    }

    /// The name of interface `i`, or `?` for a number it does not have
    /// (for traces and log lines, which must never fail).
    pub fn name(&self, i: IfIndex) -> &str {
        self.list.get(i as usize).map_or("?", |ic| ic.name.as_str())
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (IfIndex, &Interface)> {
        self.list.iter().enumerate().map(|(i, x)| (i as IfIndex, x))
    }

    pub fn by_name(&self, name: &str) -> Option<IfIndex> {
        self.list
            .iter()
            .position(|i| i.name == name)
            .map(|i| i as IfIndex)
    }

    /// Number of ports (devices) the interfaces sit on.
    pub fn ports(&self) -> usize {
        self.by_port.len()
    }

    /// The interface that owns IPv4 address `a`, if any.
    pub fn owner_v4(&self, a: u32) -> Option<IfIndex> {
        self.iter().find(|(_, i)| i.has_v4(a)).map(|(x, _)| x)
    }

    pub fn owner_v6(&self, a: u128) -> Option<IfIndex> {
        self.iter().find(|(_, i)| i.has_v6(a)).map(|(x, _)| x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(name: &str, port: u16, vlans: &[u16], v4: &[(&str, u8)]) -> Interface {
        Interface {
            name: name.into(),
            device: format!("eth{port}"),
            port,
            vlans: VlanStack::from_slice(vlans).unwrap(),
            mac: [2, 0, 0, 0, 0, port as u8],
            mtu: 1500,
            v4: v4.iter().map(|(a, l)| (a.parse().unwrap(), *l)).collect(),
            v6: vec![],
            tap: None,
            tap_groups: Vec::new(),
            rp_filter: Default::default(),
            bc_forwarding: false,
            bridge: Bridging::None,
        }
    }

    #[test]
    fn classify_by_port_and_tags() {
        let t = Interfaces::new(vec![
            iface("wan", 0, &[], &[("203.0.113.2", 24)]),
            iface("lan", 1, &[], &[]),
            iface("lan10", 1, &[10], &[("192.168.10.1", 24), ("10.9.0.1", 16)]),
            iface("qinq", 1, &[100, 10], &[]),
        ]);
        let v = |s: &[u16]| VlanStack::from_slice(s).unwrap();
        assert_eq!(t.classify(0, &v(&[])), Some(0));
        assert_eq!(t.classify(1, &v(&[])), Some(1));
        assert_eq!(t.classify(1, &v(&[10])), Some(2));
        assert_eq!(t.classify(1, &v(&[100, 10])), Some(3));
        assert_eq!(t.classify(1, &v(&[11])), None);
        assert_eq!(t.classify(0, &v(&[10])), None);
        assert_eq!(t.classify(7, &v(&[])), None);
        let lan10 = t.get(2);
        assert_eq!(
            lan10.source_v4(u32::from(Ipv4Addr::new(10, 9, 3, 3))),
            Some("10.9.0.1".parse().unwrap())
        );
        assert_eq!(
            lan10.source_v4(u32::from(Ipv4Addr::new(8, 8, 8, 8))),
            Some("192.168.10.1".parse().unwrap())
        );
        assert_eq!(
            t.owner_v4(u32::from(Ipv4Addr::new(203, 0, 113, 2))),
            Some(0)
        );
        assert_eq!(t.by_name("qinq"), Some(3));
    }

    #[test]
    fn subnets() {
        assert!(same_subnet_v4(0xc0a8_0101, 0xc0a8_01fe, 24));
        assert!(!same_subnet_v4(0xc0a8_0101, 0xc0a8_0201, 24));
        assert!(same_subnet_v4(1, 0xffff_ffff, 0));
        assert!(same_subnet_v4(5, 5, 32));
        assert!(is_link_local_v6(u128::from(
            "fe80::1".parse::<Ipv6Addr>().unwrap()
        )));
        assert!(!is_link_local_v6(u128::from(
            "2001:db8::1".parse::<Ipv6Addr>().unwrap()
        )));
    }
}
