//! Validation tests: one per rule, each asserting the exact line and field of
//! the error; plus "all errors are collected" and "no cascades" tests.

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

/// The 1-based line of the first occurrence of `needle` in `text`.
fn line_of(text: &str, needle: &str) -> usize {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in text"));
    text[..at].matches('\n').count() + 1
}

fn errors(text: &str) -> Vec<ConfigError> {
    match config::parse(text, "x.toml") {
        Ok(_) => panic!("expected errors, config parsed:\n{text}"),
        Err(e) => e,
    }
}

/// Asserts that `text` has exactly one error, on the line holding `at`, for
/// `field`, with a message containing `msg`.
#[track_caller]
fn expect(text: &str, at: &str, field: &str, msg: &str) {
    let e = errors(text);
    assert_eq!(
        e.len(),
        1,
        "expected one error, got:\n{}",
        config::render_errors(&e)
    );
    let e = &e[0];
    assert_eq!(e.field, field, "{e}");
    assert_eq!(e.line, line_of(text, at), "{e}");
    assert!(e.message.contains(msg), "{e:?} does not contain {msg:?}");
    assert_eq!(e.file, "x.toml");
}

#[track_caller]
fn valid(text: &str) {
    if let Err(e) = config::parse(text, "x.toml") {
        panic!("unexpected errors:\n{}", config::render_errors(&e));
    }
}

#[test]
fn base_is_valid() {
    valid(BASE);
}

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

// ---- [[interface]] ----

#[test]
fn interface_name_unique() {
    let t = with_base("[[interface]]\nname = \"wan\"\ndevice = \"eth2\"\n");
    expect(
        &t,
        "name = \"wan\"\ndevice = \"eth2\"",
        "interface[2].name",
        "duplicate interface name \"wan\" (first defined at line 1)",
    );
}

#[test]
fn interface_tap_names() {
    valid(&with_base(
        "[[interface]]\nname = \"mgmt\"\ndevice = \"eth2\"\ntap = \"xg-mgmt\"\n",
    ));
    let t = with_base("[[interface]]\nname = \"m\"\ndevice = \"eth2\"\ntap = \"a/b\"\n");
    expect(&t, "tap = ", "interface[2].tap", "not a valid device name");
    let t =
        with_base("[[interface]]\nname = \"m\"\ndevice = \"eth2\"\ntap = \"tap-name-too-long\"\n");
    expect(&t, "tap = ", "interface[2].tap", "longer than 15");
    // A tap is a device of its own: not another interface's device...
    let t = with_base("[[interface]]\nname = \"m\"\ndevice = \"eth2\"\ntap = \"eth0\"\n");
    expect(
        &t,
        "tap = ",
        "interface[2].tap",
        "tap \"eth0\" is the device of interface \"wan\" (line 1)",
    );
    // ...nor another interface's tap.
    let t = with_base(
        "[[interface]]\nname = \"m\"\ndevice = \"eth2\"\ntap = \"k0\"\n\n\
         [[interface]]\nname = \"n\"\ndevice = \"eth3\"\ntap=\"k0\"\n",
    );
    expect(
        &t,
        "tap=\"k0\"",
        "interface[3].tap",
        "already the tap of interface \"m\"",
    );
}

#[test]
fn interface_name_rules() {
    let t = "[[interface]]\nname = \"\"\ndevice = \"eth0\"\n";
    expect(t, "name", "interface[0].name", "must not be empty");
    let t = "[[interface]]\nname = \"a-very-long-name-x\"\ndevice = \"eth0\"\n";
    expect(t, "name", "interface[0].name", "longer than 15");
    let t = "[[interface]]\ndevice = \"eth0\"\nname = \"lan+\"\n";
    expect(t, "name", "interface[0].name", "contains '+'");
    let t = "[[interface]]\nname = \"a b\"\ndevice = \"eth0\"\n";
    expect(t, "name", "interface[0].name", "contains ' '");
    valid("[[interface]]\nname = \"Wan_1.v-2\"\ndevice = \"eth0\"\n");
}

#[test]
fn interface_required_keys() {
    let t = "\n[[interface]]\ndevice = \"eth0\"\n";
    expect(
        t,
        "[[interface]]",
        "interface[0].name",
        "required key is missing",
    );
    let t = "\n[[interface]]\nname = \"wan\"\n";
    expect(
        t,
        "[[interface]]",
        "interface[0].device",
        "required key is missing",
    );
    let t = "[[interface]]\nname = \"wan\"\ndevice = \"\"\n";
    expect(t, "device", "interface[0].device", "must not be empty");
    let t = "[[interface]]\nname = \"wan\"\ndevice = \"eth0/1\"\n";
    expect(
        t,
        "device",
        "interface[0].device",
        "not a valid device name",
    );
}

#[test]
fn device_and_vlan_stack_unique() {
    // Same device, same VLAN.
    let t = with_base("[[interface]]\nname = \"lan2\"\ndevice = \"eth1\"\nvlan = [10]\n");
    expect(
        &t,
        "vlan = [10]",
        "interface[2].vlan",
        "device \"eth1\" VLAN 10 is already used by interface \"lan\" (line 6)",
    );
    // Same untagged device: reported on `device`.
    let t = with_base("[[interface]]\nname = \"wan2\"\ndevice  = \"eth0\"\n");
    expect(
        &t,
        "device  = \"eth0\"",
        "interface[2].device",
        "untagged is already used by interface \"wan\"",
    );
    // Same device with other tags is fine: untagged, other VLAN, QinQ.
    valid(&with_base(
        "[[interface]]\nname = \"a\"\ndevice = \"eth1\"\n\n[[interface]]\nname = \"b\"\ndevice = \"eth1\"\nvlan = 11\n\n[[interface]]\nname = \"c\"\ndevice = \"eth1\"\nvlan = [10, 20]\n",
    ));
}

#[test]
fn vlan_ids_and_tags() {
    let t = "[[interface]]\nname = \"a\"\ndevice = \"eth0\"\nvlan = 0\n";
    expect(
        t,
        "vlan",
        "interface[0].vlan",
        "must be between 1 and 4094, got 0",
    );
    let t = "[[interface]]\nname = \"a\"\ndevice = \"eth0\"\nvlan = 4095\n";
    expect(
        t,
        "vlan",
        "interface[0].vlan",
        "must be between 1 and 4094, got 4095",
    );
    let t = "[[interface]]\nname = \"a\"\ndevice = \"eth0\"\nvlan = [100, 4095]\n";
    expect(t, "vlan", "interface[0].vlan[1]", "got 4095");
    let t = "[[interface]]\nname = \"a\"\ndevice = \"eth0\"\nvlan = [1, 2, 3]\n";
    expect(t, "vlan", "interface[0].vlan", "at most 2 tags");
    let t = "[[interface]]\nname = \"a\"\ndevice = \"eth0\"\nvlan = \"10\"\n";
    expect(
        t,
        "vlan",
        "interface[0].vlan",
        "expected a VLAN id or an array of 2 ids, found string",
    );
    valid("[[interface]]\nname = \"a\"\ndevice = \"eth0\"\nvlan = []\n");
}

#[test]
fn interface_mac() {
    let t = "[[interface]]\nname = \"a\"\ndevice = \"eth0\"\nmac = \"02:00:00:00:00\"\n";
    expect(
        t,
        "mac",
        "interface[0].mac",
        "invalid MAC address \"02:00:00:00:00\"",
    );
    let t = "[[interface]]\nname = \"a\"\ndevice = \"eth0\"\nmac = \"01:00:5e:00:00:01\"\n";
    expect(t, "mac", "interface[0].mac", "multicast");
    let t = "[[interface]]\nname = \"a\"\ndevice = \"eth0\"\nmac = \"00:00:00:00:00:00\"\n";
    expect(t, "mac", "interface[0].mac", "all-zero");
}

#[test]
fn interface_mtu() {
    let t = "[[interface]]\nname = \"a\"\ndevice = \"eth0\"\nmtu = 67\n";
    expect(
        t,
        "mtu",
        "interface[0].mtu",
        "must be between 68 and 9000, got 67",
    );
    let t = "[[interface]]\nname = \"a\"\ndevice = \"eth0\"\nmtu = 9001\n";
    expect(t, "mtu", "interface[0].mtu", "got 9001");
    let t = "[[interface]]\nname = \"a\"\ndevice = \"eth0\"\nmtu = 1279\naddress = [\"10.0.0.1/24\", \"fd00::1/64\"]\n";
    expect(
        t,
        "mtu",
        "interface[0].mtu",
        "mtu 1279 is below 1280, the minimum for IPv6 (address fd00::1/64)",
    );
    valid(
        "[[interface]]\nname = \"a\"\ndevice = \"eth0\"\nmtu = 68\naddress = [\"10.0.0.1/24\"]\n",
    );
}

#[test]
fn interface_addresses() {
    let t = "[[interface]]\nname = \"a\"\ndevice = \"eth0\"\naddress = [\n  \"10.0.0.1/24\",\n  \"10.0.1.1\",\n]\n";
    expect(
        t,
        "\"10.0.1.1\"",
        "interface[0].address[1]",
        "missing prefix length (write \"10.0.1.1/32\"",
    );
    let t = "[[interface]]\nname = \"a\"\ndevice = \"eth0\"\naddress = [\"10.0.0.0/24\"]\n";
    expect(
        t,
        "address",
        "interface[0].address[0]",
        "network address of 10.0.0.0/24",
    );
    let t = "[[interface]]\nname = \"a\"\ndevice = \"eth0\"\naddress = [\"2001:db8::1/129\"]\n";
    expect(
        t,
        "address",
        "interface[0].address[0]",
        "prefix length 129 > 128",
    );
    let t = "[[interface]]\nname = \"a\"\ndevice = \"eth0\"\naddress = [\"fe80::1%eth0/64\"]\n";
    expect(
        t,
        "address",
        "interface[0].address[0]",
        "is not an IP address",
    );
    let t = "[[interface]]\nname = \"a\"\ndevice = \"eth0\"\naddress = [1]\n";
    expect(
        t,
        "address",
        "interface[0].address[0]",
        "expected a string, found integer",
    );
}

#[test]
fn no_duplicate_address() {
    // The same IP on another interface (even with another prefix length).
    let t = with_base(
        "[[interface]]\nname = \"x\"\ndevice = \"eth2\"\naddress = [\"10.1.1.1/24\", \"192.168.10.1/16\"]\n",
    );
    expect(
        &t,
        "10.1.1.1/24",
        "interface[2].address[1]",
        "address 192.168.10.1 is already assigned to interface \"lan\" (line 10)",
    );
    // Twice on the same interface; index counts the written entries.
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

// ---- [[route]] ----

#[test]
fn route_dev_must_name_an_interface() {
    let t = with_base("[[route]]\nto = \"10.0.0.0/8\"\ndev = \"lna\"\n");
    expect(
        &t,
        "dev = \"lna\"",
        "route[0].dev",
        "unknown interface \"lna\" (defined: wan, lan)",
    );
    let t = with_base(
        "[[route]]\nto = \"10.0.0.0/8\"\nnexthops = [\n  { via = \"192.168.10.2\", dev = \"lan\" },\n  { via = \"192.168.10.3\", dev = \"eth1\" },\n]\n",
    );
    expect(
        &t,
        "eth1\" }",
        "route[0].nexthops[1].dev",
        "unknown interface \"eth1\"",
    );
    let t = "[[route]]\nto = \"10.0.0.0/8\"\ndev = \"x\"\n";
    expect(t, "dev", "route[0].dev", "no [[interface]] is defined");
}

#[test]
fn unicast_route_needs_a_next_hop() {
    let t = with_base("[[route]]\nto = \"10.0.0.0/8\"\nmetric = 5\n");
    expect(
        &t,
        "[[route]]",
        "route[0]",
        "a unicast route needs `via`, `dev` or `nexthops`",
    );
}

#[test]
fn via_and_nexthops_exclusive() {
    let t = with_base(
        "[[route]]\nto = \"10.0.0.0/8\"\nvia = \"192.168.10.2\"\nnexthops = [{ via = \"192.168.10.3\" }]\n",
    );
    expect(
        &t,
        "via = \"192.168.10.2\"",
        "route[0].via",
        "use either `via` or `nexthops`, not both",
    );
    let t = with_base(
        "[[route]]\nto = \"10.0.0.0/8\"\ndev = \"lan\"\nnexthops = [{ via = \"192.168.10.3\" }]\n",
    );
    expect(
        &t,
        "dev = \"lan\"",
        "route[0].dev",
        "put `dev` inside each next hop",
    );
    let t = with_base("[[route]]\nto = \"10.0.0.0/8\"\nnexthops = []\n");
    expect(&t, "nexthops", "route[0].nexthops", "must not be empty");
}

#[test]
fn via_family_matches_to() {
    let t = with_base("[[route]]\nto = \"0.0.0.0/0\"\nvia = \"2001:db8:1::1\"\n");
    expect(
        &t,
        "via",
        "route[0].via",
        "gateway 2001:db8:1::1 is IPv6 but `to` 0.0.0.0/0 is IPv4",
    );
    let t = with_base("[[route]]\nto = \"::/0\"\nnexthops = [\n  { via = \"203.0.113.1\" },\n]\n");
    expect(
        &t,
        "{ via",
        "route[0].nexthops[0].via",
        "is IPv4 but `to` ::/0 is IPv6",
    );
}

#[test]
fn blackhole_routes_take_no_next_hop() {
    let t =
        with_base("[[route]]\nto = \"10.0.0.0/8\"\ntype = \"blackhole\"\nvia = \"192.168.10.2\"\n");
    expect(
        &t,
        "via",
        "route[0].via",
        "a route of type blackhole takes no `via`",
    );
    let t = with_base("[[route]]\nto = \"10.0.0.0/8\"\ntype = \"unreachable\"\ndev = \"lan\"\n");
    expect(
        &t,
        "dev = \"lan\"",
        "route[0].dev",
        "a route of type unreachable takes no `dev`",
    );
    let t = with_base(
        "[[route]]\nto = \"10.0.0.0/8\"\ntype = \"prohibit\"\nnexthops = [{ via = \"192.168.10.2\" }]\n",
    );
    expect(
        &t,
        "nexthops",
        "route[0].nexthops",
        "a route of type prohibit takes no `nexthops`",
    );
    valid(&with_base(
        "[[route]]\nto = \"10.0.0.0/8\"\ntype = \"blackhole\"\n",
    ));
}

#[test]
fn gateway_must_be_reachable() {
    // `via` alone on a connected subnet is fine; off every subnet it is not.
    valid(&with_base(
        "[[route]]\nto = \"10.0.0.0/8\"\nvia = \"192.168.10.2\"\n",
    ));
    let t = with_base("[[route]]\nto = \"10.0.0.0/8\"\nvia = \"10.9.9.9\"\n");
    expect(
        &t,
        "via",
        "route[0].via",
        "gateway 10.9.9.9 is not on any connected subnet",
    );
    // With `dev`, the gateway must be on that interface.
    let t = with_base("[[route]]\nto = \"10.0.0.0/8\"\nvia = \"192.168.10.2\"\ndev = \"wan\"\n");
    expect(
        &t,
        "via",
        "route[0].via",
        "not on a connected subnet of interface \"wan\" (its subnets: 203.0.113.0/24, 2001:db8:1::/64)",
    );
    // ... or covered by a dev-only route out of it (like `ip route add 10.7.7.7 dev wan`).
    valid(&with_base(
        "[[route]]\nto = \"10.7.7.7\"\ndev = \"wan\"\n\n[[route]]\nto = \"10.0.0.0/8\"\nvia = \"10.7.7.7\"\ndev = \"wan\"\n",
    ));
    // Link-local IPv6 gateways need `dev`.
    let t = with_base("[[route]]\nto = \"::/0\"\nvia = \"fe80::1\"\n");
    expect(
        &t,
        "via",
        "route[0].via",
        "link-local gateway fe80::1 needs `dev`",
    );
    valid(&with_base(
        "[[route]]\nto = \"::/0\"\nvia = \"fe80::1\"\ndev = \"wan\"\n",
    ));
    // Not our own address.
    let t = with_base("[[route]]\nto = \"10.0.0.0/8\"\nvia = \"192.168.10.1\"\n");
    expect(
        &t,
        "via",
        "route[0].via",
        "this router's own address (interface \"lan\")",
    );
    // Not a multicast address.
    let t = with_base("[[route]]\nto = \"10.0.0.0/8\"\nvia = \"224.0.0.1\"\n");
    expect(&t, "via", "route[0].via", "multicast");
}

#[test]
fn route_to_needs_zero_host_bits() {
    let t = with_base("[[route]]\nto = \"192.168.10.1/24\"\ndev = \"lan\"\n");
    expect(
        &t,
        "to =",
        "route[0].to",
        "invalid prefix \"192.168.10.1/24\": invalid prefix for given prefix length (did you mean \"192.168.10.0/24\"?)",
    );
    let t = with_base("\n[[route]]\ndev = \"lan\"\n");
    expect(&t, "[[route]]", "route[0].to", "required key is missing");
    let t = with_base("[[route]]\nto = \"default\"\ndev = \"lan\"\n");
    expect(
        &t,
        "to =",
        "route[0].to",
        "\"default\" is not an IP address",
    );
}

#[test]
fn route_scalars() {
    let t = with_base("[[route]]\nto = \"10.0.0.0/8\"\ndev = \"lan\"\ntable = \"mian\"\n");
    expect(
        &t,
        "table",
        "route[0].table",
        "expected main, local, default or a number",
    );
    let t = with_base("[[route]]\nto = \"10.0.0.0/8\"\ndev = \"lan\"\ntable = 0\n");
    expect(
        &t,
        "table",
        "route[0].table",
        "must be between 1 and 4294967295, got 0",
    );
    let t = with_base("[[route]]\nto = \"10.0.0.0/8\"\ndev = \"lan\"\ntable = \"0\"\n");
    expect(&t, "table", "route[0].table", "reserved");
    let t = with_base("[[route]]\nto = \"10.0.0.0/8\"\ndev = \"lan\"\nmetric = -1\n");
    expect(
        &t,
        "metric",
        "route[0].metric",
        "must be between 0 and 4294967295, got -1",
    );
    let t = with_base("[[route]]\nto = \"10.0.0.0/8\"\ndev = \"lan\"\ntype = \"blackhol\"\n");
    expect(
        &t,
        "type",
        "route[0].type",
        "expected one of unicast, blackhole, unreachable, prohibit (did you mean \"blackhole\"?)",
    );
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
fn duplicate_routes_and_next_hops() {
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
    // Other metric or other table: fine.
    valid(&with_base(
        "[[route]]\nto = \"10.0.0.0/8\"\ndev = \"lan\"\n\n[[route]]\nto = \"10.0.0.0/8\"\ndev = \"wan\"\nmetric = 10\n\n[[route]]\nto = \"10.0.0.0/8\"\ndev = \"wan\"\ntable = 7\n",
    ));
    let t = with_base(
        "[[route]]\nto = \"10.0.0.0/8\"\nnexthops = [\n  { via = \"192.168.10.2\" },\n  { via = \"192.168.10.2\", weight = 2 },\n]\n",
    );
    expect(
        &t,
        "weight = 2",
        "route[0].nexthops[1].via",
        "duplicate next hop 192.168.10.2 (same as nexthops[0])",
    );
}

// ---- [[rule]] ----

#[test]
fn rule_iif_must_name_an_interface() {
    let t = with_base("[[rule]]\npriority = 100\niif = \"lan0\"\ntable = 100\n");
    expect(&t, "iif", "rule[0].iif", "unknown interface \"lan0\"");
}

#[test]
fn rule_priority() {
    let t = with_base("[[rule]]\npriority = 0\ntable = 100\n");
    expect(
        &t,
        "priority",
        "rule[0].priority",
        "priority 0 is reserved for the local table rule",
    );
    let t = with_base("[[rule]]\npriority = 32768\ntable = 100\n");
    expect(
        &t,
        "priority",
        "rule[0].priority",
        "must be between 1 and 32767, got 32768",
    );
    let t = with_base("[[rule]]\ntable = 100\n");
    expect(
        &t,
        "[[rule]]",
        "rule[0].priority",
        "required key is missing",
    );
}

#[test]
fn rule_families_consistent() {
    let t = with_base(
        "[[rule]]\npriority = 5\nfrom = \"10.0.0.0/8\"\nto = \"2001:db8::/32\"\ntable = 7\n",
    );
    expect(
        &t,
        "to =",
        "rule[0].to",
        "`to` 2001:db8::/32 is IPv6 but `from` 10.0.0.0/8 is IPv4",
    );
    let t = with_base("[[rule]]\npriority = 5\nfrom = \"10.0.0.1/8\"\ntable = 7\n");
    expect(
        &t,
        "from",
        "rule[0].from",
        "invalid prefix for given prefix length",
    );
}

#[test]
fn rule_fwmark() {
    let t = with_base("[[rule]]\npriority = 5\nfwmark = \"0x110/0xff\"\ntable = 7\n");
    expect(
        &t,
        "fwmark",
        "rule[0].fwmark",
        "value 0x110 has bits outside mask 0xff",
    );
    let t = with_base("[[rule]]\npriority = 5\nfwmark = \"ten\"\ntable = 7\n");
    expect(&t, "fwmark", "rule[0].fwmark", "invalid fwmark \"ten\"");
    let t = with_base("[[rule]]\npriority = 5\nfwmark = -1\ntable = 7\n");
    expect(
        &t,
        "fwmark",
        "rule[0].fwmark",
        "must be between 0 and 4294967295, got -1",
    );
    let t = with_base("[[rule]]\npriority = 5\nfwmark = true\ntable = 7\n");
    expect(&t, "fwmark", "rule[0].fwmark", "found boolean");
}

// ---- [[neighbor]] ----

#[test]
fn neighbor_rules() {
    let t = with_base(
        "[[neighbor]]\nip = \"192.168.10.20\"\nmac = \"02:00:00:00:10:20\"\ndev = \"lan9\"\n",
    );
    expect(
        &t,
        "dev = \"lan9\"",
        "neighbor[0].dev",
        "unknown interface \"lan9\"",
    );
    let t = with_base(
        "[[neighbor]]\nip = \"192.168.10.300\"\nmac = \"02:00:00:00:10:20\"\ndev = \"lan\"\n",
    );
    expect(
        &t,
        "ip =",
        "neighbor[0].ip",
        "invalid IP address \"192.168.10.300\"",
    );
    let t =
        with_base("[[neighbor]]\nip = \"ff02::1\"\nmac = \"02:00:00:00:10:20\"\ndev = \"lan\"\n");
    expect(&t, "ip =", "neighbor[0].ip", "multicast");
    let t = with_base(
        "[[neighbor]]\nip = \"192.168.10.20\"\nmac = \"ff:ff:ff:ff:ff:ff\"\ndev = \"lan\"\n",
    );
    expect(&t, "mac =", "neighbor[0].mac", "multicast");
    let t = with_base(
        "[[neighbor]]\nip = \"192.168.10.1\"\nmac = \"02:00:00:00:10:20\"\ndev = \"lan\"\n",
    );
    expect(
        &t,
        "ip =",
        "neighbor[0].ip",
        "192.168.10.1 is this router's own address (interface \"lan\")",
    );
    let t = with_base(
        "[[neighbor]]\nip = \"192.168.10.20\"\nmac = \"02:00:00:00:10:20\"\ndev = \"lan\"\n\n[[neighbor]]\nip = \"192.168.10.20\"\nmac = \"02:00:00:00:10:21\"\ndev = \"lan\"\n",
    );
    let e = errors(&t);
    assert_eq!(e.len(), 1);
    assert_eq!(
        e[0].to_string(),
        "x.toml:18: neighbor[1].ip: duplicate neighbor 192.168.10.20 on \"lan\" (first defined at line 12)"
    );
    // Any family, any interface.
    valid(&with_base(
        "[[neighbor]]\nip = \"2001:db8:1::9\"\nmac = \"02:00:00:00:10:20\"\ndev = \"wan\"\n",
    ));
}

#[test]
fn neighbor_required_keys() {
    let t = with_base("[[neighbor]]\nmac = \"02:00:00:00:10:20\"\n");
    let e = errors(&t);
    assert_eq!(e.len(), 2, "{}", config::render_errors(&e));
    assert_eq!((e[0].line, e[0].field.as_str()), (12, "neighbor[0].ip"));
    assert_eq!((e[1].line, e[1].field.as_str()), (12, "neighbor[0].dev"));
}

// ---- [dataplane] ----

#[test]
fn dataplane_rules() {
    expect(
        "[dataplane]\nworkers = 0\n",
        "workers",
        "dataplane.workers",
        "must be between 1 and 1024, got 0",
    );
    expect(
        "[dataplane]\nflows = 1023\n",
        "flows",
        "dataplane.flows",
        "must be between 1024 and 67108864, got 1023",
    );
    expect(
        "[dataplane]\nflows = 67108865\n",
        "flows",
        "dataplane.flows",
        "got 67108865",
    );
    expect(
        "[dataplane]\nqueues = -1\n",
        "queues",
        "dataplane.queues",
        "must be between 0 and 1024",
    );
    expect(
        "[dataplane]\nxdp_mode = \"natve\"\n",
        "xdp_mode",
        "dataplane.xdp_mode",
        "invalid value \"natve\": expected one of native, skb, auto (did you mean \"native\"?)",
    );
    expect(
        "[dataplane]\nbind = \"zero-copy\"\n",
        "bind",
        "dataplane.bind",
        "expected one of copy, zerocopy, auto",
    );
    valid("[dataplane]\nflows = 1024\nworkers = 1\n");
    valid("[dataplane]\nflows = 67108864\nxdp_mode = \"skb\"\nbind = \"copy\"\n");
}

// ---- [firewall], [timeouts], [control] ----

#[test]
fn firewall_rules_and_rules_file_exclusive() {
    let existing = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let t = format!("[firewall]\nrules = \"*filter\\nCOMMIT\\n\"\nrules_file = \"{existing}\"\n");
    expect(
        &t,
        "rules_file",
        "firewall.rules_file",
        "`rules` and `rules_file` are mutually exclusive",
    );
    let t = "[firewall]\nrules = 5\n";
    expect(
        t,
        "rules",
        "firewall.rules",
        "expected a string, found integer",
    );
    let t = "[firewall]\nrules_file = \"\"\n";
    expect(t, "rules_file", "firewall.rules_file", "must not be empty");
}

#[test]
fn timeouts_rules() {
    expect(
        "[timeouts]\nudp = 0\n",
        "udp",
        "timeouts.udp",
        "must be between 1 and 4294967295, got 0",
    );
    expect("[timeouts]\nicmp = -5\n", "icmp", "timeouts.icmp", "got -5");
    expect(
        "[timeouts]\ntcp_close = \"10\"\n",
        "tcp_close",
        "timeouts.tcp_close",
        "expected an integer, found string",
    );
    expect(
        "[timeouts]\ntcp_max_retrans = 10\n",
        "tcp_max_retrans",
        "timeouts.tcp_max_retrans",
        "unknown key",
    );
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

#[test]
fn control_rules() {
    expect(
        "[control]\nmetrics = \"localhost:9482\"\n",
        "metrics",
        "control.metrics",
        "invalid listen address \"localhost:9482\"",
    );
    expect(
        "[control]\nmetrics = \"127.0.0.1\"\n",
        "metrics",
        "control.metrics",
        "expected IP:PORT",
    );
    expect(
        "[control]\nsocket = \"\"\n",
        "socket",
        "control.socket",
        "must not be empty",
    );
    valid("[control]\nmetrics = \"[::1]:9100\"\nsocket = \"xgate.sock\"\n");
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
