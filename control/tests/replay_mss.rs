//! MSS clamping (iptables' TCPMSS, nftables' `tcp option maxseg size
//! set`): a forwarded SYN's MSS lowered to the value or to the egress
//! MTU's (1400 here: 1360 for IPv4), never raised, the checksum still
//! right (every frame `run` returns is verified).

mod common;
use common::*;
use etherparse::{PacketBuilder, TcpOptionElement};

const GW_LAN: &str = "02:00:00:00:00:02";
const PC: &str = "02:aa:00:00:00:05";

fn syn_with_mss(mss: u16, sport: u16) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(mac(PC), mac(GW_LAN))
        .ipv4(ip4("192.168.1.5"), ip4("198.51.100.7"), 64)
        .tcp(sport, 80, 1000, 64240)
        .syn()
        .options(&[
            TcpOptionElement::Noop,
            TcpOptionElement::MaximumSegmentSize(mss),
            TcpOptionElement::SelectiveAcknowledgementPermitted,
            TcpOptionElement::Noop,
        ])
        .unwrap()
        .write(&mut out, &[])
        .unwrap();
    out
}

fn mss_of(frame: &[u8]) -> Option<u16> {
    let l3 = l3_of(frame);
    let tcp = &l3[usize::from(l3[0] & 0xf) * 4..];
    let hl = usize::from(tcp[12] >> 4) * 4;
    let mut i = 20;
    while i < hl {
        match tcp[i] {
            0 => return None,
            1 => i += 1,
            2 => return Some(u16::from_be_bytes([tcp[i + 2], tcp[i + 3]])),
            _ => i += usize::from(tcp[i + 1]),
        }
    }
    None
}

fn clamped(fw: &str, name: &str) -> Vec<Option<u16>> {
    let cfg = Office::new()
        .wan_line("mtu = 1400")
        .neighbor("192.168.1.5", PC, "lan")
        .config(fw);
    let o = run(
        name,
        &cfg,
        &[(
            "lan",
            vec![
                (0.0, syn_with_mss(1460, 40001)),
                (0.1, syn_with_mss(1200, 40002)),
            ],
        )],
    );
    o.frames("wan").iter().map(|f| mss_of(f)).collect()
}

#[test]
fn tcpmss_and_nft_maxseg_clamp_forwarded_syns() {
    for (fw, want) in [
        (
            "[firewall]\nrules_v4 = \"\"\"\n*mangle\n-A FORWARD -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu\nCOMMIT\n*filter\nCOMMIT\n\"\"\"\nrules_v6 = \"*filter\\nCOMMIT\\n\"\n",
            [1360, 1200],
        ),
        (
            "[firewall]\nrules_v4 = \"\"\"\n*filter\n-A FORWARD -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --set-mss 1300\nCOMMIT\n\"\"\"\nrules_v6 = \"*filter\\nCOMMIT\\n\"\n",
            [1300, 1200],
        ),
        (
            "[firewall]\nnft = \"\"\"\ntable inet mangle {\n chain forward {\n  type filter hook forward priority mangle;\n  tcp flags syn tcp option maxseg size set rt mtu\n }\n}\n\"\"\"\n",
            [1360, 1200],
        ),
        (
            "[firewall]\nnft = \"\"\"\ntable ip f {\n chain forward {\n  type filter hook forward priority 0;\n  tcp flags syn tcp option maxseg size set 1250 accept\n }\n}\n\"\"\"\n",
            [1250, 1200],
        ),
    ] {
        let got = clamped(fw, "mss");
        assert_eq!(got, want.map(Some), "{fw}");
    }
}

#[test]
fn tcpmss_is_refused_where_xgate_does_not_run_it() {
    for (rules, needle) in [
        (
            "*filter\n-A INPUT -p tcp -j TCPMSS --set-mss 1300\nCOMMIT\n",
            "TCPMSS in INPUT",
        ),
        (
            "*filter\n-A FORWARD -j TCPMSS --set-mss 1300\nCOMMIT\n",
            "needs -p tcp",
        ),
        (
            "*filter\n-A FORWARD -p tcp -j TCPMSS\nCOMMIT\n",
            "one of --set-mss",
        ),
        (
            "*nat\n-A POSTROUTING -p tcp -j TCPMSS --set-mss 9\nCOMMIT\n",
            "tables filter and mangle",
        ),
    ] {
        let cfg = Office::new().config(&format!("[firewall]\nrules = \"\"\"\n{rules}\"\"\"\n"));
        let err = match xgate_control::parse(&cfg, "gw.toml") {
            Err(e) => format!("{e:?}"),
            Ok(c) => format!(
                "{:?}",
                xgate_control::compile::compile(&c, &|_, _| None).err()
            ),
        };
        assert!(err.contains(needle), "{rules}: {err}");
    }
}
