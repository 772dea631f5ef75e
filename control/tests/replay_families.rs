//! Per-family rulesets (`rules_v4` / `rules_v6`, as iptables and
//! ip6tables keep them): each family's policies and chains govern only
//! that family's packets, and a family without rules is dropped in INPUT
//! and FORWARD rather than governed by the other family's rules.

mod common;
use common::*;

const GL: &str = "02:00:00:00:00:02"; // xgate on lan
const HOST: &str = "02:aa:00:00:00:05"; // a LAN host

/// Dual-stack gateway: wan 203.0.113.2/24 + 2001:db8:1::2/64, lan
/// 172.16.0.1/24 + 2001:db8:2::1/64, default routes of both families,
/// static neighbours; `firewall` is the `[firewall]` section's body.
fn dual(firewall: &str) -> String {
    format!(
        r#"
[[interface]]
name = "wan"
device = "eth0"
mac = "02:00:00:00:00:01"
address = ["203.0.113.2/24", "2001:db8:1::2/64"]

[[interface]]
name = "lan"
device = "eth1"
mac = "02:00:00:00:00:02"
address = ["172.16.0.1/24", "2001:db8:2::1/64"]

[[route]]
to = "0.0.0.0/0"
via = "203.0.113.1"

[[route]]
to = "::/0"
via = "2001:db8:1::1"

[[neighbor]]
ip = "203.0.113.1"
mac = "02:bb:00:00:00:01"
dev = "wan"

[[neighbor]]
ip = "2001:db8:1::1"
mac = "02:bb:00:00:00:01"
dev = "wan"

[[neighbor]]
ip = "172.16.0.5"
mac = "02:aa:00:00:00:05"
dev = "lan"

[[neighbor]]
ip = "2001:db8:2::5"
mac = "02:aa:00:00:00:05"
dev = "lan"

[firewall]
{firewall}
"#
    )
}

/// One UDP datagram of each family from the LAN host to the internet:
/// (IPv4 forwarded, IPv6 forwarded).
fn forwards(name: &str, config: &str) -> (bool, bool) {
    let o = run(
        name,
        config,
        &[(
            "lan",
            vec![
                (
                    0.0,
                    udp4(
                        mac(HOST),
                        mac(GL),
                        &[],
                        "172.16.0.5",
                        "198.51.100.7",
                        64,
                        1000,
                        53,
                        b"v4",
                    ),
                ),
                (
                    0.1,
                    udp6(
                        mac(HOST),
                        mac(GL),
                        "2001:db8:2::5",
                        "2001:db8:99::7",
                        64,
                        1000,
                        53,
                        b"v6",
                    ),
                ),
            ],
        )],
    );
    let wan = o.out.get("wan").cloned().unwrap_or_default();
    let ethertypes: Vec<u16> = wan.iter().map(|(_, f)| l2(f).1).collect();
    (ethertypes.contains(&0x0800), ethertypes.contains(&0x86dd))
}

fn policies(v4: &str, v6: &str) -> String {
    dual(&format!(
        "rules_v4 = \"\"\"\n*filter\n:FORWARD {v4} [0:0]\nCOMMIT\n\"\"\"\n\
         rules_v6 = \"\"\"\n*filter\n:FORWARD {v6} [0:0]\nCOMMIT\n\"\"\"\n"
    ))
}

#[test]
fn each_family_has_its_own_forward_policy() {
    assert_eq!(
        forwards("fam_v4_accept", &policies("ACCEPT", "DROP")),
        (true, false)
    );
    assert_eq!(
        forwards("fam_v6_accept", &policies("DROP", "ACCEPT")),
        (false, true)
    );
}

#[test]
fn only_an_ipv4_ruleset_drops_ipv6_forwarding() {
    let v4_only = dual("rules_v4 = \"\"\"\n*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n\"\"\"\n");
    assert_eq!(forwards("fam_v4_only", &v4_only), (true, false));
    let v6_only = dual("rules_v6 = \"\"\"\n*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n\"\"\"\n");
    assert_eq!(forwards("fam_v6_only", &v6_only), (false, true));
    // The inet form keeps today's meaning: one ruleset for both.
    let inet = dual("rules = \"\"\"\n*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n\"\"\"\n");
    assert_eq!(forwards("fam_inet", &inet), (true, true));
}

#[test]
fn user_chains_of_one_name_stay_apart() {
    // NAVY accepts in IPv4 and drops in IPv6; FORWARD's policies would
    // say the opposite.
    let cfg = dual(
        "rules_v4 = \"\"\"\n*filter\n:FORWARD DROP [0:0]\n:NAVY - [0:0]\n\
         -A FORWARD -j NAVY\n-A NAVY -j ACCEPT\nCOMMIT\n\"\"\"\n\
         rules_v6 = \"\"\"\n*filter\n:FORWARD ACCEPT [0:0]\n:NAVY - [0:0]\n\
         -A FORWARD -j NAVY\n-A NAVY -j DROP\nCOMMIT\n\"\"\"\n",
    );
    assert_eq!(forwards("fam_chains", &cfg), (true, false));
}

#[test]
fn the_other_familys_things_are_errors_naming_file_line_and_field() {
    let cfg = dual(
        "rules_v6 = \"\"\"\n*filter\n-A FORWARD -s 10.0.0.0/8 -j DROP\n-A FORWARD -p icmp --icmp-type echo-request -j DROP\nCOMMIT\n\"\"\"\n",
    );
    let c = xgate_control::parse(&cfg, "t.toml").unwrap();
    let errs = xgate_control::compile::compile(&c, &|_, _| None).unwrap_err();
    let text = format!("{errs:?}");
    assert_eq!(errs.len(), 2, "{text}");
    assert!(
        errs.iter().all(|e| e.field == "firewall.rules_v6"),
        "{text}"
    );
    assert!(errs[0].message.contains("IPv4 only"), "{text}");
    // (`-p icmp` alone is legal there, as in ip6tables: protocol 1.)
    assert!(errs[1].message.contains("IPv4 only"), "{text}");
    assert!(
        errs[0].line > 1 && errs[1].line == errs[0].line + 1,
        "{text}"
    );
}

#[test]
fn mixing_the_inet_form_with_a_family_form_is_refused() {
    let cfg = dual("rules = \"*filter\\nCOMMIT\\n\"\nrules_v6 = \"*filter\\nCOMMIT\\n\"\n");
    let errs = xgate_control::parse(&cfg, "t.toml").unwrap_err();
    let text = format!("{errs:?}");
    assert_eq!(errs.len(), 1, "{text}");
    assert_eq!(errs[0].field, "firewall.rules_v6", "{text}");
    assert!(
        errs[0].message.contains("cannot be combined with `rules`"),
        "{text}"
    );
}

#[test]
fn ndp_is_answered_when_ipv6_has_no_rules() {
    // The neighbour stage answers before the filter: a v4-only config
    // drops IPv6 in INPUT but still resolves the router's address.
    let v4_only = dual("rules_v4 = \"\"\"\n*filter\n:INPUT DROP [0:0]\nCOMMIT\n\"\"\"\n");
    let ns = nd(
        mac(HOST),
        [0x33, 0x33, 0xff, 0, 0, 1],
        "2001:db8:2::5",
        "ff02::1:ff00:1",
        135,
        0,
        "2001:db8:2::1",
        mac(HOST),
    );
    let o = run("fam_ndp", &v4_only, &[("lan", vec![(0.0, ns)])]);
    let lan = o.frames("lan");
    assert_eq!(lan.len(), 1, "one neighbour advertisement");
    let (_, et, off) = l2(&lan[0]);
    assert_eq!((et, lan[0][off + 40]), (0x86dd, 136));
}

#[test]
fn masquerade_of_the_ipv4_ruleset_leaves_ipv6_alone() {
    let cfg = dual(
        "rules_v4 = \"\"\"\n*nat\n-A POSTROUTING -o wan -j MASQUERADE\nCOMMIT\n\"\"\"\n\
         rules_v6 = \"\"\"\n*filter\nCOMMIT\n\"\"\"\n",
    );
    let o = run(
        "fam_nat",
        &cfg,
        &[(
            "lan",
            vec![
                (
                    0.0,
                    udp4(
                        mac(HOST),
                        mac(GL),
                        &[],
                        "172.16.0.5",
                        "198.51.100.7",
                        64,
                        1000,
                        53,
                        b"v4",
                    ),
                ),
                (
                    0.1,
                    udp6(
                        mac(HOST),
                        mac(GL),
                        "2001:db8:2::5",
                        "2001:db8:99::7",
                        64,
                        1000,
                        53,
                        b"v6",
                    ),
                ),
            ],
        )],
    );
    let wan = o.frames("wan");
    assert_eq!(wan.len(), 2);
    let (_, _, off) = l2(&wan[0]);
    assert_eq!(
        &wan[0][off + 12..off + 16],
        &ip4("203.0.113.2"),
        "masqueraded"
    );
    let (_, et, off) = l2(&wan[1]);
    assert_eq!(et, 0x86dd);
    assert_eq!(
        &wan[1][off + 8..off + 24],
        &ip6("2001:db8:2::5"),
        "untouched"
    );
}

#[test]
fn an_icmpv4_reject_in_the_ipv6_ruleset_is_an_error() {
    let cfg = dual(
        "rules_v6 = \"\"\"\n*filter\n-A INPUT -p tcp -j REJECT --reject-with icmp-port-unreachable\n\
         -A INPUT -p udp -j REJECT\nCOMMIT\n\"\"\"\n",
    );
    let c = xgate_control::parse(&cfg, "t.toml").unwrap();
    let errs = xgate_control::compile::compile(&c, &|_, _| None).unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].message.contains("IPv4 only"), "{errs:?}");
    assert_eq!(errs[0].field, "firewall.rules_v6");
    // A bare REJECT is fine: port unreachable in ICMPv6; import prints it
    // as ip6tables does.
    let imp = xgate_control::import::import("ip6tables -A INPUT -p udp -j REJECT\n", "fw.sh");
    let v6 = imp.v6.unwrap().to_string();
    assert!(v6.contains("--reject-with icmp6-port-unreachable"), "{v6}");
}
