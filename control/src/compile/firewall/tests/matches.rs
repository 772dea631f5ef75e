//! Verdicts of the options real rulesets use (issue 19 item 2): a packet
//! that matches and one that does not, through parse -> compile -> eval.

use super::*;

fn rs(text: &str) -> filter::Ruleset {
    compile(text, &["wan", "lan"]).unwrap_or_else(|e| panic!("{e:#?}"))
}

/// The line of the rule that decided `p` in filter INPUT (0: the policy).
fn input_line(rs: &filter::Ruleset, p: PacketView) -> usize {
    run(rs, TableId::Filter, Hook::Input, p).1
}

#[test]
fn port_range_from_zero() {
    let rs = rs("*filter\n-A INPUT -p tcp --dport 0:1023 -j DROP\nCOMMIT\n");
    let p = |port| tcp(Some(0), None, "1.1.1.1", "2.2.2.2", port);
    assert_eq!(input_line(&rs, p(0)), 2);
    assert_eq!(input_line(&rs, p(1023)), 2);
    assert_eq!(input_line(&rs, p(1024)), 0);
}

#[test]
fn checksum_fill_counts_and_continues() {
    let rs = rs("*mangle
-A PREROUTING -p tcp -j CHECKSUM --checksum-fill
-A PREROUTING -p tcp --dport 22 -j MARK --set-mark 7
-A POSTROUTING -o wan -p udp --dport 68 -j CHECKSUM --checksum-fill
COMMIT
");
    let mut c = cx(&rs);
    let mut p = tcp(Some(0), None, "1.1.1.1", "2.2.2.2", 22);
    let o = rs.eval(TableId::Mangle, Hook::Prerouting, &mut p, &mut c);
    assert_eq!((o, p.mark), (Outcome::Accept, 7));
    let mut p = tcp(Some(0), None, "1.1.1.1", "2.2.2.2", 80);
    rs.eval(TableId::Mangle, Hook::Prerouting, &mut p, &mut c);
    assert_eq!(p.mark, 0);
    // In a chain xgate never runs, CHECKSUM (a no-op) is accepted.
    assert!(compile("*nat\n-A OUTPUT -j MARK --set-mark 1\nCOMMIT\n", &["wan"]).is_err());
}

#[test]
fn nat_flags_and_to_give_the_plain_action() {
    let rs = rs("*nat
-A PREROUTING -p tcp --dport 80 -j DNAT --to 10.0.0.2:8080 --random --persistent
-A POSTROUTING -o wan -s 10.0.0.0/8 -j SNAT --to 192.0.2.1 --random-fully
-A POSTROUTING -o wan -j MASQUERADE --random --random-fully
COMMIT
");
    let p = tcp(Some(0), None, "1.1.1.1", "2.2.2.2", 80);
    assert_eq!(
        run(&rs, TableId::Nat, Hook::Prerouting, p),
        (dnat("10.0.0.2", 8080), 2)
    );
    let miss = tcp(Some(0), None, "1.1.1.1", "2.2.2.2", 81);
    assert_eq!(run(&rs, TableId::Nat, Hook::Prerouting, miss).1, 0);
    let out = tcp(Some(1), Some(0), "10.0.0.5", "2.2.2.2", 80);
    assert_eq!(
        run(&rs, TableId::Nat, Hook::Postrouting, out),
        (snat("192.0.2.1"), 3)
    );
    let other = tcp(Some(1), Some(0), "11.0.0.5", "2.2.2.2", 80);
    assert_eq!(
        run(&rs, TableId::Nat, Hook::Postrouting, other),
        (Outcome::Nat(NatAction::Masquerade { ports: None }), 4)
    );
}
