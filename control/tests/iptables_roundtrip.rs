//! Import, then re-export: a ruleset made of valid rules (drawn from the
//! matches and targets real rulesets use) imports whole, whether written
//! as `iptables-save` output or as the `iptables` commands of a script,
//! both give the same rules, and the exported text reads back as the same
//! rules again.

use proptest::prelude::*;
use xgate_control::import;
use xgate_control::iptables::{IptablesRuleset, parse};

/// What a match needs of the rule's protocol.
#[derive(Clone, Copy, PartialEq)]
enum Needs {
    Any,
    Tcp,
    TcpOrUdp,
}

/// (exclusive group, needs, text): at most one fragment per group in a
/// rule (an option or module given twice is an error, as in iptables).
const MATCHES: &[(&str, Needs, &str)] = &[
    ("s", Needs::Any, "-s 10.1.0.0/16"),
    ("s", Needs::Any, "! -s 10.2.3.4/32"),
    ("d", Needs::Any, "-d 192.0.2.0/24"),
    ("i", Needs::Any, "-i eth1"),
    ("i", Needs::Any, "! -i eth+"),
    ("o", Needs::Any, "-o wan0"),
    // -m state and -m conntrack --ctstate in one rule are refused (one
    // state match per rule in the model).
    ("ct", Needs::Any, "-m state --state NEW"),
    (
        "ct",
        Needs::Any,
        "-m conntrack --ctstate RELATED,ESTABLISHED",
    ),
    (
        "ct",
        Needs::Any,
        "-m conntrack --ctstate DNAT --ctorigdst 203.0.113.2/32",
    ),
    (
        "ct",
        Needs::Any,
        "-m conntrack ! --ctstate INVALID --ctstatus SEEN_REPLY",
    ),
    ("mark", Needs::Any, "-m mark --mark 0x1/0xff"),
    ("mark", Needs::Any, "-m mark ! --mark 0x4"),
    ("comment", Needs::Any, "-m comment --comment \"a rule\""),
    ("length", Needs::Any, "-m length --length 0:100"),
    ("ttl", Needs::Any, "-m ttl --ttl-lt 5"),
    ("tos", Needs::Any, "-m tos --tos 0x10/0x3f"),
    ("dscp", Needs::Any, "-m dscp --dscp-class AF41"),
    ("pkttype", Needs::Any, "-m pkttype --pkt-type multicast"),
    ("mac", Needs::Any, "-m mac --mac-source 02:00:00:00:00:01"),
    (
        "iprange",
        Needs::Any,
        "-m iprange --src-range 10.0.0.1-10.0.0.9",
    ),
    ("addrtype", Needs::Any, "-m addrtype --dst-type LOCAL"),
    ("addrtype", Needs::Any, "-m addrtype ! --src-type BROADCAST"),
    (
        "limit",
        Needs::Any,
        "-m limit --limit 5/sec --limit-burst 10",
    ),
    (
        "statistic",
        Needs::Any,
        "-m statistic --mode nth --every 3 --packet 1",
    ),
    (
        "statistic",
        Needs::Any,
        "-m statistic --mode random --probability 0.25",
    ),
    ("connmark", Needs::Any, "-m connmark --mark 0x2/0xf"),
    ("set", Needs::Any, "-m set --match-set banned src"),
    ("set", Needs::Any, "-m set ! --match-set admins dst"),
    (
        "recent",
        Needs::Any,
        "-m recent --rcheck --seconds 60 --hitcount 3 --name r1 --rsource",
    ),
    (
        "hashlimit",
        Needs::Any,
        "-m hashlimit --hashlimit-upto 10/min --hashlimit-burst 5 --hashlimit-mode srcip --hashlimit-name h1",
    ),
    (
        "connlimit",
        Needs::Any,
        "-m connlimit --connlimit-above 3 --connlimit-mask 32 --connlimit-saddr",
    ),
    ("nfacct", Needs::Any, "-m nfacct --nfacct-name acct_1"),
    ("port", Needs::TcpOrUdp, "--dport 53"),
    ("port", Needs::TcpOrUdp, "--sport 1024:65535"),
    ("port", Needs::TcpOrUdp, "--dport ssh"),
    (
        "multiport",
        Needs::TcpOrUdp,
        "-m multiport --dports 80,443,8000:8080",
    ),
    ("flags", Needs::Tcp, "--tcp-flags SYN,RST,ACK SYN"),
    ("flags", Needs::Tcp, "! --syn"),
];

/// Filter targets (`-j`/`-g` and options), with what they need.
const TARGETS: &[(Needs, &str)] = &[
    (Needs::Any, "-j ACCEPT"),
    (Needs::Any, "-j DROP"),
    (Needs::Any, "-j RETURN"),
    (Needs::Any, "-j REJECT --reject-with icmp-host-prohibited"),
    (Needs::Tcp, "-j REJECT --reject-with tcp-reset"),
    (Needs::Any, "-j LOG --log-prefix \"fw: \" --log-level 6"),
    (
        Needs::Any,
        "-j NFLOG --nflog-prefix \"nf: \" --nflog-group 3",
    ),
    (Needs::Any, "-j MARK --set-xmark 0x1/0xff"),
    (
        Needs::Any,
        "-j CONNMARK --save-mark --nfmask 0xff --ctmask 0xff",
    ),
    (Needs::Any, "-j USER"),
    (Needs::Any, "-g USER"),
    (Needs::Tcp, "-j TCPMSS --clamp-mss-to-pmtu"),
    (Needs::Any, ""),
];

/// nat targets for PREROUTING (`true`) and POSTROUTING.
const NAT_TARGETS: &[(bool, Needs, &str)] = &[
    (
        true,
        Needs::TcpOrUdp,
        "-j DNAT --to-destination 10.0.0.2:8080",
    ),
    (
        true,
        Needs::Any,
        "-j DNAT --to-destination 10.0.0.2-10.0.0.4",
    ),
    (true, Needs::TcpOrUdp, "-j REDIRECT --to-ports 3128"),
    (false, Needs::Any, "-j MASQUERADE"),
    (
        false,
        Needs::TcpOrUdp,
        "-j MASQUERADE --to-ports 20000-30000 --random",
    ),
    (
        false,
        Needs::Any,
        "-j SNAT --to-source 203.0.113.5-203.0.113.9 --persistent",
    ),
    (false, Needs::Any, "-j ACCEPT"),
];

/// One generated rule: chain and body.
type RuleText = (String, String);

fn proto_for(needs: &[Needs], pick: u8) -> Option<&'static str> {
    let tcp = needs.contains(&Needs::Tcp);
    let l4 = needs.contains(&Needs::TcpOrUdp);
    match (tcp, l4, pick % 4) {
        (true, _, _) => Some("tcp"),
        (false, true, 0 | 1) => Some("tcp"),
        (false, true, _) => Some("udp"),
        (false, false, 0) => Some("icmp"),
        (false, false, 1) => Some("tcp"),
        _ => None,
    }
}

/// A rule of matches `ms` (indices into [`MATCHES`], one per group) and
/// the target text `t` needing `tneeds`.
fn body(ms: &[usize], t: &str, tneeds: Needs, pick: u8) -> String {
    let mut used = Vec::new();
    let mut parts = Vec::new();
    let mut needs = vec![tneeds];
    for &m in ms {
        let (g, n, text) = MATCHES[m % MATCHES.len()];
        if used.contains(&g) {
            continue;
        }
        used.push(g);
        needs.push(n);
        parts.push(text);
    }
    let mut out = String::new();
    if let Some(p) = proto_for(&needs, pick) {
        out += &format!("-p {p} ");
        if p == "icmp" {
            // Port and flag matches need a protocol they were not given.
            parts.retain(|t| !t.contains("port") && !t.contains("syn") && !t.contains("flags"));
        }
    } else {
        parts.retain(|t| !t.contains("port") && !t.contains("syn") && !t.contains("flags"));
    }
    out += &parts.join(" ");
    if !t.is_empty() {
        out += " ";
        out += t;
    }
    out.trim().to_string()
}

fn filter_rule() -> impl Strategy<Value = RuleText> {
    (
        prop::sample::select(&["INPUT", "FORWARD", "OUTPUT", "USER"][..]),
        prop::collection::vec(0..MATCHES.len(), 0..5),
        0..TARGETS.len(),
        any::<u8>(),
    )
        .prop_map(|(chain, ms, t, pick)| {
            let (mut tn, mut tt) = TARGETS[t];
            // TCPMSS runs in FORWARD, OUTPUT, POSTROUTING; LOG prefixes etc.
            // anywhere; a user chain does not jump to itself (a loop).
            if (tt.contains("TCPMSS") && chain == "INPUT")
                || (tt.contains("USER") && chain == "USER")
            {
                (tn, tt) = (Needs::Any, "-j ACCEPT");
            }
            // The MAC source exists only where a frame came in.
            let ms: Vec<usize> = ms
                .into_iter()
                .filter(|&m| !(chain == "OUTPUT" && MATCHES[m].2.contains("mac-source")))
                .collect();
            (chain.to_string(), body(&ms, tt, tn, pick))
        })
}

fn nat_rule() -> impl Strategy<Value = RuleText> {
    (
        prop::collection::vec(0..MATCHES.len(), 0..3),
        0..NAT_TARGETS.len(),
        any::<u8>(),
    )
        .prop_map(|(ms, t, pick)| {
            let (pre, n, tt) = NAT_TARGETS[t];
            let chain = if pre { "PREROUTING" } else { "POSTROUTING" };
            // nat sees a connection's first packet: no state or rate
            // matches there in what we draw, and no -i in POSTROUTING /
            // -o in PREROUTING (iptables refuses them).
            let ms: Vec<usize> = ms
                .into_iter()
                .filter(|&m| {
                    let (g, _, _) = MATCHES[m];
                    matches!(
                        g,
                        "s" | "d" | "port" | "multiport" | "mark" | "comment" | "iprange"
                    ) || (g == "i" && pre)
                        || (g == "o" && !pre)
                })
                .collect();
            (chain.to_string(), body(&ms, tt, n, pick))
        })
}

/// The rules as `iptables-save` writes them.
fn save_text(policy: &str, filter: &[RuleText], nat: &[RuleText]) -> String {
    let mut s = String::from(
        "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n",
    );
    for (c, b) in nat {
        s += &format!("-A {c} {b}\n");
    }
    s += "COMMIT\n*filter\n";
    s += &format!(
        ":INPUT {policy} [0:0]\n:FORWARD {policy} [0:0]\n:OUTPUT ACCEPT [0:0]\n:USER - [0:0]\n"
    );
    for (c, b) in filter {
        s += &format!("-A {c} {b}\n");
    }
    s + "COMMIT\n"
}

/// The same rules as a script's commands.
fn script_text(policy: &str, filter: &[RuleText], nat: &[RuleText]) -> String {
    let mut s = String::from("#!/bin/sh\niptables -t nat -F\niptables -F\niptables -N USER\n");
    s += &format!("iptables -P INPUT {policy}\niptables -P FORWARD {policy}\n");
    for (c, b) in nat {
        s += &format!("iptables -t nat -A {c} {b}\n");
    }
    for (c, b) in filter {
        s += &format!("iptables -A {c} {b}\n");
    }
    s
}

/// The rules without their source lines.
fn strip(mut r: IptablesRuleset) -> IptablesRuleset {
    for t in &mut r.tables {
        for c in &mut t.chains {
            for rule in &mut c.rules {
                rule.line = 0;
            }
        }
    }
    r
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn import_then_export_gives_the_same_rules(
        policy in prop::sample::select(&["ACCEPT", "DROP"][..]),
        filter in prop::collection::vec(filter_rule(), 0..12),
        nat in prop::collection::vec(nat_rule(), 0..4),
    ) {
        let save = save_text(policy, &filter, &nat);
        let from_save = import::import(&save, "rules.v4");
        prop_assert!(from_save.skipped.is_empty(), "refused: {:?}\n{save}", from_save.skipped);
        let v4 = from_save.v4.clone().expect("an IPv4 ruleset");

        // The script form imports to the same rules.
        let script = script_text(policy, &filter, &nat);
        let from_script = import::import(&script, "fw.sh");
        prop_assert!(from_script.skipped.is_empty(), "refused: {:?}\n{script}", from_script.skipped);
        let s4 = from_script.v4.clone().expect("an IPv4 ruleset");
        prop_assert_eq!(s4.to_string(), v4.to_string(), "script and save forms differ\n{}", script);

        // Exported as the config's [firewall] block, read back: the same.
        let exported = v4.to_string();
        let again = parse(&exported, "export", 1)
            .map_err(|e| TestCaseError::fail(format!("{e:?}\n{exported}")))?;
        prop_assert_eq!(strip(again), strip(v4));
        let toml = import::to_toml(&from_save, "rules.v4");
        prop_assert!(toml.contains(&exported), "{}", toml);
    }
}
