//! Conntrack's checksum check (Linux's `nf_conntrack_checksum=1`): a
//! first packet, an ICMP error or a TCP SYN/FIN/RST with a wrong
//! transport checksum is INVALID, so the usual `--ctstate INVALID -j
//! DROP` drops it, as Linux does; `[conntrack] checksum = false` turns
//! the check off.

mod common;
use common::*;

const GW_LAN: &str = "02:00:00:00:00:02";
const PC: &str = "02:aa:00:00:00:05";

fn config(extra: &str) -> String {
    Office::new()
        .neighbor("192.168.1.5", PC, "lan")
        .config(&format!(
            r#"{extra}
[firewall]
rules = """
*nat
-A POSTROUTING -o wan -j MASQUERADE
COMMIT
*filter
:FORWARD DROP [0:0]
-A FORWARD -m conntrack --ctstate INVALID -j DROP
-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A FORWARD -i lan -p udp --dport 53 -j ACCEPT
-A FORWARD -i lan -p tcp --dport 80 -j ACCEPT
COMMIT
"""
"#
        ))
}

/// `f` with its transport checksum (at `at` from the start of L4) wrong.
fn spoil(mut f: Vec<u8>, at: usize) -> Vec<u8> {
    let l4 = 14 + usize::from(f[14] & 0xf) * 4 + at;
    f[l4] ^= 0x12;
    f[l4 + 1] ^= 0x34;
    f
}

fn frames() -> Vec<(f64, Vec<u8>)> {
    let syn = tcp4_seg(
        mac(PC),
        mac(GW_LAN),
        "192.168.1.5",
        "198.51.100.7",
        40001,
        80,
        1000,
        0,
        "S",
        b"",
    );
    let dns = udp4(
        mac(PC),
        mac(GW_LAN),
        &[],
        "192.168.1.5",
        "198.51.100.53",
        64,
        5000,
        53,
        b"q",
    );
    vec![
        (0.0, spoil(syn.clone(), 16)),
        (0.1, spoil(dns.clone(), 6)),
        (0.2, syn),
        (0.3, dns),
    ]
}

#[test]
fn wrong_checksums_are_invalid_as_in_linux() {
    let o = run("csum_on", &config(""), &[("lan", frames())]);
    let out: Vec<String> = o.frames("wan").iter().map(|f| flow4(f)).collect();
    assert_eq!(
        out.len(),
        2,
        "only the good SYN and datagram leave: {out:?}"
    );
    let invalid: Vec<&str> = o
        .trace
        .lines()
        .filter(|l| l.contains("filter-fwd") && l.contains("drop (rule line"))
        .collect();
    assert_eq!(invalid.len(), 2, "{}", o.trace);
}

/// What leaves the WAN port when the LAN sends `frames` to a worker on
/// `config` (frames not checked: the spoiled ones stay spoiled).
fn through(config: &str, frames: &[(f64, Vec<u8>)]) -> Vec<String> {
    let mut w = memory_worker(config);
    let refs: Vec<&[u8]> = frames.iter().map(|(_, f)| f.as_slice()).collect();
    // Port 1 is the LAN device (eth1), port 0 the WAN.
    w.receive(1, &refs, 1_000_000_000).unwrap();
    let mut out = Vec::new();
    w.drain(|port, f| {
        if port == 0 {
            out.push(flow4(f));
        }
    });
    out
}

#[test]
fn the_check_can_be_turned_off() {
    let on = through(&config(""), &frames());
    assert_eq!(on.len(), 2, "{on:?}");
    // Off: the spoiled SYN and datagram are NEW, accepted, forwarded (the
    // receiver will drop them), as with nf_conntrack_checksum=0.
    let off = through(&config("[conntrack]\nchecksum = false\n"), &frames());
    assert_eq!(off.len(), 4, "{off:?}");
    let bad = xgate_control::parse(&config("[conntrack]\nchecksum = 1\n"), "gw.toml").unwrap_err();
    assert!(format!("{bad:?}").contains("true or false"), "{bad:?}");
}

/// A later fragment at byte 8 of a TCP datagram would rewrite its ports
/// and flags after the filter judged the first fragment (RFC 1858): it is
/// dropped as `fragment_overlap`; one at byte 24 is not.
#[test]
fn fragments_over_the_tcp_header_are_dropped() {
    let frag = |offset_units: u16| {
        let mut f = tcp4_seg(
            mac(PC),
            mac(GW_LAN),
            "192.168.1.5",
            "198.51.100.7",
            40001,
            80,
            1000,
            0,
            "S",
            b"0123456789abcdef",
        );
        // More fragments: 0, offset in 8-byte units.
        f[20..22].copy_from_slice(&offset_units.to_be_bytes());
        fix_ipv4_checksum(&mut f[14..34]);
        f
    };
    let o = run(
        "frag_overlap",
        &config(""),
        &[("lan", vec![(0.0, frag(1)), (0.1, frag(3))])],
    );
    assert_eq!(o.drops("fragment_overlap"), 1, "{:?}", o.report.drops);
}
