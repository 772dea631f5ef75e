//! Replay tests of packet and connection marks through the whole
//! pipeline: `CONNMARK --save-mark` on a connection's first packet is
//! kept with the connection (stored when it is confirmed),
//! `--restore-mark` gives its later packets and its replies the mark
//! again, and `-m connmark` / `-m mark` in filter see them — the usual
//! policy-routing and classification idiom, with Linux's semantics.

mod common;
use common::*;

const GW_WAN: &str = "02:00:00:00:00:01";
const GW_LAN: &str = "02:00:00:00:00:02";
const UPSTREAM: &str = "02:bb:00:00:00:01";
const HOST: &str = "02:aa:00:00:00:10";

fn config(rules: &str) -> String {
    Office::new()
        .neighbor("192.168.1.10", HOST, "lan")
        .config(&format!(
            "[firewall]\nrules = \"\"\"\n*nat\n-A POSTROUTING -o wan -j MASQUERADE\nCOMMIT\n{rules}\"\"\"\n"
        ))
}

fn out_udp(sport: u16, dport: u16) -> Vec<u8> {
    udp4(
        mac(HOST),
        mac(GW_LAN),
        &[],
        "192.168.1.10",
        "198.51.100.7",
        64,
        sport,
        dport,
        b"q",
    )
}

fn in_udp(sport: u16, dport: u16) -> Vec<u8> {
    udp4(
        mac(UPSTREAM),
        mac(GW_WAN),
        &[],
        "198.51.100.7",
        "203.0.113.2",
        60,
        sport,
        dport,
        b"a",
    )
}

/// DNS from the LAN is marked on its first packet, the mark saved with
/// the connection; FORWARD (no conntrack-state rule at all) accepts only
/// marked connections, so the answer gets through by its connection mark
/// alone and an unmarked flow does not.
#[test]
fn connmark_save_and_restore_follow_the_connection() {
    let rules = "*mangle
-A PREROUTING -j CONNMARK --restore-mark
-A PREROUTING -i lan -p udp --dport 53 -j MARK --set-mark 0x7
-A PREROUTING -j CONNMARK --save-mark
COMMIT
*filter
:FORWARD DROP [0:0]
-A FORWARD -m connmark --mark 0x7 -m mark --mark 0x7 -j ACCEPT
COMMIT
";
    let o = run(
        "marks_connmark",
        &config(rules),
        &[
            (
                "lan",
                vec![(0.0, out_udp(5000, 53)), (0.1, out_udp(5001, 123))],
            ),
            (
                "wan",
                vec![(0.5, in_udp(53, 5000)), (0.6, in_udp(123, 5001))],
            ),
        ],
    );
    // The router's own port unreachable for the stray datagram to its
    // address (INPUT accepts, nothing listens) aside.
    let wan: Vec<_> = o
        .frames("wan")
        .into_iter()
        .filter(|f| l3_of(f)[9] == 17)
        .collect();
    assert_eq!(
        wan.iter().map(|f| flow4(f)).collect::<Vec<_>>(),
        ["203.0.113.2:5000 > 198.51.100.7:53"],
        "only the marked flow leaves"
    );
    let lan = o.frames("lan");
    assert_eq!(
        lan.iter().map(|f| flow4(f)).collect::<Vec<_>>(),
        ["198.51.100.7:53 > 192.168.1.10:5000"],
        "the answer is marked again from its connection"
    );
    // The NTP datagram (unmarked), by the FORWARD policy.
    assert_eq!(o.drops("filter_forward"), 1);
}

/// `--set-xmark` on the connection, then `-m connmark` with a mask.
#[test]
fn connmark_set_and_masked_match() {
    let rules = "*filter
:FORWARD DROP [0:0]
-A FORWARD -i lan -j CONNMARK --set-xmark 0x100/0xf00
-A FORWARD -m connmark --mark 0x100/0xf00 -j ACCEPT
COMMIT
";
    let o = run(
        "marks_set",
        &config(rules),
        &[
            ("lan", vec![(0.0, out_udp(6000, 53))]),
            ("wan", vec![(0.5, in_udp(53, 6000))]),
        ],
    );
    assert_eq!(o.frames("wan").len(), 1);
    assert_eq!(o.frames("lan").len(), 1, "the reply by its connection mark");
}

/// mangle FORWARD and POSTROUTING run for every forwarded packet, in
/// Linux's order (mangle before filter at FORWARD; mangle POSTROUTING
/// after filter FORWARD): a mark set in mangle FORWARD is seen by filter
/// FORWARD, one saved to the connection in mangle POSTROUTING is restored
/// for the reply, and a DROP in mangle is counted as `filter_mangle`.
#[test]
fn mangle_forward_and_postrouting_run() {
    let rules = "*mangle
-A PREROUTING -i wan -j CONNMARK --restore-mark
-A FORWARD -i lan -p udp --dport 53 -j MARK --set-mark 0x3
-A FORWARD -p udp --dport 9 -j DROP
-A POSTROUTING -o wan -j CONNMARK --save-mark
COMMIT
*filter
:FORWARD DROP [0:0]
-A FORWARD -m mark --mark 0x3 -j ACCEPT
COMMIT
";
    let o = run(
        "marks_mangle",
        &config(rules),
        &[
            (
                "lan",
                vec![(0.0, out_udp(7000, 53)), (0.1, out_udp(7001, 9))],
            ),
            ("wan", vec![(0.5, in_udp(53, 7000))]),
        ],
    );
    assert_eq!(
        o.frames("wan").iter().map(|f| flow4(f)).collect::<Vec<_>>(),
        ["203.0.113.2:7000 > 198.51.100.7:53"]
    );
    assert_eq!(o.frames("lan").len(), 1, "the reply, by the restored mark");
    assert_eq!(o.drops("filter_mangle"), 1);
    assert_eq!(o.drops("filter_forward"), 0);
}
