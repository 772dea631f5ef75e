use super::*;

fn a(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn v4(s: &str) -> u32 {
    u32::from(s.parse::<Ipv4Addr>().unwrap())
}

fn nh(via: &str, dev: IfIndex) -> NextHop {
    NextHop {
        via: Some(a(via)),
        dev,
        weight: 1,
    }
}

fn unicast(prefix: &str, len: u8, metric: u32, nexthops: Vec<NextHop>) -> Route {
    Route {
        prefix: a(prefix),
        len,
        metric,
        rtype: RouteType::Unicast,
        nexthops,
    }
}

fn typed(prefix: &str, len: u8, rtype: RouteType) -> Route {
    Route {
        prefix: a(prefix),
        len,
        metric: 0,
        rtype,
        nexthops: vec![],
    }
}

fn via_of(t: &RouteTable, dst: &str) -> Option<IpAddr> {
    t.lookup(a(dst))
        .and_then(|e| e.nexthop(0))
        .and_then(|n| n.via)
}

#[test]
fn lowest_metric_is_active_and_del_reexposes_next() {
    let mut t = RouteTable::new();
    t.add(unicast("10.0.0.0", 8, 100, vec![nh("192.0.2.1", 1)]))
        .unwrap();
    t.add(unicast("10.0.0.0", 8, 50, vec![nh("192.0.2.2", 2)]))
        .unwrap();
    t.add(unicast("10.0.0.0", 8, 200, vec![nh("192.0.2.3", 3)]))
        .unwrap();
    t.add(unicast("0.0.0.0", 0, 0, vec![nh("192.0.2.254", 9)]))
        .unwrap();
    assert_eq!(t.len(), 4);
    let (r, e) = t.route_v4(v4("10.1.1.1")).unwrap();
    assert_eq!((r.metric, r.prefix, r.len), (50, a("10.0.0.0"), 8));
    assert_eq!(Some(e), t.lookup_v4(v4("10.1.1.1")));
    assert_eq!(via_of(&t, "10.1.1.1"), Some(a("192.0.2.2")));

    // Deleting an inactive metric changes nothing visible.
    assert_eq!(t.del(a("10.0.0.0"), 8, Some(200)).unwrap().metric, 200);
    assert_eq!(via_of(&t, "10.1.1.1"), Some(a("192.0.2.2")));
    assert_eq!(
        t.del(a("10.0.0.0"), 8, Some(200)),
        Err(RouteError::NotFound)
    );

    // Deleting the active one exposes the next metric, then the /0.
    assert_eq!(t.del(a("10.0.0.0"), 8, None).unwrap().metric, 50);
    assert_eq!(via_of(&t, "10.1.1.1"), Some(a("192.0.2.1")));
    assert_eq!(t.del(a("10.0.0.0"), 8, None).unwrap().metric, 100);
    assert_eq!(via_of(&t, "10.1.1.1"), Some(a("192.0.2.254")));
    assert_eq!(t.del(a("10.0.0.0"), 8, None), Err(RouteError::NotFound));
    assert_eq!(t.len(), 1);
}

#[test]
fn add_twice_is_an_error_replace_is_not() {
    let mut t = RouteTable::new();
    let r = unicast("192.168.0.0", 16, 10, vec![nh("10.0.0.1", 1)]);
    t.add(r.clone()).unwrap();
    assert_eq!(
        t.add(r.clone()),
        Err(RouteError::Exists {
            prefix: a("192.168.0.0"),
            len: 16,
            metric: 10
        })
    );
    let r2 = unicast("192.168.0.0", 16, 10, vec![nh("10.0.0.2", 1)]);
    assert_eq!(t.try_replace(r2.clone()), Ok(Some(r)));
    assert_eq!(via_of(&t, "192.168.5.5"), Some(a("10.0.0.2")));
    t.replace(unicast("192.168.0.0", 16, 5, vec![nh("10.0.0.3", 1)]));
    assert_eq!(via_of(&t, "192.168.5.5"), Some(a("10.0.0.3")));
    assert_eq!(t.len(), 2);
    assert_eq!(t.get(a("192.168.0.0"), 16).len(), 2);
}

#[test]
fn host_bits_are_cleared_and_lengths_checked() {
    let mut t = RouteTable::new();
    t.add(unicast("10.1.2.3", 8, 0, vec![nh("192.0.2.1", 1)]))
        .unwrap();
    assert_eq!(t.routes().next().unwrap().prefix, a("10.0.0.0"));
    assert!(t.lookup(a("10.200.0.1")).is_some());
    assert_eq!(
        t.add(unicast("10.0.0.0", 33, 0, vec![nh("192.0.2.1", 1)])),
        Err(RouteError::PrefixLen { len: 33, max: 32 })
    );
    assert_eq!(
        t.add(unicast("2001:db8::", 129, 0, vec![nh("fe80::1", 1)])),
        Err(RouteError::PrefixLen { len: 129, max: 128 })
    );
    assert_eq!(
        t.del(a("10.0.0.0"), 40, None),
        Err(RouteError::PrefixLen { len: 40, max: 32 })
    );
    assert!(t.get(a("10.0.0.0"), 40).is_empty());
    assert!(t.del(a("10.9.9.9"), 8, None).is_ok());
    assert!(t.is_empty());
    assert!(t.lookup(a("10.200.0.1")).is_none());
}

#[test]
fn route_types() {
    let mut t = RouteTable::new();
    t.add(typed("10.0.0.0", 8, RouteType::Blackhole)).unwrap();
    t.add(typed("10.1.0.0", 16, RouteType::Unreachable))
        .unwrap();
    t.add(typed("10.2.0.0", 16, RouteType::Prohibit)).unwrap();
    t.add(local_route(a("10.3.0.1"), 4)).unwrap();
    t.add(typed("2001:db8::", 32, RouteType::Unreachable))
        .unwrap();
    let ty = |d: &str| t.lookup(a(d)).map(|e| e.rtype);
    assert_eq!(ty("10.9.9.9"), Some(RouteType::Blackhole));
    assert_eq!(ty("10.1.9.9"), Some(RouteType::Unreachable));
    assert_eq!(ty("10.2.9.9"), Some(RouteType::Prohibit));
    assert_eq!(ty("10.3.0.1"), Some(RouteType::Local));
    assert_eq!(ty("10.3.0.2"), Some(RouteType::Blackhole));
    assert_eq!(ty("2001:db8::1"), Some(RouteType::Unreachable));
    assert_eq!(ty("11.0.0.1"), None);
    assert!(t.lookup(a("10.9.9.9")).unwrap().nexthop(7).is_none());
    assert_eq!(t.lookup(a("10.3.0.1")).unwrap().nexthop(7).unwrap().dev, 4);

    let mut bad = typed("10.4.0.0", 16, RouteType::Blackhole);
    bad.nexthops.push(nh("192.0.2.1", 1));
    assert_eq!(
        t.add(bad),
        Err(RouteError::NextHopNotAllowed(RouteType::Blackhole))
    );
    assert_eq!(
        t.add(typed("10.4.0.0", 16, RouteType::Unicast)),
        Err(RouteError::NoNextHop)
    );
    let many = unicast(
        "10.4.0.0",
        16,
        0,
        vec![nh("192.0.2.1", 1); MAX_NEXTHOPS + 1],
    );
    assert_eq!(
        t.add(many),
        Err(RouteError::TooManyNextHops(MAX_NEXTHOPS + 1))
    );
}

#[test]
fn connected_and_local_helpers() {
    let r = connected_route(a("192.168.10.1"), 24, 3);
    assert_eq!(
        r,
        Route {
            prefix: a("192.168.10.0"),
            len: 24,
            metric: 0,
            rtype: RouteType::Unicast,
            nexthops: vec![NextHop {
                via: None,
                dev: 3,
                weight: 1
            }],
        }
    );
    let r6 = connected_route(a("2001:db8:1::1"), 64, 3);
    assert_eq!((r6.prefix, r6.len), (a("2001:db8:1::"), 64));
    assert_eq!(connected_route(a("10.0.0.1"), 99, 3).len, 32);
    let l = local_route(a("192.168.10.1"), 3);
    assert_eq!(
        (l.prefix, l.len, l.rtype),
        (a("192.168.10.1"), 32, RouteType::Local)
    );
    assert_eq!(local_route(a("2001:db8::1"), 3).len, 128);

    let mut t = RouteTable::new();
    t.add(r).unwrap();
    t.add(r6).unwrap();
    let e = t.lookup(a("192.168.10.77")).unwrap();
    assert_eq!(
        e.nexthop(1),
        Some(&NextHop {
            via: None,
            dev: 3,
            weight: 1
        })
    );
    assert_eq!(t.lookup(a("2001:db8:1::55")).unwrap().nexthops()[0].dev, 3);
}

#[test]
fn ecmp_is_sticky_and_honours_weights() {
    let mut t = RouteTable::new();
    let hops = vec![
        NextHop {
            via: Some(a("192.0.2.1")),
            dev: 1,
            weight: 1,
        },
        NextHop {
            via: Some(a("192.0.2.2")),
            dev: 2,
            weight: 2,
        },
        NextHop {
            via: Some(a("192.0.2.3")),
            dev: 3,
            weight: 0,
        }, // counts as 1
        NextHop {
            via: Some(a("192.0.2.4")),
            dev: 4,
            weight: 4,
        },
    ];
    t.add(unicast("0.0.0.0", 0, 0, hops)).unwrap();
    let e = t.lookup_v4(v4("8.8.8.8")).unwrap();
    let mut counts = [0u32; 5];
    let n = 80_000u32;
    // Sequential hashes: the entry mixes them, so they still spread.
    for h in 0..n {
        let a = e.nexthop(h).unwrap();
        assert_eq!(e.nexthop(h), Some(a), "same hash, same next hop");
        counts[a.dev as usize] += 1;
    }
    for (dev, w) in [(1, 1.0), (2, 2.0), (3, 1.0), (4, 4.0)] {
        let share = f64::from(counts[dev]) / f64::from(n);
        assert!(
            (share - w / 8.0).abs() < 0.02,
            "dev {dev}: {share} vs {}",
            w / 8.0
        );
    }
    // Random-looking hashes too.
    let mut counts = [0u32; 5];
    let mut x = 0x1234_5678u32;
    for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        counts[e.nexthop(x).unwrap().dev as usize] += 1;
    }
    assert!((f64::from(counts[4]) / f64::from(n) - 0.5).abs() < 0.02);
    assert_eq!(e.nexthops().len(), 4);
}

#[test]
fn ecmp_change_moves_few_flows() {
    let hop = |i: u8| NextHop {
        via: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, i))),
        dev: u16::from(i),
        weight: 1,
    };
    let mut t = RouteTable::new();
    t.add(unicast("0.0.0.0", 0, 0, (1..=4).map(hop).collect()))
        .unwrap();
    let before: Vec<u16> = (0..10_000u32)
        .map(|h| t.lookup_v4(1).unwrap().nexthop(h).unwrap().dev)
        .collect();
    t.replace(unicast("0.0.0.0", 0, 0, (1..=5).map(hop).collect()));
    let after: Vec<u16> = (0..10_000u32)
        .map(|h| t.lookup_v4(1).unwrap().nexthop(h).unwrap().dev)
        .collect();
    let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
    // Hash-threshold: 4 -> 5 next hops moves about half the flows
    // (modulo would move ~80%).
    assert!(moved < 6_000, "{moved} flows moved");
}

#[test]
fn many_routes_both_families_in_order() {
    let mut t = RouteTable::new();
    for i in 0..200u32 {
        let p = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + (i << 8)));
        t.add(Route {
            prefix: p,
            len: 24,
            metric: i % 3,
            rtype: RouteType::Unicast,
            nexthops: vec![nh("192.0.2.1", i as u16)],
        })
        .unwrap();
        let p6 = IpAddr::V6(Ipv6Addr::from(
            (0x2001_0db8u128 << 96) + (u128::from(i) << 64),
        ));
        t.add(Route {
            prefix: p6,
            len: 64,
            metric: 7,
            rtype: RouteType::Unicast,
            nexthops: vec![nh("fe80::1", i as u16)],
        })
        .unwrap();
    }
    t.add(unicast("10.0.0.0", 24, 100, vec![nh("192.0.2.1", 999)]))
        .unwrap();
    assert_eq!(t.len(), 401);
    for i in 0..200u32 {
        assert_eq!(
            t.lookup_v4(0x0a00_0000 + (i << 8) + 5).unwrap().nexthops()[0].dev,
            i as u16
        );
        let d6 = (0x2001_0db8u128 << 96) + (u128::from(i) << 64) + 9;
        assert_eq!(t.lookup_v6(d6).unwrap().nexthops()[0].dev, i as u16);
    }
    let listed: Vec<(IpAddr, u8, u32)> = t.routes().map(|r| (r.prefix, r.len, r.metric)).collect();
    let mut sorted = listed.clone();
    sorted.sort_by_key(|&(p, l, m)| (p.is_ipv6(), p, l, m));
    assert_eq!(
        listed, sorted,
        "deterministic: v4 then v6, by prefix, len, metric"
    );
    assert_eq!(listed[0], (a("10.0.0.0"), 24, 0));
    assert_eq!(listed[1], (a("10.0.0.0"), 24, 100));

    // Slots are reused: deleting and re-adding does not grow the entries
    // (past the first round, where 10.0.0.0/24's metric 100 takes a new
    // entry before the old one is released).
    let mut cap = None;
    for _ in 0..3 {
        for i in 0..200u32 {
            t.del(
                IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + (i << 8))),
                24,
                Some(i % 3),
            )
            .unwrap();
        }
        for i in 0..200u32 {
            let p = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + (i << 8)));
            t.add(Route {
                prefix: p,
                len: 24,
                metric: i % 3,
                rtype: RouteType::Unicast,
                nexthops: vec![nh("192.0.2.1", 1)],
            })
            .unwrap();
        }
        let cap = *cap.get_or_insert(t.entries.slots.len());
        assert_eq!(t.entries.slots.len(), cap);
    }
    assert_eq!(t.entries(), 200 + 1, "v6's 200 next hops and v4's one");
}

#[test]
fn entries_are_shared_and_freed() {
    let mut t = RouteTable::new();
    let gw = |i: u32| nh(&format!("192.0.2.{}", 1 + i % 4), 1);
    for i in 0..1000u32 {
        let p = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + (i << 8)));
        t.add(Route {
            prefix: p,
            len: 24,
            metric: 0,
            rtype: RouteType::Unicast,
            nexthops: vec![gw(i)],
        })
        .unwrap();
    }
    t.add(typed("10.0.0.0", 8, RouteType::Blackhole)).unwrap();
    t.add(typed("11.0.0.0", 8, RouteType::Blackhole)).unwrap();
    t.add(typed("2001:db8::", 32, RouteType::Blackhole))
        .unwrap();
    assert_eq!(t.entries(), 5, "4 gateways and one blackhole entry");
    assert_eq!(t.len(), 1003);

    // A second metric does not touch the entries; a better one does.
    t.add(unicast("10.0.5.0", 24, 9, vec![gw(99)])).unwrap();
    assert_eq!(t.entries(), 5);
    t.add(unicast("10.0.5.0", 24, 0, vec![nh("198.51.100.1", 2)]))
        .unwrap_err();
    t.replace(unicast("10.0.5.0", 24, 0, vec![nh("198.51.100.1", 2)]));
    assert_eq!(t.entries(), 6);
    assert_eq!(via_of(&t, "10.0.5.1"), Some(a("198.51.100.1")));
    // Deleting it re-exposes metric 9, whose entry is shared again.
    t.del(a("10.0.5.0"), 24, Some(0)).unwrap();
    assert_eq!(t.entries(), 5);
    assert_eq!(via_of(&t, "10.0.5.1"), Some(a("192.0.2.4")));
    let (r, e) = t.route_v4(v4("10.0.5.1")).unwrap();
    assert_eq!((r.len, r.metric), (24, 9));
    assert!(std::ptr::eq(e, t.lookup_v4(v4("10.0.5.1")).unwrap()));
    assert!(std::ptr::eq(e, t.lookup_v4(v4("10.0.3.1")).unwrap()));

    // The slow path agrees with the hot path everywhere.
    for i in (0..2000u32).map(|i| 0x09ff_0000 + i * 0x2_0101) {
        let hot = t.lookup_v4(i);
        let slow = t.route_v4(i);
        assert_eq!(hot, slow.map(|(_, e)| e), "{}", Ipv4Addr::from(i));
        if let Some((r, e)) = slow {
            assert_eq!(r.nexthops, e.nexthops());
            assert_eq!(r.rtype, e.rtype);
        }
    }
    let (r, _) = t.route(a("2001:db8:1::1")).unwrap();
    assert_eq!((r.prefix, r.len), (a("2001:db8::"), 32));
    assert!(t.route(a("12.0.0.1")).is_none());

    // The last prefix using an entry frees it; slots are reused.
    for i in 0..1000u32 {
        let p = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + (i << 8)));
        while t.del(p, 24, None).is_ok() {}
    }
    assert_eq!(t.entries(), 1, "the blackhole entry is left");
    assert_eq!(via_of(&t, "10.0.5.1"), None);
    assert_eq!(t.lookup(a("10.0.5.1")).unwrap().rtype, RouteType::Blackhole);
    let slots = t.entries.slots.len();
    t.add(unicast("10.0.0.0", 24, 0, vec![nh("203.0.113.1", 3)]))
        .unwrap();
    assert_eq!(t.entries(), 2);
    assert_eq!(t.entries.slots.len(), slots);
    for (p, l) in [("10.0.0.0", 24), ("10.0.0.0", 8), ("11.0.0.0", 8)] {
        t.del(a(p), l, None).unwrap();
    }
    t.del(a("2001:db8::"), 32, None).unwrap();
    assert!(t.is_empty());
    assert_eq!(t.entries(), 0);
    assert!(t.entries.index.is_empty());
}

#[test]
fn entry_is_one_cache_line() {
    assert_eq!(std::mem::size_of::<RouteEntry>(), 64);
}

#[test]
fn clone_is_independent() {
    let mut t = RouteTable::new();
    t.add(unicast("10.0.0.0", 8, 0, vec![nh("192.0.2.1", 1)]))
        .unwrap();
    let c = t.clone();
    t.del(a("10.0.0.0"), 8, None).unwrap();
    assert!(t.lookup(a("10.0.0.1")).is_none());
    assert!(c.lookup(a("10.0.0.1")).is_some());
}
