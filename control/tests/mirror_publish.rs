//! The publisher's side of the netlink mirror, without netlink: batches of
//! kernel routes and addresses go into xgate's tables with the config's
//! routes taking precedence, a reload keeps them, a resync replaces them
//! whole, and an address change becomes the interface's addresses.

use std::net::IpAddr;
use std::path::PathBuf;
use xgate_control::compile::synthetic_mac;
use xgate_control::mirror::{MirroredRoute, RouteKey};
use xgate_control::publish::{MirrorChanges, Publisher};
use xgate_control::routes::parse_spec;
use xgate_dataplane::route::{NextHop, Route, RouteType, TABLE_MAIN};

const CFG: &str = r#"
[[interface]]
name = "lan"
device = "eth1"
address = ["10.1.0.1/24"]

[[interface]]
name = "wan"
device = "eth0"
address = ["10.2.0.1/24"]
tap = "xg-wan"
mirror = ["addresses", "routes"]

[[route]]
to = "10.50.0.0/16"
via = "10.2.0.3"
dev = "wan"
metric = 10
"#;

const WAN: u16 = 1;

fn publisher(name: &str) -> (Publisher, PathBuf) {
    let d = std::env::temp_dir().join(format!("xgate-mirror-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let path = d.join("x.toml");
    std::fs::write(&path, CFG).unwrap();
    let p = Publisher::load(&path, Box::new(|_, p| Some(synthetic_mac(p)))).unwrap();
    (p, path)
}

fn kernel_route(to: &str, via: &str, metric: u32, proto: u8) -> (RouteKey, Option<MirroredRoute>) {
    let net: ipnet::IpNet = to.parse().unwrap();
    let key = RouteKey {
        table: TABLE_MAIN,
        prefix: net.addr(),
        len: net.prefix_len(),
        metric,
    };
    let route = Route {
        prefix: net.addr(),
        len: net.prefix_len(),
        metric,
        rtype: RouteType::Unicast,
        nexthops: vec![NextHop {
            via: Some(via.parse().unwrap()),
            dev: WAN,
            weight: 1,
        }],
    };
    (key, Some(MirroredRoute { key, route, proto }))
}

/// The next hop table main gives `dst`.
fn gateway(p: &Publisher, dst: &str) -> Option<IpAddr> {
    let t = p.tables();
    let dst: IpAddr = dst.parse().unwrap();
    let (r, _) = t.fib.table(TABLE_MAIN)?.route(dst)?;
    r.nexthops.first().and_then(|n| n.via)
}

fn changes(routes: Vec<(RouteKey, Option<MirroredRoute>)>) -> MirrorChanges {
    MirrorChanges {
        routes,
        ..MirrorChanges::default()
    }
}

#[test]
fn routes_are_published_in_one_batch_and_deleted() {
    let (p, _) = publisher("batch");
    let g0 = p.generation();
    let a = p
        .mirror_apply(changes(vec![
            kernel_route("10.99.0.0/16", "10.2.0.2", 0, 12),
            kernel_route("10.98.0.0/16", "10.2.0.4", 0, 4),
        ]))
        .unwrap();
    assert_eq!(a.generation, g0 + 1, "one publication for the batch");
    assert_eq!((a.installed, a.shadowed), (2, 0));
    assert_eq!(gateway(&p, "10.99.1.1"), Some("10.2.0.2".parse().unwrap()));
    assert_eq!(gateway(&p, "10.98.1.1"), Some("10.2.0.4".parse().unwrap()));
    let (k, _) = kernel_route("10.99.0.0/16", "10.2.0.2", 0, 12);
    p.with_mirrored(|m| assert_eq!(m.routes[&k].proto, 12));
    // ctl route del refuses a mirrored route: the kernel owns it.
    let e = p
        .route_del(&parse_spec("10.99.0.0/16 via 10.2.0.2".split(' ')).unwrap())
        .unwrap_err();
    assert!(e.contains("mirrored from the kernel (proto bird)"), "{e}");
    let a = p.mirror_apply(changes(vec![(k, None)])).unwrap();
    assert_eq!(a.installed, 1);
    assert_eq!(gateway(&p, "10.99.1.1"), None);
}

#[test]
fn config_routes_win_on_equal_prefix_and_metric() {
    let (p, _) = publisher("precedence");
    // The config has 10.50.0.0/16 metric 10 via 10.2.0.3.
    let a = p
        .mirror_apply(changes(vec![
            kernel_route("10.50.0.0/16", "10.2.0.2", 10, 12),
            kernel_route("10.50.0.0/16", "10.2.0.5", 5, 12),
        ]))
        .unwrap();
    assert_eq!((a.installed, a.shadowed), (1, 1));
    // Metric 5 (mirrored) is better than the config's 10 and coexists.
    assert_eq!(gateway(&p, "10.50.1.1"), Some("10.2.0.5".parse().unwrap()));
    let t = p.tables();
    let rs = t
        .fib
        .table(TABLE_MAIN)
        .unwrap()
        .get("10.50.0.0".parse().unwrap(), 16);
    let via: Vec<_> = rs
        .iter()
        .map(|r| (r.metric, r.nexthops[0].via.unwrap().to_string()))
        .collect();
    assert_eq!(
        via,
        [(5, "10.2.0.5".to_string()), (10, "10.2.0.3".to_string())]
    );
    // The shadowed one's deletion leaves the config's route alone.
    let (k, _) = kernel_route("10.50.0.0/16", "10.2.0.2", 10, 12);
    p.mirror_apply(changes(vec![(k, None)])).unwrap();
    let (k5, _) = kernel_route("10.50.0.0/16", "10.2.0.5", 5, 12);
    p.mirror_apply(changes(vec![(k5, None)])).unwrap();
    assert_eq!(gateway(&p, "10.50.1.1"), Some("10.2.0.3".parse().unwrap()));
}

#[test]
fn ctl_route_del_spares_mirrored_routes_and_unshadows_them() {
    let (p, _) = publisher("ctl-del");
    let a = p
        .mirror_apply(changes(vec![
            kernel_route("10.50.0.0/16", "10.2.0.2", 10, 12),
            kernel_route("10.60.0.0/16", "10.2.0.2", 32, 12),
        ]))
        .unwrap();
    assert_eq!((a.installed, a.shadowed), (1, 1));
    // Without a metric, `ip route del` takes the active route: here the
    // mirrored one of metric 32, which the kernel owns.
    let spec = |s: &str| parse_spec(s.split(' ')).unwrap();
    let e = p.route_del(&spec("10.60.0.0/16 via 10.2.0.2")).unwrap_err();
    assert!(e.contains("metric 32 is mirrored from the kernel"), "{e}");
    assert_eq!(gateway(&p, "10.60.1.1"), Some("10.2.0.2".parse().unwrap()));
    // Deleting the config route of 10.50/16 uncovers the mirrored one.
    p.route_del(&spec("10.50.0.0/16 via 10.2.0.3 metric 10"))
        .unwrap();
    assert_eq!(gateway(&p, "10.50.1.1"), Some("10.2.0.2".parse().unwrap()));
    let (k, _) = kernel_route("10.50.0.0/16", "10.2.0.2", 10, 12);
    p.with_mirrored(|m| assert!(m.routes[&k].installed));
}

#[test]
fn a_reload_keeps_mirrored_routes_and_a_resync_replaces_them() {
    let (p, _) = publisher("reload");
    p.mirror_apply(changes(vec![
        kernel_route("10.99.0.0/16", "10.2.0.2", 0, 12),
        kernel_route("10.98.0.0/16", "10.2.0.2", 0, 12),
    ]))
    .unwrap();
    p.reload().unwrap();
    assert_eq!(gateway(&p, "10.99.1.1"), Some("10.2.0.2".parse().unwrap()));
    // A resync that no longer has 10.98/16 (lost in an overrun).
    let a = p
        .mirror_apply(MirrorChanges {
            full: true,
            routes: vec![kernel_route("10.99.0.0/16", "10.2.0.2", 0, 12)],
            ..MirrorChanges::default()
        })
        .unwrap();
    assert_eq!(a.installed, 1);
    assert_eq!(gateway(&p, "10.98.1.1"), None);
    assert_eq!(gateway(&p, "10.99.1.1"), Some("10.2.0.2".parse().unwrap()));
}

#[test]
fn kernel_addresses_become_the_interfaces_and_survive_a_reload() {
    let (p, _) = publisher("addresses");
    p.mirror_apply(changes(vec![kernel_route(
        "10.99.0.0/16",
        "10.2.0.2",
        0,
        16,
    )]))
    .unwrap();
    let rules_before = p.current().ruleset_epoch;
    let a = p
        .mirror_apply(MirrorChanges {
            addresses: vec![(WAN, vec!["10.2.0.9/24".parse().unwrap()])],
            ..MirrorChanges::default()
        })
        .unwrap();
    assert_eq!(a.installed, 1, "mirrored routes laid over the recompile");
    let check = |p: &Publisher| {
        let t = p.tables();
        let wan = t.interfaces.get(WAN);
        assert_eq!(wan.v4, [("10.2.0.9".parse().unwrap(), 24)]);
        let local = t.fib.table(xgate_dataplane::route::TABLE_LOCAL).unwrap();
        assert!(!local.get("10.2.0.9".parse().unwrap(), 32).is_empty());
        assert!(local.get("10.2.0.1".parse().unwrap(), 32).is_empty());
        assert_eq!(gateway(p, "10.99.1.1"), Some("10.2.0.2".parse().unwrap()));
    };
    check(&p);
    assert_eq!(
        p.current().ruleset_epoch,
        rules_before,
        "the ruleset and its counters are kept"
    );
    p.reload().unwrap();
    check(&p);
}

#[test]
fn mirror_keys_are_checked_with_their_line() {
    use xgate_control::config::parse;
    let c = parse(CFG, "x.toml").unwrap();
    assert!(c.interfaces[1].mirror.addresses && c.interfaces[1].mirror.routes);
    assert_eq!(c.mirror.tables, [TABLE_MAIN], "main by default");
    let c = parse(
        &format!("{CFG}\n[mirror]\ntables = [\"main\", 100]\nbatch_ms = 20\n"),
        "x.toml",
    )
    .unwrap();
    assert_eq!(
        (c.mirror.tables.as_slice(), c.mirror.batch_ms),
        (&[254, 100][..], 20)
    );
    let err = |text: &str| {
        parse(text, "x.toml")
            .unwrap_err()
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let e = err("[[interface]]\nname = \"wan\"\ndevice = \"eth0\"\nmirror = [\"routes\"]\n");
    assert!(
        e.contains("x.toml:4: interface[0].mirror: mirror needs a tap"),
        "{e}"
    );
    let e = err(&CFG.replace("[\"addresses\", \"routes\"]", "[\"adresses\"]"));
    assert!(e.contains("interface[1].mirror[0]"), "{e}");
    assert!(e.contains("did you mean \"addresses\""), "{e}");
    let e = err(&format!("{CFG}\n[mirror]\ntables = [\"local\"]\n"));
    assert!(
        e.contains("mirror.tables[0]") && e.contains("cannot be mirrored"),
        "{e}"
    );
    let e = err(&format!("{CFG}\n[mirror]\nbatch_ms = 0\n"));
    assert!(e.contains("mirror.batch_ms"), "{e}");
}

#[test]
fn deleting_what_was_never_mirrored_publishes_nothing() {
    let (p, _) = publisher("noop");
    let g = p.generation();
    let (k, _) = kernel_route("10.70.0.0/16", "10.2.0.2", 0, 3);
    let a = p.mirror_apply(changes(vec![(k, None)])).unwrap();
    assert!(!a.published);
    assert_eq!(p.generation(), g);
}

#[test]
fn a_next_hop_removed_from_a_multipath_route_leaves_the_others() {
    let (p, _) = publisher("nexthop");
    let (k, m) = kernel_route("2001:db8:9::/48", "fe80::2", 1024, 3);
    let mut m = m.unwrap();
    for gw in ["fe80::3", "fe80::4"] {
        m.route.nexthops.push(NextHop {
            via: Some(gw.parse().unwrap()),
            dev: WAN,
            weight: 1,
        });
    }
    p.mirror_apply(changes(vec![(k, Some(m))])).unwrap();
    let hops = |p: &Publisher| {
        let t = p.tables();
        let r = t.fib.table(TABLE_MAIN).unwrap().get(k.prefix, k.len);
        r.first().map_or(0, |r| r.nexthops.len())
    };
    assert_eq!(hops(&p), 3);
    let gone = |gw: &str| MirrorChanges {
        nexthops_gone: vec![(k, vec![(Some(gw.parse().unwrap()), WAN)])],
        ..MirrorChanges::default()
    };
    p.mirror_apply(gone("fe80::4")).unwrap();
    assert_eq!(hops(&p), 2);
    p.mirror_apply(gone("fe80::2")).unwrap();
    p.mirror_apply(gone("fe80::3")).unwrap();
    assert_eq!(hops(&p), 0, "the last next hop takes the route");
    p.with_mirrored(|m| assert!(m.routes.is_empty()));
}

#[test]
fn a_reload_that_changes_the_mirror_says_it_takes_effect_at_the_next_start() {
    let (p, path) = publisher("reload-mirror");
    std::fs::write(
        &path,
        format!("{CFG}\n[mirror]\ntables = [\"main\", 100]\n"),
    )
    .unwrap();
    let r = p.reload().unwrap();
    assert!(
        r.warnings.iter().any(|w| w.starts_with("[mirror] changed")),
        "{:?}",
        r.warnings
    );
    std::fs::write(
        &path,
        CFG.replace("[\"addresses\", \"routes\"]", "[\"routes\"]"),
    )
    .unwrap();
    let r = p.reload().unwrap();
    assert!(
        r.warnings
            .iter()
            .any(|w| w.starts_with("an interface's mirror changed")),
        "{:?}",
        r.warnings
    );
}
