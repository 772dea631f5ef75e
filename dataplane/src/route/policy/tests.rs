use super::*;
use crate::route::{NextHop, Route, RouteType, local_route};

fn a(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn v4(s: &str) -> u32 {
    u32::from(s.parse::<Ipv4Addr>().unwrap())
}

fn v6(s: &str) -> u128 {
    u128::from(s.parse::<Ipv6Addr>().unwrap())
}

fn via(prefix: &str, len: u8, gw: &str) -> Route {
    Route {
        prefix: a(prefix),
        len,
        metric: 0,
        rtype: RouteType::Unicast,
        nexthops: vec![NextHop {
            via: Some(a(gw)),
            dev: 1,
            weight: 1,
        }],
    }
}

/// (table, gateway) of the route chosen for a v4 packet.
fn pick(
    fib: &Fib,
    src: &str,
    dst: &str,
    iif: Option<IfIndex>,
    mark: u32,
) -> Option<(u32, Option<IpAddr>)> {
    fib.lookup_v4(v4(src), v4(dst), iif, mark)
        .map(|(e, t)| (t, e.nexthop(0).and_then(|n| n.via)))
}

/// A FIB with main: default via 192.0.2.1, local: 192.0.2.10.
fn base() -> Fib {
    let mut fib = Fib::new();
    fib.table_mut(TABLE_MAIN)
        .add(via("0.0.0.0", 0, "192.0.2.1"))
        .unwrap();
    fib.table_mut(TABLE_MAIN)
        .add(via("::", 0, "2001:db8::1"))
        .unwrap();
    fib.table_mut(TABLE_LOCAL)
        .add(local_route(a("192.0.2.10"), 1))
        .unwrap();
    fib
}

#[test]
fn defaults_like_linux() {
    let fib = base();
    let prios: Vec<(u32, u32)> = fib.rules().iter().map(|r| (r.priority, r.table)).collect();
    assert_eq!(
        prios,
        [
            (0, TABLE_LOCAL),
            (32766, TABLE_MAIN),
            (32767, TABLE_DEFAULT)
        ]
    );
    assert!(fib.table(TABLE_DEFAULT).is_some());
    assert!(fib.table(7).is_none());
    let (e, t) = fib.lookup_v4(0, v4("192.0.2.10"), None, 0).unwrap();
    assert_eq!((e.rtype, t), (RouteType::Local, TABLE_LOCAL));
    assert_eq!(
        pick(&fib, "10.0.0.1", "8.8.8.8", Some(2), 0),
        Some((TABLE_MAIN, Some(a("192.0.2.1"))))
    );
    let (_, t) = fib.lookup_v6(0, v6("2001:db8:5::1"), None, 0).unwrap();
    assert_eq!(t, TABLE_MAIN);
    assert!(Fib::without_rules().lookup_v4(0, 1, None, 0).is_none());
}

#[test]
fn source_rule_and_fall_through() {
    let mut fib = base();
    fib.table_mut(100)
        .add(via("0.0.0.0", 0, "198.51.100.1"))
        .unwrap();
    fib.table_mut(101)
        .add(via("10.0.0.0", 8, "203.0.113.1"))
        .unwrap();
    fib.add_rule(PolicyRule {
        from: Some((a("192.168.1.0"), 24)),
        ..PolicyRule::new(100, 100)
    });
    fib.add_rule(PolicyRule::new(50, 101));
    // Rule 50 matches everything but table 101 only knows 10/8: others
    // fall through.
    assert_eq!(
        pick(&fib, "192.168.2.1", "10.1.1.1", None, 0),
        Some((101, Some(a("203.0.113.1"))))
    );
    assert_eq!(
        pick(&fib, "192.168.1.7", "8.8.8.8", None, 0),
        Some((100, Some(a("198.51.100.1"))))
    );
    assert_eq!(
        pick(&fib, "192.168.2.7", "8.8.8.8", None, 0),
        Some((TABLE_MAIN, Some(a("192.0.2.1"))))
    );
    // The local rule still comes first.
    assert_eq!(
        pick(&fib, "192.168.1.7", "192.0.2.10", None, 0).map(|x| x.0),
        Some(TABLE_LOCAL)
    );
}

#[test]
fn iif_fwmark_and_to() {
    let mut fib = base();
    for t in [10, 20, 30] {
        fib.table_mut(t)
            .add(via("0.0.0.0", 0, &format!("198.51.100.{t}")))
            .unwrap();
    }
    fib.add_rule(PolicyRule {
        iif: Some(3),
        ..PolicyRule::new(10, 10)
    });
    fib.add_rule(PolicyRule {
        fwmark: Some((0x10, 0xf0)),
        ..PolicyRule::new(20, 20)
    });
    fib.add_rule(PolicyRule {
        to: Some((a("203.0.113.0"), 24)),
        ..PolicyRule::new(30, 30)
    });
    let t = |src, dst, iif, mark| pick(&fib, src, dst, iif, mark).map(|x| x.0);
    assert_eq!(t("10.0.0.1", "8.8.8.8", Some(3), 0), Some(10));
    assert_eq!(t("10.0.0.1", "8.8.8.8", Some(4), 0), Some(TABLE_MAIN));
    assert_eq!(
        t("10.0.0.1", "8.8.8.8", None, 0),
        Some(TABLE_MAIN),
        "iif rules skip local output"
    );
    assert_eq!(t("10.0.0.1", "8.8.8.8", None, 0x1f), Some(20));
    assert_eq!(t("10.0.0.1", "8.8.8.8", None, 0xabc1_0010), Some(20));
    assert_eq!(t("10.0.0.1", "8.8.8.8", None, 0x20), Some(TABLE_MAIN));
    assert_eq!(t("10.0.0.1", "8.8.8.8", None, 0x0f), Some(TABLE_MAIN));
    assert_eq!(t("10.0.0.1", "203.0.113.9", None, 0), Some(30));
    assert_eq!(
        t("10.0.0.1", "203.0.113.9", Some(3), 0x10),
        Some(10),
        "lowest priority first"
    );
}

#[test]
fn priority_order_and_stability() {
    let mut fib = base();
    fib.table_mut(1)
        .add(via("0.0.0.0", 0, "198.51.100.1"))
        .unwrap();
    fib.table_mut(2)
        .add(via("0.0.0.0", 0, "198.51.100.2"))
        .unwrap();
    fib.add_rule(PolicyRule::new(200, 2));
    fib.add_rule(PolicyRule::new(100, 1));
    assert_eq!(
        pick(&fib, "1.1.1.1", "8.8.8.8", None, 0).map(|x| x.0),
        Some(1)
    );
    fib.add_rule(PolicyRule::new(100, 2));
    let order: Vec<(u32, u32)> = fib.rules().iter().map(|r| (r.priority, r.table)).collect();
    assert_eq!(
        order,
        [
            (0, 255),
            (100, 1),
            (100, 2),
            (200, 2),
            (32766, 254),
            (32767, 253)
        ]
    );
    assert_eq!(
        pick(&fib, "1.1.1.1", "8.8.8.8", None, 0).map(|x| x.0),
        Some(1),
        "equal priority: first added"
    );
    assert!(fib.del_rule(&PolicyRule::new(100, 1)));
    assert!(!fib.del_rule(&PolicyRule::new(100, 1)));
    assert_eq!(
        pick(&fib, "1.1.1.1", "8.8.8.8", None, 0).map(|x| x.0),
        Some(2)
    );
}

#[test]
fn reject_routes_end_the_lookup() {
    let mut fib = base();
    let bh = Route {
        prefix: a("0.0.0.0"),
        len: 0,
        metric: 0,
        rtype: RouteType::Blackhole,
        nexthops: vec![],
    };
    fib.table_mut(100).add(bh).unwrap();
    let pr = Route {
        prefix: a("::"),
        len: 0,
        metric: 0,
        rtype: RouteType::Prohibit,
        nexthops: vec![],
    };
    fib.table_mut(100).add(pr).unwrap();
    fib.add_rule(PolicyRule {
        from: Some((a("10.0.0.0"), 8)),
        ..PolicyRule::new(100, 100)
    });
    fib.add_rule(PolicyRule {
        from: Some((a("2001:db8:bad::"), 48)),
        ..PolicyRule::new(100, 100)
    });
    let (e, t) = fib
        .lookup_v4(v4("10.1.1.1"), v4("8.8.8.8"), None, 0)
        .unwrap();
    assert_eq!(
        (e.rtype, t),
        (RouteType::Blackhole, 100),
        "main's default is not consulted"
    );
    let (e, t) = fib
        .lookup_v6(v6("2001:db8:bad::1"), v6("2001:db8:5::1"), None, 0)
        .unwrap();
    assert_eq!((e.rtype, t), (RouteType::Prohibit, 100));
    let (_, t) = fib
        .lookup_v6(v6("2001:db8:600d::1"), v6("2001:db8:5::1"), None, 0)
        .unwrap();
    assert_eq!(t, TABLE_MAIN);
    // A v4 selector never matches v6 packets and vice versa.
    let (_, t) = fib.lookup(a("10.1.1.1"), a("8.8.8.8"), None, 0).unwrap();
    assert_eq!(t, 100);
    assert!(
        fib.lookup(a("10.1.1.1"), a("2001:db8::1"), None, 0)
            .is_none()
    );
}

#[test]
fn route_match_names_the_prefix() {
    let mut fib = base();
    fib.table_mut(TABLE_MAIN)
        .add(Route {
            metric: 20,
            ..via("198.51.100.0", 24, "192.0.2.7")
        })
        .unwrap();
    fib.table_mut(TABLE_MAIN)
        .add(Route {
            metric: 10,
            ..via("198.51.100.0", 24, "192.0.2.8")
        })
        .unwrap();
    fib.table_mut(100)
        .add(via("2001:db8:aa::", 48, "2001:db8::9"))
        .unwrap();
    fib.add_rule(PolicyRule {
        fwmark: Some((7, 0xff)),
        ..PolicyRule::new(100, 100)
    });
    let m = fib
        .route(a("10.0.0.1"), a("198.51.100.77"), Some(2), 0)
        .unwrap();
    assert_eq!(
        (m.table, m.prefix, m.len, m.metric, m.rtype),
        (TABLE_MAIN, a("198.51.100.0"), 24, 10, RouteType::Unicast)
    );
    assert_eq!(m.nexthops.len(), 1);
    assert_eq!(m.nexthop(5).and_then(|n| n.via), Some(a("192.0.2.8")));
    let m = fib.route_v4(0, v4("192.0.2.10"), None, 0).unwrap();
    assert_eq!(
        (m.table, m.len, m.rtype),
        (TABLE_LOCAL, 32, RouteType::Local)
    );
    let m = fib.route_v4(0, v4("8.8.8.8"), None, 0).unwrap();
    assert_eq!((m.prefix, m.len), (a("0.0.0.0"), 0));

    let m = fib
        .route_v6(0, v6("2001:db8:aa:1::1"), None, 0x107)
        .unwrap();
    assert_eq!((m.table, m.prefix, m.len), (100, a("2001:db8:aa::"), 48));
    let (e, t) = fib
        .lookup_v6(0, v6("2001:db8:aa:1::1"), None, 0x107)
        .unwrap();
    assert_eq!((e, t), (m.entry, m.table));
    let m = fib.route_v6(0, v6("2001:db8:aa:1::1"), None, 0).unwrap();
    assert_eq!((m.table, m.len), (TABLE_MAIN, 0), "no mark: main's default");
    assert!(
        fib.route(a("10.0.0.1"), a("2001:db8::1"), None, 0)
            .is_none()
    );
    assert!(Fib::without_rules().route_v4(0, 1, None, 0).is_none());
    // Prefetching is a hint, for any address and any FIB.
    fib.prefetch_v4(v4("198.51.100.77"));
    Fib::without_rules().prefetch_v4(1);
}

#[test]
fn rule_to_missing_table_falls_through_until_created() {
    let mut fib = base();
    fib.add_rule(PolicyRule::new(10, 42));
    assert_eq!(
        pick(&fib, "1.1.1.1", "8.8.8.8", None, 0).map(|x| x.0),
        Some(TABLE_MAIN)
    );
    fib.table_mut(42)
        .add(via("8.0.0.0", 8, "198.51.100.42"))
        .unwrap();
    assert_eq!(
        pick(&fib, "1.1.1.1", "8.8.8.8", None, 0).map(|x| x.0),
        Some(42)
    );
}

#[test]
fn selectors_are_normalised_and_checked() {
    let mut fib = base();
    let r = PolicyRule {
        from: Some((a("10.1.2.3"), 8)),
        ..PolicyRule::new(5, 254)
    };
    fib.add_rule(r.clone());
    assert_eq!(fib.rules()[1].from, Some((a("10.0.0.0"), 8)));
    assert!(
        fib.del_rule(&r),
        "deleting with host bits set matches the normalised rule"
    );
    let bad = PolicyRule {
        to: Some((a("10.0.0.0"), 33)),
        ..PolicyRule::new(5, 254)
    };
    assert_eq!(
        fib.try_add_rule(bad),
        Err(RouteError::PrefixLen { len: 33, max: 32 })
    );
    assert_eq!(fib.rules().len(), 3);
}

#[test]
fn fib_can_be_shared_between_workers() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<Fib>();
}

#[test]
fn fast_path_matches_general_path() {
    let fast = base();
    let mut slow = base();
    // A rule that never matches turns the shortcut off without changing
    // any answer.
    slow.add_rule(PolicyRule {
        fwmark: Some((1, 1)),
        ..PolicyRule::new(1000, 7)
    });
    assert!(fast.defaults.is_some() && slow.defaults.is_none());
    let mut x = 0x9e37_79b9u32;
    for i in 0..2000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let dst = if i % 10 == 0 { v4("192.0.2.10") } else { x };
        let f = fast.lookup_v4(0, dst, None, 0).map(|(e, t)| (e.clone(), t));
        let s = slow.lookup_v4(0, dst, None, 0).map(|(e, t)| (e.clone(), t));
        assert_eq!(f, s);
        for fib in [&fast, &slow] {
            let hot = fib.lookup_v4(0, dst, None, 0);
            let m = fib.route_v4(0, dst, None, 0);
            assert_eq!(hot, m.map(|m| (m.entry, m.table)));
            fib.prefetch_v4(dst);
        }
    }
    // Deleting the local rule hides the local table, like Linux.
    let mut fib = base();
    assert!(fib.del_rule(&PolicyRule::new(0, TABLE_LOCAL)));
    assert_eq!(
        pick(&fib, "1.1.1.1", "192.0.2.10", None, 0).map(|x| x.0),
        Some(TABLE_MAIN)
    );
}
