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
    BindMode, BridgeCfg, BridgePortCfg, Config, ConntrackCfg, Control, DEFAULT_MTU,
    DEFAULT_TIMEOUTS, Dataplane, FamilyRules, FdbCfg, Firewall, HelperCfg, Interface, MAX_FLOWS,
    MAX_MIRROR_BATCH_MS, MAX_MIRROR_RX_BUFFER, MAX_MTU, MAX_QUEUES, MAX_RING, MAX_RULE_PRIORITY,
    MAX_WEIGHT, MAX_WORKERS, MIN_FLOWS, MIN_MIRROR_RX_BUFFER, MIN_MTU, MIN_RING, Mirror, MirrorCfg,
    NeighborCfg, NexthopCfg, Offload, RouteCfg, RouteType, RuleCfg, TABLE_LOCAL, TABLE_MAIN,
    XdpMode,
};
use super::values;
use xgate_dataplane::conntrack::HelperKind;

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
    "conntrack",
    "routes_file",
    "mirror",
    "bridge",
];
const BRIDGE_KEYS: &[&str] = &[
    "name",
    "ports",
    "vlan_filtering",
    "default_pvid",
    "nf_call_iptables",
    "nf_call_ip6tables",
    "ageing",
    "fdb_max",
    "flood_rate",
    "flood_burst",
    "fdb",
];
const BRIDGE_PORT_KEYS: &[&str] = &["interface", "pvid", "vlans"];
const FDB_KEYS: &[&str] = &["mac", "port", "vlan"];
const DATAPLANE_KEYS: &[&str] = &[
    "workers",
    "xdp_mode",
    "bind",
    "queues",
    "flows",
    "rx_ring",
    "tx_ring",
    "fill_ring",
    "flows_per_source",
    "nat_ports_per_source",
    "offload",
];
const INTERFACE_KEYS: &[&str] = &[
    "name",
    "device",
    "mac",
    "vlan",
    "address",
    "mtu",
    "tap",
    "tap_groups",
    "rp_filter",
    "bc_forwarding",
    "mirror",
];
const ROUTE_KEYS: &[&str] = &["to", "via", "dev", "metric", "table", "type", "nexthops"];
const NEXTHOP_KEYS: &[&str] = &["via", "dev", "weight"];
const RULE_KEYS: &[&str] = &["priority", "from", "to", "iif", "fwmark", "table"];
const NEIGHBOR_KEYS: &[&str] = &["ip", "mac", "dev"];
const FIREWALL_KEYS: &[&str] = &[
    "rules",
    "rules_file",
    "rules_v4",
    "rules_v4_file",
    "rules_v6",
    "rules_v6_file",
    "nft",
    "nft_file",
    "ipsets",
    "ipsets_file",
];
const CONTROL_KEYS: &[&str] = &["socket", "metrics"];
const MIRROR_KEYS: &[&str] = &["tables", "batch_ms", "rx_buffer"];
const CONNTRACK_KEYS: &[&str] = &["helpers", "checksum", "tcp_be_liberal"];
const HELPER_KEYS: &[&str] = &["helper", "ports"];

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

    /// Whether any error was found so far.
    pub(crate) fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// Errors found elsewhere (the firewall rules' own parsers).
    pub(crate) fn extend(&mut self, errors: Vec<ConfigError>) {
        self.errors.extend(errors);
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

    fn expect_bool(&mut self, field: &str, v: &Val<'_>) -> Option<bool> {
        self.record(field, v);
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.type_error(field, v, "true or false");
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

mod bridge;
mod sections;
pub(crate) use sections::document;

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
