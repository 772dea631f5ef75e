use super::*;
use netlink_packet_route::address::AddressFlags;
use netlink_packet_route::route::{RouteNextHop, RouteType as KType};

/// Kernel ifindex 7 is wan's tap (mirrors routes), 8 lan's (does not), 9
/// is no tap.
fn taps() -> TapMap {
    let mut t = TapMap::default();
    t.taps.insert(
        7,
        TapIface {
            iface: 0,
            name: "wan".into(),
            addresses: true,
            routes: true,
        },
    );
    t.taps.insert(
        8,
        TapIface {
            iface: 1,
            name: "lan".into(),
            addresses: true,
            routes: false,
        },
    );
    t
}

fn route(dst: &str, proto: u8) -> RouteMessage {
    let net: IpNet = dst.parse().unwrap();
    let mut m = RouteMessage::default();
    m.header.address_family = if net.addr().is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    m.header.destination_prefix_length = net.prefix_len();
    m.header.table = 254;
    m.header.protocol = RouteProtocol::from(proto);
    m.header.kind = KType::Unicast;
    if net.prefix_len() > 0 {
        m.attributes
            .push(RouteAttribute::Destination(RouteAddress::from(net.addr())));
    }
    m
}

fn via(mut m: RouteMessage, gw: &str, oif: u32) -> RouteMessage {
    let gw: IpAddr = gw.parse().unwrap();
    m.attributes
        .push(RouteAttribute::Gateway(RouteAddress::from(gw)));
    m.attributes.push(RouteAttribute::Oif(oif));
    m
}

fn mirrored(v: RouteVerdict) -> MirroredRoute {
    match v {
        RouteVerdict::Mirror(m) => m,
        other => panic!("not mirrored: {other:?}"),
    }
}

#[test]
fn a_route_via_a_gateway_on_a_mirroring_tap() {
    let mut m = via(route("10.99.0.0/16", 12), "10.2.0.2", 7);
    m.attributes.push(RouteAttribute::Priority(20));
    let r = mirrored(route_from_kernel(&m, &taps(), &[254]));
    assert_eq!(
        r.key,
        RouteKey {
            table: 254,
            prefix: "10.99.0.0".parse().unwrap(),
            len: 16,
            metric: 20
        }
    );
    assert_eq!(r.proto, 12);
    assert_eq!(proto_name(r.proto), "bird");
    assert_eq!(r.route.rtype, RouteType::Unicast);
    assert_eq!(r.route.metric, 20);
    assert_eq!(
        r.route.nexthops,
        [NextHop {
            via: Some("10.2.0.2".parse().unwrap()),
            dev: 0,
            weight: 1
        }]
    );
}

#[test]
fn default_and_device_routes_and_ipv6() {
    let r = mirrored(route_from_kernel(
        &via(route("0.0.0.0/0", 16), "10.2.0.1", 7),
        &taps(),
        &[254],
    ));
    assert_eq!((r.key.prefix, r.key.len), ("0.0.0.0".parse().unwrap(), 0));
    assert_eq!(proto_name(r.proto), "dhcp");
    let mut dev = route("10.50.0.0/24", 3);
    dev.attributes.push(RouteAttribute::Oif(7));
    let r = mirrored(route_from_kernel(&dev, &taps(), &[254]));
    assert_eq!(r.route.nexthops[0].via, None);
    let mut v6 = via(route("2001:db8:5::/48", 9), "fe80::1", 7);
    v6.attributes.push(RouteAttribute::Priority(1024));
    let r = mirrored(route_from_kernel(&v6, &taps(), &[254]));
    assert_eq!(r.key.metric, 1024);
    assert_eq!(r.route.nexthops[0].via, Some("fe80::1".parse().unwrap()));
}

#[test]
fn multipath_keeps_weights() {
    let mut m = route("10.77.0.0/16", 4);
    let mut hops = Vec::new();
    for (gw, w) in [("10.2.0.2", 1u8), ("10.2.0.3", 3)] {
        let mut nh = RouteNextHop::default();
        nh.interface_index = 7;
        nh.hops = w - 1;
        nh.attributes
            .push(RouteAttribute::Gateway(RouteAddress::from(
                gw.parse::<IpAddr>().unwrap(),
            )));
        hops.push(nh);
    }
    m.attributes.push(RouteAttribute::MultiPath(hops));
    let r = mirrored(route_from_kernel(&m, &taps(), &[254]));
    let w: Vec<u16> = r.route.nexthops.iter().map(|n| n.weight).collect();
    assert_eq!(w, [1, 3]);
}

#[test]
fn typed_routes_take_no_next_hop() {
    let mut m = route("192.0.2.0/24", 12);
    m.header.kind = KType::BlackHole;
    let r = mirrored(route_from_kernel(&m, &taps(), &[254]));
    assert_eq!(r.route.rtype, RouteType::Blackhole);
    assert!(r.route.nexthops.is_empty());
}

#[test]
fn kernel_and_xgate_routes_other_tables_and_unmirrored_taps_are_ignored() {
    let t = taps();
    let mut connected = route("10.2.0.0/24", RTPROT_KERNEL);
    connected.attributes.push(RouteAttribute::Oif(7));
    assert_eq!(
        route_from_kernel(&connected, &t, &[254]),
        RouteVerdict::Ignore
    );
    let ours = via(route("0.0.0.0/0", RTPROT_XGATE), "10.2.0.1", 7);
    assert_eq!(route_from_kernel(&ours, &t, &[254]), RouteVerdict::Ignore);
    let mut other = via(route("10.9.0.0/16", 3), "10.2.0.2", 7);
    other.attributes.push(RouteAttribute::Table(100));
    assert_eq!(route_from_kernel(&other, &t, &[254]), RouteVerdict::Ignore);
    assert!(matches!(
        route_from_kernel(&other, &t, &[254, 100]),
        RouteVerdict::Mirror(MirroredRoute {
            key: RouteKey { table: 100, .. },
            ..
        })
    ));
    let lan = via(route("10.9.0.0/16", 3), "10.1.0.2", 8);
    assert_eq!(route_from_kernel(&lan, &t, &[254]), RouteVerdict::Ignore);
}

#[test]
fn what_xgate_cannot_carry_is_unusable_with_a_reason() {
    let t = taps();
    let reason = |m: &RouteMessage| match route_from_kernel(m, &t, &[254]) {
        RouteVerdict::Unusable { reason, .. } => reason,
        other => panic!("not unusable: {other:?}"),
    };
    let eth = via(route("10.9.0.0/16", 3), "10.3.0.1", 9);
    assert!(reason(&eth).contains("not the tap"), "{}", reason(&eth));
    let mut tos = via(route("10.9.0.0/16", 3), "10.2.0.2", 7);
    tos.header.tos = 0x10;
    assert!(reason(&tos).contains("tos"));
    let mut src = via(route("2001:db8::/32", 3), "fe80::1", 7);
    src.header.source_prefix_length = 48;
    assert!(reason(&src).contains("source-specific"));
    let mut nhid = route("10.9.0.0/16", 3);
    nhid.attributes.push(RouteAttribute::NhId(5));
    assert!(reason(&nhid).contains("nhid"));
    let mut throw = route("10.9.0.0/16", 3);
    throw.header.kind = KType::Throw;
    assert!(reason(&throw).contains("throw"));
    let nodev = route("10.9.0.0/16", 3);
    assert!(reason(&nodev).contains("without a device"));
}

#[test]
fn keys_of_deletions_need_only_the_header() {
    let mut m = route("10.99.1.0/24", 0);
    m.attributes.push(RouteAttribute::Priority(5));
    m.attributes.push(RouteAttribute::Table(254));
    let k = route_key(&m).unwrap();
    assert_eq!((k.len, k.metric, k.table), (24, 5, 254));
}

fn addr(ip: &str, len: u8, index: u32, flags: AddressFlags) -> AddressMessage {
    let ip: IpAddr = ip.parse().unwrap();
    let mut m = AddressMessage::default();
    m.header.family = if ip.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    m.header.prefix_len = len;
    m.header.index = index;
    m.attributes.push(AddressAttribute::Address(ip));
    if ip.is_ipv4() {
        m.attributes.push(AddressAttribute::Local(ip));
    }
    m.attributes.push(AddressAttribute::Flags(flags));
    m
}

#[test]
fn addresses_primary_secondary_and_tentative() {
    let a = address_from_kernel(&addr("10.2.0.7", 24, 7, AddressFlags::Permanent)).unwrap();
    assert_eq!(a, (7, "10.2.0.7/24".parse().unwrap(), true));
    let a = address_from_kernel(&addr("10.2.0.8", 24, 7, AddressFlags::Secondary)).unwrap();
    assert!(!a.2, "secondary");
    assert_eq!(
        address_from_kernel(&addr("2001:db8::7", 64, 7, AddressFlags::Tentative)),
        None
    );
    let a = address_from_kernel(&addr("2001:db8::7", 64, 7, AddressFlags::empty())).unwrap();
    assert_eq!(a.1.to_string(), "2001:db8::7/64");
}

#[test]
fn an_ipv6_deletion_with_one_gateway_names_one_next_hop() {
    let t = taps();
    let one = via(route("2001:db8:9::/48", 3), "2001:db8:1::4", 7);
    assert_eq!(
        deleted_nexthop(&one, &t),
        Some((Some("2001:db8:1::4".parse().unwrap()), 0))
    );
    let v4 = via(route("10.9.0.0/16", 3), "10.2.0.2", 7);
    assert_eq!(deleted_nexthop(&v4, &t), None, "IPv4 deletes whole routes");
    let mut dev_only = route("2001:db8:9::/48", 3);
    dev_only.attributes.push(RouteAttribute::Oif(7));
    assert_eq!(deleted_nexthop(&dev_only, &t), None);
}
