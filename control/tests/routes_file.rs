//! `routes_file`: the 634k-prefix BGP RIB of ../shared/data/routes,
//! converted to `ip route` lines, loads through the config into the FIB.

use std::io::{BufRead, BufReader, Write};
use std::time::Instant;

const RIB: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/routes/ipasn6_20151101.dat.gz"
);

const CFG: &str = r#"
routes_file = "rib.routes"

[[interface]]
name = "isp"
device = "eth0"
mac = "02:00:00:00:00:01"
address = ["192.0.2.254/24", "2001:db8:ffff::fe/64"]
"#;

/// `prefix<TAB>AS` -> `prefix via <one of 16 gateways>`.
fn convert(out: &std::path::Path) -> (usize, usize) {
    let path = std::env::var("XGATE_RIB").unwrap_or_else(|_| RIB.to_string());
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("RIB {path}: {e}"));
    let mut w = std::io::BufWriter::new(std::fs::File::create(out).unwrap());
    writeln!(w, "# converted from {path}").unwrap();
    let (mut v4, mut v6) = (0, 0);
    for line in BufReader::new(flate2::read::GzDecoder::new(file)).lines() {
        let line = line.unwrap();
        let Some((net, asn)) = line.split_once('\t') else {
            continue;
        };
        if net == "192.0.2.0/24" || net == "2001:db8:ffff::/64" {
            continue; // the connected subnet of the gateways
        }
        let gw = asn.trim().parse::<u32>().unwrap() % 16 + 1;
        if net.contains(':') {
            writeln!(w, "{net} via 2001:db8:ffff::{gw:x}").unwrap();
            v6 += 1;
        } else {
            writeln!(w, "{net} via 192.0.2.{gw} dev isp").unwrap();
            v4 += 1;
        }
    }
    (v4, v6)
}

#[test]
fn a_full_bgp_table_loads_from_a_routes_file() {
    let d = std::env::temp_dir().join(format!("xgate-rib-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let (v4, v6) = convert(&d.join("rib.routes"));
    assert!(v4 > 600_000 && v6 > 27_000, "{v4} {v6}");
    let cfg_path = d.join("edge.toml");
    std::fs::write(&cfg_path, CFG).unwrap();

    let t = Instant::now();
    let cfg = xgate_control::load(&cfg_path).unwrap();
    let compiled = xgate_control::replay::compile_for_replay(&cfg).unwrap();
    let took = t.elapsed();
    let main = compiled.tables.fib.table(254).unwrap();
    // The RIB plus the interface's two connected subnets.
    assert_eq!(main.len(), v4 + v6 + 2);
    assert!(took.as_secs() < 60, "loading took {took:?}");
    eprintln!("{} routes loaded in {took:?}", v4 + v6);
    let m = compiled
        .tables
        .fib
        .route(
            "0.0.0.0".parse().unwrap(),
            "8.8.8.8".parse().unwrap(),
            None,
            0,
        )
        .unwrap();
    assert_eq!(m.nexthops[0].dev, 0);

    // A bad line names the routes file and its line.
    std::fs::write(
        d.join("rib.routes"),
        "10.0.0.0/8 via 192.0.2.1\n# fine\n10.1.0.0/16 via 172.16.0.1\n",
    )
    .unwrap();
    let cfg = xgate_control::load(&cfg_path).unwrap();
    let e = xgate_control::replay::compile_for_replay(&cfg).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("rib.routes:3: routes_file: gateway 172.16.0.1"),
        "{msg}"
    );
    let _ = std::fs::remove_dir_all(&d);
}
