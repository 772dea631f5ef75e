//! The whole pipeline over arbitrary frames, with a stateful config
//! (conntrack, masquerade, a port forward, FORWARD and INPUT rules with
//! states, REJECT, LOG, a VLAN interface, IPv6, and a VLAN-aware bridge
//! with br_netfilter and `-m physdev` whose ports are the trunk's untagged
//! side and a fourth device), fed with a clock.
//!
//! Input: records of `[flags][len lo][len hi][frame...]`. Flags bit 0-1:
//! the port (0 wan, 1 lan, 2 trunk, 3 bridge port); bit 2: fix the IPv4 header and
//! TCP/UDP/ICMP checksums before sending (so the fuzzer reaches the stages
//! after parse); bits 3-7: time step (x 100 ms).
//!
//! Invariants: no panic; every frame xgate transmits is a well-formed
//! Ethernet frame whose IPv4 header checksum is valid; no UMEM frame is
//! leaked once time has run past every neighbour and fragment timer.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::HashSet;
use std::sync::{Arc, OnceLock};
use xgate_dataplane::pipeline::Tables;
use xgate_control::{compile, replay};
use xgate_dataplane::io::memory::MemoryWorker;
use xgate_dataplane::packet::checksum;

const CONFIG: &str = r#"
[[interface]]
name = "wan"
device = "eth0"
mac = "02:00:00:00:00:01"
address = ["203.0.113.2/24", "2001:db8:1::2/64"]

[[interface]]
name = "lan"
device = "eth1"
mac = "02:00:00:00:00:02"
address = ["192.168.1.1/24", "2001:db8:2::1/64"]

[[interface]]
name = "guest"
device = "eth2"
vlan = 20
mac = "02:00:00:00:00:03"
address = ["10.20.0.1/24"]

[[bridge]]
name = "br0"
vlan_filtering = true
nf_call_iptables = true
nf_call_ip6tables = true
flood_rate = 1000
flood_burst = 50
fdb_max = 64
ports = [{ interface = "b1", vlans = [30] }, { interface = "b2", pvid = 30 }]

[[interface]]
name = "br0"
device = "br0"
address = ["10.31.0.1/24"]

[[interface]]
name = "br30"
device = "br0"
vlan = 30
address = ["10.30.0.1/24"]

[[interface]]
name = "b1"
device = "eth3"
mac = "02:00:00:00:00:04"

[[interface]]
name = "b2"
device = "eth2"
mac = "02:00:00:00:00:03"

[[route]]
to = "0.0.0.0/0"
via = "203.0.113.1"

[[route]]
to = "::/0"
via = "2001:db8:1::1"

[[neighbor]]
ip = "203.0.113.1"
mac = "02:bb:00:00:00:01"
dev = "wan"

[firewall]
rules = """
*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -i wan -p tcp --dport 8080 -j DNAT --to-destination 192.168.1.10:80
-A PREROUTING -i wan -p udp --dport 53 -j REDIRECT --to-ports 5353
-A POSTROUTING -o wan -j MASQUERADE
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:GUEST - [0:0]
-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A INPUT -p icmp -j ACCEPT
-A INPUT -p ipv6-icmp -j ACCEPT
-A INPUT -p tcp --dport 22 -j REJECT --reject-with tcp-reset
-A FORWARD -m conntrack --ctstate INVALID -j DROP
-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A FORWARD -i guest -j GUEST
-A FORWARD -i lan -o wan -j ACCEPT
-A FORWARD -m physdev --physdev-in b1 --physdev-out b2 -p tcp --dport 23 -j DROP
-A FORWARD -i br0 -o br0 -j ACCEPT
-A FORWARD -p tcp -d 192.168.1.10 --dport 80 -j ACCEPT
-A FORWARD -p udp -m multiport --dports 500,4500 -j LOG --log-prefix "ike "
-A FORWARD -j REJECT
-A GUEST -d 192.168.1.0/24 -j DROP
-A GUEST -o wan -j ACCEPT
-A GUEST -j RETURN
COMMIT
"""
"#;

/// A fresh worker (empty connection table, NAT ports and neighbours) on
/// tables compiled once: inputs are independent, so a crash reproduces
/// from its input alone.
fn worker() -> MemoryWorker {
    static COMPILED: OnceLock<(compile::Compiled, Arc<Tables>)> = OnceLock::new();
    let (compiled, tables) = COMPILED.get_or_init(|| {
        let cfg = xgate_control::parse(CONFIG, "fuzz.toml").expect("config");
        let tables = replay::compile_for_replay(&cfg).expect("compile").tables;
        let compiled = replay::compile_for_replay(&cfg).expect("compile");
        (compiled, Arc::new(tables))
    });
    let shared = Arc::new(compile::shared_state(compiled, 4096, Some(1)));
    MemoryWorker::new(tables.clone(), shared, 1024)
}

/// Fixes the IPv4 header checksum and the transport checksum of an
/// untagged or tagged IPv4 frame, as far as the frame holds them.
fn fix_checksums(f: &mut [u8]) {
    let Some(l3) = ipv4_start(f) else {
        return;
    };
    let ihl = usize::from(f[l3] & 0x0f) * 4;
    if ihl < 20 || f.len() < l3 + ihl {
        return;
    }
    f[l3 + 10] = 0;
    f[l3 + 11] = 0;
    let c = checksum::finish(checksum::sum(&f[l3..l3 + ihl], 0));
    f[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
    let total = usize::from(u16::from_be_bytes([f[l3 + 2], f[l3 + 3]]));
    let end = (l3 + total).min(f.len());
    if end <= l3 + ihl {
        return;
    }
    let proto = f[l3 + 9];
    let l4 = l3 + ihl;
    let at = match proto {
        6 => 16,
        17 => 6,
        1 => 2,
        _ => return,
    };
    if end < l4 + at + 2 {
        return;
    }
    f[l4 + at] = 0;
    f[l4 + at + 1] = 0;
    let mut s = checksum::sum(&f[l4..end], 0);
    if proto != 1 {
        let src: [u8; 4] = f[l3 + 12..l3 + 16].try_into().expect("4 bytes");
        let dst: [u8; 4] = f[l3 + 16..l3 + 20].try_into().expect("4 bytes");
        s += checksum::pseudo_v4(src, dst, proto, (end - l4) as u16);
    }
    let c = checksum::finish(s);
    f[l4 + at..l4 + at + 2].copy_from_slice(&c.to_be_bytes());
}

/// Where the IPv4 header of a frame starts, after all its tags (None: not
/// IPv4, or shorter than a minimal header).
fn ipv4_start(f: &[u8]) -> Option<usize> {
    let mut off = 12;
    while f.len() >= off + 2 && matches!(u16::from_be_bytes([f[off], f[off + 1]]), 0x8100 | 0x88a8)
    {
        off += 4;
    }
    (f.len() >= off + 2 + 20 && u16::from_be_bytes([f[off], f[off + 1]]) == 0x0800)
        .then_some(off + 2)
}

/// The IPv4 header of a frame after all its tags, as the bytes lie.
fn ipv4_header(frame: &[u8]) -> Option<&[u8]> {
    let ip = &frame[ipv4_start(frame)?..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    Some(&ip[..ihl.clamp(20, ip.len())])
}

/// What every transmitted frame must be: an Ethernet frame (tags
/// complete) whose IPv4 header, if it carries one, is whole and has a
/// valid checksum (the raw bytes are summed: header parsers drop the
/// reserved flag bit, which a router forwards as it came). Except a
/// header that arrived as it is (`seen`): a bridge carries what is not
/// IP to it unchanged, as Linux's does (an IPv4 packet inside a second
/// VLAN tag, with bridge-nf-filter-vlan-tagged off), and a router always
/// changes the TTL.
fn check_output(frame: &[u8], seen: &HashSet<Vec<u8>>) {
    if ipv4_header(frame).is_some_and(|h| seen.contains(h)) {
        return;
    }
    let hex = || frame.iter().map(|b| format!("{b:02x}")).collect::<String>();
    assert!(frame.len() >= 14, "runt frame out: {}", hex());
    let mut ty = u16::from_be_bytes([frame[12], frame[13]]);
    let mut off = 14;
    while matches!(ty, 0x8100 | 0x88a8) {
        assert!(frame.len() >= off + 4, "truncated tag out: {}", hex());
        ty = u16::from_be_bytes([frame[off + 2], frame[off + 3]]);
        off += 4;
    }
    if ty == 0x0800 {
        let ip = &frame[off..];
        assert!(ip.len() >= 20, "short IPv4 header out: {}", hex());
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        assert!(ip[0] >> 4 == 4 && ihl >= 20 && ip.len() >= ihl, "bad IPv4 header out: {}", hex());
        assert!(
            checksum::verify_ipv4_header(&ip[..ihl]),
            "bad IPv4 header checksum out: {}",
            hex()
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let mut w = worker();
    let mut now: u64 = 1_000_000_000;
    let mut rest = data;
    let mut buf = Vec::new();
    let mut seen = HashSet::new();
    while rest.len() >= 3 {
        let flags = rest[0];
        let len = usize::from(u16::from_le_bytes([rest[1], rest[2]])).min(rest.len() - 3);
        buf.clear();
        buf.extend_from_slice(&rest[3..3 + len]);
        rest = &rest[3 + len..];
        if flags & 4 != 0 {
            fix_checksums(&mut buf);
        }
        now += u64::from(flags >> 3) * 100_000_000;
        if let Some(h) = ipv4_header(&buf) {
            seen.insert(h.to_vec());
        }
        let port = u16::from(flags & 3);
        // A frame too large or too small for the UMEM is refused, not run.
        let _ = w.receive(port, &[&buf], now);
        w.drain(|_, f| check_output(f, &seen));
    }
    // Past every timer, a second at a time (neighbour requests repeat
    // once a second; a packet given up on can make an ICMP error that
    // waits for a neighbour in turn): nothing may stay held.
    for step in 1..=60 {
        w.tick(now + step * 1_000_000_000);
        w.drain(|_, f| check_output(f, &seen));
        if w.pipeline.pending_packets() == 0 && step > 5 {
            break;
        }
    }
    assert_eq!(w.pipeline.pending_packets(), 0, "packets held for ever");
    assert_eq!(w.frames_in_use(), 0, "UMEM frames leaked");
});
