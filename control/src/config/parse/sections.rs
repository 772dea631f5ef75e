//! The config's sections, one function each: `[dataplane]`,
//! `[[interface]]`, `[[route]]` (and next hops), `[[rule]]`,
//! `[[neighbor]]`, `[firewall]`, `[timeouts]`, `[control]`, walked by
//! [`document`] with the context of `parse.rs`.

use super::*;

/// Parses the whole document into a `Config`; errors go to `ctx`.
/// `base_dir` is the config file's directory (for `rules_file`).
pub(crate) fn document(ctx: &mut Ctx<'_>, root: &DeTable<'_>, base_dir: &Path) -> Config {
    let mut cfg = Config {
        dataplane: Dataplane::default(),
        interfaces: Vec::new(),
        routes: Vec::new(),
        rules: Vec::new(),
        neighbors: Vec::new(),
        firewall: None,
        timeouts: Vec::new(),
        control: Control::default(),
        conntrack: ConntrackCfg::default(),
        routes_file: None,
        mirror: MirrorCfg::default(),
        bridges: Vec::new(),
        source: ctx.file.clone(),
    };
    for e in ctx.entries("", root, TOP_KEYS) {
        match e.key {
            "dataplane" => cfg.dataplane = dataplane(ctx, &e),
            "interface" => {
                for (path, line, t) in ctx.expect_table_array(&e.field, e.val) {
                    cfg.interfaces.push(interface(ctx, &path, line, t));
                }
            }
            "route" => {
                for (path, line, t) in ctx.expect_table_array(&e.field, e.val) {
                    cfg.routes.push(route(ctx, &path, line, t));
                }
            }
            "rule" => {
                for (path, line, t) in ctx.expect_table_array(&e.field, e.val) {
                    cfg.rules.push(rule(ctx, &path, line, t));
                }
            }
            "neighbor" => {
                for (path, line, t) in ctx.expect_table_array(&e.field, e.val) {
                    cfg.neighbors.push(neighbor(ctx, &path, line, t));
                }
            }
            "firewall" => cfg.firewall = firewall(ctx, &e, base_dir),
            "timeouts" => cfg.timeouts = timeouts(ctx, &e),
            "control" => cfg.control = control(ctx, &e),
            "conntrack" => cfg.conntrack = conntrack(ctx, &e),
            "mirror" => cfg.mirror = mirror_section(ctx, &e),
            "bridge" => {
                for (path, line, t) in ctx.expect_table_array(&e.field, e.val) {
                    cfg.bridges.push(super::bridge::bridge(ctx, &path, line, t));
                }
            }
            "routes_file" => {
                if let Some(s) = ctx.expect_name(&e.field, e.val) {
                    let p = Path::new(s);
                    let path = if p.is_absolute() {
                        p.to_path_buf()
                    } else {
                        base_dir.join(p)
                    };
                    match regular_file(&path) {
                        Ok(()) => cfg.routes_file = Some((path, e.key_line)),
                        Err(msg) => ctx.value_error(&e.field, e.val, msg),
                    }
                }
            }
            _ => {}
        }
    }
    cfg
}

fn dataplane(ctx: &mut Ctx<'_>, section: &Entry<'_, '_>) -> Dataplane {
    let mut d = Dataplane::default();
    let Some(t) = ctx.expect_table(&section.field, section.val) else {
        return d;
    };
    for e in ctx.entries(&section.field, t, DATAPLANE_KEYS) {
        let (f, v) = (e.field.as_str(), e.val);
        match e.key {
            "workers" => {
                d.workers = ctx
                    .expect_u64(f, v, 1, MAX_WORKERS as u64)
                    .and_then(|n| usize::try_from(n).ok());
            }
            "queues" => {
                if let Some(n) = ctx.expect_u64(f, v, 0, MAX_QUEUES as u64) {
                    d.queues = usize::try_from(n).unwrap_or(d.queues);
                }
            }
            "flows" => {
                if let Some(n) = ctx.expect_u64(f, v, MIN_FLOWS as u64, MAX_FLOWS as u64) {
                    d.flows = usize::try_from(n).unwrap_or(d.flows);
                }
            }
            "flows_per_source" | "nat_ports_per_source" => {
                if let Some(n) = ctx.expect_u64(f, v, 0, u64::from(u32::MAX)) {
                    let n = n as u32;
                    if e.key == "flows_per_source" {
                        d.flows_per_source = n;
                    } else {
                        d.nat_ports_per_source = n;
                    }
                }
            }
            "rx_ring" | "tx_ring" | "fill_ring" => {
                if let Some(n) = ctx.expect_u64(f, v, MIN_RING as u64, MAX_RING as u64) {
                    if !n.is_power_of_two() {
                        ctx.value_error(
                            f,
                            v,
                            format!(
                                "{n} is not a power of two (ring sizes are): {} or {}",
                                n.next_power_of_two() / 2,
                                n.next_power_of_two()
                            ),
                        );
                    } else {
                        let n = n as u32;
                        match e.key {
                            "rx_ring" => d.rx_ring = n,
                            "tx_ring" => d.tx_ring = n,
                            _ => d.fill_ring = n,
                        }
                    }
                }
            }
            "xdp_mode" => {
                if let Some(s) = ctx.expect_str(f, v) {
                    match XdpMode::from_name(s) {
                        Some(m) => d.xdp_mode = m,
                        None => ctx.value_error(f, v, one_of(s, &XdpMode::NAMES)),
                    }
                }
            }
            "bind" => {
                if let Some(s) = ctx.expect_str(f, v) {
                    match BindMode::from_name(s) {
                        Some(m) => d.bind = m,
                        None => ctx.value_error(f, v, one_of(s, &BindMode::NAMES)),
                    }
                }
            }
            "offload" => {
                if let Some(s) = ctx.expect_str(f, v) {
                    match Offload::from_name(s) {
                        Some(m) => d.offload = m,
                        None => ctx.value_error(f, v, one_of(s, &Offload::NAMES)),
                    }
                }
            }
            _ => {}
        }
    }
    d
}

fn interface(ctx: &mut Ctx<'_>, path: &str, line: usize, t: &DeTable<'_>) -> Interface {
    let mut ifc = Interface {
        name: String::new(),
        device: String::new(),
        mac: None,
        vlan: Vec::new(),
        addresses: Vec::new(),
        mtu: DEFAULT_MTU,
        tap: None,
        tap_groups: Vec::new(),
        mirror: Mirror::default(),
        rp_filter: Default::default(),
        bc_forwarding: false,
        line,
    };
    let (mut has_name, mut has_device) = (false, false);
    for e in ctx.entries(path, t, INTERFACE_KEYS) {
        let (f, v) = (e.field.as_str(), e.val);
        match e.key {
            "name" => {
                has_name = true;
                if let Some(s) = ctx.expect_str(f, v) {
                    // Keep even a bad name, so references to it do not cascade.
                    ifc.name = s.to_owned();
                    if let Err(msg) = check_ifname(s) {
                        ctx.value_error(f, v, msg);
                    }
                }
            }
            "device" => {
                has_device = true;
                if let Some(s) = ctx.expect_str(f, v) {
                    ifc.device = s.to_owned();
                    if let Err(msg) = check_devname(s) {
                        ctx.value_error(f, v, msg);
                    }
                }
            }
            "mac" => ifc.mac = ctx.unicast_mac(f, v),
            "tap" => {
                if let Some(s) = ctx.expect_str(f, v) {
                    ifc.tap = Some(s.to_owned());
                    if let Err(msg) = check_devname(s) {
                        ctx.value_error(f, v, msg);
                    }
                }
            }
            "tap_groups" => ifc.tap_groups = groups(ctx, f, v),
            "bc_forwarding" => {
                if let Some(b) = ctx.expect_bool(f, v) {
                    ifc.bc_forwarding = b;
                }
            }
            "mirror" => ifc.mirror = mirror_kinds(ctx, f, v),
            "rp_filter" => {
                use xgate_dataplane::iface::RpFilter;
                match ctx.expect_str(f, v) {
                    Some("strict" | "1") => ifc.rp_filter = RpFilter::Strict,
                    Some("loose" | "2") => ifc.rp_filter = RpFilter::Loose,
                    Some("off" | "0") => ifc.rp_filter = RpFilter::Off,
                    Some(other) => ctx.value_error(
                        f,
                        v,
                        format!("rp_filter is \"strict\", \"loose\" or \"off\", not {other:?}"),
                    ),
                    None => {}
                }
            }
            "vlan" => ifc.vlan = vlan(ctx, f, v),
            "address" => ifc.addresses = addresses(ctx, f, v),
            "mtu" => {
                if let Some(n) = ctx.expect_u64(f, v, MIN_MTU.into(), MAX_MTU.into()) {
                    ifc.mtu = u16::try_from(n).unwrap_or(ifc.mtu);
                }
            }
            _ => {}
        }
    }
    if !has_name {
        ctx.missing(path, "name", line);
    }
    if !has_device {
        ctx.missing(path, "device", line);
    }
    ifc
}

/// `vlan = 10` or `vlan = [outer, inner]`.
fn vlan(ctx: &mut Ctx<'_>, field: &str, v: &Val<'_>) -> Vec<u16> {
    let vid = |ctx: &mut Ctx<'_>, f: &str, v: &Val<'_>| {
        ctx.expect_u64(f, v, 1, 4094)
            .and_then(|n| u16::try_from(n).ok())
    };
    ctx.record(field, v);
    match v.get_ref() {
        DeValue::Integer(_) => vid(ctx, field, v).into_iter().collect(),
        DeValue::Array(items) => {
            let mut tags = Vec::new();
            let mut ok = true;
            for (j, item) in items.iter().enumerate() {
                match vid(ctx, &format!("{field}[{j}]"), item) {
                    Some(t) => tags.push(t),
                    None => ok = false,
                }
            }
            if items.len() > 2 {
                ctx.value_error(
                    field,
                    v,
                    format!("at most 2 tags ([outer, inner]), got {}", items.len()),
                );
            } else if !ok {
                ctx.bad.insert(field.to_owned());
            }
            tags
        }
        _ => {
            ctx.type_error(field, v, "a VLAN id or an array of 2 ids");
            Vec::new()
        }
    }
}

/// `address = ["a/len", ...]` (a single string is accepted too).
fn addresses(ctx: &mut Ctx<'_>, field: &str, v: &Val<'_>) -> Vec<IpNet> {
    let single = std::slice::from_ref(v);
    ctx.record(field, v);
    let items: &[Val<'_>] = match v.get_ref() {
        DeValue::Array(items) => items,
        DeValue::String(_) => single,
        _ => {
            ctx.type_error(field, v, "an array of addresses like [\"192.0.2.1/24\"]");
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (j, item) in items.iter().enumerate() {
        let f = format!("{field}[{j}]");
        if let Some(s) = ctx.expect_str(&f, item) {
            match values::parse_host_prefix(s) {
                Ok(net) => out.push(net),
                Err(e) => ctx.value_error(&f, item, e),
            }
        }
    }
    out
}

/// Why `path` cannot be a rules or routes file, if it cannot: missing, or
/// not a regular file (a directory, a device such as /dev/urandom, a pipe).
fn regular_file(path: &Path) -> Result<(), String> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(m) if m.is_dir() => Err(format!("{} is a directory, not a file", path.display())),
        Ok(_) => Err(format!(
            "{} is not a regular file (a device or a pipe): give a file of text",
            path.display()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(format!("file not found: {}", path.display()))
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// `mirror = ["addresses", "routes"]`: what an interface takes from the
/// kernel's side of its tap.
fn mirror_kinds(ctx: &mut Ctx<'_>, field: &str, v: &Val<'_>) -> Mirror {
    ctx.record(field, v);
    let mut m = Mirror::default();
    let DeValue::Array(items) = v.get_ref() else {
        ctx.type_error(field, v, "an array like [\"addresses\", \"routes\"]");
        return m;
    };
    for (j, item) in items.iter().enumerate() {
        let f = format!("{field}[{j}]");
        match ctx.expect_str(&f, item) {
            Some("addresses") => m.addresses = true,
            Some("routes") => m.routes = true,
            Some(other) => ctx.value_error(&f, item, one_of(other, &Mirror::NAMES)),
            None => {}
        }
    }
    m
}

/// `[mirror]`: `tables = ["main", 100]`, `batch_ms = 50`, `rx_buffer`.
fn mirror_section(ctx: &mut Ctx<'_>, section: &Entry<'_, '_>) -> MirrorCfg {
    let mut m = MirrorCfg {
        line: section.key_line,
        ..MirrorCfg::default()
    };
    let Some(t) = ctx.expect_table(&section.field, section.val) else {
        return m;
    };
    for e in ctx.entries(&section.field, t, MIRROR_KEYS) {
        let (f, v) = (e.field.as_str(), e.val);
        match e.key {
            "tables" => {
                ctx.record(f, v);
                let DeValue::Array(items) = v.get_ref() else {
                    ctx.type_error(f, v, "an array of tables like [\"main\", 100]");
                    continue;
                };
                let mut tables = Vec::new();
                for (j, item) in items.iter().enumerate() {
                    let fj = format!("{f}[{j}]");
                    let Some(id) = ctx.table_id(&fj, item) else {
                        continue;
                    };
                    if id == TABLE_LOCAL {
                        ctx.value_error(
                            &fj,
                            item,
                            "table local is xgate's own (its addresses' local and broadcast \
                             routes): it cannot be mirrored",
                        );
                    } else if tables.contains(&id) {
                        ctx.value_error(&fj, item, format!("table {id} is listed twice"));
                    } else {
                        tables.push(id);
                    }
                }
                if items.is_empty() {
                    ctx.value_error(f, v, "no table: list at least one, e.g. [\"main\"]");
                }
                m.tables = tables;
            }
            "batch_ms" => {
                if let Some(n) = ctx.expect_u64(f, v, 1, MAX_MIRROR_BATCH_MS) {
                    m.batch_ms = n;
                }
            }
            "rx_buffer" => {
                if let Some(n) = ctx.expect_u64(f, v, MIN_MIRROR_RX_BUFFER, MAX_MIRROR_RX_BUFFER) {
                    m.rx_buffer = n as usize;
                }
            }
            _ => {}
        }
    }
    m
}

/// `tap_groups = ["224.0.0.251", "ff02::fb", "224.0.0.5/32"]`: multicast
/// groups or prefixes.
fn groups(ctx: &mut Ctx<'_>, field: &str, v: &Val<'_>) -> Vec<IpNet> {
    ctx.record(field, v);
    let DeValue::Array(items) = v.get_ref() else {
        ctx.type_error(
            field,
            v,
            "an array of multicast groups like [\"224.0.0.251\"]",
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (j, item) in items.iter().enumerate() {
        let f = format!("{field}[{j}]");
        if let Some(s) = ctx.expect_str(&f, item) {
            match values::parse_network(s) {
                Ok(net) if net.network().is_multicast() && net.broadcast().is_multicast() => {
                    out.push(net)
                }
                Ok(net) => ctx.value_error(&f, item, format!("{net} is not multicast")),
                Err(e) => ctx.value_error(&f, item, e),
            }
        }
    }
    out
}

fn route_type(ctx: &mut Ctx<'_>, f: &str, v: &Val<'_>) -> Option<RouteType> {
    let s = ctx.expect_str(f, v)?;
    let t = RouteType::from_name(s);
    if t.is_none() {
        ctx.value_error(f, v, one_of(s, &RouteType::NAMES));
    }
    t
}

fn route(ctx: &mut Ctx<'_>, path: &str, line: usize, t: &DeTable<'_>) -> RouteCfg {
    let mut r = RouteCfg {
        to: IpNet::default(),
        via: None,
        dev: None,
        metric: 0,
        table: TABLE_MAIN,
        rtype: RouteType::Unicast,
        nexthops: Vec::new(),
        line,
    };
    let mut has_to = false;
    for e in ctx.entries(path, t, ROUTE_KEYS) {
        let (f, v) = (e.field.as_str(), e.val);
        match e.key {
            "to" => {
                has_to = true;
                if let Some(n) = ctx.network(f, v) {
                    r.to = n;
                }
            }
            "via" => r.via = ctx.unicast_ip(f, v),
            "dev" => r.dev = ctx.if_ref(f, v),
            "metric" => {
                if let Some(n) = ctx.expect_u64(f, v, 0, u32::MAX.into()) {
                    r.metric = u32::try_from(n).unwrap_or(0);
                }
            }
            "table" => {
                if let Some(id) = ctx.table_id(f, v) {
                    r.table = id;
                }
            }
            "type" => {
                if let Some(rt) = route_type(ctx, f, v) {
                    r.rtype = rt;
                }
            }
            "nexthops" => {
                let hops = ctx.expect_table_array(f, v);
                if hops.is_empty() && !ctx.is_bad(f) {
                    ctx.value_error(f, v, "must not be empty (leave nexthops out instead)");
                }
                for (p, l, nt) in hops {
                    r.nexthops.push(nexthop(ctx, &p, l, nt));
                }
            }
            _ => {}
        }
    }
    if !has_to {
        ctx.missing(path, "to", line);
    }
    r
}

fn nexthop(ctx: &mut Ctx<'_>, path: &str, line: usize, t: &DeTable<'_>) -> NexthopCfg {
    let mut nh = NexthopCfg {
        via: IpAddr::from([0, 0, 0, 0]),
        dev: None,
        weight: 1,
    };
    let mut has_via = false;
    for e in ctx.entries(path, t, NEXTHOP_KEYS) {
        let (f, v) = (e.field.as_str(), e.val);
        match e.key {
            "via" => {
                has_via = true;
                if let Some(ip) = ctx.unicast_ip(f, v) {
                    nh.via = ip;
                }
            }
            "dev" => nh.dev = ctx.if_ref(f, v),
            "weight" => {
                if let Some(n) = ctx.expect_u64(f, v, 1, MAX_WEIGHT.into()) {
                    nh.weight = u16::try_from(n).unwrap_or(1);
                }
            }
            _ => {}
        }
    }
    if !has_via {
        ctx.missing(path, "via", line);
    }
    nh
}

fn rule(ctx: &mut Ctx<'_>, path: &str, line: usize, t: &DeTable<'_>) -> RuleCfg {
    let mut r = RuleCfg {
        priority: 0,
        from: None,
        to: None,
        iif: None,
        fwmark: None,
        table: TABLE_MAIN,
        line,
    };
    let mut has_priority = false;
    for e in ctx.entries(path, t, RULE_KEYS) {
        let (f, v) = (e.field.as_str(), e.val);
        match e.key {
            "priority" => {
                has_priority = true;
                match ctx.expect_int(f, v) {
                    Some(0) => ctx.value_error(
                        f,
                        v,
                        "priority 0 is reserved for the local table rule; use 1..=32767",
                    ),
                    Some(_) => {
                        if let Some(n) = ctx.expect_u64(f, v, 1, MAX_RULE_PRIORITY.into()) {
                            r.priority = u32::try_from(n).unwrap_or(0);
                        }
                    }
                    None => {}
                }
            }
            "from" => r.from = ctx.network(f, v),
            "to" => r.to = ctx.network(f, v),
            "iif" => r.iif = ctx.if_ref(f, v),
            "fwmark" => r.fwmark = fwmark(ctx, f, v),
            "table" => {
                if let Some(id) = ctx.table_id(f, v) {
                    r.table = id;
                }
            }
            _ => {}
        }
    }
    if !has_priority {
        ctx.missing(path, "priority", line);
    }
    r
}

/// `fwmark = 16` (mask 0xffffffff) or `fwmark = "0x10/0xff"`.
fn fwmark(ctx: &mut Ctx<'_>, f: &str, v: &Val<'_>) -> Option<(u32, u32)> {
    ctx.record(f, v);
    match v.get_ref() {
        DeValue::Integer(_) => ctx
            .expect_u64(f, v, 0, u32::MAX.into())
            .and_then(|n| u32::try_from(n).ok())
            .map(|n| (n, u32::MAX)),
        DeValue::String(s) => values::parse_fwmark(s)
            .map_err(|e| ctx.value_error(f, v, e))
            .ok(),
        _ => {
            ctx.type_error(f, v, "an integer or a \"value/mask\" string");
            None
        }
    }
}

fn neighbor(ctx: &mut Ctx<'_>, path: &str, line: usize, t: &DeTable<'_>) -> NeighborCfg {
    let mut n = NeighborCfg {
        ip: IpAddr::from([0, 0, 0, 0]),
        mac: [0; 6],
        dev: String::new(),
        line,
    };
    let (mut has_ip, mut has_mac, mut has_dev) = (false, false, false);
    for e in ctx.entries(path, t, NEIGHBOR_KEYS) {
        let (f, v) = (e.field.as_str(), e.val);
        match e.key {
            "ip" => {
                has_ip = true;
                if let Some(ip) = ctx.unicast_ip(f, v) {
                    n.ip = ip;
                }
            }
            "mac" => {
                has_mac = true;
                if let Some(mac) = ctx.unicast_mac(f, v) {
                    n.mac = mac;
                }
            }
            "dev" => {
                has_dev = true;
                if let Some(d) = ctx.if_ref(f, v) {
                    n.dev = d;
                }
            }
            _ => {}
        }
    }
    for (has, key) in [(has_ip, "ip"), (has_mac, "mac"), (has_dev, "dev")] {
        if !has {
            ctx.missing(path, key, line);
        }
    }
    n
}

fn firewall(ctx: &mut Ctx<'_>, section: &Entry<'_, '_>, base_dir: &Path) -> Option<Firewall> {
    let t = ctx.expect_table(&section.field, section.val)?;
    let line = ctx.span_line(&section.val.span());
    let mut fw = Firewall {
        rules: None,
        rules_line: line,
        rules_file: None,
        v4: FamilyRules {
            rules_line: line,
            ..FamilyRules::default()
        },
        v6: FamilyRules {
            rules_line: line,
            ..FamilyRules::default()
        },
        nft: FamilyRules {
            rules_line: line,
            ..FamilyRules::default()
        },
        ipsets: FamilyRules {
            rules_line: line,
            ..FamilyRules::default()
        },
        line,
    };
    // Keys given, with their lines, for the exclusivity checks.
    let mut given: Vec<(&str, usize)> = Vec::new();
    for e in ctx.entries(&section.field, t, FIREWALL_KEYS) {
        let (f, v) = (e.field.as_str(), e.val);
        given.push((e.key, e.key_line));
        match e.key {
            "rules" | "rules_v4" | "rules_v6" | "nft" | "ipsets" => {
                if let Some(s) = ctx.expect_str(f, v) {
                    let start = ctx.text_start_line(v);
                    let (text, at) = match e.key {
                        "rules" => (&mut fw.rules, &mut fw.rules_line),
                        "rules_v4" => (&mut fw.v4.rules, &mut fw.v4.rules_line),
                        "nft" => (&mut fw.nft.rules, &mut fw.nft.rules_line),
                        "ipsets" => (&mut fw.ipsets.rules, &mut fw.ipsets.rules_line),
                        _ => (&mut fw.v6.rules, &mut fw.v6.rules_line),
                    };
                    *text = Some(s.to_owned());
                    *at = start;
                }
            }
            "rules_file" | "rules_v4_file" | "rules_v6_file" | "nft_file" | "ipsets_file" => {
                if let Some(s) = ctx.expect_name(f, v) {
                    let p = Path::new(s);
                    let path = if p.is_absolute() {
                        p.to_path_buf()
                    } else {
                        base_dir.join(p)
                    };
                    match regular_file(&path) {
                        Ok(()) => {
                            *match e.key {
                                "rules_file" => &mut fw.rules_file,
                                "rules_v4_file" => &mut fw.v4.rules_file,
                                "nft_file" => &mut fw.nft.rules_file,
                                "ipsets_file" => &mut fw.ipsets.rules_file,
                                _ => &mut fw.v6.rules_file,
                            } = Some(path)
                        }
                        Err(msg) => ctx.value_error(f, v, msg),
                    }
                }
            }
            _ => {}
        }
    }
    let line_of = |k: &str| given.iter().find(|(g, _)| *g == k).map(|(_, l)| *l);
    for (text, file) in [
        ("rules", "rules_file"),
        ("rules_v4", "rules_v4_file"),
        ("rules_v6", "rules_v6_file"),
        ("nft", "nft_file"),
        ("ipsets", "ipsets_file"),
    ] {
        if let (Some(_), Some(l)) = (line_of(text), line_of(file)) {
            ctx.fail(
                &join(&section.field, file),
                l,
                format!("`{text}` and `{file}` are mutually exclusive"),
            );
        }
    }
    let inet = ["rules", "rules_file"]
        .into_iter()
        .find(|k| line_of(k).is_some());
    if let Some(inet) = inet {
        for k in ["rules_v4", "rules_v4_file", "rules_v6", "rules_v6_file"] {
            if let Some(l) = line_of(k) {
                ctx.fail(
                    &join(&section.field, k),
                    l,
                    format!(
                        "`{k}` cannot be combined with `{inet}`: `{inet}` is one ruleset for IPv4 \
                         and IPv6 (inet); give either it or `rules_v4`/`rules_v6` (one ruleset per family)"
                    ),
                );
            }
        }
    }
    Some(fw)
}

fn timeouts(ctx: &mut Ctx<'_>, section: &Entry<'_, '_>) -> Vec<(String, u64, usize)> {
    let Some(t) = ctx.expect_table(&section.field, section.val) else {
        return Vec::new();
    };
    let names: Vec<&'static str> = DEFAULT_TIMEOUTS.iter().map(|&(n, _)| n).collect();
    let mut out = Vec::new();
    for e in ctx.entries(&section.field, t, &names) {
        if let Some(secs) = ctx.expect_u64(&e.field, e.val, 1, u32::MAX.into()) {
            out.push((e.key.to_owned(), secs, e.key_line));
        }
    }
    out.sort_by_key(|&(_, _, line)| line);
    out
}

/// `[conntrack]`: `helpers = [ { helper = "ftp", ports = [21] }, ... ]`.
fn conntrack(ctx: &mut Ctx<'_>, section: &Entry<'_, '_>) -> ConntrackCfg {
    let mut c = ConntrackCfg::default();
    let Some(t) = ctx.expect_table(&section.field, section.val) else {
        return c;
    };
    for e in ctx.entries(&section.field, t, CONNTRACK_KEYS) {
        if e.key == "helpers" {
            for (path, line, t) in ctx.expect_table_array(&e.field, e.val) {
                if let Some(h) = helper(ctx, &path, line, t) {
                    c.helpers.push(h);
                }
            }
        } else if e.key == "checksum"
            && let Some(b) = ctx.expect_bool(&e.field, e.val)
        {
            c.checksum = b;
        } else if e.key == "tcp_be_liberal"
            && let Some(b) = ctx.expect_bool(&e.field, e.val)
        {
            c.tcp_be_liberal = b;
        }
    }
    // One helper per protocol and port.
    let mut seen = std::collections::HashMap::new();
    for (i, h) in c.helpers.iter().enumerate() {
        for p in &h.ports {
            if let Some(j) = seen.insert((h.helper.proto(), *p), i) {
                ctx.error(
                    h.line,
                    &format!("{}.helpers[{i}].ports", section.field),
                    format!("port {p} already has a helper (helpers[{j}])"),
                );
            }
        }
    }
    c
}

fn helper(ctx: &mut Ctx<'_>, path: &str, line: usize, t: &DeTable<'_>) -> Option<HelperCfg> {
    let mut kind = None;
    let mut ports = None;
    for e in ctx.entries(path, t, HELPER_KEYS) {
        let (f, v) = (e.field.as_str(), e.val);
        match e.key {
            "helper" => {
                if let Some(s) = ctx.expect_name(f, v) {
                    match HelperKind::from_name(s) {
                        Some(k) => kind = Some(k),
                        None => ctx.value_error(
                            f,
                            v,
                            format!("unknown helper {s:?} (expected \"ftp\" or \"tftp\")"),
                        ),
                    }
                }
            }
            "ports" => {
                ctx.record(f, v);
                let DeValue::Array(items) = v.get_ref() else {
                    ctx.type_error(f, v, "an array of ports like [21]");
                    continue;
                };
                let mut out = Vec::new();
                for (j, item) in items.iter().enumerate() {
                    if let Some(p) = ctx.expect_u64(&format!("{f}[{j}]"), item, 1, 65_535) {
                        out.push(p as u16);
                    }
                }
                if items.is_empty() {
                    ctx.value_error(f, v, "must not be empty");
                }
                ports = Some(out);
            }
            _ => {}
        }
    }
    if kind.is_none() && !ctx.is_bad(&join(path, "helper")) {
        ctx.missing(path, "helper", line);
    }
    let helper = kind?;
    // Without ports: the protocol's well-known one.
    let ports = ports.unwrap_or_else(|| match helper {
        HelperKind::Ftp => vec![21],
        HelperKind::Tftp => vec![69],
    });
    Some(HelperCfg {
        helper,
        ports,
        line,
    })
}

fn control(ctx: &mut Ctx<'_>, section: &Entry<'_, '_>) -> Control {
    let mut c = Control::default();
    let Some(t) = ctx.expect_table(&section.field, section.val) else {
        return c;
    };
    for e in ctx.entries(&section.field, t, CONTROL_KEYS) {
        let (f, v) = (e.field.as_str(), e.val);
        match e.key {
            "socket" => {
                if let Some(s) = ctx.expect_name(f, v) {
                    c.socket = s.to_owned();
                }
            }
            "metrics" => {
                if let Some(s) = ctx.expect_str(f, v) {
                    if s.is_empty() || s.parse::<SocketAddr>().is_ok() {
                        c.metrics = s.to_owned();
                    } else {
                        ctx.value_error(
                            f,
                            v,
                            format!(
                                "invalid listen address {s:?}: expected IP:PORT like \"127.0.0.1:9482\" or \"[::1]:9482\", or \"\" to disable"
                            ),
                        );
                    }
                }
            }
            _ => {}
        }
    }
    c
}
