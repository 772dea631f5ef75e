//! TCP window tracking through the whole pipeline (Linux's
//! `tcp_in_window` with `nf_conntrack_tcp_be_liberal=0`): under
//! `--ctstate INVALID -j DROP`, a data segment far beyond the receiver's
//! window and a reset outside the window are dropped, while the
//! connection's ordinary traffic (a retransmission, a window-scaled bulk
//! transfer beyond 64 KiB unacknowledged) passes. The two probes are
//! tests/diff_linux.rs's "conntrack-invalid" #4 and #5.

mod common;
use common::*;
use etherparse::{PacketBuilder, TcpOptionElement};

const GW_WAN: &str = "02:00:00:00:00:01";
const GW_LAN: &str = "02:00:00:00:00:02";
const UPSTREAM: &str = "02:bb:00:00:00:01";
const HOST: &str = "02:aa:00:00:00:10";
const SERVER: &str = "198.51.100.7";

fn config(extra: &str) -> String {
    Office::new()
        .neighbor("192.168.1.10", HOST, "lan")
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
-A FORWARD -i lan -o wan -j ACCEPT
COMMIT
"""
"#
        ))
}

/// A segment: from the inside host (`out`) to the server, or back to the
/// masquerading address (port preserved).
#[allow(clippy::too_many_arguments)]
fn seg(
    out: bool,
    port: u16,
    seq: u32,
    ack: u32,
    flags: &str,
    win: u16,
    wscale: Option<u8>,
    payload: &[u8],
) -> Vec<u8> {
    let b = if out {
        PacketBuilder::ethernet2(mac(HOST), mac(GW_LAN))
            .ipv4(ip4("192.168.1.10"), ip4(SERVER), 64)
            .tcp(port, 80, seq, win)
    } else {
        PacketBuilder::ethernet2(mac(UPSTREAM), mac(GW_WAN))
            .ipv4(ip4(SERVER), ip4("203.0.113.2"), 60)
            .tcp(80, port, seq, win)
    };
    let mut b = b;
    for f in flags.chars() {
        b = match f {
            'S' => b.syn(),
            'A' => b.ack(ack),
            'F' => b.fin(),
            'R' => b.rst(),
            'P' => b.psh(),
            _ => panic!("flag {f}"),
        };
    }
    if let Some(w) = wscale {
        b = b
            .options(&[TcpOptionElement::Noop, TcpOptionElement::WindowScale(w)])
            .unwrap();
    }
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

fn seqs(frames: &[Vec<u8>]) -> Vec<(u32, usize)> {
    frames
        .iter()
        .map(|f| {
            let l3 = l3_of(f);
            let tcp = &l3[usize::from(l3[0] & 0xf) * 4..];
            (
                u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]),
                tcp_payload(f).len(),
            )
        })
        .collect()
}

#[test]
fn out_of_window_data_and_reset_are_invalid() {
    let p = 40230;
    let far = 1001u32.wrapping_add(1 << 30);
    let lan = vec![
        (0.00, seg(true, p, 1000, 0, "S", 64240, None, b"")),
        (0.02, seg(true, p, 1001, 5001, "A", 64240, None, b"")),
        (0.03, seg(true, p, 1001, 5001, "PA", 64240, None, b"hello")),
        // Probe 4: a quarter of the sequence space ahead.
        (0.04, seg(true, p, far, 5001, "PA", 64240, None, b"far")),
        (0.06, seg(true, p, 1006, 5001, "PA", 64240, None, b"more")),
        // A retransmission of data already sent passes.
        (0.07, seg(true, p, 1001, 5001, "PA", 64240, None, b"hello")),
    ];
    let wan = vec![
        (0.01, seg(false, p, 5000, 1001, "SA", 65535, None, b"")),
        // Probe 5: a reset far outside the server's window.
        (0.05, seg(false, p, 5001 + (1 << 30), 0, "R", 0, None, b"")),
        (0.08, seg(false, p, 5001, 1010, "A", 65535, None, b"")),
        // The real reset, where the server's data ends, closes.
        (0.10, seg(false, p, 5001, 0, "R", 0, None, b"")),
    ];
    let o = run("window-probes", &config(""), &[("lan", lan), ("wan", wan)]);
    assert_eq!(
        seqs(&o.frames("wan")),
        vec![(1000, 0), (1001, 0), (1001, 5), (1006, 4), (1001, 5)],
        "the far segment is dropped, the rest passes"
    );
    assert_eq!(
        seqs(&o.frames("lan")),
        vec![(5000, 0), (5001, 0), (5001, 0)],
        "the reset out of window is dropped"
    );
    // INVALID packets get no NAT: the reset, to the masquerading address
    // itself, is then the router's own and finds no listener.
    assert_eq!(o.drops("filter_forward"), 1, "{}", o.report.summary());
    assert_eq!(o.drops("local_no_listener"), 1, "{}", o.report.summary());
}

#[test]
fn liberal_passes_out_of_window() {
    let p = 40231;
    let lan = vec![
        (0.00, seg(true, p, 1000, 0, "S", 64240, None, b"")),
        (0.02, seg(true, p, 1001, 5001, "A", 64240, None, b"")),
        (
            0.04,
            seg(true, p, 1001 + (1 << 30), 5001, "PA", 64240, None, b"far"),
        ),
    ];
    let wan = vec![(0.01, seg(false, p, 5000, 1001, "SA", 65535, None, b""))];
    let o = run(
        "window-liberal",
        &config("[conntrack]\ntcp_be_liberal = true\n"),
        &[("lan", lan), ("wan", wan)],
    );
    assert_eq!(o.frames("wan").len(), 3);
}

#[test]
fn window_scaled_bulk_transfer_passes() {
    let p = 40232;
    let mut lan = vec![
        (0.00, seg(true, p, 1000, 0, "S", 64240, Some(7), b"")),
        (0.02, seg(true, p, 1001, 5001, "A", 502, None, b"")),
    ];
    // 150 segments of 1400 bytes, 210000 bytes unacknowledged: beyond
    // any unscaled window, inside the server's 2048 << 7.
    let chunk = vec![0x5a; 1400];
    let mut seq = 1001u32;
    for i in 0..150 {
        lan.push((
            0.1 + f64::from(i) * 0.001,
            seg(true, p, seq, 5001, "PA", 502, None, &chunk),
        ));
        seq += 1400;
    }
    let wan = vec![
        (0.01, seg(false, p, 5000, 1001, "SA", 65535, Some(7), b"")),
        (0.03, seg(false, p, 5001, 1001, "A", 2048, None, b"")),
        (0.5, seg(false, p, 5001, seq, "A", 2048, None, b"")),
    ];
    let o = run("window-scaled", &config(""), &[("lan", lan), ("wan", wan)]);
    assert_eq!(o.frames("wan").len(), 152, "{}", o.report.summary());
    assert_eq!(o.frames("lan").len(), 3);

    // Without the scale options the same burst overruns the window.
    let p = 40233;
    let mut lan = vec![
        (0.00, seg(true, p, 1000, 0, "S", 64240, None, b"")),
        (0.02, seg(true, p, 1001, 5001, "A", 502, None, b"")),
    ];
    let mut seq = 1001u32;
    for i in 0..150 {
        lan.push((
            0.1 + f64::from(i) * 0.001,
            seg(true, p, seq, 5001, "PA", 502, None, &chunk),
        ));
        seq += 1400;
    }
    let wan = vec![
        (0.01, seg(false, p, 5000, 1001, "SA", 65535, None, b"")),
        (0.03, seg(false, p, 5001, 1001, "A", 2048, None, b"")),
    ];
    let o = run(
        "window-unscaled",
        &config(""),
        &[("lan", lan), ("wan", wan)],
    );
    let passed = o.frames("wan").len();
    assert!(passed < 152 && passed > 2, "{passed}");
}
