//! `[[bridge]]`: a bridge domain, its ports (names, or tables with their
//! VLANs) and its static MAC entries (`[[bridge.fdb]]`).

use super::*;
use crate::config::model::{
    DEFAULT_AGEING, DEFAULT_FDB_MAX, DEFAULT_FLOOD_BURST, DEFAULT_FLOOD_RATE, MAX_FDB,
};

pub(super) fn bridge(ctx: &mut Ctx<'_>, path: &str, line: usize, t: &DeTable<'_>) -> BridgeCfg {
    let mut b = BridgeCfg {
        name: String::new(),
        ports: Vec::new(),
        vlan_filtering: false,
        default_pvid: 1,
        nf_call_iptables: false,
        nf_call_ip6tables: false,
        ageing: DEFAULT_AGEING,
        fdb_max: DEFAULT_FDB_MAX,
        flood_rate: DEFAULT_FLOOD_RATE,
        flood_burst: DEFAULT_FLOOD_BURST,
        fdb: Vec::new(),
        line,
    };
    let (mut has_name, mut has_ports) = (false, false);
    for e in ctx.entries(path, t, BRIDGE_KEYS) {
        let (f, v) = (e.field.as_str(), e.val);
        let flag = |ctx: &mut Ctx<'_>, out: &mut bool| {
            if let Some(x) = ctx.expect_bool(f, v) {
                *out = x;
            }
        };
        match e.key {
            "name" => {
                has_name = true;
                if let Some(s) = ctx.expect_str(f, v) {
                    b.name = s.to_owned();
                    if let Err(msg) = check_ifname(s).and_then(|()| check_devname(s)) {
                        ctx.value_error(f, v, msg);
                    }
                }
            }
            "ports" => {
                has_ports = true;
                b.ports = ports(ctx, f, v);
            }
            "vlan_filtering" => flag(ctx, &mut b.vlan_filtering),
            "nf_call_iptables" => flag(ctx, &mut b.nf_call_iptables),
            "nf_call_ip6tables" => flag(ctx, &mut b.nf_call_ip6tables),
            "default_pvid" => {
                if let Some(n) = ctx.expect_u64(f, v, 1, 4094) {
                    b.default_pvid = n as u16;
                }
            }
            "ageing" => {
                if let Some(n) = ctx.expect_u64(f, v, 0, 1_000_000) {
                    b.ageing = n;
                }
            }
            "fdb_max" => {
                if let Some(n) = ctx.expect_u64(f, v, 16, MAX_FDB) {
                    b.fdb_max = n;
                }
            }
            "flood_rate" => {
                if let Some(n) = ctx.expect_u64(f, v, 0, 100_000_000) {
                    b.flood_rate = n as u32;
                }
            }
            "flood_burst" => {
                if let Some(n) = ctx.expect_u64(f, v, 1, 1_000_000) {
                    b.flood_burst = n as u32;
                }
            }
            "fdb" => {
                for (p, l, t) in ctx.expect_table_array(f, v) {
                    b.fdb.push(fdb(ctx, &p, l, t));
                }
            }
            _ => {}
        }
    }
    if !has_name {
        ctx.missing(path, "name", line);
    }
    if !has_ports {
        ctx.missing(path, "ports", line);
    }
    b
}

/// `ports = ["red", { interface = "trunk", pvid = 0, vlans = [10, 20] }]`.
fn ports(ctx: &mut Ctx<'_>, field: &str, v: &Val<'_>) -> Vec<BridgePortCfg> {
    ctx.record(field, v);
    let DeValue::Array(items) = v.get_ref() else {
        ctx.type_error(field, v, "an array of interface names or port tables");
        return Vec::new();
    };
    let mut out = Vec::new();
    for (j, item) in items.iter().enumerate() {
        let f = format!("{field}[{j}]");
        match item.get_ref() {
            DeValue::String(_) => {
                if let Some(name) = ctx.if_ref(&f, item) {
                    out.push(BridgePortCfg {
                        interface: name,
                        pvid: None,
                        vlans: Vec::new(),
                        field: f,
                    });
                }
            }
            DeValue::Table(t) => {
                ctx.record(&f, item);
                let mut p = BridgePortCfg {
                    interface: String::new(),
                    pvid: None,
                    vlans: Vec::new(),
                    field: f.clone(),
                };
                let mut has_if = false;
                for e in ctx.entries(&f, t, BRIDGE_PORT_KEYS) {
                    let (pf, pv) = (e.field.as_str(), e.val);
                    match e.key {
                        "interface" => {
                            has_if = true;
                            if let Some(n) = ctx.if_ref(pf, pv) {
                                p.interface = n;
                            }
                        }
                        "pvid" => {
                            if let Some(n) = ctx.expect_u64(pf, pv, 0, 4094) {
                                p.pvid = Some(n as u16);
                            }
                        }
                        "vlans" => p.vlans = vids(ctx, pf, pv),
                        _ => {}
                    }
                }
                if !has_if {
                    let line = ctx.span_line(&item.span());
                    ctx.missing(&f, "interface", line);
                } else {
                    out.push(p);
                }
            }
            _ => ctx.type_error(&f, item, "an interface name or a port table"),
        }
    }
    out
}

/// `vlans = [10, 20]`.
fn vids(ctx: &mut Ctx<'_>, field: &str, v: &Val<'_>) -> Vec<u16> {
    ctx.record(field, v);
    let DeValue::Array(items) = v.get_ref() else {
        ctx.type_error(field, v, "an array of VLAN ids like [10, 20]");
        return Vec::new();
    };
    let mut out: Vec<u16> = Vec::new();
    for (j, item) in items.iter().enumerate() {
        let f = format!("{field}[{j}]");
        if let Some(n) = ctx.expect_u64(&f, item, 1, 4094) {
            if out.contains(&(n as u16)) {
                ctx.value_error(&f, item, format!("VLAN {n} is listed twice"));
            } else {
                out.push(n as u16);
            }
        }
    }
    out
}

/// `[[bridge.fdb]]`: `mac`, `port`, `vlan`.
fn fdb(ctx: &mut Ctx<'_>, path: &str, line: usize, t: &DeTable<'_>) -> FdbCfg {
    let mut e = FdbCfg {
        mac: [0; 6],
        port: String::new(),
        vlan: None,
        line,
    };
    let (mut has_mac, mut has_port) = (false, false);
    for x in ctx.entries(path, t, FDB_KEYS) {
        let (f, v) = (x.field.as_str(), x.val);
        match x.key {
            "mac" => {
                has_mac = true;
                if let Some(m) = ctx.unicast_mac(f, v) {
                    e.mac = m;
                }
            }
            "port" => {
                has_port = true;
                if let Some(p) = ctx.if_ref(f, v) {
                    e.port = p;
                }
            }
            "vlan" => {
                if let Some(n) = ctx.expect_u64(f, v, 1, 4094) {
                    e.vlan = Some(n as u16);
                }
            }
            _ => {}
        }
    }
    for (has, key) in [(has_mac, "mac"), (has_port, "port")] {
        if !has {
            ctx.missing(path, key, line);
        }
    }
    e
}
