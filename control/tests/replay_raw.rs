//! Replay tests of the raw table: `-j CT --helper ftp` gives a port
//! forward's FTP control connection its helper (as Linux needs since it
//! stopped assigning helpers by port), and `NOTRACK` / `CT --notrack`
//! make packets UNTRACKED: no connection, no NAT, `--ctstate UNTRACKED`.

mod common;
use common::*;

const GW_WAN: &str = "02:00:00:00:00:01";
const GW_LAN: &str = "02:00:00:00:00:02";
const UPSTREAM: &str = "02:bb:00:00:00:01";
const SERVER: &str = "02:aa:00:00:00:11";
const OUTSIDE: &str = "198.51.100.9";
const P: &str = "168.126.127.6";
const S: &str = "192.168.1.11";

fn config(raw: &str) -> String {
    Office::new()
        .wan(&["168.126.127.6/24"], "168.126.127.1")
        .neighbor(S, SERVER, "lan")
        .config(&format!(
            r#"
[firewall]
rules = """
*raw
{raw}
COMMIT
*nat
-A PREROUTING -d 168.126.127.6 -p tcp --dport 21 -j DNAT --to-destination 192.168.1.11:21
-A POSTROUTING -s 192.168.1.0/24 -o wan -j MASQUERADE
COMMIT
*filter
:FORWARD DROP [0:0]
-A FORWARD -m state --state ESTABLISHED,RELATED -j ACCEPT
-A FORWARD -m state --state UNTRACKED -j DROP
-A FORWARD -s 192.168.1.0/24 -i lan -j ACCEPT
-A FORWARD -d 192.168.1.11 -p tcp --dport 21 -j ACCEPT
COMMIT
"""
"#
        ))
}

#[allow(clippy::too_many_arguments)]
fn seg(
    smac: &str,
    dmac: &str,
    src: &str,
    dst: &str,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: &str,
    data: &[u8],
) -> Vec<u8> {
    tcp4_seg(
        mac(smac),
        mac(dmac),
        src,
        dst,
        sport,
        dport,
        seq,
        ack,
        flags,
        data,
    )
}

/// The outside client's passive session through the forward: the
/// server's 227 names its inside address; with the helper from the raw
/// table it is rewritten to the public one and the data connection is
/// RELATED; without, it leaves as the server wrote it and the data
/// connection is dropped by FORWARD.
fn passive(raw: &str, name: &str) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let reply = b"227 Entering Passive Mode (192,168,1,11,195,80).\r\n";
    let cl = |seq, ack, flags: &str, data: &[u8]| {
        seg(
            UPSTREAM, GW_WAN, OUTSIDE, P, 50000, 21, seq, ack, flags, data,
        )
    };
    let sv = |seq, ack, flags: &str, data: &[u8]| {
        seg(SERVER, GW_LAN, S, OUTSIDE, 21, 50000, seq, ack, flags, data)
    };
    let o = run(
        name,
        &config(raw),
        &[
            (
                "wan",
                vec![
                    (0.0, cl(2000, 0, "S", b"")),
                    (0.2, cl(2001, 7001, "A", b"")),
                    (0.3, cl(2001, 7001, "PA", b"PASV\r\n")),
                    (
                        0.6,
                        seg(
                            UPSTREAM, GW_WAN, OUTSIDE, P, 50001, 50000, 3000, 0, "S", b"",
                        ),
                    ),
                ],
            ),
            (
                "lan",
                vec![
                    (0.1, sv(7000, 2001, "SA", b"")),
                    (0.4, sv(7001, 2007, "PA", reply)),
                ],
            ),
        ],
    );
    (o.frames("wan"), o.frames("lan"))
}

#[test]
fn ct_helper_in_raw_prerouting_attaches_the_ftp_helper() {
    let (wan, lan) = passive(
        "-A PREROUTING -p tcp --dport 21 -j CT --helper ftp",
        "raw_helper",
    );
    assert_eq!(
        tcp_payload(&wan[1]),
        b"227 Entering Passive Mode (168,126,127,6,195,80).\r\n"
    );
    assert_eq!(
        lan.iter()
            .map(|f| flow4(f))
            .collect::<Vec<_>>()
            .last()
            .unwrap(),
        "198.51.100.9:50001 > 192.168.1.11:50000",
        "the data connection, RELATED, to the server"
    );
    // Without the raw rule (and no config shortcut) nothing is rewritten.
    let (wan, lan) = passive("-A PREROUTING -p udp --dport 9 -j ACCEPT", "raw_none");
    assert_eq!(
        tcp_payload(&wan[1]),
        b"227 Entering Passive Mode (192,168,1,11,195,80).\r\n"
    );
    assert!(
        lan.iter()
            .all(|f| !flow4(f).ends_with("192.168.1.11:50000")),
        "no data connection"
    );
}

#[test]
fn notrack_makes_packets_untracked() {
    let probe = |dport| {
        udp4(
            mac(UPSTREAM),
            mac(GW_WAN),
            &[],
            OUTSIDE,
            S,
            60,
            4000,
            dport,
            b"x",
        )
    };
    // Without NOTRACK the datagram to the inside host is NEW and no rule
    // accepts it; with it, UNTRACKED and dropped by its own rule: the
    // rule counters tell which. Both forms of the target.
    for raw in [
        "-A PREROUTING -p udp --dport 7 -j NOTRACK",
        "-A PREROUTING -p udp --dport 7 -j CT --notrack",
    ] {
        let o = run(
            "raw_notrack",
            &config(raw),
            &[("wan", vec![(0.0, probe(7)), (0.1, probe(8))])],
        );
        assert_eq!(o.drops("filter_forward"), 2, "{raw}");
        let verdicts: Vec<&str> = o
            .trace
            .lines()
            .filter(|l| l.contains("filter-fwd"))
            .collect();
        // Line 40 of the config is `--state UNTRACKED -j DROP`.
        assert!(
            verdicts[0].ends_with("drop (rule line 40)"),
            "{raw}: {verdicts:?}"
        );
        assert!(verdicts[1].contains("policy"), "{raw}: {verdicts:?}");
    }
}

#[test]
fn raw_errors() {
    for (raw, needle) in [
        ("-A PREROUTING -p tcp -j CT --helper sip", "no sip helper"),
        ("-A OUTPUT -j NOTRACK", "raw OUTPUT is not run"),
    ] {
        let cfg = config(raw);
        let c = xgate_control::parse(&cfg, "t.toml").unwrap();
        let e = xgate_control::compile::compile(&c, &|_, _| None).unwrap_err();
        assert!(format!("{e:?}").contains(needle), "{raw}: {e:?}");
    }
}
