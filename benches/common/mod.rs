//! What the benches share: the real RIB, a fixed random stream, frames
//! and the stateful gateway's config.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::IpAddr;

pub const RIB: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/data/routes/ipasn6_20151101.dat.gz"
);

/// The RIB as (prefix, length, next hop = origin AS mod 16).
pub struct Rib {
    pub v4: Vec<(u32, u8, u32)>,
    pub v6: Vec<(u128, u8, u32)>,
}

pub fn load_rib() -> Rib {
    load_rib_head(usize::MAX)
}

/// The RIB read until it gave `limit` IPv4 prefixes (the file is sorted,
/// so this is a fixed, quickly loaded subset).
pub fn load_rib_head(limit: usize) -> Rib {
    let file = std::fs::File::open(RIB).unwrap_or_else(|e| panic!("{RIB}: {e}"));
    let mut rib = Rib {
        v4: Vec::new(),
        v6: Vec::new(),
    };
    for line in BufReader::new(flate2::read::GzDecoder::new(file)).lines() {
        if rib.v4.len() >= limit {
            break;
        }
        let line = line.expect("read RIB");
        if line.starts_with(';') || line.is_empty() {
            continue;
        }
        let (net, asn) = line.split_once('\t').expect("prefix<TAB>AS");
        let (addr, len) = net.split_once('/').expect("prefix/len");
        let nh = asn.parse::<u32>().expect("AS number") % 16;
        let len: u8 = len.parse().expect("prefix length");
        match addr.parse::<IpAddr>().expect("address") {
            IpAddr::V4(a) => rib.v4.push((u32::from(a), len, nh)),
            IpAddr::V6(a) => rib.v6.push((u128::from(a), len, nh)),
        }
    }
    rib
}

/// xorshift64*: a fixed, dependency-free stream of random numbers.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// A 64-byte frame on the wire is 60 bytes without its FCS.
pub const FRAME_LEN: usize = 60;

/// A 60-byte Ethernet/IPv4/UDP frame from 02:aa:00:00:00:05 to `dst_mac`
/// (addresses as host-order `u32`, no UDP checksum, padding 0x5a).
pub fn udp_frame(dst_mac: [u8; 6], src: u32, sport: u16, dst: u32, dport: u16) -> [u8; FRAME_LEN] {
    let mut f = [0x5au8; FRAME_LEN];
    f[..6].copy_from_slice(&dst_mac);
    f[6..12].copy_from_slice(&[2, 0xaa, 0, 0, 0, 5]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let ip = &mut f[14..34];
    ip.fill(0);
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&46u16.to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&src.to_be_bytes());
    ip[16..20].copy_from_slice(&dst.to_be_bytes());
    let c = xgate_dataplane::packet::checksum::checksum(ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&dport.to_be_bytes());
    f[38..40].copy_from_slice(&26u16.to_be_bytes());
    f[40..42].copy_from_slice(&[0, 0]);
    f
}

/// A port that transmits into the void; the benches hand the pipeline
/// its rx bursts themselves.
pub struct BenchPort;

impl xgate_dataplane::io::Port for BenchPort {
    fn rx_burst(&mut self, _out: &mut [xgate_dataplane::io::Desc]) -> usize {
        0
    }
    fn tx_burst(&mut self, _umem: &mut [u8], descs: &[xgate_dataplane::io::Desc]) -> usize {
        descs.len()
    }
    fn service(&mut self, _umem: &mut [u8], _pool: &mut xgate_dataplane::io::FramePool) {}
}

/// False when the command line's filter excludes bench `group/name`, so
/// that costly set-ups (a 606k-route table, a million connections) are
/// not built for nothing. The filter is the positional argument (numbers
/// are option values); with `--exact` it must equal the whole name.
pub fn selected(group: &str, name: &str) -> bool {
    let full = format!("{group}/{name}");
    let positional = |a: &String| !a.starts_with('-') && a.parse::<f64>().is_err();
    let exact = std::env::args().any(|a| a == "--exact");
    match std::env::args().skip(1).rfind(positional) {
        Some(f) if exact => full == f,
        Some(f) => full.contains(&f),
        None => true,
    }
}

/// The gateway the stateful benches run: masquerade out of `wan`, FORWARD
/// policy DROP with INVALID dropped and ESTABLISHED accepted, then
/// `forward` (more FORWARD rules, one per line), then `-i lan -o wan`
/// accepted; a connection table of `flows`.
pub fn gateway_config(flows: usize, forward: &str) -> String {
    format!(
        r#"
[dataplane]
flows = {flows}

[[interface]]
name = "wan"
device = "eth0"
mac = "02:00:00:00:00:01"
address = ["203.0.113.2/24"]

[[interface]]
name = "lan"
device = "eth1"
mac = "02:00:00:00:00:02"
address = ["10.0.0.1/8"]

[[route]]
to = "0.0.0.0/0"
via = "203.0.113.1"

[[neighbor]]
ip = "203.0.113.1"
mac = "02:bb:00:00:00:01"
dev = "wan"

[firewall]
rules = """
*nat
-A POSTROUTING -o wan -j MASQUERADE
COMMIT
*filter
:FORWARD DROP [0:0]
-A FORWARD -m conntrack --ctstate INVALID -j DROP
-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
{forward}-A FORWARD -i lan -o wan -j ACCEPT
COMMIT
"""
"#
    )
}
