//! Bridge domains: several ports (logical interfaces) in one L2 domain,
//! with the bridge's own routed interface (the BVI, Linux's `br0` with an
//! address). The MAC table is [`fdb::Fdb`] (shared, lock-free); this file
//! holds what the config says (immutable, in `Tables`): the ports and
//! their VLAN membership, the BVIs per VLAN, ageing, flood limits and
//! whether bridged IP goes through netfilter (br_netfilter). The batch
//! stage is `pipeline/bridge.rs`.

pub mod fdb;

pub use fdb::{Fdb, FdbEntry, Learned};

use crate::iface::IfIndex;

/// Bridges a config may have (the MAC table keys them in 4 bits).
pub const MAX_BRIDGES: usize = 16;

/// One port of a bridge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BridgePort {
    /// The port's logical interface.
    pub iface: IfIndex,
    /// VLAN-aware bridges: the VLAN of untagged frames, sent untagged
    /// (0: untagged frames are not accepted).
    pub pvid: u16,
    /// VLAN-aware bridges: the VLANs carried tagged (a bitmap of 4096).
    pub tagged: Box<[u64; 64]>,
}

impl BridgePort {
    pub fn new(iface: IfIndex, pvid: u16, tagged: &[u16]) -> Self {
        let mut t = Box::new([0u64; 64]);
        for &v in tagged {
            t[usize::from(v & 0xfff) / 64] |= 1 << (v % 64);
        }
        BridgePort {
            iface,
            pvid,
            tagged: t,
        }
    }

    /// Whether the port carries `vid` tagged.
    #[inline]
    pub fn carries_tagged(&self, vid: u16) -> bool {
        self.tagged[usize::from(vid & 0xfff) / 64] >> (vid % 64) & 1 != 0
    }

    /// Whether frames of `vid` may leave by this port, and tagged or not:
    /// None (not a member), Some(false) untagged, Some(true) tagged.
    #[inline]
    pub fn egress(&self, vlan_filtering: bool, vid: u16) -> Option<bool> {
        if !vlan_filtering {
            return Some(false);
        }
        if self.pvid == vid && vid != 0 {
            Some(false)
        } else if self.carries_tagged(vid) {
            Some(true)
        } else {
            None
        }
    }

    /// The VLAN a received frame belongs to, given its outer tag (None:
    /// untagged), or None when the port does not accept it.
    #[inline]
    pub fn ingress(&self, vlan_filtering: bool, tag: Option<u16>) -> Option<u16> {
        if !vlan_filtering {
            return Some(0);
        }
        match tag {
            None | Some(0) => (self.pvid != 0).then_some(self.pvid),
            Some(v) => (self.carries_tagged(v) || self.pvid == v).then_some(v),
        }
    }

    /// The VLANs the port is a member of (for `ctl bridge`).
    pub fn vlans(&self) -> Vec<u16> {
        (1..4095).filter(|&v| self.carries_tagged(v)).collect()
    }
}

/// One bridge domain as the packet path reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bridge {
    pub name: String,
    /// Its number (the MAC table's key).
    pub id: u8,
    /// The bridge's own interface (Linux's `br0` device): what `-i`/`-o`
    /// name for bridged traffic, and the routed interface of untagged
    /// traffic (VLAN `default_pvid` on a VLAN-aware bridge).
    pub iface: IfIndex,
    pub ports: Vec<BridgePort>,
    /// Routed interfaces per VLAN (VLAN-aware bridges: `vlan = N` on an
    /// interface of the bridge, Linux's `br0.N`): (vid, interface). The
    /// bridge's own interface is listed with its VLAN too.
    pub bvis: Vec<(u16, IfIndex)>,
    pub vlan_filtering: bool,
    /// IPv4 / IPv6 bridged traffic goes through conntrack and the
    /// netfilter hooks (`bridge-nf-call-iptables`, `-ip6tables`).
    pub nf_call_v4: bool,
    pub nf_call_v6: bool,
    /// MAC ageing in ns (0: never).
    pub ageing_ns: u64,
    /// Flooded frames (broadcast, multicast, unknown unicast) per second
    /// per worker, and the burst (0: no limit).
    pub flood_rate: u32,
    pub flood_burst: u32,
}

impl Bridge {
    /// The port record of interface `i`.
    #[inline]
    pub fn port(&self, i: IfIndex) -> Option<&BridgePort> {
        self.ports.iter().find(|p| p.iface == i)
    }

    /// The routed interface of VLAN `vid` (0 on a bridge without VLANs).
    #[inline]
    pub fn bvi(&self, vid: u16) -> Option<IfIndex> {
        self.bvis.iter().find(|(v, _)| *v == vid).map(|(_, i)| *i)
    }

    /// The VLAN the routed interface `i` sits in.
    #[inline]
    pub fn bvi_vlan(&self, i: IfIndex) -> Option<u16> {
        self.bvis.iter().find(|(_, x)| *x == i).map(|(v, _)| *v)
    }
}

/// All bridges of a config.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bridges {
    pub list: Vec<Bridge>,
    /// Static MAC entries: (bridge, vid, mac, port interface).
    pub static_fdb: Vec<(u8, u16, [u8; 6], IfIndex)>,
    /// Whether any bridge's ruleset reads `--physdev-out`: flooded
    /// copies are then checked again per port.
    pub physdev_out: bool,
    /// MAC table entries the bridges may hold together (their `fdb_max`).
    pub fdb_slots: usize,
}

impl Bridges {
    #[inline]
    pub fn get(&self, id: u8) -> &Bridge {
        &self.list[usize::from(id)]
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn by_name(&self, name: &str) -> Option<&Bridge> {
        self.list.iter().find(|b| b.name == name)
    }

    /// Whether the MAC table's meaning changed between `self` and `new`
    /// (ports or their numbering): a reload then flushes it.
    pub fn same_layout(&self, new: &Bridges) -> bool {
        self.list.len() == new.list.len()
            && self.list.iter().zip(&new.list).all(|(a, b)| {
                a.name == b.name
                    && a.iface == b.iface
                    && a.ports.len() == b.ports.len()
                    && a.ports
                        .iter()
                        .zip(&b.ports)
                        .all(|(x, y)| x.iface == y.iface)
            })
            && self.static_fdb == new.static_fdb
    }

    /// Writes the static entries into `fdb`; the entries that found no
    /// slot are returned.
    pub fn install_static(&self, fdb: &Fdb) -> Vec<(u8, u16, [u8; 6], IfIndex)> {
        self.static_fdb
            .iter()
            .filter(|(b, v, m, p)| !fdb.add_static(*b, *v, m, *p))
            .copied()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vlan_membership_as_bridge_vlan() {
        // An access port in VLAN 10, a trunk with 10 and 20 tagged.
        let access = BridgePort::new(1, 10, &[]);
        let trunk = BridgePort::new(2, 0, &[10, 20]);
        assert_eq!(access.ingress(true, None), Some(10));
        assert_eq!(access.ingress(true, Some(20)), None);
        assert_eq!(access.ingress(true, Some(10)), Some(10));
        assert_eq!(trunk.ingress(true, None), None);
        assert_eq!(trunk.ingress(true, Some(20)), Some(20));
        assert_eq!(trunk.ingress(true, Some(30)), None);
        assert_eq!(access.egress(true, 10), Some(false));
        assert_eq!(access.egress(true, 20), None);
        assert_eq!(trunk.egress(true, 20), Some(true));
        assert_eq!(trunk.egress(true, 30), None);
        assert_eq!(trunk.vlans(), vec![10, 20]);
        // Without VLAN filtering everything is one domain, untagged.
        assert_eq!(trunk.ingress(false, Some(30)), Some(0));
        assert_eq!(trunk.egress(false, 30), Some(false));
    }
}
