//! Replay: a DHCP client on the WAN tap. The server's unicast answers
//! (UDP 67 -> 68) to an address the interface does not have go to the
//! tap, where the client reads them from a packet socket as on Linux,
//! instead of being routed back out of the WAN (or dropped without a
//! route). Other traffic to such an address is routed as before.

mod common;
use common::*;

const GW_WAN: &str = "02:00:00:00:00:01";
const UPSTREAM: &str = "02:bb:00:00:00:01";

fn offer(dst: &str, sport: u16, dport: u16) -> Vec<u8> {
    udp4(
        mac(UPSTREAM),
        mac(GW_WAN),
        &[],
        "203.0.113.1",
        dst,
        64,
        sport,
        dport,
        b"DHCPOFFER",
    )
}

#[test]
fn dhcp_answers_to_an_offered_address_reach_the_wan_tap() {
    let cfg = Office::new().wan_line(r#"tap = "xg-wan""#).config("");
    // 203.0.113.50: on wan's subnet (a route back out of wan);
    // 100.64.0.50: only the default route, also out of wan.
    let on_link = offer("203.0.113.50", 67, 68);
    let default = offer("100.64.0.50", 67, 68);
    let not_dhcp = offer("203.0.113.51", 5000, 68);
    let o = run(
        "dhcp-client",
        &cfg,
        &[(
            "wan",
            vec![
                (1.0, on_link.clone()),
                (1.1, default.clone()),
                (1.2, not_dhcp),
            ],
        )],
    );
    let kernel = o.frames("xg-wan");
    assert_eq!(kernel, [on_link, default], "{}", o.report.summary());
    // The other datagram is routed as any: back out of wan (after ARP
    // for 203.0.113.51).
    assert!(!o.frames("wan").is_empty(), "{}", o.report.summary());
}

#[test]
fn without_a_tap_a_dhcp_answer_is_routed_as_before() {
    let cfg = Office::new()
        .neighbor("203.0.113.50", "02:cc:00:00:00:50", "wan")
        .config("");
    let on_link = offer("203.0.113.50", 67, 68);
    let o = run("dhcp-no-tap", &cfg, &[("wan", vec![(1.0, on_link)])]);
    let out = o.frames("wan");
    assert_eq!(out.len(), 1, "{}", o.report.summary());
    assert_eq!(
        &out[0][..6],
        &mac("02:cc:00:00:00:50"),
        "forwarded to the host"
    );
}
