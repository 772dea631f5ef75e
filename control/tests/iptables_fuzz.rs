//! The iptables parser never panics, and whatever it accepts prints and
//! parses back to the same model.

use proptest::prelude::*;
use xgate_control::iptables::{IptablesRuleset, parse};

const WORDS: &[&str] = &[
    "*filter",
    "*nat",
    "*mangle",
    "COMMIT",
    ":INPUT",
    ":FORWARD",
    ":X",
    "ACCEPT",
    "DROP",
    "-",
    "[0:0]",
    "-A",
    "-I",
    "-N",
    "-P",
    "-t",
    "nat",
    "filter",
    "mangle",
    "INPUT",
    "FORWARD",
    "PREROUTING",
    "POSTROUTING",
    "OUTPUT",
    "X",
    "!",
    "-s",
    "-d",
    "-i",
    "-o",
    "-p",
    "tcp",
    "udp",
    "icmp",
    "icmpv6",
    "all",
    "--dport",
    "--sport",
    "80",
    "1:1023",
    "0",
    "65536",
    "-m",
    "multiport",
    "--dports",
    "22,80:90",
    "state",
    "--state",
    "NEW,ESTABLISHED",
    "conntrack",
    "--ctstate",
    "INVALID",
    "statistic",
    "--mode",
    "nth",
    "random",
    "--every",
    "3",
    "--packet",
    "1",
    "--probability",
    "0.5",
    "mark",
    "--mark",
    "0x1/0xff",
    "comment",
    "--comment",
    "\"a b\"",
    "--icmp-type",
    "echo-request",
    "3/3",
    "--tcp-flags",
    "SYN,ACK",
    "SYN",
    "--syn",
    "-j",
    "-g",
    "RETURN",
    "REJECT",
    "--reject-with",
    "tcp-reset",
    "LOG",
    "--log-prefix",
    "--log-level",
    "info",
    "MARK",
    "--set-mark",
    "MASQUERADE",
    "SNAT",
    "DNAT",
    "REDIRECT",
    "--to-source",
    "--to-destination",
    "--to-ports",
    "1.2.3.4",
    "10.0.0.0/8",
    "::1",
    "[2001:db8::1]:80",
    "1.2.3.4-1.2.3.9:80-90",
    "eth+",
    "eth0",
    "#",
    "\\",
    "\"",
    "'",
    "iptables",
    "[1:2]",
    "2",
];

fn line() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(WORDS), 0..14).prop_map(|w| w.join(" "))
}

fn check(text: &str) {
    if let Ok(r) = parse(text, "f", 1) {
        let printed = r.to_string();
        let again = parse(&printed, "f", 1)
            .unwrap_or_else(|e| panic!("printed text does not parse: {e:?}\n{printed}"));
        assert_eq!(strip(again), strip(r), "round trip of:\n{printed}");
    }
}

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
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn word_soup_never_panics(lines in prop::collection::vec(line(), 0..8)) {
        check(&lines.join("\n"));
    }

    #[test]
    fn wrapped_rules_never_panic(table in prop::sample::select(&["filter", "nat", "mangle"][..]),
                                 chain in prop::sample::select(&["INPUT", "FORWARD", "PREROUTING", "POSTROUTING", "OUTPUT"][..]),
                                 bodies in prop::collection::vec(line(), 1..5)) {
        let mut text = format!("*{table}\n:X - [0:0]\n");
        for b in &bodies {
            text += &format!("-A {chain} {b}\n");
        }
        text += "COMMIT\n";
        check(&text);
    }

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
        let _ = parse(&s, "f", 1);
    }

    #[test]
    fn mutated_seed_lines_never_panic(cut in 0usize..400, insert in "[ -~]{0,6}") {
        let seed = "*nat\n-A PREROUTING -i eth1 -d 192.168.0.2 -p tcp -m tcp --dport 80 -j DNAT --to-destination 3.3.3.3:80\n-A POSTROUTING -s 1.1.1.1 -p tcp -m tcp -j SNAT --to-source 2.2.2.2\nCOMMIT\n*filter\n:FORWARD DROP [0:0]\n-A FORWARD -m state --state ESTABLISHED,RELATED -j ACCEPT\nCOMMIT\n";
        let mut at = cut.min(seed.len());
        while !seed.is_char_boundary(at) { at -= 1; }
        let text = format!("{}{}{}", &seed[..at], insert, &seed[at..]);
        check(&text);
    }
}
