//! Source validation as Linux's fib_validate_source: a packet received
//! with one of the router's addresses as its source is a martian, and
//! `rp_filter` (per interface: strict, loose, off) drops spoofed sources
//! that the way back does not reach.

mod common;
use common::*;

const GW_LAN: &str = "02:00:00:00:00:02";
const GW_WAN: &str = "02:00:00:00:00:01";
const PC: &str = "02:aa:00:00:00:05";
const UPSTREAM: &str = "02:bb:00:00:00:01";

fn config(lan_rp: &str) -> String {
    let cfg = Office::new().neighbor("192.168.1.5", PC, "lan").config("");
    // The lan interface's section ends before the default route.
    cfg.replace(
        "address = [\"192.168.1.1/24\"]\n",
        &format!("address = [\"192.168.1.1/24\"]\nrp_filter = {lan_rp:?}\n"),
    )
}

fn from_lan(src: &str) -> Vec<u8> {
    udp4(
        mac(PC),
        mac(GW_LAN),
        &[],
        src,
        "198.51.100.7",
        64,
        4000,
        53,
        b"q",
    )
}

fn from_wan(src: &str) -> Vec<u8> {
    udp4(
        mac(UPSTREAM),
        mac(GW_WAN),
        &[],
        src,
        "192.168.1.5",
        64,
        4000,
        53,
        b"q",
    )
}

fn outcome(lan_rp: &str, name: &str) -> (usize, u64, u64) {
    let o = run(
        name,
        &config(lan_rp),
        &[
            (
                "lan",
                vec![
                    (0.0, from_lan("192.168.1.5")),
                    // Spoofed: an outside address, arriving from the LAN.
                    (0.1, from_lan("198.51.100.99")),
                    // The router's own LAN address as source.
                    (0.2, from_lan("192.168.1.1")),
                ],
            ),
            // The router's WAN address as source, from outside.
            ("wan", vec![(0.3, from_wan("203.0.113.2"))]),
        ],
    );
    (
        o.frames("wan").len(),
        o.drops("rp_filter"),
        o.drops("martian_source"),
    )
}

#[test]
fn own_addresses_as_sources_are_martians() {
    let (out, rp, martian) = outcome("off", "rp_off");
    assert_eq!(
        (out, rp, martian),
        (2, 0, 2),
        "off: the spoofed packet passes"
    );
}

#[test]
fn strict_drops_spoofed_sources_and_loose_does_not_with_a_default_route() {
    let (out, rp, martian) = outcome("strict", "rp_strict");
    assert_eq!((out, rp, martian), (1, 1, 2));
    // Loose: 198.51.100.99 is reachable (the default route), so it passes.
    let (out, rp, _) = outcome("loose", "rp_loose");
    assert_eq!((out, rp), (2, 0));
    let bad = xgate_control::parse(&config("sometimes"), "gw.toml").unwrap_err();
    assert!(
        format!("{bad:?}").contains("\\\"strict\\\", \\\"loose\\\" or \\\"off\\\""),
        "{bad:?}"
    );
}

/// Forwarded of the LAN's two probes (genuine, spoofed) under `fw`.
fn forwarded(fw: &str, name: &str) -> usize {
    let cfg = format!("{}{fw}", config("off"));
    let o = run(
        name,
        &cfg,
        &[(
            "lan",
            vec![
                (0.0, from_lan("192.168.1.5")),
                (0.1, from_lan("198.51.100.99")),
            ],
        )],
    );
    o.frames("wan").len()
}

#[test]
fn rpfilter_match_and_nft_fib_drop_spoofed_sources() {
    for (fw, want) in [
        (
            "[firewall]\nrules = \"\"\"\n*raw\n-A PREROUTING -m rpfilter --invert -j DROP\nCOMMIT\n\"\"\"\n",
            1,
        ),
        // Loose: a route back exists (the default route).
        (
            "[firewall]\nrules = \"\"\"\n*raw\n-A PREROUTING -m rpfilter --loose --invert -j DROP\nCOMMIT\n\"\"\"\n",
            2,
        ),
        (
            "[firewall]\nnft = \"\"\"\ntable inet raw {\n chain pre {\n  type filter hook prerouting priority raw;\n  fib saddr . mark . iif oif missing drop\n }\n}\n\"\"\"\n",
            1,
        ),
        (
            "[firewall]\nnft = \"\"\"\ntable inet f {\n chain pre {\n  type filter hook prerouting priority -150;\n  fib saddr . iif oif exists accept\n  drop\n }\n}\n\"\"\"\n",
            1,
        ),
    ] {
        assert_eq!(forwarded(fw, "rpf_match"), want, "{fw}");
    }
    let cfg = format!(
        "{}[firewall]\nrules = \"\"\"\n*filter\n-A FORWARD -m rpfilter -j ACCEPT\nCOMMIT\n\"\"\"\n",
        config("off")
    );
    let e = xgate_control::parse(&cfg, "gw.toml")
        .map(|c| {
            format!(
                "{:?}",
                xgate_control::compile::compile(&c, &|_, _| None).err()
            )
        })
        .unwrap_or_else(|e| format!("{e:?}"));
    assert!(e.contains("PREROUTING only"), "{e}");
}
