//! Validation tests: a table of snippets, each with exactly one error whose
//! line and field are asserted, a table of snippets that must parse, and
//! the cases that need more: several errors, "all errors are collected" and
//! "no cascades".

use xgate_control::config::{self, ConfigError};

/// Two interfaces every snippet below can refer to: `wan` (eth0, v4 + v6)
/// and `lan` (eth1 VLAN 10).
const BASE: &str = r#"[[interface]]
name = "wan"
device = "eth0"
address = ["203.0.113.2/24", "2001:db8:1::2/64"]

[[interface]]
name = "lan"
device = "eth1"
vlan = 10
address = ["192.168.10.1/24"]

"#;

fn with_base(extra: &str) -> String {
    format!("{BASE}{extra}")
}

/// A case's configuration: a snippet after `BASE`, or a text of its own.
#[derive(Clone, Copy)]
enum Text {
    Base(&'static str),
    Alone(&'static str),
}
use Text::{Alone, Base};

impl Text {
    fn text(self) -> String {
        match self {
            Base(t) => with_base(t),
            Alone(t) => t.to_string(),
        }
    }
}

/// The 1-based line of the first occurrence of `needle` in `text`.
fn line_of(text: &str, needle: &str) -> usize {
    try_line_of(text, needle).unwrap_or_else(|| panic!("{needle:?} not in text"))
}

fn try_line_of(text: &str, needle: &str) -> Option<usize> {
    let at = text.find(needle)?;
    Some(text[..at].matches('\n').count() + 1)
}

/// The errors of `text`, which must not parse.
fn try_errors(text: &str) -> Result<Vec<ConfigError>, String> {
    match config::parse(text, "x.toml") {
        Ok(_) => Err(format!("expected errors, config parsed:\n{text}")),
        Err(e) => Ok(e),
    }
}

fn errors(text: &str) -> Vec<ConfigError> {
    try_errors(text).unwrap_or_else(|e| panic!("{e}"))
}

/// Checks that `text` has exactly one error, on the line holding `at`, for
/// `field`, with a message containing `msg`.
fn one_error(text: &str, at: &str, field: &str, msg: &str) -> Result<(), String> {
    let e = try_errors(text)?;
    if e.len() != 1 {
        return Err(format!(
            "expected one error, got:\n{}",
            config::render_errors(&e)
        ));
    }
    let e = &e[0];
    let line = try_line_of(text, at).ok_or_else(|| format!("{at:?} not in text"))?;
    if e.field != field {
        Err(format!("field is not {field:?}: {e}"))
    } else if e.line != line {
        Err(format!("line is not {line}: {e}"))
    } else if !e.message.contains(msg) {
        Err(format!("{e:?} does not contain {msg:?}"))
    } else if e.file != "x.toml" {
        Err(format!("file is not x.toml: {e}"))
    } else {
        Ok(())
    }
}

/// Runs `check` on every case and names each one that fails.
fn each<T: Copy>(cases: &[(&str, T)], check: impl Fn(T) -> Result<(), String>) {
    let failed: Vec<String> = cases
        .iter()
        .filter_map(|&(name, case)| check(case).err().map(|e| format!("{name}: {e}")))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} cases failed:\n{}",
        failed.len(),
        cases.len(),
        failed.join("\n")
    );
}

/// Each case's text has exactly one error: (case, (text, the text on the
/// error's line, field, part of the message)).
type OneError = (Text, &'static str, &'static str, &'static str);

#[rustfmt::skip]
const ONE_ERROR: &[(&str, OneError)] = &[
    // ---- [[interface]] ----
    ("interface name unique", (
        Base("[[interface]]\nname = \"wan\"\ndevice = \"eth2\"\n"),
        "name = \"wan\"\ndevice = \"eth2\"", "interface[2].name",
        "duplicate interface name \"wan\" (first defined at line 1)")),
    ("tap not a device name", (
        Base("[[interface]]\nname = \"m\"\ndevice = \"eth2\"\ntap = \"a/b\"\n"),
        "tap = ", "interface[2].tap", "not a valid device name")),
    ("tap name too long", (
        Base("[[interface]]\nname = \"m\"\ndevice = \"eth2\"\ntap = \"tap-name-too-long\"\n"),
        "tap = ", "interface[2].tap", "longer than 15")),
    // A tap is a device of its own: not another interface's device...
    ("tap is another interface's device", (
        Base("[[interface]]\nname = \"m\"\ndevice = \"eth2\"\ntap = \"eth0\"\n"),
        "tap = ", "interface[2].tap",
        "tap \"eth0\" is the device of interface \"wan\" (line 1)")),
    // ...nor another interface's tap.
    ("tap is another interface's tap", (
        Base("[[interface]]\nname = \"m\"\ndevice = \"eth2\"\ntap = \"k0\"\n\n\
              [[interface]]\nname = \"n\"\ndevice = \"eth3\"\ntap=\"k0\"\n"),
        "tap=\"k0\"", "interface[3].tap", "already the tap of interface \"m\"")),
    ("tap_groups need a tap", (
        Base("[[interface]]\nname = \"m\"\ndevice = \"eth2\"\ntap_groups = [\"224.0.0.251\"]\n"),
        "tap_groups", "interface[2].tap_groups", "tap_groups needs a tap")),
    ("tap_groups are multicast", (
        Base("[[interface]]\nname = \"m\"\ndevice = \"eth2\"\ntap = \"k0\"\ntap_groups = [\"10.0.0.0/8\"]\n"),
        "tap_groups", "interface[2].tap_groups[0]", "10.0.0.0/8 is not multicast")),
    ("interface name empty", (
        Alone("[[interface]]\nname = \"\"\ndevice = \"eth0\"\n"),
        "name", "interface[0].name", "must not be empty")),
    ("interface name too long", (
        Alone("[[interface]]\nname = \"a-very-long-name-x\"\ndevice = \"eth0\"\n"),
        "name", "interface[0].name", "longer than 15")),
    ("interface name with +", (
        Alone("[[interface]]\ndevice = \"eth0\"\nname = \"lan+\"\n"),
        "name", "interface[0].name", "contains '+'")),
    ("interface name with a space", (
        Alone("[[interface]]\nname = \"a b\"\ndevice = \"eth0\"\n"),
        "name", "interface[0].name", "contains ' '")),
    ("interface without name", (
        Alone("\n[[interface]]\ndevice = \"eth0\"\n"),
        "[[interface]]", "interface[0].name", "required key is missing")),
    ("interface without device", (
        Alone("\n[[interface]]\nname = \"wan\"\n"),
        "[[interface]]", "interface[0].device", "required key is missing")),
    ("device empty", (
        Alone("[[interface]]\nname = \"wan\"\ndevice = \"\"\n"),
        "device", "interface[0].device", "must not be empty")),
    ("device not a device name", (
        Alone("[[interface]]\nname = \"wan\"\ndevice = \"eth0/1\"\n"),
        "device", "interface[0].device", "not a valid device name")),
    // Same device, same VLAN.
    ("device and VLAN used twice", (
        Base("[[interface]]\nname = \"lan2\"\ndevice = \"eth1\"\nvlan = [10]\n"),
        "vlan = [10]", "interface[2].vlan",
        "device \"eth1\" VLAN 10 is already used by interface \"lan\" (line 6)")),
    // Same untagged device: reported on `device`.
    ("untagged device used twice", (
        Base("[[interface]]\nname = \"wan2\"\ndevice  = \"eth0\"\n"),
        "device  = \"eth0\"", "interface[2].device",
        "untagged is already used by interface \"wan\"")),
    ("vlan 0", (
        Alone("[[interface]]\nname = \"a\"\ndevice = \"eth0\"\nvlan = 0\n"),
        "vlan", "interface[0].vlan", "must be between 1 and 4094, got 0")),
    ("vlan 4095", (
        Alone("[[interface]]\nname = \"a\"\ndevice = \"eth0\"\nvlan = 4095\n"),
        "vlan", "interface[0].vlan", "must be between 1 and 4094, got 4095")),
    ("vlan 4095 in a stack", (
        Alone("[[interface]]\nname = \"a\"\ndevice = \"eth0\"\nvlan = [100, 4095]\n"),
        "vlan", "interface[0].vlan[1]", "got 4095")),
    ("three vlan tags", (
        Alone("[[interface]]\nname = \"a\"\ndevice = \"eth0\"\nvlan = [1, 2, 3]\n"),
        "vlan", "interface[0].vlan", "at most 2 tags")),
    ("vlan as a string", (
        Alone("[[interface]]\nname = \"a\"\ndevice = \"eth0\"\nvlan = \"10\"\n"),
        "vlan", "interface[0].vlan",
        "expected a VLAN id or an array of 2 ids, found string")),
    ("mac too short", (
        Alone("[[interface]]\nname = \"a\"\ndevice = \"eth0\"\nmac = \"02:00:00:00:00\"\n"),
        "mac", "interface[0].mac", "invalid MAC address \"02:00:00:00:00\"")),
    ("mac multicast", (
        Alone("[[interface]]\nname = \"a\"\ndevice = \"eth0\"\nmac = \"01:00:5e:00:00:01\"\n"),
        "mac", "interface[0].mac", "multicast")),
    ("mac all zero", (
        Alone("[[interface]]\nname = \"a\"\ndevice = \"eth0\"\nmac = \"00:00:00:00:00:00\"\n"),
        "mac", "interface[0].mac", "all-zero")),
    ("mtu 67", (
        Alone("[[interface]]\nname = \"a\"\ndevice = \"eth0\"\nmtu = 67\n"),
        "mtu", "interface[0].mtu", "must be between 68 and 9000, got 67")),
    ("mtu 9001", (
        Alone("[[interface]]\nname = \"a\"\ndevice = \"eth0\"\nmtu = 9001\n"),
        "mtu", "interface[0].mtu", "got 9001")),
    ("mtu below IPv6 minimum", (
        Alone("[[interface]]\nname = \"a\"\ndevice = \"eth0\"\nmtu = 1279\naddress = [\"10.0.0.1/24\", \"fd00::1/64\"]\n"),
        "mtu", "interface[0].mtu",
        "mtu 1279 is below 1280, the minimum for IPv6 (address fd00::1/64)")),
    ("address without prefix length", (
        Alone("[[interface]]\nname = \"a\"\ndevice = \"eth0\"\naddress = [\n  \"10.0.0.1/24\",\n  \"10.0.1.1\",\n]\n"),
        "\"10.0.1.1\"", "interface[0].address[1]",
        "missing prefix length (write \"10.0.1.1/32\"")),
    ("address is the network", (
        Alone("[[interface]]\nname = \"a\"\ndevice = \"eth0\"\naddress = [\"10.0.0.0/24\"]\n"),
        "address", "interface[0].address[0]", "network address of 10.0.0.0/24")),
    ("address prefix 129", (
        Alone("[[interface]]\nname = \"a\"\ndevice = \"eth0\"\naddress = [\"2001:db8::1/129\"]\n"),
        "address", "interface[0].address[0]", "prefix length 129 > 128")),
    ("address with a zone", (
        Alone("[[interface]]\nname = \"a\"\ndevice = \"eth0\"\naddress = [\"fe80::1%eth0/64\"]\n"),
        "address", "interface[0].address[0]", "is not an IP address")),
    ("address not a string", (
        Alone("[[interface]]\nname = \"a\"\ndevice = \"eth0\"\naddress = [1]\n"),
        "address", "interface[0].address[0]", "expected a string, found integer")),
    // The same IP on another interface (even with another prefix length).
    ("address on another interface", (
        Base("[[interface]]\nname = \"x\"\ndevice = \"eth2\"\naddress = [\"10.1.1.1/24\", \"192.168.10.1/16\"]\n"),
        "10.1.1.1/24", "interface[2].address[1]",
        "address 192.168.10.1 is already assigned to interface \"lan\" (line 10)")),
    // ---- [[route]] ----
    ("route dev unknown", (
        Base("[[route]]\nto = \"10.0.0.0/8\"\ndev = \"lna\"\n"),
        "dev = \"lna\"", "route[0].dev", "unknown interface \"lna\" (defined: wan, lan)")),
    ("next hop dev unknown", (
        Base("[[route]]\nto = \"10.0.0.0/8\"\nnexthops = [\n  { via = \"192.168.10.2\", dev = \"lan\" },\n  { via = \"192.168.10.3\", dev = \"eth1\" },\n]\n"),
        "eth1\" }", "route[0].nexthops[1].dev", "unknown interface \"eth1\"")),
    ("route dev without interfaces", (
        Alone("[[route]]\nto = \"10.0.0.0/8\"\ndev = \"x\"\n"),
        "dev", "route[0].dev", "no [[interface]] is defined")),
    ("unicast route without next hop", (
        Base("[[route]]\nto = \"10.0.0.0/8\"\nmetric = 5\n"),
        "[[route]]", "route[0]", "a unicast route needs `via`, `dev` or `nexthops`")),
    ("via and nexthops", (
        Base("[[route]]\nto = \"10.0.0.0/8\"\nvia = \"192.168.10.2\"\nnexthops = [{ via = \"192.168.10.3\" }]\n"),
        "via = \"192.168.10.2\"", "route[0].via", "use either `via` or `nexthops`, not both")),
    ("dev and nexthops", (
        Base("[[route]]\nto = \"10.0.0.0/8\"\ndev = \"lan\"\nnexthops = [{ via = \"192.168.10.3\" }]\n"),
        "dev = \"lan\"", "route[0].dev", "put `dev` inside each next hop")),
    ("nexthops empty", (
        Base("[[route]]\nto = \"10.0.0.0/8\"\nnexthops = []\n"),
        "nexthops", "route[0].nexthops", "must not be empty")),
    ("via IPv6 for IPv4 to", (
        Base("[[route]]\nto = \"0.0.0.0/0\"\nvia = \"2001:db8:1::1\"\n"),
        "via", "route[0].via", "gateway 2001:db8:1::1 is IPv6 but `to` 0.0.0.0/0 is IPv4")),
    ("next hop IPv4 for IPv6 to", (
        Base("[[route]]\nto = \"::/0\"\nnexthops = [\n  { via = \"203.0.113.1\" },\n]\n"),
        "{ via", "route[0].nexthops[0].via", "is IPv4 but `to` ::/0 is IPv6")),
    ("blackhole with via", (
        Base("[[route]]\nto = \"10.0.0.0/8\"\ntype = \"blackhole\"\nvia = \"192.168.10.2\"\n"),
        "via", "route[0].via", "a route of type blackhole takes no `via`")),
    ("unreachable with dev", (
        Base("[[route]]\nto = \"10.0.0.0/8\"\ntype = \"unreachable\"\ndev = \"lan\"\n"),
        "dev = \"lan\"", "route[0].dev", "a route of type unreachable takes no `dev`")),
    ("prohibit with nexthops", (
        Base("[[route]]\nto = \"10.0.0.0/8\"\ntype = \"prohibit\"\nnexthops = [{ via = \"192.168.10.2\" }]\n"),
        "nexthops", "route[0].nexthops", "a route of type prohibit takes no `nexthops`")),
    // `via` alone on a connected subnet is fine; off every subnet it is not.
    ("gateway off every subnet", (
        Base("[[route]]\nto = \"10.0.0.0/8\"\nvia = \"10.9.9.9\"\n"),
        "via", "route[0].via", "gateway 10.9.9.9 is not on any connected subnet")),
    // With `dev`, the gateway must be on that interface.
    ("gateway off the dev's subnets", (
        Base("[[route]]\nto = \"10.0.0.0/8\"\nvia = \"192.168.10.2\"\ndev = \"wan\"\n"),
        "via", "route[0].via",
        "not on a connected subnet of interface \"wan\" (its subnets: 203.0.113.0/24, 2001:db8:1::/64)")),
    // Link-local IPv6 gateways need `dev`.
    ("link-local gateway without dev", (
        Base("[[route]]\nto = \"::/0\"\nvia = \"fe80::1\"\n"),
        "via", "route[0].via", "link-local gateway fe80::1 needs `dev`")),
    // Not our own address.
    ("gateway is our address", (
        Base("[[route]]\nto = \"10.0.0.0/8\"\nvia = \"192.168.10.1\"\n"),
        "via", "route[0].via", "this router's own address (interface \"lan\")")),
    // Not a multicast address.
    ("gateway multicast", (
        Base("[[route]]\nto = \"10.0.0.0/8\"\nvia = \"224.0.0.1\"\n"),
        "via", "route[0].via", "multicast")),
    ("route to with host bits", (
        Base("[[route]]\nto = \"192.168.10.1/24\"\ndev = \"lan\"\n"),
        "to =", "route[0].to",
        "invalid prefix \"192.168.10.1/24\": invalid prefix for given prefix length (did you mean \"192.168.10.0/24\"?)")),
    ("route without to", (
        Base("\n[[route]]\ndev = \"lan\"\n"),
        "[[route]]", "route[0].to", "required key is missing")),
    ("route to default", (
        Base("[[route]]\nto = \"default\"\ndev = \"lan\"\n"),
        "to =", "route[0].to", "\"default\" is not an IP address")),
    ("table misspelt", (
        Base("[[route]]\nto = \"10.0.0.0/8\"\ndev = \"lan\"\ntable = \"mian\"\n"),
        "table", "route[0].table", "expected main, local, default or a number")),
    ("table 0", (
        Base("[[route]]\nto = \"10.0.0.0/8\"\ndev = \"lan\"\ntable = 0\n"),
        "table", "route[0].table", "must be between 1 and 4294967295, got 0")),
    ("table \"0\"", (
        Base("[[route]]\nto = \"10.0.0.0/8\"\ndev = \"lan\"\ntable = \"0\"\n"),
        "table", "route[0].table", "reserved")),
    ("metric -1", (
        Base("[[route]]\nto = \"10.0.0.0/8\"\ndev = \"lan\"\nmetric = -1\n"),
        "metric", "route[0].metric", "must be between 0 and 4294967295, got -1")),
    ("route type misspelt", (
        Base("[[route]]\nto = \"10.0.0.0/8\"\ndev = \"lan\"\ntype = \"blackhol\"\n"),
        "type", "route[0].type",
        "expected one of unicast, blackhole, unreachable, prohibit (did you mean \"blackhole\"?)")),
    ("next hop twice", (
        Base("[[route]]\nto = \"10.0.0.0/8\"\nnexthops = [\n  { via = \"192.168.10.2\" },\n  { via = \"192.168.10.2\", weight = 2 },\n]\n"),
        "weight = 2", "route[0].nexthops[1].via",
        "duplicate next hop 192.168.10.2 (same as nexthops[0])")),
    // ---- [[rule]] ----
    ("rule iif unknown", (
        Base("[[rule]]\npriority = 100\niif = \"lan0\"\ntable = 100\n"),
        "iif", "rule[0].iif", "unknown interface \"lan0\"")),
    ("rule priority 0", (
        Base("[[rule]]\npriority = 0\ntable = 100\n"),
        "priority", "rule[0].priority", "priority 0 is reserved for the local table rule")),
    ("rule priority 32768", (
        Base("[[rule]]\npriority = 32768\ntable = 100\n"),
        "priority", "rule[0].priority", "must be between 1 and 32767, got 32768")),
    ("rule without priority", (
        Base("[[rule]]\ntable = 100\n"),
        "[[rule]]", "rule[0].priority", "required key is missing")),
    ("rule families differ", (
        Base("[[rule]]\npriority = 5\nfrom = \"10.0.0.0/8\"\nto = \"2001:db8::/32\"\ntable = 7\n"),
        "to =", "rule[0].to", "`to` 2001:db8::/32 is IPv6 but `from` 10.0.0.0/8 is IPv4")),
    ("rule from with host bits", (
        Base("[[rule]]\npriority = 5\nfrom = \"10.0.0.1/8\"\ntable = 7\n"),
        "from", "rule[0].from", "invalid prefix for given prefix length")),
    ("fwmark outside its mask", (
        Base("[[rule]]\npriority = 5\nfwmark = \"0x110/0xff\"\ntable = 7\n"),
        "fwmark", "rule[0].fwmark", "value 0x110 has bits outside mask 0xff")),
    ("fwmark not a number", (
        Base("[[rule]]\npriority = 5\nfwmark = \"ten\"\ntable = 7\n"),
        "fwmark", "rule[0].fwmark", "invalid fwmark \"ten\"")),
    ("fwmark -1", (
        Base("[[rule]]\npriority = 5\nfwmark = -1\ntable = 7\n"),
        "fwmark", "rule[0].fwmark", "must be between 0 and 4294967295, got -1")),
    ("fwmark boolean", (
        Base("[[rule]]\npriority = 5\nfwmark = true\ntable = 7\n"),
        "fwmark", "rule[0].fwmark", "found boolean")),
    // ---- [[neighbor]] ----
    ("neighbor dev unknown", (
        Base("[[neighbor]]\nip = \"192.168.10.20\"\nmac = \"02:00:00:00:10:20\"\ndev = \"lan9\"\n"),
        "dev = \"lan9\"", "neighbor[0].dev", "unknown interface \"lan9\"")),
    ("neighbor ip invalid", (
        Base("[[neighbor]]\nip = \"192.168.10.300\"\nmac = \"02:00:00:00:10:20\"\ndev = \"lan\"\n"),
        "ip =", "neighbor[0].ip", "invalid IP address \"192.168.10.300\"")),
    ("neighbor ip multicast", (
        Base("[[neighbor]]\nip = \"ff02::1\"\nmac = \"02:00:00:00:10:20\"\ndev = \"lan\"\n"),
        "ip =", "neighbor[0].ip", "multicast")),
    ("neighbor mac multicast", (
        Base("[[neighbor]]\nip = \"192.168.10.20\"\nmac = \"ff:ff:ff:ff:ff:ff\"\ndev = \"lan\"\n"),
        "mac =", "neighbor[0].mac", "multicast")),
    ("neighbor is our address", (
        Base("[[neighbor]]\nip = \"192.168.10.1\"\nmac = \"02:00:00:00:10:20\"\ndev = \"lan\"\n"),
        "ip =", "neighbor[0].ip",
        "192.168.10.1 is this router's own address (interface \"lan\")")),
    // ---- [dataplane] ----
    ("workers 0", (
        Alone("[dataplane]\nworkers = 0\n"),
        "workers", "dataplane.workers", "must be between 1 and 1024, got 0")),
    ("flows 1023", (
        Alone("[dataplane]\nflows = 1023\n"),
        "flows", "dataplane.flows", "must be between 1024 and 67108864, got 1023")),
    ("flows 67108865", (
        Alone("[dataplane]\nflows = 67108865\n"),
        "flows", "dataplane.flows", "got 67108865")),
    ("queues -1", (
        Alone("[dataplane]\nqueues = -1\n"),
        "queues", "dataplane.queues", "must be between 0 and 1024")),
    ("xdp_mode misspelt", (
        Alone("[dataplane]\nxdp_mode = \"natve\"\n"),
        "xdp_mode", "dataplane.xdp_mode",
        "invalid value \"natve\": expected one of native, skb, auto (did you mean \"native\"?)")),
    ("bind misspelt", (
        Alone("[dataplane]\nbind = \"zero-copy\"\n"),
        "bind", "dataplane.bind", "expected one of copy, zerocopy, auto")),
    // ---- [firewall], [timeouts], [control] ----
    ("rules and rules_file", (
        Alone(concat!(
            "[firewall]\nrules = \"*filter\\nCOMMIT\\n\"\nrules_file = \"",
            env!("CARGO_MANIFEST_DIR"),
            "/Cargo.toml\"\n"
        )),
        "rules_file", "firewall.rules_file", "`rules` and `rules_file` are mutually exclusive")),
    ("rules not a string", (
        Alone("[firewall]\nrules = 5\n"),
        "rules", "firewall.rules", "expected a string, found integer")),
    ("rules_file empty", (
        Alone("[firewall]\nrules_file = \"\"\n"),
        "rules_file", "firewall.rules_file", "must not be empty")),
    ("udp timeout 0", (
        Alone("[timeouts]\nudp = 0\n"),
        "udp", "timeouts.udp", "must be between 1 and 4294967295, got 0")),
    ("icmp timeout -5", (
        Alone("[timeouts]\nicmp = -5\n"),
        "icmp", "timeouts.icmp", "got -5")),
    ("timeout as a string", (
        Alone("[timeouts]\ntcp_close = \"10\"\n"),
        "tcp_close", "timeouts.tcp_close", "expected an integer, found string")),
    ("timeout unknown", (
        Alone("[timeouts]\ntcp_max_retrans = 10\n"),
        "tcp_max_retrans", "timeouts.tcp_max_retrans", "unknown key")),
    ("metrics host name", (
        Alone("[control]\nmetrics = \"localhost:9482\"\n"),
        "metrics", "control.metrics", "invalid listen address \"localhost:9482\"")),
    ("metrics without port", (
        Alone("[control]\nmetrics = \"127.0.0.1\"\n"),
        "metrics", "control.metrics", "expected IP:PORT")),
    ("socket empty", (
        Alone("[control]\nsocket = \"\"\n"),
        "socket", "control.socket", "must not be empty")),
    // ---- [[bridge]] (P: a plain interface `p` on eth2) ----
    ("bridge port with addresses", (
        Base("[[bridge]]\nname = \"br0\"\nports = [\"wan\"]\n"),
        "ports = ", "bridge[0].ports[0]", "has addresses: a bridge port has none")),
    ("bridge port unknown", (
        Base("[[bridge]]\nname = \"br0\"\nports = [\"nope\"]\n"),
        "ports = ", "bridge[0].ports[0]", "unknown interface \"nope\"")),
    ("bridge port in two bridges", (
        Base("[[interface]]\nname = \"p\"\ndevice = \"eth2\"\n\n[[bridge]]\nname = \"br0\"\nports = [\"p\"]\n\n[[bridge]]\nname = \"br1\"\nports = [\"p\"] # 2\n"),
        "ports = [\"p\"] # 2", "bridge[1].ports[0]", "already a port of bridge \"br0\"")),
    ("bridge pvid without vlan_filtering", (
        Base("[[interface]]\nname = \"p\"\ndevice = \"eth2\"\n\n[[bridge]]\nname = \"br0\"\nports = [{ interface = \"p\", pvid = 10 }]\n"),
        "ports = ", "bridge[0].ports[0]", "pvid and vlans need vlan_filtering")),
    ("bridge named as another interface", (
        Base("[[interface]]\nname = \"p\"\ndevice = \"eth2\"\n\n[[bridge]]\nname = \"wan\"\nports = [\"p\"]\n"),
        "name = \"wan\"\nports", "bridge[0].name", "is the name of interface at line 1")),
    ("bridge static MAC on a non-port", (
        Base("[[interface]]\nname = \"p\"\ndevice = \"eth2\"\n\n[[bridge]]\nname = \"br0\"\nports = [\"p\"]\n[[bridge.fdb]]\nmac = \"02:00:00:00:00:09\"\nport = \"wan\"\n"),
        "[[bridge.fdb]]", "bridge[0].fdb[0].port", "\"wan\" is not a port of bridge \"br0\"")),
    ("bridge unknown key", (
        Base("[[interface]]\nname = \"p\"\ndevice = \"eth2\"\n\n[[bridge]]\nname = \"br0\"\nports = [\"p\"]\nstp = true\n"),
        "stp", "bridge[0].stp", "unknown key")),
    ("bridge vlan trunk id", (
        Base("[[interface]]\nname = \"p\"\ndevice = \"eth2\"\n\n[[bridge]]\nname = \"br0\"\nvlan_filtering = true\nports = [{ interface = \"p\", vlans = [10, 4095] }]\n"),
        "ports = ", "bridge[0].ports[0].vlans[1]", "between 1 and 4094")),
];

#[test]
fn each_bad_snippet_has_one_error_naming_its_line_and_field() {
    each(ONE_ERROR, |(text, at, field, msg)| {
        one_error(&text.text(), at, field, msg)
    });
}

/// Texts that must parse.
#[rustfmt::skip]
const VALID: &[(&str, Text)] = &[
    ("base", Alone(BASE)),
    ("interface with a tap", Base("[[interface]]\nname = \"mgmt\"\ndevice = \"eth2\"\ntap = \"xg-mgmt\"\n")),
    ("interface name characters", Alone("[[interface]]\nname = \"Wan_1.v-2\"\ndevice = \"eth0\"\n")),
    // Same device with other tags is fine: untagged, other VLAN, QinQ.
    ("device with other tags", Base("[[interface]]\nname = \"a\"\ndevice = \"eth1\"\n\n[[interface]]\nname = \"b\"\ndevice = \"eth1\"\nvlan = 11\n\n[[interface]]\nname = \"c\"\ndevice = \"eth1\"\nvlan = [10, 20]\n")),
    ("no vlan tags", Alone("[[interface]]\nname = \"a\"\ndevice = \"eth0\"\nvlan = []\n")),
    ("mtu 68 without IPv6", Alone("[[interface]]\nname = \"a\"\ndevice = \"eth0\"\nmtu = 68\naddress = [\"10.0.0.1/24\"]\n")),
    ("blackhole route", Base("[[route]]\nto = \"10.0.0.0/8\"\ntype = \"blackhole\"\n")),
    ("gateway on a connected subnet", Base("[[route]]\nto = \"10.0.0.0/8\"\nvia = \"192.168.10.2\"\n")),
    // ... or covered by a dev-only route out of it (like `ip route add 10.7.7.7 dev wan`).
    ("gateway behind a dev route", Base("[[route]]\nto = \"10.7.7.7\"\ndev = \"wan\"\n\n[[route]]\nto = \"10.0.0.0/8\"\nvia = \"10.7.7.7\"\ndev = \"wan\"\n")),
    ("link-local gateway with dev", Base("[[route]]\nto = \"::/0\"\nvia = \"fe80::1\"\ndev = \"wan\"\n")),
    // Other metric or other table: fine.
    ("same route, other metric or table", Base("[[route]]\nto = \"10.0.0.0/8\"\ndev = \"lan\"\n\n[[route]]\nto = \"10.0.0.0/8\"\ndev = \"wan\"\nmetric = 10\n\n[[route]]\nto = \"10.0.0.0/8\"\ndev = \"wan\"\ntable = 7\n")),
    // Any family, any interface.
    ("IPv6 neighbor on wan", Base("[[neighbor]]\nip = \"2001:db8:1::9\"\nmac = \"02:00:00:00:10:20\"\ndev = \"wan\"\n")),
    ("dataplane minimum", Alone("[dataplane]\nflows = 1024\nworkers = 1\n")),
    ("dataplane maximum", Alone("[dataplane]\nflows = 67108864\nxdp_mode = \"skb\"\nbind = \"copy\"\n")),
    ("control", Alone("[control]\nmetrics = \"[::1]:9100\"\nsocket = \"xgate.sock\"\n")),
    ("bridge with its interface and VLANs", Base("[[bridge]]\nname = \"br0\"\nvlan_filtering = true\nnf_call_iptables = true\nports = [\"p\", { interface = \"q\", pvid = 0, vlans = [10, 20] }]\n[[bridge.fdb]]\nmac = \"02:00:00:00:00:09\"\nport = \"p\"\n\n[[interface]]\nname = \"br0\"\ndevice = \"br0\"\naddress = [\"10.5.0.1/24\"]\n\n[[interface]]\nname = \"br0.10\"\ndevice = \"br0\"\nvlan = 10\n\n[[interface]]\nname = \"p\"\ndevice = \"eth2\"\n\n[[interface]]\nname = \"q\"\ndevice = \"eth3\"\n")),
];

#[test]
fn each_good_snippet_parses() {
    each(VALID, |text| match config::parse(&text.text(), "x.toml") {
        Ok(_) => Ok(()),
        Err(e) => Err(format!("unexpected errors:\n{}", config::render_errors(&e))),
    });
}

// ---- several errors, exact texts ----

#[test]
fn the_briefs_example_error() {
    let text = r#"# gateway
[dataplane]
workers = 2

[[interface]]
name = "wan"
device = "eth0"
address = ["203.0.113.2/24"]

[[interface]]
name = "lan10"
device = "eth1"
vlan = 10
address = ["192.168.10.1/33"]
"#;
    let e = config::parse(text, "rules.toml").unwrap_err();
    assert_eq!(e.len(), 1);
    assert_eq!(
        e[0].to_string(),
        r#"rules.toml:14: interface[1].address[0]: invalid prefix "192.168.10.1/33": prefix length 33 > 32"#
    );
}

#[test]
fn address_twice_on_one_interface() {
    // The index counts the written entries.
    let t = "[[interface]]\nname = \"a\"\ndevice = \"eth0\"\naddress = [\"bad\", \"10.0.0.1/24\",\n \"10.0.0.1/25\"]\n";
    let e = errors(t);
    assert_eq!(e.len(), 2, "{}", config::render_errors(&e));
    assert_eq!(
        (e[0].line, e[0].field.as_str()),
        (4, "interface[0].address[0]")
    );
    assert_eq!(
        (e[1].line, e[1].field.as_str()),
        (5, "interface[0].address[2]")
    );
    assert!(
        e[1].message.contains("already assigned to interface \"a\""),
        "{}",
        e[1]
    );
}

#[test]
fn next_hop_weights() {
    let t = with_base(
        "[[route]]\nto = \"10.0.0.0/8\"\nnexthops = [\n  { via = \"192.168.10.2\", weight = 0 },\n  { via = \"192.168.10.3\", weight = 257 },\n]\n",
    );
    let e = errors(&t);
    assert_eq!(e.len(), 2, "{}", config::render_errors(&e));
    assert_eq!(e[0].field, "route[0].nexthops[0].weight");
    assert_eq!(e[0].line, line_of(&t, "weight = 0"));
    assert_eq!(e[1].field, "route[0].nexthops[1].weight");
    assert_eq!(e[1].line, line_of(&t, "weight = 257"));
    assert!(e[1].message.contains("between 1 and 256"), "{}", e[1]);
}

#[test]
fn duplicate_route() {
    let t = with_base(
        "[[route]]\nto = \"10.0.0.0/8\"\ndev = \"lan\"\n\n[[route]]\nto = \"10.0.0.0/8\"\ntype = \"blackhole\"\n",
    );
    let e = errors(&t);
    assert_eq!(e.len(), 1, "{}", config::render_errors(&e));
    assert_eq!(e[0].field, "route[1].to");
    assert_eq!(e[0].line, 17);
    assert_eq!(
        e[0].message,
        "duplicate route: 10.0.0.0/8 metric 0 in table main is already defined at line 12"
    );
}

#[test]
fn duplicate_neighbor() {
    let t = with_base(
        "[[neighbor]]\nip = \"192.168.10.20\"\nmac = \"02:00:00:00:10:20\"\ndev = \"lan\"\n\n[[neighbor]]\nip = \"192.168.10.20\"\nmac = \"02:00:00:00:10:21\"\ndev = \"lan\"\n",
    );
    let e = errors(&t);
    assert_eq!(e.len(), 1);
    assert_eq!(
        e[0].to_string(),
        "x.toml:18: neighbor[1].ip: duplicate neighbor 192.168.10.20 on \"lan\" (first defined at line 12)"
    );
}

#[test]
fn neighbor_required_keys() {
    let t = with_base("[[neighbor]]\nmac = \"02:00:00:00:10:20\"\n");
    let e = errors(&t);
    assert_eq!(e.len(), 2, "{}", config::render_errors(&e));
    assert_eq!((e[0].line, e[0].field.as_str()), (12, "neighbor[0].ip"));
    assert_eq!((e[1].line, e[1].field.as_str()), (12, "neighbor[0].dev"));
}

#[test]
fn every_timeout_parses_with_its_line() {
    let all = config::DEFAULT_TIMEOUTS
        .iter()
        .map(|(n, _)| format!("{n} = 7\n"))
        .collect::<String>();
    let c = config::parse(&format!("[timeouts]\n{all}"), "x.toml").unwrap();
    assert_eq!(c.timeouts.len(), 14);
    assert!(
        c.timeouts
            .iter()
            .enumerate()
            .all(|(i, (_, s, l))| *s == 7 && *l == i + 2)
    );
}

// ---- collecting ----

#[test]
fn all_errors_are_reported_in_line_order() {
    let t = r#"[dataplane]
workers = 0
xdp_mode = "fast"

[[interface]]
name = "wan"
device = "eth0"
address = ["203.0.113.2/33"]
mtu = 20

[[route]]
to = "10.0.0.1/8"
via = "203.0.113.1"
dev = "wna"

[[rule]]
priority = 0
iif = "lan"

[[neighbor]]
ip = "203.0.113.9"
mac = "01:00:00:00:00:01"
dev = "wan"

[timeouts]
udp = 0

[control]
metrics = "nope"
"#;
    let e = errors(t);
    let got: Vec<(usize, &str)> = e.iter().map(|e| (e.line, e.field.as_str())).collect();
    assert_eq!(
        got,
        [
            (2, "dataplane.workers"),
            (3, "dataplane.xdp_mode"),
            (8, "interface[0].address[0]"),
            (9, "interface[0].mtu"),
            (12, "route[0].to"),
            (14, "route[0].dev"),
            (17, "rule[0].priority"),
            (18, "rule[0].iif"),
            (22, "neighbor[0].mac"),
            (26, "timeouts.udp"),
            (29, "control.metrics"),
        ],
        "{}",
        config::render_errors(&e)
    );
    let shown = config::render_errors(&e);
    assert!(shown.starts_with("x.toml:2: dataplane.workers: must be between 1 and 1024, got 0\n"));
    assert_eq!(shown.lines().count(), 11);
}

#[test]
fn bad_fields_do_not_cascade() {
    // An interface whose name is invalid is still known to references, a bad
    // `to` skips the family check, a bad `via` skips the reachability check.
    let t = r#"[[interface]]
name = "lan+"
device = "eth1"
address = ["192.168.10.1/24"]

[[route]]
to = "10.0.0.0/99"
via = "192.168.10.2"
dev = "lan+"

[[route]]
to = "10.1.0.0/16"
via = "not-an-ip"
"#;
    let e = errors(t);
    let got: Vec<(usize, &str)> = e.iter().map(|e| (e.line, e.field.as_str())).collect();
    assert_eq!(
        got,
        [
            (2, "interface[0].name"),
            (7, "route[0].to"),
            (13, "route[1].via")
        ],
        "{}",
        config::render_errors(&e)
    );
}

/// docs/config.md promises every error at once: a broken firewall rule is
/// reported beside another section's error (issue 13), iptables and nft.
#[test]
fn firewall_errors_come_with_the_other_errors() {
    for fw in [
        "rules = \"\"\"\n*filter\n-A FORWARD -p tcp --dport 99999 -j ACCEPT\nCOMMIT\n\"\"\"",
        "nft = \"\"\"\ntable ip f {\n chain c { type filter hook forward priority 0; tcp dport 99999 accept; }\n}\n\"\"\"",
    ] {
        let text = format!(
            "[[interface]]\nname = \"wan\"\ndevice = \"eth0\"\naddress = [\"203.0.113.2/24\"]\nmtu = 99999\n\n[firewall]\n{fw}\n"
        );
        let errs = xgate_control::parse(&text, "gw.toml").unwrap_err();
        let all: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert!(
            all.iter().any(|e| e.contains("interface[0].mtu")),
            "{all:?}"
        );
        assert!(
            all.iter()
                .any(|e| e.contains("firewall.") && e.contains("99999")),
            "{all:?}"
        );
    }
}
