//! LPM correctness on a real BGP RIB (shared/data/routes: 606k IPv4 and
//! 27.7k IPv6 prefixes from 2015-11-01, next hop = origin AS mod 16) against
//! an independent model: one hash map per prefix length, probed from the
//! longest length down.
//!
//! Checks random addresses, addresses inside random announced prefixes and
//! the edges of prefixes; then deletes a seventh of the table incrementally,
//! checks again (covering prefixes must reappear), and re-adds it. The IPv4
//! RIB also goes into a `RouteTable` (16 gateways): its forwarding entries
//! must be shared (16) and its slow path must name the model's prefix.
//!
//! The RIB is found beside the repository (`../shared` from the workspace
//! root), or at `$XGATE_RIB`.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{BufRead, BufReader};
use std::net::IpAddr;

use xgate_dataplane::route::{Lpm4, Lpm6, NextHop, Route, RouteTable, RouteType};

const RIB: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/routes/ipasn6_20151101.dat.gz"
);

struct Rib {
    v4: Vec<(u32, u8, u32)>,
    v6: Vec<(u128, u8, u32)>,
}

fn load_rib() -> Rib {
    let path = std::env::var("XGATE_RIB").unwrap_or_else(|_| RIB.to_string());
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("RIB {path}: {e}"));
    let mut rib = Rib {
        v4: Vec::new(),
        v6: Vec::new(),
    };
    for (n, line) in BufReader::new(flate2::read::GzDecoder::new(file))
        .lines()
        .enumerate()
    {
        let line = line.expect("read RIB");
        if line.starts_with(';') || line.is_empty() {
            continue;
        }
        let bad = || panic!("{path}:{}: bad line {line:?}", n + 1);
        let Some((net, asn)) = line.split_once('\t') else {
            bad()
        };
        let Some((addr, len)) = net.split_once('/') else {
            bad()
        };
        let (Ok(addr), Ok(len), Ok(asn)) = (
            addr.parse::<IpAddr>(),
            len.parse::<u8>(),
            asn.parse::<u32>(),
        ) else {
            bad()
        };
        match addr {
            IpAddr::V4(a) => rib.v4.push((u32::from(a), len, asn % 16)),
            IpAddr::V6(a) => rib.v6.push((u128::from(a), len, asn % 16)),
        }
    }
    rib
}

/// xorshift64*: reproducible random numbers without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A multiplicative hash for the model's integer keys: SipHash dominates
/// the test's run time in debug builds.
#[derive(Default)]
struct MulHash(u64);

impl Hasher for MulHash {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u32(&mut self, x: u32) {
        self.write_u64(u64::from(x));
    }

    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(29) ^ x).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn write_u128(&mut self, x: u128) {
        self.write_u64(x as u64);
        self.write_u64((x >> 64) as u64);
    }

    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 32)
    }
}

type Map<T> = HashMap<T, u32, BuildHasherDefault<MulHash>>;

/// The model: `maps[len]` holds prefix -> value; a lookup masks the address
/// for every length from the longest down.
struct Model<T> {
    maps: Vec<Map<T>>,
}

impl Model<u32> {
    fn mask(len: usize) -> u32 {
        if len == 0 { 0 } else { u32::MAX << (32 - len) }
    }

    fn lookup(&self, a: u32) -> Option<u32> {
        self.longest(a).map(|(_, _, v)| v)
    }

    /// The longest prefix containing `a`: (prefix, len, value).
    fn longest(&self, a: u32) -> Option<(u32, u8, u32)> {
        (0..=32).rev().find_map(|l| {
            let p = a & Self::mask(l);
            self.maps[l].get(&p).map(|&v| (p, l as u8, v))
        })
    }
}

impl Model<u128> {
    fn mask(len: usize) -> u128 {
        if len == 0 {
            0
        } else {
            u128::MAX << (128 - len)
        }
    }

    fn lookup(&self, a: u128) -> Option<u32> {
        // Only lengths that occur: 128 probes per address would be slow in
        // debug builds.
        self.maps
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, m)| !m.is_empty())
            .find_map(|(l, m)| m.get(&(a & Self::mask(l))).copied())
    }
}

#[test]
fn ipv4_full_rib_matches_model() {
    let rib = load_rib();
    assert_eq!(rib.v4.len(), 606_138, "IPv4 prefixes in the RIB");

    let mut model = Model {
        maps: vec![Map::default(); 33],
    };
    let mut t = Lpm4::new();
    for &(p, l, v) in &rib.v4 {
        assert_eq!(
            p & !Model::<u32>::mask(l as usize),
            0,
            "RIB prefix {p:#x}/{l} has host bits"
        );
        let old = model.maps[l as usize].insert(p, v);
        assert_eq!(t.insert(p, l, v), old);
    }
    let distinct: usize = model.maps.iter().map(Map::len).sum();
    assert_eq!(t.len(), distinct);

    let mut rng = Rng(0x5eed_0004);
    let mut addrs: Vec<u32> = (0..100_000).map(|_| rng.next() as u32).collect();
    // Inside random prefixes, and their first and last addresses.
    for _ in 0..60_000 {
        let (p, l, _) = rib.v4[rng.below(rib.v4.len())];
        let host = !Model::<u32>::mask(l as usize);
        addrs.push(p | (rng.next() as u32 & host));
        if rng.below(4) == 0 {
            addrs.extend([p, p | host, p.wrapping_sub(1), (p | host).wrapping_add(1)]);
        }
    }
    let check = |t: &Lpm4, model: &Model<u32>, addrs: &[u32]| {
        let mut out = vec![None; addrs.len()];
        t.lookup_batch(addrs, &mut out);
        let mut hits = 0;
        for (&a, &o) in addrs.iter().zip(&out) {
            let want = model.lookup(a);
            assert_eq!(t.lookup(a), want, "lookup {}", std::net::Ipv4Addr::from(a));
            assert_eq!(o, want, "lookup_batch {}", std::net::Ipv4Addr::from(a));
            hits += usize::from(want.is_some());
        }
        hits
    };
    let hits = check(&t, &model, &addrs);
    assert!(hits > addrs.len() / 2, "most addresses are routed ({hits})");

    // Incremental delete: every 7th prefix. Addresses inside them must fall
    // back to their covering prefixes.
    let removed: Vec<(u32, u8, u32)> = rib.v4.iter().copied().step_by(7).collect();
    for &(p, l, _) in &removed {
        let want = model.maps[l as usize].remove(&p);
        assert_eq!(t.remove(p, l), want);
    }
    assert_eq!(t.len(), distinct - removed.len());
    let mut around: Vec<u32> = removed
        .iter()
        .step_by(4)
        .map(|&(p, l, _)| p | (rng.next() as u32 & !Model::<u32>::mask(l as usize)))
        .collect();
    around.extend(addrs.iter().step_by(4));
    check(&t, &model, &around);

    // And back.
    for &(p, l, v) in &removed {
        model.maps[l as usize].insert(p, v);
        assert_eq!(t.insert(p, l, v), None);
    }
    check(&t, &model, &around);
}

/// The RIB as routes of table main: 606k prefixes, 16 gateways, so 16
/// forwarding entries; hot and slow path agree with the model.
#[test]
fn route_table_full_rib_shares_entries() {
    let rib = load_rib();
    let gw = |nh: u32| IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1 + nh as u8));
    let route = |p: u32, l: u8, nh: u32| Route {
        prefix: IpAddr::V4(p.into()),
        len: l,
        metric: 0,
        rtype: RouteType::Unicast,
        nexthops: vec![NextHop {
            via: Some(gw(nh)),
            dev: 1,
            weight: 1,
        }],
    };
    let mut model = Model {
        maps: vec![Map::default(); 33],
    };
    let mut t = RouteTable::new();
    for &(p, l, nh) in &rib.v4 {
        model.maps[l as usize].insert(p, nh);
        t.replace(route(p, l, nh));
    }
    let distinct: usize = model.maps.iter().map(Map::len).sum();
    assert_eq!(t.len(), distinct);
    assert_eq!(t.entries(), 16, "one entry per gateway");

    let mut rng = Rng(0x5eed_0007);
    let mut addrs: Vec<u32> = (0..30_000).map(|_| rng.next() as u32).collect();
    for _ in 0..30_000 {
        let (p, l, _) = rib.v4[rng.below(rib.v4.len())];
        addrs.push(p | (rng.next() as u32 & !Model::<u32>::mask(l as usize)));
    }
    let check = |t: &RouteTable, model: &Model<u32>| {
        for &a in &addrs {
            let want = model.longest(a);
            let hot = t.lookup_v4(a);
            let slow = t.route_v4(a);
            let ip = std::net::Ipv4Addr::from(a);
            assert_eq!(
                hot.and_then(|e| e.nexthop(a)).and_then(|n| n.via),
                want.map(|(_, _, nh)| gw(nh)),
                "lookup {ip}"
            );
            assert_eq!(
                slow.map(|(r, _)| (r.prefix, r.len)),
                want.map(|(p, l, _)| (IpAddr::V4(p.into()), l)),
                "route {ip}"
            );
            assert_eq!(hot, slow.map(|(_, e)| e), "entry {ip}");
        }
    };
    check(&t, &model);

    // Delete a seventh, re-point another seventh to gateway 0, check.
    for &(p, l, _) in rib.v4.iter().step_by(7) {
        if model.maps[l as usize].remove(&p).is_some() {
            t.del(IpAddr::V4(p.into()), l, None).expect("route present");
        }
    }
    for &(p, l, _) in rib.v4.iter().skip(3).step_by(7) {
        if let Some(v) = model.maps[l as usize].get_mut(&p) {
            *v = 0;
            t.replace(route(p, l, 0));
        }
    }
    check(&t, &model);
    assert_eq!(t.entries(), 16);

    for &(p, l, _) in &rib.v4 {
        let _ = t.del(IpAddr::V4(p.into()), l, None);
    }
    assert!(t.is_empty());
    assert_eq!(t.entries(), 0);
}

#[test]
fn ipv6_full_rib_matches_model() {
    let rib = load_rib();
    assert_eq!(rib.v6.len(), 27_693, "IPv6 prefixes in the RIB");

    let mut model = Model {
        maps: vec![Map::default(); 129],
    };
    let mut t = Lpm6::new();
    for &(p, l, v) in &rib.v6 {
        assert_eq!(
            p & !Model::<u128>::mask(l as usize),
            0,
            "RIB prefix {p:#x}/{l} has host bits"
        );
        let old = model.maps[l as usize].insert(p, v);
        assert_eq!(t.insert(p, l, v), old);
    }
    let distinct: usize = model.maps.iter().map(Map::len).sum();
    assert_eq!(t.len(), distinct);

    let mut rng = Rng(0x5eed_0006);
    let r128 = |rng: &mut Rng| u128::from(rng.next()) << 64 | u128::from(rng.next());
    // Random addresses in 2000::/3 (mostly misses at the first level), then
    // addresses inside random prefixes and their edges.
    let mut addrs: Vec<u128> = (0..20_000)
        .map(|_| (0b001u128 << 125) | (r128(&mut rng) >> 3))
        .collect();
    for _ in 0..80_000 {
        let (p, l, _) = rib.v6[rng.below(rib.v6.len())];
        let host = !Model::<u128>::mask(l as usize);
        addrs.push(p | (r128(&mut rng) & host));
        if rng.below(4) == 0 {
            addrs.extend([p, p | host, p.wrapping_sub(1), (p | host).wrapping_add(1)]);
        }
    }
    let check = |t: &Lpm6, model: &Model<u128>, addrs: &[u128]| {
        let mut out = vec![None; addrs.len()];
        t.lookup_batch(addrs, &mut out);
        let mut hits = 0;
        for (&a, &o) in addrs.iter().zip(&out) {
            let want = model.lookup(a);
            assert_eq!(t.lookup(a), want, "lookup {}", std::net::Ipv6Addr::from(a));
            assert_eq!(o, want, "lookup_batch {}", std::net::Ipv6Addr::from(a));
            hits += usize::from(want.is_some());
        }
        hits
    };
    let hits = check(&t, &model, &addrs);
    assert!(hits > addrs.len() / 2, "most addresses are routed ({hits})");

    let removed: Vec<(u128, u8, u32)> = rib.v6.iter().copied().step_by(7).collect();
    for &(p, l, _) in &removed {
        let want = model.maps[l as usize].remove(&p);
        assert_eq!(t.remove(p, l), want);
    }
    assert_eq!(t.len(), distinct - removed.len());
    check(&t, &model, &addrs);
    for &(p, l, v) in &removed {
        model.maps[l as usize].insert(p, v);
        assert_eq!(t.insert(p, l, v), None);
    }
    check(&t, &model, &addrs);

    for &(p, l, _) in &rib.v6 {
        t.remove(p, l);
    }
    assert!(t.is_empty());
    assert_eq!(t.lookup(rib.v6[0].0), None);
}
