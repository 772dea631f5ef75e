//! Options real rulesets use (issue 19 item 2): each is read, printed back
//! as iptables-save prints it (the print parses to the same model), and
//! its bad values are refused naming the option. Verdicts are checked in
//! `compile::firewall::tests` (parse -> compile -> eval).

use xgate_control::iptables::*;

fn ok(text: &str) -> IptablesRuleset {
    match parse(text, "t.toml", 1) {
        Ok(r) => r,
        Err(e) => panic!("unexpected errors: {e:#?}"),
    }
}

fn err(text: &str) -> String {
    match parse(text, "t.toml", 1) {
        Ok(r) => panic!("expected an error, parsed:\n{r}"),
        Err(e) => e
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// The rule lines of `r` as printed.
fn printed(r: &IptablesRuleset) -> Vec<String> {
    r.to_string()
        .lines()
        .filter(|l| l.starts_with("-A "))
        .map(str::to_string)
        .collect()
}

/// `rule` in `table` parses, prints as `want` (None: as given), and the
/// print parses to the same rule.
fn round_trip(table: &str, rule: &str, want: Option<&str>) {
    let r = ok(&format!("*{table}\n{rule}\nCOMMIT\n"));
    let p = printed(&r);
    assert_eq!(p, vec![want.unwrap_or(rule).to_string()]);
    let again = ok(&r.to_string());
    assert_eq!(printed(&again), p);
    let (a, b) = (&r.tables[0].chains, &again.tables[0].chains);
    for (x, y) in a.iter().zip(b) {
        for (rx, ry) in x.rules.iter().zip(&y.rules) {
            assert_eq!(
                (&rx.matches, &rx.target, rx.nat_flags),
                (&ry.matches, &ry.target, ry.nat_flags)
            );
        }
    }
}

fn refused(table: &str, rule: &str, needle: &str) {
    let e = err(&format!("*{table}\n{rule}\nCOMMIT\n"));
    assert!(e.contains(needle), "wanted {needle:?} in {e}");
}

#[test]
fn wait_options_of_the_script_form_are_ignored() {
    let r = ok("iptables -w -A INPUT -p tcp --dport 22 -j ACCEPT\n\
                iptables -w 5 -A INPUT -j DROP\n\
                iptables --wait -W 1000 -A INPUT -j DROP\n");
    assert_eq!(
        printed(&r),
        vec![
            "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT",
            "-A INPUT -j DROP",
            "-A INPUT -j DROP"
        ]
    );
    let e = err("iptables -W x -A INPUT -j DROP\n");
    assert!(e.contains("-W"), "{e}");
}

#[test]
fn checksum_fill_is_a_mangle_no_op() {
    round_trip(
        "mangle",
        "-A POSTROUTING -p udp -m udp --dport 68 -j CHECKSUM --checksum-fill",
        None,
    );
    refused(
        "mangle",
        "-A POSTROUTING -j CHECKSUM",
        "needs --checksum-fill",
    );
    refused(
        "filter",
        "-A INPUT -j CHECKSUM --checksum-fill",
        "only valid in table mangle",
    );
    refused(
        "filter",
        "-A INPUT -j ACCEPT --checksum-fill",
        "--checksum-fill is not valid",
    );
    refused(
        "mangle",
        "-A PREROUTING ! --checksum-fill -j CHECKSUM",
        "cannot be negated",
    );
}

#[test]
fn nat_flags_are_accepted_and_printed() {
    round_trip(
        "nat",
        "-A POSTROUTING -o eth0 -j MASQUERADE --random-fully",
        None,
    );
    round_trip(
        "nat",
        "-A POSTROUTING -o eth0 -p tcp -j MASQUERADE --to-ports 1024-2047 --random",
        Some("-A POSTROUTING -o eth0 -p tcp -j MASQUERADE --to-ports 1024-2047 --random"),
    );
    round_trip(
        "nat",
        "-A POSTROUTING -o eth0 -j SNAT --to-source 192.0.2.1 --persistent --random",
        Some("-A POSTROUTING -o eth0 -j SNAT --to-source 192.0.2.1 --random --persistent"),
    );
    round_trip(
        "nat",
        "-A PREROUTING -d 192.0.2.1/32 -j DNAT --to-destination 10.0.0.2 --random --persistent",
        None,
    );
    refused(
        "nat",
        "-A POSTROUTING -j MASQUERADE --persistent",
        "--persistent is not valid for target MASQUERADE",
    );
    refused(
        "nat",
        "-A PREROUTING -j DNAT --to 10.0.0.1 --random-fully",
        "--random-fully is not valid for target DNAT",
    );
    refused(
        "filter",
        "-A INPUT -j ACCEPT --random",
        "--random is not valid for target ACCEPT",
    );
    refused(
        "nat",
        "-A POSTROUTING -j MASQUERADE --random --random",
        "--random given twice",
    );
}

#[test]
fn to_is_the_nat_address_option() {
    round_trip(
        "nat",
        "-A PREROUTING -p tcp --dport 80 -j DNAT --to 10.0.0.2:8080",
        Some("-A PREROUTING -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.0.0.2:8080"),
    );
    round_trip(
        "nat",
        "-A POSTROUTING -o eth0 -j SNAT --to 192.0.2.1",
        Some("-A POSTROUTING -o eth0 -j SNAT --to-source 192.0.2.1"),
    );
    refused(
        "nat",
        "-A PREROUTING -j DNAT --to 10.0.0.2 --to-destination 10.0.0.3",
        "given twice",
    );
    refused(
        "filter",
        "-A INPUT -j ACCEPT --to 10.0.0.2",
        "--to is not valid",
    );
}

#[test]
fn port_ranges_may_start_at_zero() {
    round_trip(
        "filter",
        "-A INPUT -p tcp -m tcp --dport 0:1023 -j DROP",
        None,
    );
    round_trip(
        "filter",
        "-A INPUT -p udp --sport :1023 -j DROP",
        Some("-A INPUT -p udp -m udp --sport 0:1023 -j DROP"),
    );
    round_trip("filter", "-A INPUT -p udp -m udp --dport 0 -j DROP", None);
    round_trip(
        "filter",
        "-A INPUT -p tcp -m multiport --dports 0:19,22 -j DROP",
        None,
    );
    refused(
        "filter",
        "-A INPUT -p tcp --dport 65536 -j DROP",
        "out of range 0-65535",
    );
    refused(
        "nat",
        "-A PREROUTING -p tcp -j DNAT --to-destination 10.0.0.1:0",
        "out of range 1-65535",
    );
}

#[test]
fn match_modules_print_as_iptables_save_does() {
    for (table, rule, want) in [
        ("filter", "-A INPUT -m length --length 0:128 -j DROP", None),
        ("filter", "-A INPUT -m length ! --length 1500 -j DROP", None),
        ("filter", "-A INPUT -m ttl --ttl-lt 5 -j DROP", None),
        ("filter", "-A INPUT -m ttl ! --ttl-eq 64 -j DROP", None),
        ("filter", "-A INPUT -m hl --hl-eq 255 -j ACCEPT", None),
        (
            "filter",
            "-A INPUT -m tos --tos Minimize-Delay -j ACCEPT",
            Some("-A INPUT -m tos --tos 0x10/0x3f -j ACCEPT"),
        ),
        (
            "filter",
            "-A INPUT -m dscp --dscp-class EF -j ACCEPT",
            Some("-A INPUT -m dscp --dscp 0x2e -j ACCEPT"),
        ),
        (
            "filter",
            "-A INPUT -m pkttype --pkt-type multicast -j DROP",
            None,
        ),
        (
            "filter",
            "-A INPUT -m mac --mac-source 02:00:00:0a:0b:0c -j ACCEPT",
            Some("-A INPUT -m mac --mac-source 02:00:00:0A:0B:0C -j ACCEPT"),
        ),
        (
            "filter",
            "-A INPUT -m iprange --src-range 10.0.0.1-10.0.0.50 ! --dst-range 10.1.0.1-10.1.0.2 -j ACCEPT",
            None,
        ),
        (
            "nat",
            "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER",
            None,
        ),
        (
            "filter",
            "-A INPUT -m addrtype ! --src-type LOCAL,BROADCAST -j DROP",
            None,
        ),
        (
            "filter",
            "-A INPUT -p icmp -m limit --limit 5/sec -j ACCEPT",
            Some("-A INPUT -p icmp -m limit --limit 5/sec -j ACCEPT"),
        ),
        (
            "filter",
            "-A INPUT -m limit --limit 10/minute --limit-burst 20 -j LOG",
            Some("-A INPUT -m limit --limit 10/min --limit-burst 20 -j LOG"),
        ),
        (
            "filter",
            "-A FORWARD -m conntrack --ctstate NEW --ctorigdst 203.0.113.0/24 --ctorigdstport 80 -j ACCEPT",
            None,
        ),
        (
            "mangle",
            "-A PREROUTING -j MARK --set-mark 0x1",
            Some("-A PREROUTING -j MARK --set-xmark 0x1/0xffffffff"),
        ),
        (
            "mangle",
            "-A PREROUTING -j MARK --or-mark 0x4",
            Some("-A PREROUTING -j MARK --set-xmark 0x4/0x4"),
        ),
        ("filter", "-A FORWARD -j MARK --set-xmark 0x10/0xf0", None),
    ] {
        if rule.contains("DOCKER") {
            let r = ok(&format!("*{table}\n:DOCKER - [0:0]\n{rule}\nCOMMIT\n"));
            assert_eq!(printed(&r), vec![rule.to_string()]);
            continue;
        }
        round_trip(table, rule, want);
    }
}

#[test]
fn match_module_errors_name_the_option() {
    for (rule, needle) in [
        ("-A INPUT -m length --length 9:1 -j DROP", "reversed"),
        ("-A INPUT --length 9 -j DROP", "needs its -m module"),
        ("-A INPUT -m ttl --ttl-eq 300 -j DROP", "--ttl-eq"),
        ("-A INPUT -m ttl ! --ttl-lt 3 -j DROP", "cannot be negated"),
        (
            "-A INPUT -m limit ! --limit 3/sec -j DROP",
            "cannot be negated",
        ),
        ("-A INPUT -m limit --limit 3/fortnight -j DROP", "--limit"),
        ("-A INPUT -m limit --limit 20000/sec -j DROP", "too fast"),
        ("-A INPUT -m mac --mac-source 02:00 -j DROP", "--mac-source"),
        (
            "-A INPUT -m addrtype --dst-type LOCAL --limit-iface-in -j DROP",
            "--limit-iface-in",
        ),
        ("-A INPUT -m addrtype --dst-type HOME -j DROP", "HOME"),
        (
            "-A INPUT -m iprange --src-range 10.0.0.9-10.0.0.1 -j DROP",
            "reversed",
        ),
        (
            "-A INPUT -m iprange --src-range 10.0.0.1-::9 -j DROP",
            "--src-range",
        ),
        (
            "-A INPUT -m conntrack --ctstatus ASSURED -j DROP",
            "ASSURED",
        ),
        ("-A INPUT -m dscp --dscp-class XX -j DROP", "--dscp-class"),
        ("-A INPUT -m length -j DROP", "-m length needs --length"),
        ("-A INPUT -j MARK --and-mark 0x1/0x1", "--and-mark"),
        ("-A INPUT -j CONNMARK", "target CONNMARK needs"),
        ("-A INPUT -j NOTRACK", "only valid in table raw"),
        ("-A INPUT -j CT --helper ftp", "only valid in table raw"),
        ("-A INPUT -j CONNMARK --set-mark 1 --save-mark", "not both"),
        ("-A INPUT -j CONNMARK --set-mark 1 --nfmask 1", "--nfmask"),
        (
            "-A INPUT -j ACCEPT --save-mark",
            "not valid for target ACCEPT",
        ),
    ] {
        refused("filter", rule, needle);
    }
}
