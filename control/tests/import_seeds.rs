//! `import-iptables` on the rule lines of the seed documents
//! (../shared/seeds): import -> TOML -> config parse -> the same ruleset.

use xgate_control::import::{import, to_toml};
use xgate_control::iptables;

/// Interfaces named like the seeds' devices, so the config validates.
const IFACES: &str = r#"
[[interface]]
name = "eth0"
device = "eth0"
mac = "02:00:00:00:00:01"
address = ["2.2.2.2/24"]

[[interface]]
name = "eth1"
device = "eth1"
mac = "02:00:00:00:00:02"
address = ["192.168.0.2/24"]

[[interface]]
name = "br0"
device = "eth2"
mac = "02:00:00:00:00:03"
address = ["10.16.0.1/24"]
"#;

/// Seed 001: the port-forwarding proxy's lines, verbatim, in their table.
const SEED_001: &str = "\
*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
# DNAT(LAN ➡ EX)
-A PREROUTING -i eth1 -d 192.168.0.2 -p tcp -m tcp --dport 80 -j DNAT --to-destination 3.3.3.3:80
# SNAT
-A POSTROUTING -s 1.1.1.1 -p tcp -m tcp -j SNAT --to-source 2.2.2.2
# DNAT
-A PREROUTING -i eth0 -s 3.3.3.3 -p tcp -m tcp -j DNAT --to-destination 1.1.1.1:80
# SNAT
-A POSTROUTING -s 3.3.3.3 -p tcp -m tcp -j SNAT --to-source 192.168.0.2
-A POSTROUTING -o eth0 -s 2.2.2.2 -j MASQUERADE
COMMIT
";

/// Seed 003: the ipchains / ipmasqadm setup translated to iptables
/// (forward policy DENY, MASQ of the LAN, four port forwards).
const SEED_003: &str = "\
#!/bin/bash
iptables -P FORWARD DROP
iptables -A FORWARD -m state --state ESTABLISHED,RELATED -j ACCEPT
iptables -A FORWARD -s 192.168.1.0/24 -j ACCEPT
iptables -t nat -A POSTROUTING -s 192.168.1.0/24 -j MASQUERADE
iptables -t nat -A PREROUTING -d 168.126.127.6 -p tcp --dport 23 -j DNAT --to-destination 192.168.1.11:23
iptables -t nat -A PREROUTING -d 168.126.127.6 -p tcp --dport 80 -j DNAT --to-destination 192.168.1.11:80
iptables -t nat -A PREROUTING -d 168.126.127.6 -p tcp --dport 20 -j DNAT --to-destination 192.168.1.11:20
iptables -t nat -A PREROUTING -d 168.126.127.6 -p tcp --dport 21 -j DNAT --to-destination 192.168.1.11:21
iptables -A FORWARD -d 192.168.1.11 -p tcp -m multiport --dports 20,21,23,80 -j ACCEPT
";

/// Seed 004: the red/blue commands, verbatim, in their order.
const SEED_004: &str = "\
iptables -P FORWARD DROP
iptables -N NAVY
iptables -I FORWARD 1 -j NAVY
iptables -A  NAVY -j RETURN
iptables -I NAVY 1 -s 10.16.0.0/24 -d 10.16.0.0/24 -j ACCEPT
iptables -I NAVY 2 -o br0 -j ACCEPT
iptables -t nat -A POSTROUTING -s 10.16.0.0/24 ! -o br0 -j MASQUERADE
";

fn round_trip(name: &str, text: &str) -> iptables::IptablesRuleset {
    let imp = import(text, name);
    assert!(imp.skipped.is_empty(), "{name}: {:?}", imp.skipped);
    let toml = format!("{IFACES}\n{}", to_toml(&imp, name));
    let cfg = xgate_control::parse(&toml, "imported.toml")
        .unwrap_or_else(|e| panic!("{name}: {e:?}\n{toml}"));
    let all = iptables::load_all(cfg.firewall.as_ref().unwrap(), &cfg.source).unwrap();
    // The seeds are IPv4 rulesets: rules_v4, and IPv6 gets the default.
    assert_eq!(all.sets[0].key, "rules_v4", "{name}");
    let back = all.sets[0].ruleset.clone();
    let direct = iptables::parse(text, name, 1).unwrap();
    assert_eq!(back.to_string(), direct.to_string(), "{name}");
    assert_eq!(
        back.to_string(),
        imp.v4.as_ref().unwrap().to_string(),
        "{name}"
    );
    // And it compiles for the dataplane.
    xgate_control::replay::compile_for_replay(&cfg).unwrap_or_else(|e| panic!("{name}: {e}"));
    back
}

#[test]
fn seed_rules_round_trip_through_the_config() {
    let rs = round_trip("001", SEED_001);
    assert_eq!(
        rs.table(iptables::TableKind::Nat).unwrap().chains[0]
            .rules
            .len(),
        2
    );
    let rs = round_trip("003", SEED_003);
    assert_eq!(rs.tables.len(), 2);
    let rs = round_trip("004", SEED_004);
    let navy = rs
        .table(iptables::TableKind::Filter)
        .unwrap()
        .chain("NAVY")
        .unwrap();
    let rules: Vec<String> = navy.rules.iter().map(|r| r.to_string()).collect();
    assert_eq!(
        rules,
        vec![
            "-s 10.16.0.0/24 -d 10.16.0.0/24 -j ACCEPT",
            "-o br0 -j ACCEPT",
            "-j RETURN"
        ]
    );
}

#[test]
fn the_original_ipmasqadm_script_is_named_line_by_line() {
    // Seed 003 as written: ipchains and ipmasqadm are not iptables.
    let script = "\
#!/bin/bash
echo \"1\" > /proc/sys/net/ipv4/ip_forward
/sbin/ipchains -P forward DENY
/sbin/ipchains -A forward -s 192.168.1.0/24 -j MASQ
/usr/sbin/ipmasqadm portfw -a -P tcp -L 168.126.127.6 23 -R 192.168.1.11 23
";
    let imp = import(script, "20ipchain");
    let lines: Vec<usize> = imp.skipped.iter().map(|s| s.line).collect();
    assert_eq!(lines, vec![3, 4, 5], "{:?}", imp.skipped);
    assert!(imp.skipped[2].text.contains("ipmasqadm portfw"));
    assert_eq!(
        imp.skipped[0].reason,
        "`/sbin/ipchains` is not an iptables command"
    );
    // Turning forwarding on is system set-up, not a rule: named, not refused.
    assert_eq!(imp.ignored.len(), 1);
    assert_eq!(imp.ignored[0].line, 2);
}
