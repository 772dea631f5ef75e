//! Cross-field checks over a parsed config: names that must exist or be
//! unique, address families that must agree, gateways that must be reachable.
//! Fields that already failed to parse are skipped, so one mistake gives one error.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;

use super::error::did_you_mean;
use super::model::{Config, Interface, MIN_MTU_V6, RouteCfg, RouteType};
use super::parse::Ctx;
use super::values::{self, table_name};

/// Runs every cross-field check; errors go to `ctx`.
pub(crate) fn check(cfg: &Config, ctx: &mut Ctx<'_>) {
    interfaces(cfg, ctx);
    bridges(cfg, ctx);
    routes(cfg, ctx);
    rules(cfg, ctx);
    neighbors(cfg, ctx);
}

fn family(ip: &IpAddr) -> &'static str {
    if ip.is_ipv4() { "IPv4" } else { "IPv6" }
}

fn net_family(net: &IpNet) -> &'static str {
    family(&net.addr())
}

fn vlan_desc(device: &str, vlan: &[u16]) -> String {
    match vlan {
        [] => format!("device {device:?} untagged"),
        [v] => format!("device {device:?} VLAN {v}"),
        _ => format!(
            "device {device:?} VLANs {}",
            vlan.iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(".")
        ),
    }
}

fn interfaces(cfg: &Config, ctx: &mut Ctx<'_>) {
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut stacks: HashMap<(&str, &[u16]), (&str, usize)> = HashMap::new();
    let mut addrs: HashMap<IpAddr, (&str, usize)> = HashMap::new();
    let mut taps: HashMap<&str, (&str, usize)> = HashMap::new();
    for (i, ifc) in cfg.interfaces.iter().enumerate() {
        let p = format!("interface[{i}]");
        let name_f = format!("{p}.name");
        if !ctx.is_bad(&name_f) {
            if let Some(first) = names.get(ifc.name.as_str()) {
                let line = ctx.line_of(&name_f, ifc.line);
                ctx.error(
                    line,
                    &name_f,
                    format!(
                        "duplicate interface name {:?} (first defined at line {first})",
                        ifc.name
                    ),
                );
            } else {
                names.insert(&ifc.name, ifc.line);
            }
        }

        let dev_f = format!("{p}.device");
        let vlan_f = format!("{p}.vlan");
        if !ctx.is_bad(&dev_f) && !ctx.is_bad(&vlan_f) {
            let key = (ifc.device.as_str(), ifc.vlan.as_slice());
            if let Some(&(other, line)) = stacks.get(&key) {
                let f = if ifc.vlan.is_empty() { dev_f } else { vlan_f };
                let l = ctx.line_of(&f, ifc.line);
                ctx.error(
                    l,
                    &f,
                    format!(
                        "{} is already used by interface {other:?} (line {line})",
                        vlan_desc(&ifc.device, &ifc.vlan)
                    ),
                );
            } else {
                stacks.insert(key, (&ifc.name, ifc.line));
            }
        }

        let tap_f = format!("{p}.tap");
        if let Some(tap) = &ifc.tap
            && !ctx.is_bad(&tap_f)
        {
            let clash = if let Some(&(other, line)) = taps.get(tap.as_str()) {
                Some(format!(
                    "tap {tap:?} is already the tap of interface {other:?} (line {line})"
                ))
            } else if let Some(d) = cfg.interfaces.iter().find(|d| d.device == *tap) {
                Some(format!(
                    "tap {tap:?} is the device of interface {:?} (line {}): a tap needs a name of its own",
                    d.name, d.line
                ))
            } else {
                taps.insert(tap, (&ifc.name, ifc.line));
                None
            };
            if let Some(msg) = clash {
                let l = ctx.line_of(&tap_f, ifc.line);
                ctx.error(l, &tap_f, msg);
            }
        }

        if ifc.mirror.any() && ifc.tap.is_none() {
            let f = format!("{p}.mirror");
            let l = ctx.line_of(&f, ifc.line);
            ctx.error(
                l,
                &f,
                "mirror needs a tap: xgate mirrors what the kernel holds for the tap device"
                    .to_string(),
            );
        }

        if !ifc.tap_groups.is_empty() && ifc.tap.is_none() {
            let f = format!("{p}.tap_groups");
            let l = ctx.line_of(&f, ifc.line);
            ctx.error(
                l,
                &f,
                "tap_groups needs a tap: the groups go to the host kernel's tap".to_string(),
            );
        }

        let mtu_f = format!("{p}.mtu");
        if ifc.mtu < MIN_MTU_V6
            && let Some(a) = ifc.addresses.iter().find(|a| a.addr().is_ipv6())
        {
            let l = ctx.line_of(&mtu_f, ifc.line);
            ctx.error(
                l,
                &mtu_f,
                format!(
                    "mtu {} is below {MIN_MTU_V6}, the minimum for IPv6 (address {a})",
                    ifc.mtu
                ),
            );
        }

        for (j, a) in ifc.addresses.iter().enumerate() {
            let f = address_field(ctx, &p, j);
            if let Some(&(other, line)) = addrs.get(&a.addr()) {
                let l = ctx.line_of(&f, ifc.line);
                ctx.error(
                    l,
                    &f,
                    format!(
                        "address {} is already assigned to interface {other:?} (line {line})",
                        a.addr()
                    ),
                );
            } else {
                addrs.insert(a.addr(), (&ifc.name, ctx.line_of(&f, ifc.line)));
            }
        }
    }
}

/// `[[bridge]]`: names, ports that are plain interfaces of one bridge
/// each, routed interfaces (`device` = the bridge) and static entries
/// that fit the bridge's VLAN mode.
fn bridges(cfg: &Config, ctx: &mut Ctx<'_>) {
    use xgate_dataplane::bridge::MAX_BRIDGES;
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut owner: HashMap<&str, &str> = HashMap::new();
    for (i, b) in cfg.bridges.iter().enumerate() {
        let p = format!("bridge[{i}]");
        let name_f = format!("{p}.name");
        if i == MAX_BRIDGES {
            ctx.error(b.line, &p, format!("at most {MAX_BRIDGES} bridges"));
        }
        if !ctx.is_bad(&name_f) {
            let line = ctx.line_of(&name_f, b.line);
            if let Some(first) = names.get(b.name.as_str()) {
                ctx.error(
                    line,
                    &name_f,
                    format!("duplicate bridge name {:?} (first at line {first})", b.name),
                );
            } else if let Some(ic) = cfg
                .interface(&b.name)
                .filter(|ic| ic.device != b.name || !ic.vlan.is_empty())
            {
                ctx.error(
                    line,
                    &name_f,
                    format!(
                        "{:?} is the name of interface at line {} on device {:?}: the bridge's own untagged interface carries its name (give that interface `device = {:?}` and no vlan, or the bridge another name)",
                        b.name, ic.line, ic.device, b.name
                    ),
                );
            }
            names.insert(&b.name, b.line);
        }
        for port in &b.ports {
            let f = port.field.as_str();
            if ctx.is_bad(f) {
                continue;
            }
            check_ifref(cfg, ctx, f, &port.interface, b.line);
            let Some(ic) = cfg.interface(&port.interface) else {
                continue;
            };
            let line = ctx.line_of(f, b.line);
            let problem = if let Some(other) = owner.insert(&ic.name, &b.name) {
                Some(format!(
                    "interface {:?} is already a port of bridge {other:?}",
                    ic.name
                ))
            } else if cfg.bridges.iter().any(|x| x.name == ic.device) {
                Some(format!(
                    "interface {:?} is a bridge's own interface (device {:?}), not a port",
                    ic.name, ic.device
                ))
            } else if !ic.addresses.is_empty() {
                Some(format!(
                    "interface {:?} has addresses: a bridge port has none (put them on the bridge's interface, `device = {:?}`)",
                    ic.name, b.name
                ))
            } else if ic.tap.is_some() || ic.mirror.any() {
                Some(format!(
                    "interface {:?} has a tap: a bridge port is switched, the bridge's interface may have one",
                    ic.name
                ))
            } else if b.vlan_filtering && !ic.vlan.is_empty() {
                Some(format!(
                    "interface {:?} is tagged: on a VLAN-aware bridge the port is the untagged device, and `pvid`/`vlans` give its VLANs",
                    ic.name
                ))
            } else if !b.vlan_filtering && (port.pvid.is_some() || !port.vlans.is_empty()) {
                Some("pvid and vlans need vlan_filtering = true".to_string())
            } else {
                None
            };
            if let Some(msg) = problem {
                ctx.error(line, f, msg);
            }
        }
        for ic in cfg.interfaces.iter().filter(|ic| ic.device == b.name) {
            let ok = match ic.vlan.as_slice() {
                [] => true,
                [_] => b.vlan_filtering,
                _ => false,
            };
            if !ok {
                ctx.error(
                    ic.line,
                    "interface.vlan",
                    format!(
                        "interface {:?} on bridge {:?}: a bridge's routed interface is untagged, or one VLAN of a vlan_filtering bridge (`vlan = 10`, Linux's {}.10)",
                        ic.name, b.name, b.name
                    ),
                );
            }
        }
        for (j, e) in b.fdb.iter().enumerate() {
            let f = format!("{p}.fdb[{j}]");
            if !b.ports.iter().any(|x| x.interface == e.port) {
                ctx.error(
                    e.line,
                    &format!("{f}.port"),
                    format!("{:?} is not a port of bridge {:?}", e.port, b.name),
                );
            }
            if e.vlan.is_some() && !b.vlan_filtering {
                ctx.error(
                    e.line,
                    &format!("{f}.vlan"),
                    "vlan needs vlan_filtering = true".to_string(),
                );
            }
        }
    }
}

/// The field path of the `j`-th *valid* address of `interface[..]` at `p`
/// (invalid entries are skipped in the model, so positions can shift).
fn address_field(ctx: &Ctx<'_>, p: &str, j: usize) -> String {
    let mut valid = 0;
    let mut k = 0;
    loop {
        let f = format!("{p}.address[{k}]");
        if ctx.line_of(&f, 0) == 0 {
            // Past the end (cannot happen for a parsed address): best effort.
            return format!("{p}.address[{j}]");
        }
        if !ctx.is_bad(&f) {
            if valid == j {
                return f;
            }
            valid += 1;
        }
        k += 1;
    }
}

/// Reports `name` if it is not an interface.
fn check_ifref(cfg: &Config, ctx: &mut Ctx<'_>, field: &str, name: &str, fallback: usize) {
    if ctx.is_bad(field) || cfg.interface(name).is_some() {
        return;
    }
    let known: Vec<&str> = cfg.interfaces.iter().map(|i| i.name.as_str()).collect();
    let msg = if known.is_empty() {
        format!("unknown interface {name:?} (no [[interface]] is defined)")
    } else if known.len() <= 8 {
        format!("unknown interface {name:?} (defined: {})", known.join(", "))
    } else if let Some(s) = did_you_mean(name, known.iter().copied()) {
        format!("unknown interface {name:?} (did you mean {s:?}?)")
    } else {
        format!("unknown interface {name:?}")
    };
    let line = ctx.line_of(field, fallback);
    ctx.error(line, field, msg);
}

/// Checks a gateway: family of `to`, not our own address, reachable on `dev`
/// (or on some interface when `dev` is not given).
fn check_gateway(
    cfg: &Config,
    ctx: &mut Ctx<'_>,
    field: &str,
    via: IpAddr,
    to: Option<&IpNet>,
    dev: Option<&str>,
    fallback: usize,
) {
    if ctx.is_bad(field) {
        return;
    }
    let line = ctx.line_of(field, fallback);
    if let Some(to) = to
        && via.is_ipv4() != to.addr().is_ipv4()
    {
        ctx.error(
            line,
            field,
            format!(
                "gateway {via} is {} but `to` {to} is {}",
                family(&via),
                net_family(to)
            ),
        );
        return;
    }
    if let Some(owner) = cfg.owner_of(via) {
        ctx.error(
            line,
            field,
            format!(
                "gateway {via} is this router's own address (interface {:?})",
                owner.name
            ),
        );
        return;
    }
    match dev {
        Some(d) => {
            // An unknown dev is reported on its own field.
            let Some(ifc) = cfg.interface(d) else { return };
            if values::is_link_local_v6(&via) || reachable_on(cfg, ifc, via) {
                return;
            }
            let subnets: Vec<String> = ifc
                .addresses
                .iter()
                .map(|a| a.trunc().to_string())
                .collect();
            let have = if subnets.is_empty() {
                "it has no addresses".to_owned()
            } else {
                format!("its subnets: {}", subnets.join(", "))
            };
            ctx.error(
                line,
                field,
                format!(
                    "gateway {via} is not on a connected subnet of interface {d:?} ({have}) nor covered by a `dev`-only route"
                ),
            );
        }
        None => {
            if values::is_link_local_v6(&via) {
                ctx.error(
                    line,
                    field,
                    format!("link-local gateway {via} needs `dev` to say which interface"),
                );
            } else if cfg.gateway_dev(via).is_none() {
                ctx.error(
                    line,
                    field,
                    format!(
                        "gateway {via} is not on any connected subnet; add `dev`, or an interface address whose subnet contains it"
                    ),
                );
            }
        }
    }
}

/// True if `via` is on-link on `ifc`: in one of its subnets, or in a
/// `dev`-only route out of it.
fn reachable_on(cfg: &Config, ifc: &Interface, via: IpAddr) -> bool {
    ifc.subnet_containing(via).is_some()
        || cfg.routes.iter().any(|r| {
            r.is_link_route() && r.dev.as_deref() == Some(&ifc.name) && r.to.contains(&via)
        })
}

fn routes(cfg: &Config, ctx: &mut Ctx<'_>) {
    let mut seen: HashMap<(u32, IpNet, u32), usize> = HashMap::new();
    for (i, r) in cfg.routes.iter().enumerate() {
        let p = format!("route[{i}]");
        let (to_f, via_f, dev_f, nh_f) = (
            format!("{p}.to"),
            format!("{p}.via"),
            format!("{p}.dev"),
            format!("{p}.nexthops"),
        );
        let to = (!ctx.is_bad(&to_f)).then_some(&r.to);
        let dev = r.dev.as_deref().filter(|_| !ctx.is_bad(&dev_f));
        if let Some(d) = dev {
            check_ifref(cfg, ctx, &dev_f, d, r.line);
        }

        if r.rtype == RouteType::Unicast {
            if r.nexthops.is_empty() {
                let anything = r.via.is_some()
                    || r.dev.is_some()
                    || ctx.is_bad(&via_f)
                    || ctx.is_bad(&dev_f)
                    || ctx.is_bad(&nh_f);
                if !anything {
                    ctx.error(
                        r.line,
                        &p,
                        "a unicast route needs `via`, `dev` or `nexthops`",
                    );
                }
                if let Some(via) = r.via {
                    check_gateway(cfg, ctx, &via_f, via, to, dev, r.line);
                }
            } else {
                if r.via.is_some() {
                    let l = ctx.line_of(&via_f, r.line);
                    ctx.error(l, &via_f, "use either `via` or `nexthops`, not both");
                }
                if r.dev.is_some() {
                    let l = ctx.line_of(&dev_f, r.line);
                    ctx.error(l, &dev_f, "with `nexthops`, put `dev` inside each next hop");
                }
                nexthops(cfg, ctx, &p, r, to);
            }
        } else {
            let kind = r.rtype.as_str();
            for (present, f, key) in [
                (r.via.is_some(), &via_f, "via"),
                (r.dev.is_some(), &dev_f, "dev"),
                (!r.nexthops.is_empty(), &nh_f, "nexthops"),
            ] {
                if present {
                    let l = ctx.line_of(f, r.line);
                    ctx.error(l, f, format!("a route of type {kind} takes no `{key}`"));
                }
            }
        }

        let table_f = format!("{p}.table");
        let metric_f = format!("{p}.metric");
        if to.is_some() && !ctx.is_bad(&table_f) && !ctx.is_bad(&metric_f) {
            let key = (r.table, r.to, r.metric);
            if let Some(first) = seen.get(&key) {
                let l = ctx.line_of(&to_f, r.line);
                ctx.error(
                    l,
                    &to_f,
                    format!(
                        "duplicate route: {} metric {} in table {} is already defined at line {first}",
                        r.to,
                        r.metric,
                        table_name(r.table)
                    ),
                );
            } else {
                seen.insert(key, r.line);
            }
        }
    }
}

fn nexthops(cfg: &Config, ctx: &mut Ctx<'_>, p: &str, r: &RouteCfg, to: Option<&IpNet>) {
    let line = r.line;
    let mut seen: HashMap<(IpAddr, Option<&str>), usize> = HashMap::new();
    for (j, nh) in r.nexthops.iter().enumerate() {
        let np = format!("{p}.nexthops[{j}]");
        let (via_f, dev_f) = (format!("{np}.via"), format!("{np}.dev"));
        let nline = ctx.line_of(&np, line);
        let dev = nh.dev.as_deref().filter(|_| !ctx.is_bad(&dev_f));
        if let Some(d) = dev {
            check_ifref(cfg, ctx, &dev_f, d, nline);
        }
        if ctx.is_bad(&via_f) || ctx.is_bad(&np) {
            continue;
        }
        check_gateway(cfg, ctx, &via_f, nh.via, to, dev, nline);
        let key = (nh.via, nh.dev.as_deref());
        if let Some(first) = seen.get(&key) {
            let l = ctx.line_of(&via_f, nline);
            ctx.error(
                l,
                &via_f,
                format!("duplicate next hop {} (same as nexthops[{first}])", nh.via),
            );
        } else {
            seen.insert(key, j);
        }
    }
}

fn rules(cfg: &Config, ctx: &mut Ctx<'_>) {
    for (i, r) in cfg.rules.iter().enumerate() {
        let p = format!("rule[{i}]");
        if let Some(iif) = &r.iif {
            check_ifref(cfg, ctx, &format!("{p}.iif"), iif, r.line);
        }
        if let (Some(from), Some(to)) = (&r.from, &r.to)
            && from.addr().is_ipv4() != to.addr().is_ipv4()
        {
            let f = format!("{p}.to");
            let l = ctx.line_of(&f, r.line);
            ctx.error(
                l,
                &f,
                format!(
                    "`to` {to} is {} but `from` {from} is {}",
                    net_family(to),
                    net_family(from)
                ),
            );
        }
    }
}

fn neighbors(cfg: &Config, ctx: &mut Ctx<'_>) {
    let mut seen: HashMap<(&str, IpAddr), usize> = HashMap::new();
    for (i, n) in cfg.neighbors.iter().enumerate() {
        let p = format!("neighbor[{i}]");
        let (ip_f, dev_f) = (format!("{p}.ip"), format!("{p}.dev"));
        if !ctx.is_bad(&dev_f) {
            check_ifref(cfg, ctx, &dev_f, &n.dev, n.line);
        }
        if ctx.is_bad(&ip_f) {
            continue;
        }
        let l = ctx.line_of(&ip_f, n.line);
        if let Some(owner) = cfg.owner_of(n.ip) {
            ctx.error(
                l,
                &ip_f,
                format!(
                    "{} is this router's own address (interface {:?})",
                    n.ip, owner.name
                ),
            );
            continue;
        }
        if ctx.is_bad(&dev_f) {
            continue;
        }
        if let Some(first) = seen.get(&(n.dev.as_str(), n.ip)) {
            ctx.error(
                l,
                &ip_f,
                format!(
                    "duplicate neighbor {} on {:?} (first defined at line {first})",
                    n.ip, n.dev
                ),
            );
        } else {
            seen.insert((&n.dev, n.ip), n.line);
        }
    }
}
