//! Parsing tests: the CONFIG.md example, defaults, every section's keys,
//! `[firewall]` text lines, `rules_file`, TOML syntax errors, unknown keys.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use xgate_control::config::{
    self, BindMode, Config, ConfigError, DEFAULT_FLOWS, RouteType, TABLE_MAIN, XdpMode,
};

/// The example of shared/CONFIG.md, verbatim (line 1 is `[dataplane]`).
const CONTRACT_EXAMPLE: &str = r##"[dataplane]
workers   = 2            # default: one per online core
xdp_mode  = "auto"       # native | skb | auto
bind      = "auto"       # copy | zerocopy | auto
queues    = 0            # 0 = one per worker
flows     = 1048576      # conntrack capacity (entries), bounded memory

[[interface]]            # a logical interface: routes and rules name it
name    = "wan"          # used by -i / -o, `dev`, stats; may equal the device
device  = "eth0"         # kernel netdev that AF_XDP binds to
mac     = "02:00:00:00:00:01"   # optional; default: the device's MAC
address = ["203.0.113.2/24", "2001:db8:1::2/64"]
mtu     = 1500           # optional

[[interface]]
name    = "lan10"
device  = "eth1"
vlan    = 10             # 802.1Q sub-interface; vlan = [100, 10] is QinQ (outer, inner)
address = ["192.168.10.1/24"]

[[route]]                # like `ip route add`
to     = "0.0.0.0/0"     # prefix, v4 or v6
via    = "203.0.113.1"   # optional for connected routes
dev    = "wan"           # optional when `via` is on a connected subnet
metric = 100             # lower wins between equal prefixes
table  = "main"          # or a number; default main
type   = "unicast"       # unicast | blackhole | unreachable | prohibit
# nexthops = [{ via = "...", weight = 1 }, ...]   # ECMP

[[rule]]                 # like `ip rule add`
priority = 100
from     = "10.0.1.0/24" # optional
iif      = "lan"         # optional
fwmark   = 1             # optional (set by -j MARK in the mangle table)
table    = 100

[[neighbor]]             # static ARP / NDP entry
ip  = "192.168.10.20"
mac = "02:00:00:00:10:20"
dev = "lan10"

[firewall]               # iptables-save syntax: *filter, *nat, *mangle tables
rules = """
*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -i wan -p tcp --dport 8080 -j DNAT --to-destination 192.168.10.20:80
-A POSTROUTING -o wan -s 192.168.0.0/16 -j MASQUERADE
COMMIT
*filter
:FORWARD DROP [0:0]
-A FORWARD -m state --state ESTABLISHED,RELATED -j ACCEPT
-A FORWARD -i lan10 -o wan -j ACCEPT
-A FORWARD -i wan -o lan10 -p tcp -d 192.168.10.20 --dport 80 -j ACCEPT
COMMIT
"""
# rules_file = "rules.v4"    # alternative: a saved ruleset beside the config

[timeouts]               # seconds; defaults follow Linux nf_conntrack
# tcp_established = 432000, tcp_syn_sent = 120, tcp_time_wait = 120,
# udp = 30, udp_stream = 120, icmp = 30, ...

[control]
socket  = "/run/xgate/xgate.sock"   # xgate ctl; mode 0600
metrics = "127.0.0.1:9482"          # Prometheus text format; "" disables
"##;

/// The contract example with its one dangling reference fixed: its rule says
/// `iif = "lan"` but the example defines no interface `lan` (only `lan10`).
fn example() -> String {
    CONTRACT_EXAMPLE.replace(r#"iif      = "lan" "#, r#"iif      = "lan10" "#)
}

fn ok(text: &str) -> Config {
    match config::parse(text, "x.toml") {
        Ok(c) => c,
        Err(errs) => panic!("unexpected errors:\n{}", config::render_errors(&errs)),
    }
}

fn errs(text: &str) -> Vec<ConfigError> {
    match config::parse(text, "x.toml") {
        Ok(_) => panic!("expected errors, config parsed"),
        Err(e) => e,
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A fresh scratch directory under the system temp dir.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xgate-config-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn contract_example_only_error_is_its_dangling_iif() {
    let e = errs(CONTRACT_EXAMPLE);
    assert_eq!(e.len(), 1, "{}", config::render_errors(&e));
    assert_eq!(
        e[0].to_string(),
        r#"x.toml:33: rule[0].iif: unknown interface "lan" (defined: wan, lan10)"#
    );
}

#[test]
fn contract_example_parses() {
    let c = ok(&example());
    assert_eq!(c.source, "x.toml");

    assert_eq!(c.dataplane.workers, Some(2));
    assert_eq!(c.dataplane.xdp_mode, XdpMode::Auto);
    assert_eq!(c.dataplane.bind, BindMode::Auto);
    assert_eq!(c.dataplane.queues, 0);
    assert_eq!(c.dataplane.flows, 1_048_576);

    assert_eq!(c.interfaces.len(), 2);
    let wan = &c.interfaces[0];
    assert_eq!((wan.name.as_str(), wan.device.as_str()), ("wan", "eth0"));
    assert_eq!(wan.mac, Some([2, 0, 0, 0, 0, 1]));
    assert!(wan.vlan.is_empty());
    let addrs: Vec<String> = wan.addresses.iter().map(ToString::to_string).collect();
    assert_eq!(addrs, ["203.0.113.2/24", "2001:db8:1::2/64"]);
    assert_eq!(wan.mtu, 1500);
    assert_eq!(wan.line, 8);
    let lan = &c.interfaces[1];
    assert_eq!(lan.vlan, [10]);
    assert_eq!(lan.mac, None);
    assert_eq!(lan.addresses[0].to_string(), "192.168.10.1/24");
    assert_eq!(lan.line, 15);

    assert_eq!(c.routes.len(), 1);
    let r = &c.routes[0];
    assert_eq!(r.to.to_string(), "0.0.0.0/0");
    assert_eq!(r.via, Some(ip("203.0.113.1")));
    assert_eq!(r.dev.as_deref(), Some("wan"));
    assert_eq!(
        (r.metric, r.table, r.rtype),
        (100, TABLE_MAIN, RouteType::Unicast)
    );
    assert!(r.nexthops.is_empty());
    assert_eq!(r.line, 21);

    let rule = &c.rules[0];
    assert_eq!(rule.priority, 100);
    assert_eq!(rule.from.unwrap().to_string(), "10.0.1.0/24");
    assert_eq!(rule.to, None);
    assert_eq!(rule.iif.as_deref(), Some("lan10"));
    assert_eq!(rule.fwmark, Some((1, u32::MAX)));
    assert_eq!(rule.table, 100);
    assert_eq!(rule.line, 30);

    let n = &c.neighbors[0];
    assert_eq!(n.ip, ip("192.168.10.20"));
    assert_eq!(n.mac, [2, 0, 0, 0, 0x10, 0x20]);
    assert_eq!((n.dev.as_str(), n.line), ("lan10", 37));

    let fw = c.firewall.as_ref().unwrap();
    assert_eq!(fw.line, 42);
    let rules = fw.rules.as_deref().unwrap();
    assert!(rules.starts_with("*nat\n:PREROUTING ACCEPT [0:0]\n"));
    assert_eq!(rules.lines().count(), 12);
    // The first rule line (`*nat`) is line 44 of the file.
    assert_eq!(fw.rules_line, 44);
    let masq = rules
        .lines()
        .position(|l| l.contains("MASQUERADE"))
        .unwrap();
    assert_eq!(fw.rules_line + masq, 48);
    assert_eq!(fw.rules_file, None);

    assert!(c.timeouts.is_empty());
    assert_eq!(c.control.socket, "/run/xgate/xgate.sock");
    assert_eq!(c.control.metrics, "127.0.0.1:9482");

    // Helpers the compiler uses.
    assert_eq!(c.interface("lan10").unwrap().device, "eth1");
    assert_eq!(c.connected_dev(ip("203.0.113.1")).unwrap().name, "wan");
    assert_eq!(c.connected_dev(ip("192.168.10.77")).unwrap().name, "lan10");
    assert!(c.connected_dev(ip("10.9.9.9")).is_none());
    assert_eq!(c.gateway_dev(ip("2001:db8:1::1")).unwrap().name, "wan");
    assert_eq!(c.owner_of(ip("192.168.10.1")).unwrap().name, "lan10");
    assert_eq!(c.timeout("tcp_established"), Some(432_000));
    assert_eq!(c.timeout("nope"), None);

    let summary = config::check_summary(&c);
    assert!(
        summary.starts_with("x.toml: OK: 2 interfaces, 1 route, 1 rule, 1 neighbor;"),
        "{summary}"
    );
    assert!(
        summary.contains("inline firewall rules for IPv4 and IPv6 (12 lines)"),
        "{summary}"
    );
}

#[test]
fn empty_config_gets_defaults() {
    let c = ok("");
    assert_eq!(c.dataplane.workers, None);
    assert_eq!(c.dataplane.xdp_mode, XdpMode::Auto);
    assert_eq!(c.dataplane.bind, BindMode::Auto);
    assert_eq!(c.dataplane.queues, 0);
    assert_eq!(c.dataplane.flows, DEFAULT_FLOWS);
    assert!(c.interfaces.is_empty() && c.routes.is_empty() && c.rules.is_empty());
    assert!(c.neighbors.is_empty() && c.timeouts.is_empty());
    assert_eq!(c.firewall, None);
    assert_eq!(c.control.socket, "/run/xgate/xgate.sock");
    assert_eq!(c.control.metrics, "127.0.0.1:9482");
    assert_eq!(c.timeout("udp"), Some(30));
    let s = config::check_summary(&c);
    assert!(
        s.contains("0 interfaces, 0 routes, 0 rules, 0 neighbors"),
        "{s}"
    );
    assert!(s.contains("one worker per core"), "{s}");
}

const EVERY_KEY: &str = r#"
[dataplane]
xdp_mode = "native"
bind = "zerocopy"
queues = 4
flows = 0x10000

[[interface]]
name = "up"
device = "eth0"
address = "198.51.100.2/30"
mtu = 9000

[[interface]]
name = "q"
device = "eth1"
vlan = [100, 10]
address = ["10.0.0.1/24", "fd00::1/64", "fe80::1/64"]
mtu = 1280

[[route]]
to = "10.1.0.0/16"
nexthops = [
  { via = "10.0.0.2", dev = "q", weight = 3 },
  { via = "10.0.0.3" },
]

[[route]]
to = "2001:db8::/32"
via = "fe80::2"
dev = "q"
table = 100
metric = 5

[[route]]
to = "192.0.2.0/24"
type = "blackhole"
table = "local"

[[route]]
to = "203.0.113.7"
dev = "up"

[[route]]
to = "0.0.0.0/0"
via = "203.0.113.7"

[[route]]
to = "172.16.0.0/12"
type = "prohibit"
table = "42"

[[route]]
to = "::/0"
type = "unreachable"
table = 4294967295

[[rule]]
priority = 10
to = "2001:db8::/32"
fwmark = "0x10/0xff"
table = "default"

[[rule]]
priority = 32767
from = "10.0.0.0/8"
to = "192.0.2.1"

[[neighbor]]
ip = "fd00::20"
mac = "02:AA:bb:cc:dd:ee"
dev = "q"

[timeouts]
udp = 60
tcp_established = 7200

[control]
socket = "/tmp/x.sock"
metrics = ""
"#;

#[test]
fn every_key_parses() {
    let c = ok(EVERY_KEY);
    assert_eq!(c.dataplane.xdp_mode, XdpMode::Native);
    assert_eq!(c.dataplane.bind, BindMode::ZeroCopy);
    assert_eq!((c.dataplane.queues, c.dataplane.flows), (4, 65536));
    assert_eq!(c.interfaces[0].addresses.len(), 1);
    assert_eq!(c.interfaces[0].mtu, 9000);
    assert_eq!(c.interfaces[1].vlan, [100, 10]);
    assert_eq!(c.interfaces[1].mtu, 1280);

    let r = &c.routes[0];
    assert_eq!(r.nexthops.len(), 2);
    assert_eq!(r.nexthops[0].via, ip("10.0.0.2"));
    assert_eq!(r.nexthops[0].dev.as_deref(), Some("q"));
    assert_eq!(r.nexthops[0].weight, 3);
    assert_eq!(r.nexthops[1].dev, None);
    assert_eq!(r.nexthops[1].weight, 1);
    assert_eq!((c.routes[1].table, c.routes[1].metric), (100, 5));
    assert_eq!(c.routes[2].rtype, RouteType::Blackhole);
    assert_eq!(c.routes[2].table, 255);
    assert_eq!(c.routes[3].to.to_string(), "203.0.113.7/32");
    assert!(c.routes[3].is_link_route());
    // A gateway reached through the `dev`-only host route above.
    assert_eq!(c.gateway_dev(ip("203.0.113.7")).unwrap().name, "up");
    assert_eq!(
        (c.routes[5].rtype, c.routes[5].table),
        (RouteType::Prohibit, 42)
    );
    assert_eq!(
        (c.routes[6].rtype, c.routes[6].table),
        (RouteType::Unreachable, u32::MAX)
    );

    assert_eq!(c.rules[0].fwmark, Some((0x10, 0xff)));
    assert_eq!(c.rules[0].table, 253);
    assert_eq!(c.rules[1].table, TABLE_MAIN);
    assert_eq!(c.rules[1].to.unwrap().to_string(), "192.0.2.1/32");

    assert_eq!(c.neighbors[0].mac, [2, 0xaa, 0xbb, 0xcc, 0xdd, 0xee]);
    // Timeouts keep file order and the line of each key.
    assert_eq!(
        c.timeouts,
        vec![
            ("udp".to_owned(), 60, 75),
            ("tcp_established".to_owned(), 7200, 76)
        ]
    );
    assert_eq!(c.timeout("udp"), Some(60));
    assert_eq!(c.timeout("icmp"), Some(30));
    assert_eq!(c.control.socket, "/tmp/x.sock");
    assert_eq!(c.control.metrics, "");
    assert!(config::check_summary(&c).contains("metrics disabled"));
}

#[test]
fn nexthops_as_array_of_tables() {
    let c = ok(r#"
[[interface]]
name = "a"
device = "eth0"
address = ["10.0.0.1/24"]

[[route]]
to = "0.0.0.0/0"

[[route.nexthops]]
via = "10.0.0.2"
weight = 2

[[route.nexthops]]
via = "10.0.0.3"
"#);
    let hops = &c.routes[0].nexthops;
    assert_eq!(hops.len(), 2);
    assert_eq!((hops[0].via, hops[0].weight), (ip("10.0.0.2"), 2));
}

#[test]
fn firewall_rules_line_variants() {
    // Text on the same line as the opening quotes starts on that line.
    let c = ok("\n[firewall]\nrules = \"\"\"*filter\nCOMMIT\n\"\"\"\n");
    let fw = c.firewall.unwrap();
    assert_eq!((fw.line, fw.rules_line), (2, 3));
    // A literal multi-line string, CRLF line ends.
    let c = ok("[firewall]\r\n\r\nrules = '''\r\n*filter\r\nCOMMIT\r\n'''\r\n");
    let fw = c.firewall.unwrap();
    assert_eq!(fw.rules_line, 4);
    assert!(fw.rules.unwrap().starts_with("*filter"));
    // A one-line string.
    let c = ok("[firewall]\nrules = \"*filter\\nCOMMIT\\n\"\n");
    assert_eq!(c.firewall.unwrap().rules_line, 2);
    // An empty section is kept.
    let c = ok("[firewall]\n");
    assert_eq!(
        c.firewall.map(|f| (f.rules, f.rules_file, f.line)),
        Some((None, None, 1))
    );
}

#[test]
fn rules_file_resolves_beside_the_config() {
    let dir = scratch("rules-file");
    std::fs::write(dir.join("rules.v4"), "*filter\nCOMMIT\n").unwrap();
    let cfg_path = dir.join("gw.toml");
    std::fs::write(&cfg_path, "[firewall]\nrules_file = \"rules.v4\"\n").unwrap();
    let c = config::load(&cfg_path).unwrap();
    assert_eq!(c.source, cfg_path.display().to_string());
    assert!(config::check_summary(&c).contains("rules.v4"));
    let fw = c.firewall.unwrap();
    assert_eq!(
        fw.rules_file.as_deref(),
        Some(dir.join("rules.v4").as_path())
    );
    assert_eq!(fw.rules, None);

    // Missing file: error with the line, naming the resolved path.
    std::fs::write(&cfg_path, "[firewall]\n\nrules_file = \"nope.v4\"\n").unwrap();
    let e = config::load(&cfg_path).unwrap_err();
    assert_eq!(e.len(), 1);
    assert_eq!((e[0].line, e[0].field.as_str()), (3, "firewall.rules_file"));
    assert!(e[0].message.contains("file not found"), "{}", e[0]);
    assert!(e[0].message.contains("nope.v4"), "{}", e[0]);
    assert!(e[0].file.ends_with("gw.toml"));

    // A directory is not a rules file.
    std::fs::write(&cfg_path, "[firewall]\nrules_file = \".\"\n").unwrap();
    let e = config::load(&cfg_path).unwrap_err();
    assert!(e[0].message.contains("not a file"), "{}", e[0]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn load_reports_unreadable_files() {
    let e = config::load(Path::new("/nonexistent/xgate.toml")).unwrap_err();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].file, "/nonexistent/xgate.toml");
    assert_eq!((e[0].line, e[0].field.as_str()), (1, "file"));
    assert!(e[0].message.starts_with("cannot read"), "{}", e[0]);

    let dir = scratch("utf8");
    let p = dir.join("bad.toml");
    std::fs::write(&p, b"[dataplane]\nworkers = 2\n# \xff\xfe\n").unwrap();
    let e = config::load(&p).unwrap_err();
    assert_eq!((e[0].line, e[0].message.as_str()), (3, "not valid UTF-8"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn syntax_errors_name_the_line() {
    let e = errs("[dataplane]\nworkers = 2\nflows = \n");
    assert_eq!((e[0].line, e[0].field.as_str()), (3, "toml"));
    assert!(
        e[0].to_string()
            .starts_with("x.toml:3: toml: syntax error: "),
        "{}",
        e[0]
    );

    let e = errs("[[interface]]\nname = \"wan\"\n\n[route\nto = 1\n");
    assert_eq!(e[0].line, 4, "{}", config::render_errors(&e));

    // Duplicate keys are TOML errors too.
    let e = errs("[control]\nsocket = \"/a\"\nsocket = \"/b\"\n");
    assert_eq!(e[0].line, 3, "{}", config::render_errors(&e));
    assert!(e.iter().all(|e| !e.message.contains('\n')));
}

#[test]
fn unknown_keys_and_sections_are_rejected_with_line() {
    let e = errs("[[interface]]\nname = \"wan\"\ndevice = \"eth0\"\nadress = [\"10.0.0.1/24\"]\n");
    assert_eq!(e.len(), 1);
    assert_eq!(
        e[0].to_string(),
        r#"x.toml:4: interface[0].adress: unknown key (did you mean "address"?)"#
    );

    let e = errs("\n[dataplane]\nworkers = 1\n\n[nat]\nfoo = 1\n");
    assert_eq!(e.len(), 1);
    assert_eq!((e[0].line, e[0].field.as_str()), (5, "nat"));
    assert!(
        e[0].message
            .starts_with("unknown key (expected one of: dataplane,"),
        "{}",
        e[0]
    );

    let e = errs("[[neighbour]]\nip = \"10.0.0.1\"\n");
    assert_eq!((e[0].line, e[0].field.as_str()), (1, "neighbour"));
    assert!(
        e[0].message.contains(r#"did you mean "neighbor"?"#),
        "{}",
        e[0]
    );

    let e = errs("[timeouts]\nudp = 10\ntcp_estabished = 5\n");
    assert_eq!(
        (e[0].line, e[0].field.as_str()),
        (3, "timeouts.tcp_estabished")
    );
    assert!(
        e[0].message.contains(r#"did you mean "tcp_established"?"#),
        "{}",
        e[0]
    );

    let e = errs("[control]\nsockett = \"/x\"\n");
    assert_eq!((e[0].line, e[0].field.as_str()), (2, "control.sockett"));

    // A dotted key inside a table is an unknown key of that table.
    let e = errs("[dataplane]\nflows.max = 5\n");
    assert_eq!((e[0].line, e[0].field.as_str()), (2, "dataplane.flows"));

    // An unknown key in an inline next hop.
    let e = errs(
        "[[interface]]\nname=\"a\"\ndevice=\"e\"\naddress=[\"10.0.0.1/24\"]\n[[route]]\nto=\"0.0.0.0/0\"\nnexthops=[{via=\"10.0.0.2\", wieght=2}]\n",
    );
    assert_eq!(e.len(), 1, "{}", config::render_errors(&e));
    assert_eq!(
        (e[0].line, e[0].field.as_str()),
        (7, "route[0].nexthops[0].wieght")
    );
}

#[test]
fn wrong_shapes_are_type_errors() {
    let e = errs("[interface]\nname = \"x\"\n");
    assert_eq!((e[0].line, e[0].field.as_str()), (1, "interface"));
    assert!(
        e[0].message
            .contains("expected an array of tables ([[interface]])"),
        "{}",
        e[0]
    );

    let e = errs("dataplane = 3\n");
    assert_eq!(e[0].field, "dataplane");
    assert!(e[0].message.contains("found integer"), "{}", e[0]);

    let e = errs("[dataplane]\nworkers = \"2\"\nflows = 1.5\n");
    assert_eq!(e.len(), 2);
    assert_eq!(
        e[0].to_string(),
        "x.toml:2: dataplane.workers: expected an integer, found string"
    );
    assert_eq!(
        e[1].to_string(),
        "x.toml:3: dataplane.flows: expected an integer, found float"
    );

    let e = errs("interface = [1]\n");
    assert_eq!(e[0].field, "interface[0]");

    let e = errs("[dataplane]\nworkers = -1\n");
    assert_eq!(
        e[0].to_string(),
        "x.toml:2: dataplane.workers: must be between 1 and 1024, got -1"
    );
}

#[test]
fn docs_example_parses() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/config.md"))
        .expect("docs/config.md");
    let section = doc
        .split("## A complete example")
        .nth(1)
        .expect("docs/config.md has a complete example");
    let block = section
        .split("```toml\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a toml block");
    let c = ok(block);
    assert_eq!(c.interfaces.len(), 2);
    assert_eq!(c.routes[1].nexthops.len(), 2);
    assert_eq!(c.timeout("udp"), Some(60));
}
