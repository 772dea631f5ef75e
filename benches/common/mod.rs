//! What the benches share: the real RIB and a fixed random stream.
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
