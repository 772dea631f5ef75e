//! The host kernel's side of the taps (`[[interface]] tap`): what `xgate
//! run` sets up so that the router's own services (sshd, a DNS resolver,
//! a routing daemon) see the interfaces xgate owns.
//!
//! Each tap mirrors its interface: the same MAC (frames xgate punts are
//! addressed to it), the same MTU, the same addresses (without the EUI-64
//! link-local one, which the kernel derives from the same MAC itself), and
//! no ARP (`arp off`: the kernel sends every IP packet at once, addressed
//! to the tap's own MAC, and xgate's routes and neighbour table decide
//! where it goes). The kernel gets the unicast routes of xgate's main
//! table whose interface has a tap (first next hop of an ECMP route), so
//! it picks the right tap and source address for its own connections;
//! they are `proto 200` (`RTPROT_XGATE`), which the netlink mirror skips.
//!
//! The configuration is done with iproute2's `ip` (a dependency of the
//! test topologies too), once at start; the taps are non-persistent, so
//! the kernel removes them with their addresses and routes when xgate's
//! file descriptors close, however xgate exits.

use crate::compile::eui64_link_local;
use crate::config::{Config, RouteType, TABLE_MAIN};
use std::process::Command;
use xgate_dataplane::iface::Interfaces;

/// `ip` invocations (arguments after `ip`) that give the kernel its view
/// of the interfaces with a tap; `taps` names the tap of each tap id.
pub fn plan(cfg: &Config, interfaces: &Interfaces, taps: &[String]) -> Vec<Vec<String>> {
    let mut cmds = Vec::new();
    let tap_of_iface = |name: &str| {
        let tap = interfaces.get(interfaces.by_name(name)?).tap?;
        taps.get(usize::from(tap))
    };
    for (_, ifc) in interfaces.iter() {
        let Some(tap) = ifc.tap.and_then(|t| taps.get(usize::from(t))) else {
            continue;
        };
        let mac = ifc
            .mac
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":");
        cmds.push(args(&[
            "link",
            "set",
            "dev",
            tap,
            "address",
            &mac,
            "mtu",
            &ifc.mtu.to_string(),
            "arp",
            "off",
        ]));
        for (a, len) in &ifc.v4 {
            cmds.push(args(&["addr", "add", &format!("{a}/{len}"), "dev", tap]));
        }
        let derived = eui64_link_local(&ifc.mac);
        for (a, len) in ifc.v6.iter().filter(|(a, _)| *a != derived) {
            let net = format!("{a}/{len}");
            cmds.push(args(&["-6", "addr", "add", &net, "dev", tap, "nodad"]));
        }
        cmds.push(args(&["link", "set", "dev", tap, "up"]));
    }
    for r in &cfg.routes {
        if r.table != TABLE_MAIN || r.rtype != RouteType::Unicast {
            continue;
        }
        let (via, dev) = match r.nexthops.first() {
            Some(nh) => (Some(nh.via), nh.dev.clone()),
            None => (r.via, r.dev.clone()),
        };
        let dev = dev.or_else(|| {
            let via = via?;
            let on = |i: &&crate::config::Interface| i.subnet_containing(via).is_some();
            cfg.interfaces.iter().find(on).map(|i| i.name.clone())
        });
        let Some(tap) = dev.as_deref().and_then(tap_of_iface) else {
            continue;
        };
        let mut cmd = args(&["route", "replace", &r.to.to_string()]);
        if let Some(v) = via {
            cmd.extend(args(&["via", &v.to_string()]));
        }
        // Tagged as xgate's, so the mirror (crate::mirror) knows them.
        cmd.extend(args(&[
            "dev",
            tap,
            "metric",
            &r.metric.to_string(),
            "proto",
            &crate::mirror::translate::RTPROT_XGATE.to_string(),
        ]));
        if via.is_some() {
            cmd.push("onlink".into());
        }
        cmds.push(cmd);
    }
    cmds
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// Runs the plan; the first failure stops it, with `ip`'s own message.
pub fn apply(cmds: &[Vec<String>]) -> Result<(), String> {
    for c in cmds {
        let out = Command::new("ip")
            .args(c)
            .output()
            .map_err(|e| format!("`ip {}`: {e} (iproute2 is needed for taps)", c.join(" ")))?;
        if !out.status.success() {
            return Err(format!(
                "`ip {}` failed: {}",
                c.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::compile;

    const CFG: &str = r#"
[[interface]]
name = "wan"
device = "eth0"
mac = "02:00:00:00:00:01"
address = ["203.0.113.2/24", "2001:db8:1::2/64"]
tap = "xg-wan"

[[interface]]
name = "lan"
device = "eth1"
mac = "02:00:00:00:00:02"
address = ["192.168.1.1/24"]
mtu = 1400

[[interface]]
name = "dmz"
device = "eth1"
vlan = 20
mac = "02:00:00:00:00:03"
address = ["10.20.0.1/24"]
tap = "xg-dmz"

[[route]]
to = "0.0.0.0/0"
via = "203.0.113.1"

[[route]]
to = "10.99.0.0/16"
via = "192.168.1.254"

[[route]]
to = "10.50.0.0/16"
dev = "dmz"
metric = 5

[[route]]
to = "198.51.100.0/24"
type = "blackhole"
"#;

    #[test]
    fn taps_mirror_their_interfaces_and_routes() {
        let cfg = crate::config::parse(CFG, "x.toml").unwrap();
        let c = compile(&cfg, &|_, _| None).unwrap();
        assert_eq!(c.taps, ["xg-wan", "xg-dmz"]);
        let cmds: Vec<String> = plan(&cfg, &c.tables.interfaces, &c.taps)
            .iter()
            .map(|c| c.join(" "))
            .collect();
        let want = [
            "link set dev xg-wan address 02:00:00:00:00:01 mtu 1500 arp off",
            "addr add 203.0.113.2/24 dev xg-wan",
            "-6 addr add 2001:db8:1::2/64 dev xg-wan nodad",
            "link set dev xg-wan up",
            "link set dev xg-dmz address 02:00:00:00:00:03 mtu 1500 arp off",
            "addr add 10.20.0.1/24 dev xg-dmz",
            "link set dev xg-dmz up",
            // The default route's gateway is on wan; 10.99/16 goes by lan,
            // which has no tap; the blackhole stays xgate's.
            "route replace 0.0.0.0/0 via 203.0.113.1 dev xg-wan metric 0 proto 200 onlink",
            "route replace 10.50.0.0/16 dev xg-dmz metric 5 proto 200",
        ];
        assert_eq!(cmds, want);
    }
}
