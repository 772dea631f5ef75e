//! IPv4 options on the forwarding path, as a Linux router takes them
//! (`ip_options_compile`, `ip_rcv_options` with the default
//! `accept_source_route=0`): options that are not whole are dropped
//! (`ipv4_bad_options`), a loose or strict source route is dropped
//! (`ipv4_source_route`: the sender may not steer its packet through the
//! router), and well-formed options such as record route pass.

mod common;
use common::*;

const HOST: &str = "02:aa:00:00:00:10";
const GW_LAN: &str = "02:00:00:00:00:02";

/// A LAN -> WAN UDP datagram carrying `opts` (padded to 4 bytes) after the
/// fixed IPv4 header, with lengths and header checksum fixed.
fn with_options(opts: &[u8]) -> Vec<u8> {
    let mut f = udp4(
        mac(HOST),
        mac(GW_LAN),
        &[],
        "192.168.1.10",
        "198.51.100.7",
        64,
        5000,
        53,
        b"options",
    );
    let mut o = opts.to_vec();
    o.resize(opts.len().div_ceil(4) * 4, 0);
    f.splice(14 + 20..14 + 20, o.iter().copied());
    let ip = &mut f[14..];
    ip[0] = 0x40 | (5 + o.len() / 4) as u8;
    let total = u16::from_be_bytes([ip[2], ip[3]]) as usize + o.len();
    ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    fix_ipv4_checksum(ip);
    f
}

#[test]
fn source_routes_and_broken_options_are_dropped_others_forwarded() {
    let cfg = Office::new()
        .neighbor("192.168.1.10", HOST, "lan")
        .config("");
    let rr = with_options(&[7, 7, 4, 0, 0, 0, 0]);
    let nop_eol = with_options(&[1, 1, 0]);
    let lsrr = with_options(&[131, 7, 4, 10, 9, 9, 9]);
    let ssrr = with_options(&[1, 137, 7, 4, 10, 9, 9, 9]);
    let cut = with_options(&[7, 40, 4]);
    let zero_len = with_options(&[68, 0, 0, 0]);
    let o = run(
        "ip_options",
        &cfg,
        &[(
            "lan",
            vec![
                (1.0, rr),
                (1.1, nop_eol),
                (1.2, lsrr),
                (1.3, ssrr),
                (1.4, cut),
                (1.5, zero_len),
            ],
        )],
    );
    let wan = o.frames("wan");
    assert_eq!(wan.len(), 2, "{}", o.report.summary());
    for f in &wan {
        verify_frame(f, true).unwrap();
    }
    assert_eq!(o.drops("ipv4_source_route"), 2);
    assert_eq!(o.drops("ipv4_bad_options"), 2);
}
