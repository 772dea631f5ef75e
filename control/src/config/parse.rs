//! TOML -> model. Walks toml's spanned document tree (`DeTable`) rather than
//! deriving `Deserialize`, so that every type error, unknown key and bad value
//! is reported with its line and parsing goes on to collect them all. Records
//! the line of every field for the cross-field checks in `validate`.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::Path;

use ipnet::IpNet;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::{ConfigError, LineIndex, did_you_mean};
use super::model::{
    BindMode, Config, Control, DEFAULT_MTU, DEFAULT_TIMEOUTS, Dataplane, Firewall, Interface,
    MAX_FLOWS, MAX_MTU, MAX_QUEUES, MAX_RING, MAX_RULE_PRIORITY, MAX_WEIGHT, MAX_WORKERS,
    MIN_FLOWS, MIN_MTU, MIN_RING, NeighborCfg, NexthopCfg, RouteCfg, RouteType, RuleCfg,
    TABLE_MAIN, XdpMode,
};
use super::values;

type Val<'i> = Spanned<DeValue<'i>>;

const TOP_KEYS: &[&str] = &[
    "dataplane",
    "interface",
    "route",
    "rule",
    "neighbor",
    "firewall",
    "timeouts",
    "control",
    "routes_file",
];
const DATAPLANE_KEYS: &[&str] = &[
    "workers",
    "xdp_mode",
    "bind",
    "queues",
    "flows",
    "rx_ring",
    "tx_ring",
    "fill_ring",
];
const INTERFACE_KEYS: &[&str] = &["name", "device", "mac", "vlan", "address", "mtu", "tap"];
const ROUTE_KEYS: &[&str] = &["to", "via", "dev", "metric", "table", "type", "nexthops"];
const NEXTHOP_KEYS: &[&str] = &["via", "dev", "weight"];
const RULE_KEYS: &[&str] = &["priority", "from", "to", "iif", "fwmark", "table"];
const NEIGHBOR_KEYS: &[&str] = &["ip", "mac", "dev"];
const FIREWALL_KEYS: &[&str] = &["rules", "rules_file"];
const CONTROL_KEYS: &[&str] = &["socket", "metrics"];

/// Largest interface / device name (IFNAMSIZ - 1).
const MAX_IFNAME: usize = 15;

/// A known key of a table, with its field path and the lines of key and value.
struct Entry<'v, 'i> {
    key: &'static str,
    field: String,
    key_line: usize,
    val: &'v Val<'i>,
}

/// Parsing state: the errors found so far and where each field was written.
pub(crate) struct Ctx<'t> {
    pub(crate) file: String,
    text: &'t str,
    index: LineIndex,
    errors: Vec<ConfigError>,
    /// Field path -> line of its value.
    lines: HashMap<String, usize>,
    /// Fields whose value was missing or invalid (already reported).
    bad: HashSet<String>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn one_of(value: &str, names: &[&'static str]) -> String {
    let mut msg = format!(
        "invalid value {value:?}: expected one of {}",
        names.join(", ")
    );
    if let Some(s) = did_you_mean(value, names.iter().copied()) {
        msg.push_str(&format!(" (did you mean {s:?}?)"));
    }
    msg
}

impl<'t> Ctx<'t> {
    pub(crate) fn new(file: &str, text: &'t str) -> Self {
        Self {
            file: file.to_owned(),
            text,
            index: LineIndex::new(text),
            errors: Vec::new(),
            lines: HashMap::new(),
            bad: HashSet::new(),
        }
    }

    pub(crate) fn span_line(&self, span: &Range<usize>) -> usize {
        self.index.line_of_span(span)
    }

    /// Records an error.
    pub(crate) fn error(&mut self, line: usize, field: &str, message: impl Into<String>) {
        self.errors
            .push(ConfigError::new(self.file.clone(), line, field, message));
    }

    /// The line of `field`'s value, or `fallback` if the field was not written.
    pub(crate) fn line_of(&self, field: &str, fallback: usize) -> usize {
        self.lines.get(field).copied().unwrap_or(fallback)
    }

    /// True if `field` was missing or invalid (and so already reported).
    pub(crate) fn is_bad(&self, field: &str) -> bool {
        self.bad.contains(field)
    }

    /// All errors sorted by line (stable: same-line errors keep their order).
    pub(crate) fn finish(mut self, cfg: Config) -> Result<Config, Vec<ConfigError>> {
        if self.errors.is_empty() {
            return Ok(cfg);
        }
        self.errors.sort_by_key(|e| e.line);
        self.errors.dedup();
        Err(self.errors)
    }

    fn record(&mut self, field: &str, v: &Val<'_>) {
        let line = self.span_line(&v.span());
        self.lines.insert(field.to_owned(), line);
    }

    fn fail(&mut self, field: &str, line: usize, message: impl Into<String>) {
        self.bad.insert(field.to_owned());
        self.error(line, field, message);
    }

    fn value_error(&mut self, field: &str, v: &Val<'_>, message: impl Into<String>) {
        let line = self.span_line(&v.span());
        self.fail(field, line, message);
    }

    fn missing(&mut self, path: &str, key: &str, line: usize) {
        self.fail(&join(path, key), line, "required key is missing");
    }

    fn type_error(&mut self, field: &str, v: &Val<'_>, expected: &str) {
        let msg = format!("expected {expected}, found {}", v.get_ref().type_str());
        self.value_error(field, v, msg);
    }

    fn expect_str<'v>(&mut self, field: &str, v: &'v Val<'_>) -> Option<&'v str> {
        self.record(field, v);
        match v.get_ref() {
            DeValue::String(s) => Some(s.as_ref()),
            _ => {
                self.type_error(field, v, "a string");
                None
            }
        }
    }

    /// A non-empty string.
    fn expect_name<'v>(&mut self, field: &str, v: &'v Val<'_>) -> Option<&'v str> {
        let s = self.expect_str(field, v)?;
        if s.is_empty() {
            self.value_error(field, v, "must not be empty");
            return None;
        }
        Some(s)
    }

    fn expect_int(&mut self, field: &str, v: &Val<'_>) -> Option<i128> {
        self.record(field, v);
        match v.get_ref() {
            DeValue::Integer(n) => match i128::from_str_radix(n.as_str(), n.radix()) {
                Ok(n) => Some(n),
                Err(_) => {
                    self.value_error(field, v, "integer out of range");
                    None
                }
            },
            _ => {
                self.type_error(field, v, "an integer");
                None
            }
        }
    }

    /// An integer in `min..=max`.
    fn expect_u64(&mut self, field: &str, v: &Val<'_>, min: u64, max: u64) -> Option<u64> {
        let n = self.expect_int(field, v)?;
        match u64::try_from(n) {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.value_error(
                    field,
                    v,
                    format!("must be between {min} and {max}, got {n}"),
                );
                None
            }
        }
    }

    fn expect_table<'v, 'i>(&mut self, field: &str, v: &'v Val<'i>) -> Option<&'v DeTable<'i>> {
        self.record(field, v);
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => {
                self.type_error(field, v, &format!("a table ([{field}])"));
                None
            }
        }
    }

    /// The tables of an array of tables (`[[field]]` or `field = [{...}, ...]`).
    fn expect_table_array<'v, 'i>(
        &mut self,
        field: &str,
        v: &'v Val<'i>,
    ) -> Vec<(String, usize, &'v DeTable<'i>)> {
        self.record(field, v);
        let DeValue::Array(items) = v.get_ref() else {
            self.type_error(field, v, &format!("an array of tables ([[{field}]])"));
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let path = format!("{field}[{i}]");
            let line = self.span_line(&item.span());
            self.lines.insert(path.clone(), line);
            match item.get_ref() {
                DeValue::Table(t) => out.push((path, line, t)),
                _ => self.type_error(&path, item, "a table"),
            }
        }
        out
    }

    /// The entries of `table` whose keys are in `allowed`; reports the others.
    fn entries<'v, 'i>(
        &mut self,
        path: &str,
        table: &'v DeTable<'i>,
        allowed: &[&'static str],
    ) -> Vec<Entry<'v, 'i>> {
        let mut out = Vec::new();
        for (k, val) in table.iter() {
            let name: &str = k.get_ref().as_ref();
            let key_line = self.span_line(&k.span());
            match allowed.iter().find(|a| **a == name) {
                Some(&key) => out.push(Entry {
                    key,
                    field: join(path, key),
                    key_line,
                    val,
                }),
                None => {
                    let msg = match did_you_mean(name, allowed.iter().copied()) {
                        Some(s) => format!("unknown key (did you mean {s:?}?)"),
                        None => format!("unknown key (expected one of: {})", allowed.join(", ")),
                    };
                    self.fail(&join(path, name), key_line, msg);
                }
            }
        }
        out
    }

    /// The line where a string's text starts: the line after an opening
    /// `"""` / `'''` that ends its line (TOML drops that newline).
    fn text_start_line(&self, v: &Val<'_>) -> usize {
        let span = v.span();
        let line = self.span_line(&span);
        let raw = self.text.get(span.start..span.end).unwrap_or("");
        for quotes in ["\"\"\"", "'''"] {
            if let Some(rest) = raw.strip_prefix(quotes)
                && (rest.starts_with('\n') || rest.starts_with("\r\n"))
            {
                return line + 1;
            }
        }
        line
    }

    fn network(&mut self, field: &str, v: &Val<'_>) -> Option<IpNet> {
        let s = self.expect_str(field, v)?;
        values::parse_network(s)
            .map_err(|e| self.value_error(field, v, e))
            .ok()
    }

    /// A unicast IP address (gateway, neighbor).
    fn unicast_ip(&mut self, field: &str, v: &Val<'_>) -> Option<IpAddr> {
        let s = self.expect_str(field, v)?;
        match values::parse_ip(s).and_then(|ip| values::check_unicast_ip(&ip).map(|()| ip)) {
            Ok(ip) => Some(ip),
            Err(e) => {
                self.value_error(field, v, e);
                None
            }
        }
    }

    fn unicast_mac(&mut self, field: &str, v: &Val<'_>) -> Option<[u8; 6]> {
        let s = self.expect_str(field, v)?;
        values::parse_unicast_mac(s)
            .map_err(|e| self.value_error(field, v, e))
            .ok()
    }

    /// A routing table: a name or number string, or an integer.
    fn table_id(&mut self, field: &str, v: &Val<'_>) -> Option<u32> {
        self.record(field, v);
        match v.get_ref() {
            DeValue::String(s) => values::parse_table(s)
                .map_err(|e| self.value_error(field, v, e))
                .ok(),
            DeValue::Integer(_) => self
                .expect_u64(field, v, 1, u64::from(u32::MAX))
                .and_then(|n| u32::try_from(n).ok()),
            _ => {
                self.type_error(field, v, "a table name or number");
                None
            }
        }
    }

    /// An interface name used as a reference (`dev`, `iif`): any non-empty
    /// string here; `validate` checks that it names an interface.
    fn if_ref(&mut self, field: &str, v: &Val<'_>) -> Option<String> {
        self.expect_name(field, v).map(str::to_owned)
    }
}

/// Interface names: what `-i` / `-o` and `dev` can name (`+` is the iptables wildcard).
fn check_ifname(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.len() > MAX_IFNAME {
        return Err(format!("{s:?} is longer than {MAX_IFNAME} characters"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(format!(
            "{s:?} contains {c:?}; use letters, digits, '_', '.' and '-'"
        ));
    }
    Ok(())
}

/// Kernel netdev names: at most 15 bytes, no '/', ':' or whitespace.
fn check_devname(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.len() > MAX_IFNAME {
        return Err(format!("{s:?} is longer than {MAX_IFNAME} bytes"));
    }
    if s == "." || s == ".." || s.chars().any(|c| c == '/' || c == ':' || c.is_whitespace()) {
        return Err(format!("{s:?} is not a valid device name"));
    }
    Ok(())
}

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
        routes_file: None,
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
            "routes_file" => {
                if let Some(s) = ctx.expect_name(&e.field, e.val) {
                    let p = Path::new(s);
                    let path = if p.is_absolute() {
                        p.to_path_buf()
                    } else {
                        base_dir.join(p)
                    };
                    if path.is_file() {
                        cfg.routes_file = Some((path, e.key_line));
                    } else {
                        let msg = format!("file not found: {}", path.display());
                        ctx.value_error(&e.field, e.val, msg);
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
        line,
    };
    let mut rules_file_line = None;
    for e in ctx.entries(&section.field, t, FIREWALL_KEYS) {
        let (f, v) = (e.field.as_str(), e.val);
        match e.key {
            "rules" => {
                if let Some(s) = ctx.expect_str(f, v) {
                    fw.rules = Some(s.to_owned());
                    fw.rules_line = ctx.text_start_line(v);
                }
            }
            "rules_file" => {
                rules_file_line = Some(e.key_line);
                if let Some(s) = ctx.expect_name(f, v) {
                    let p = Path::new(s);
                    let path = if p.is_absolute() {
                        p.to_path_buf()
                    } else {
                        base_dir.join(p)
                    };
                    if path.is_file() {
                        fw.rules_file = Some(path);
                    } else if path.exists() {
                        ctx.value_error(f, v, format!("{} is not a file", path.display()));
                    } else {
                        ctx.value_error(f, v, format!("file not found: {}", path.display()));
                    }
                }
            }
            _ => {}
        }
    }
    if let (Some(_), Some(l)) = (&fw.rules, rules_file_line) {
        ctx.fail(
            &join(&section.field, "rules_file"),
            l,
            "`rules` and `rules_file` are mutually exclusive",
        );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifnames() {
        assert!(check_ifname("lan10").is_ok());
        assert!(check_ifname("a.b-c_d").is_ok());
        assert!(check_ifname("").is_err());
        assert!(
            check_ifname("abcdefghijklmnop")
                .unwrap_err()
                .contains("longer")
        );
        assert!(check_ifname("eth+").unwrap_err().contains("'+'"));
        assert!(check_devname("eth0.10").is_ok());
        assert!(check_devname("eth/0").is_err());
        assert!(check_devname("..").is_err());
    }

    #[test]
    fn one_of_suggests() {
        let m = one_of("natve", &XdpMode::NAMES);
        assert!(m.contains("native, skb, auto"), "{m}");
        assert!(m.contains("did you mean \"native\"?"), "{m}");
    }
}
