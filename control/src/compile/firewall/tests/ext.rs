//! Verdicts of the match modules of `iptables::ext` and the MARK
//! variants: a packet that matches and one that does not, through parse
//! -> compile -> eval, with the kernel's semantics (iptables-extensions(8)).

use super::*;
use xgate_dataplane::filter::{CtView, addr_type, ct_status};

fn rs(text: &str) -> filter::Ruleset {
    compile(text, &["wan", "lan"]).unwrap_or_else(|e| panic!("{e:#?}"))
}

/// Whether filter FORWARD's only rule (line 2) decides `p`.
fn hit(rule: &str, p: PacketView) -> bool {
    let rs = rs(&format!("*filter\n{rule}\nCOMMIT\n"));
    run(&rs, TableId::Filter, Hook::Forward, p).1 == 2
}

fn p() -> PacketView {
    tcp(Some(0), Some(1), "10.0.0.5", "192.0.2.7", 80)
}

#[test]
fn length_ttl_tos_dscp() {
    let r = "-A FORWARD -m length --length 40:100 -j DROP";
    assert!(hit(r, p()));
    assert!(!hit(r, PacketView { len: 101, ..p() }));
    assert!(hit("-A FORWARD -m length ! --length 101:1500 -j DROP", p()));
    assert!(hit("-A FORWARD -m ttl --ttl-eq 64 -j DROP", p()));
    assert!(!hit("-A FORWARD -m ttl ! --ttl-eq 64 -j DROP", p()));
    assert!(hit("-A FORWARD -m ttl --ttl-lt 65 -j DROP", p()));
    assert!(!hit("-A FORWARD -m ttl --ttl-lt 64 -j DROP", p()));
    assert!(hit("-A FORWARD -m ttl --ttl-gt 63 -j DROP", p()));
    assert!(!hit("-A FORWARD -m ttl --ttl-lt 0 -j DROP", p()));
    // -m ttl is IPv4's: an IPv6 packet never matches it.
    let v6 = PacketView {
        v4: false,
        src: 1,
        dst: 2,
        ..p()
    };
    assert!(!hit("-A FORWARD -m ttl --ttl-eq 64 -j DROP", v6));
    assert!(hit("-A FORWARD -m hl --hl-eq 64 -j DROP", v6));
    let ef = PacketView {
        tos: 46 << 2,
        ..p()
    };
    assert!(hit("-A FORWARD -m dscp --dscp-class EF -j DROP", ef));
    assert!(hit("-A FORWARD -m dscp --dscp 0x2e -j DROP", ef));
    assert!(!hit("-A FORWARD -m dscp --dscp-class AF11 -j DROP", ef));
    let lowdelay = PacketView { tos: 0x10, ..p() };
    assert!(hit(
        "-A FORWARD -m tos --tos Minimize-Delay -j DROP",
        lowdelay
    ));
    assert!(!hit("-A FORWARD -m tos --tos Minimize-Delay -j DROP", p()));
    assert!(hit("-A FORWARD -m tos --tos 0x10/0x10 -j DROP", lowdelay));
}

#[test]
fn iprange_mac_pkttype() {
    let r = "-A FORWARD -m iprange --src-range 10.0.0.1-10.0.0.9 -j DROP";
    assert!(hit(r, p()));
    assert!(!hit(r, tcp(Some(0), Some(1), "10.0.0.10", "192.0.2.7", 80)));
    assert!(hit(
        "-A FORWARD -m iprange ! --dst-range 192.0.2.8-192.0.2.9 -j DROP",
        p()
    ));
    let mac = PacketView {
        src_mac: Some(0x0200_0000_00aa),
        ..p()
    };
    let r = "-A FORWARD -m mac --mac-source 02:00:00:00:00:AA -j DROP";
    assert!(hit(r, mac));
    assert!(!hit(r, p()));
    assert!(hit(
        "-A FORWARD -m pkttype --pkt-type broadcast -j DROP",
        PacketView { pkttype: 1, ..p() }
    ));
    assert!(!hit(
        "-A FORWARD -m pkttype --pkt-type broadcast -j DROP",
        p()
    ));
    // The MAC match has no source MAC to test after routing.
    let e = errors(
        "*filter\n-A OUTPUT -m mac --mac-source 02:00:00:00:00:aa -j ACCEPT\nCOMMIT\n",
        &["wan"],
    );
    assert!(e[0].1.contains("-m mac"), "{e:?}");
}

#[test]
fn addrtype() {
    let local = PacketView {
        dst_type: addr_type::LOCAL,
        src_type: addr_type::UNICAST,
        ..p()
    };
    let r = "-A FORWARD -m addrtype --dst-type LOCAL -j DROP";
    assert!(hit(r, local));
    assert!(!hit(
        r,
        PacketView {
            dst_type: addr_type::UNICAST,
            ..p()
        }
    ));
    assert!(hit(
        "-A FORWARD -m addrtype ! --src-type LOCAL,BROADCAST --dst-type LOCAL -j DROP",
        local
    ));
    let rs = rs(
        "*nat\n-A PREROUTING -m addrtype --dst-type LOCAL -j DNAT --to-destination 10.0.0.9\nCOMMIT\n",
    );
    assert!(rs.needs() & filter::needs::ADDR_TYPE != 0);
}

#[test]
fn conntrack_beyond_state() {
    let ct = CtView {
        orig: (a4("10.0.0.5"), a4("198.51.100.1")),
        orig_ports: (40000, 8080),
        repl: (a4("192.168.1.9"), a4("10.0.0.5")),
        repl_ports: (80, 40000),
        status: ct_status::DNAT | ct_status::CONFIRMED,
        mark: 0,
        reply: false,
    };
    let q = PacketView {
        ct: Some(ct),
        ..p()
    };
    for (rule, want) in [
        ("-A FORWARD -m conntrack --ctstatus DNAT -j DROP", None),
        (
            "-A FORWARD -m conntrack --ctorigdst 198.51.100.0/24 -j DROP",
            Some(true),
        ),
        (
            "-A FORWARD -m conntrack --ctorigdstport 8080 -j DROP",
            Some(true),
        ),
        (
            "-A FORWARD -m conntrack --ctreplsrc 192.168.1.9 --ctreplsrcport 80 -j DROP",
            Some(true),
        ),
        (
            "-A FORWARD -m conntrack ! --ctorigsrc 10.0.0.0/8 -j DROP",
            Some(false),
        ),
        (
            "-A FORWARD -m conntrack --ctstatus CONFIRMED --ctdir ORIGINAL -j DROP",
            Some(true),
        ),
        ("-A FORWARD -m conntrack --ctdir REPLY -j DROP", Some(false)),
        (
            "-A FORWARD -m conntrack --ctstate NEW --ctproto tcp -j DROP",
            Some(true),
        ),
    ] {
        match want {
            None => {
                let r = ipt::parse(&format!("*filter\n{rule}\nCOMMIT\n"), "fw", 1);
                assert!(r.is_err(), "{rule}");
            }
            Some(w) => assert_eq!(hit(rule, q), w, "{rule}"),
        }
    }
    // An untracked packet has no tuple: a tuple match fails, `!` or not.
    assert!(!hit(
        "-A FORWARD -m conntrack ! --ctorigsrc 10.0.0.0/8 -j DROP",
        p()
    ));
}

#[test]
fn limit_admits_the_burst_then_the_rate() {
    let rs = rs(
        "*filter\n-A FORWARD -m limit --limit 1/sec --limit-burst 3 -j ACCEPT\n-A FORWARD -j DROP\nCOMMIT\n",
    );
    let mut c = cx(&rs);
    c.now = 1_000_000_000_000;
    let mut verdicts = Vec::new();
    for _ in 0..5 {
        let mut q = p();
        verdicts.push(rs.eval(TableId::Filter, Hook::Forward, &mut q, &mut c));
    }
    use Outcome::{Accept as A, Drop as D};
    assert_eq!(verdicts, vec![A, A, A, D, D]);
    // One second later, one more.
    c.now += 1_000_000_000;
    let mut q = p();
    assert_eq!(rs.eval(TableId::Filter, Hook::Forward, &mut q, &mut c), A);
    let mut q = p();
    assert_eq!(rs.eval(TableId::Filter, Hook::Forward, &mut q, &mut c), D);
}

#[test]
fn mark_variants_are_set_xmark() {
    let rs = rs("*mangle
-A PREROUTING -j MARK --set-mark 0xf0
-A PREROUTING -j MARK --or-mark 0x3
-A PREROUTING -j MARK --and-mark 0xfe
-A PREROUTING -j MARK --xor-mark 0x100
-A PREROUTING -j MARK --set-xmark 0x5/0xf
COMMIT
");
    let mut c = cx(&rs);
    let mut q = PacketView {
        mark: 0xffff_0000,
        ..p()
    };
    rs.eval(TableId::Mangle, Hook::Prerouting, &mut q, &mut c);
    // 0xf0 -> |3 = 0xf3 -> &0xfe = 0xf2 -> ^0x100 = 0x1f2 -> low nibble 5.
    assert_eq!(q.mark, 0x1f5);
    // MARK runs in filter too (no table restriction in the kernel).
    let rs2 = rs2();
    let mut q = p();
    rs2.eval(TableId::Filter, Hook::Forward, &mut q, &mut cx(&rs2));
    assert_eq!(q.mark, 9);
}

fn rs2() -> filter::Ruleset {
    rs("*filter\n-A FORWARD -j MARK --set-mark 9\nCOMMIT\n")
}

#[test]
fn raw_notrack_and_helper_set_the_view() {
    let rs = rs(
        "*raw\n-A PREROUTING -p tcp --dport 7 -j NOTRACK\n-A PREROUTING -p tcp --dport 21 -j CT --helper ftp\nCOMMIT\n",
    );
    let mut c = cx(&rs);
    let mut q = tcp(Some(0), None, "1.1.1.1", "2.2.2.2", 7);
    assert_eq!(
        rs.eval(TableId::Raw, Hook::Prerouting, &mut q, &mut c),
        Outcome::Accept
    );
    assert!(q.notrack && q.helper.is_none());
    let mut q = tcp(Some(0), None, "1.1.1.1", "2.2.2.2", 21);
    rs.eval(TableId::Raw, Hook::Prerouting, &mut q, &mut c);
    assert!(!q.notrack && q.helper == Some(HelperKind::Ftp));
}
