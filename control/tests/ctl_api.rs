//! The control protocol end to end: a server on a Unix socket in a temp
//! dir, answering from a runtime whose worker carried real traffic; the
//! client round-trips every command. And the Prometheus exposition,
//! checked by the reference parser (python3-prometheus-client).

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use xgate_control::api::server::CtlServer;
use xgate_control::api::{Command, CtAction, FlowFilter, Runtime, client};
use xgate_control::compile::synthetic_mac;
use xgate_control::publish::{Publisher, WorkerView};
use xgate_dataplane::io::memory::MemoryWorker;

/// The office gateway with one lan host, masqueraded, stateful FORWARD.
fn cfg() -> String {
    Office::new()
        .neighbor("192.168.1.10", "02:cc:00:00:00:10", "lan")
        .config(
            r#"
[firewall]
rules = """
*nat
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -o wan -j MASQUERADE
COMMIT
*filter
:FORWARD DROP [0:0]
-A FORWARD -m state --state ESTABLISHED,RELATED -j ACCEPT
-A FORWARD -i lan -o wan -p udp -j ACCEPT
-A FORWARD -i lan -o wan -p tcp --dport 80 -j ACCEPT
COMMIT
"""
"#,
        )
}

const NOW: u64 = 5_000_000_000;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xgate-ctl-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A runtime with one worker that forwarded 3 UDP flows and 1 TCP SYN,
/// and dropped one packet (no rule for port 22).
fn runtime(dir: &Path) -> (Arc<Runtime>, MemoryWorker, Arc<WorkerView>) {
    runtime_with(dir, &cfg())
}

/// [`runtime`] on config text `config`.
fn runtime_with(dir: &Path, config: &str) -> (Arc<Runtime>, MemoryWorker, Arc<WorkerView>) {
    let path = dir.join("gw.toml");
    std::fs::write(&path, config).unwrap();
    let p = Publisher::load(&path, Box::new(|_, p| Some(synthetic_mac(p)))).unwrap();
    let p = Arc::new(p);
    let mut w = MemoryWorker::new(p.tables(), p.shared().clone(), 4096);
    let view = Arc::new(WorkerView::new(0, &w.pipeline, &p));
    let rt = Arc::new(Runtime::new(p, Box::new(|| NOW)));
    rt.add_worker(view.clone());
    let host = mac("02:cc:00:00:00:10");
    let lan = mac("02:00:00:00:00:02");
    let mut frames: Vec<Vec<u8>> = (0..3)
        .map(|i| {
            udp4(
                host,
                lan,
                &[],
                "192.168.1.10",
                "198.51.100.7",
                64,
                40_000 + i,
                53,
                b"q",
            )
        })
        .collect();
    frames.push(tcp4(
        host,
        lan,
        "192.168.1.10",
        "198.51.100.7",
        40_100,
        80,
        1,
        true,
        None,
        b"",
    ));
    frames.push(tcp4(
        host,
        lan,
        "192.168.1.10",
        "198.51.100.7",
        40_101,
        22,
        1,
        true,
        None,
        b"",
    ));
    let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
    w.receive(1, &refs, NOW).unwrap();
    w.drain(|_, _| {});
    (rt, w, view)
}

fn ask(sock: &Path, c: Command) -> xgate_control::api::Response {
    let r = client::request(sock, c.clone()).unwrap();
    assert!(r.ok, "{c:?}: {:?}", r.error);
    r
}

#[test]
fn every_command_round_trips_over_the_socket() {
    let d = scratch("roundtrip");
    let (rt, _w, _view) = runtime(&d);
    let sock = d.join("run/xgate.sock");
    let server = CtlServer::bind(&sock).unwrap().spawn(rt.clone()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let r = ask(&sock, Command::Stats);
    assert!(r.text.contains("eth1"), "{}", r.text);
    assert!(r.text.contains("filter_forward"), "{}", r.text);
    assert_eq!(r.data["ports"][1]["rx_packets"], 5);
    assert_eq!(r.data["ports"][0]["tx_packets"], 4);
    assert_eq!(r.data["drops"]["filter_forward"], 1);
    assert_eq!(r.data["conntrack"]["entries"], 4);
    assert_eq!(r.data["nat"]["in_use"], 4);

    let r = ask(
        &sock,
        Command::Conntrack {
            filter: FlowFilter::default(),
            action: CtAction::List,
        },
    );
    let udp = r
        .text
        .lines()
        .find(|l| l.contains("sport=40000"))
        .unwrap_or_else(|| panic!("{}", r.text));
    assert!(udp.starts_with("udp      17 "), "conntrack -L style: {udp}");
    assert!(udp.contains("src=192.168.1.10 dst=198.51.100.7 sport=40000 dport=53 packets=1 bytes=29 [UNREPLIED] src=198.51.100.7 dst=203.0.113.2 sport=53"), "{udp}");
    let tcp = r.text.lines().find(|l| l.contains("dport=80")).unwrap();
    assert!(tcp.starts_with("tcp      6 "), "{tcp}");
    assert!(tcp.contains(" SYN_SENT src="), "{tcp}");
    assert_eq!(r.data["flows"].as_array().unwrap().len(), 4);

    let tcp_only = FlowFilter {
        proto: Some("tcp".into()),
        ..FlowFilter::default()
    };
    let r = ask(
        &sock,
        Command::Conntrack {
            filter: tcp_only.clone(),
            action: CtAction::List,
        },
    );
    assert_eq!(r.data["flows"].as_array().unwrap().len(), 1);
    let r = ask(
        &sock,
        Command::Conntrack {
            filter: tcp_only,
            action: CtAction::Delete,
        },
    );
    assert_eq!(r.data["deleted"], 1);
    assert_eq!(rt.publisher.shared().conntrack.len(), 3);

    let r = ask(&sock, Command::Routes { table: None });
    assert!(
        r.text.contains("default via 203.0.113.1 dev wan\n"),
        "{}",
        r.text
    );
    assert!(r.text.contains("192.168.1.0/24 dev lan\n"), "{}", r.text);
    assert!(
        r.text.contains("local 192.168.1.1 dev lan table local"),
        "{}",
        r.text
    );

    let r = ask(
        &sock,
        Command::RouteGet {
            dst: "8.8.8.8".parse().unwrap(),
            from: None,
            iif: None,
            mark: 0,
        },
    );
    assert!(
        r.text
            .starts_with("8.8.8.8 via 203.0.113.1 dev wan table main src 203.0.113.2"),
        "{}",
        r.text
    );
    assert_eq!(r.data["prefix"], "0.0.0.0/0");

    let words = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
    ask(
        &sock,
        Command::RouteAdd {
            route: words("10.9.0.0/16 via 192.168.1.2 metric 7"),
        },
    );
    let r = ask(
        &sock,
        Command::RouteGet {
            dst: "10.9.3.4".parse().unwrap(),
            from: None,
            iif: None,
            mark: 0,
        },
    );
    assert!(r.text.contains("via 192.168.1.2 dev lan"), "{}", r.text);
    assert_eq!(r.data["metric"], 7);
    ask(
        &sock,
        Command::RouteDel {
            route: words("10.9.0.0/16 via 192.168.1.2 metric 7"),
        },
    );
    let bad = client::request(
        &sock,
        Command::RouteDel {
            route: words("10.9.0.0/16 via 192.168.1.2"),
        },
    )
    .unwrap();
    assert!(!bad.ok);

    let r = ask(&sock, Command::Neigh);
    assert!(
        r.text
            .contains("203.0.113.1 dev wan lladdr 02:bb:00:00:00:01 PERMANENT"),
        "{}",
        r.text
    );

    let r = ask(&sock, Command::Rules);
    assert!(
        r.text
            .contains("[3:87] -A FORWARD -i lan -o wan -p udp -j ACCEPT"),
        "{}",
        r.text
    );
    assert!(r.text.contains(":FORWARD DROP [1:40]"), "{}", r.text);
    assert!(r.text.contains("[4:"), "masquerade counted: {}", r.text);

    let r = ask(&sock, Command::Reload);
    assert!(r.text.starts_with("reloaded: generation"), "{}", r.text);
    std::fs::write(
        d.join("gw.toml"),
        cfg().replace("address = [\"203", "adress = [\"203"),
    )
    .unwrap();
    let r = client::request(&sock, Command::Reload).unwrap();
    assert!(!r.ok);
    let e = r.error.unwrap();
    assert!(e.contains("gw.toml:6: interface[0].adress"), "{e}");
    assert_eq!(r.data["errors"][0]["line"], 6);

    // Unknown versions and garbage are answered, not fatal.
    use std::io::{BufRead, BufReader, Write};
    let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    s.write_all(b"{\"version\":9,\"command\":\"stats\"}\nnot json\n")
        .unwrap();
    let mut lines = BufReader::new(s).lines();
    let a = lines.next().unwrap().unwrap();
    assert!(a.contains("version 9 not supported"), "{a}");
    let b = lines.next().unwrap().unwrap();
    assert!(b.contains("bad request"), "{b}");
    drop(lines);

    // A second server on a live socket is refused; a stale one is replaced.
    assert!(CtlServer::bind(&sock).is_err());
    server.shutdown();
    assert!(!sock.exists());
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn trace_records_the_next_matching_packets() {
    let d = scratch("trace");
    let (rt, mut w, _view) = runtime(&d);
    rt.trace.add(
        2,
        xgate_control::api::trace::Selector {
            proto: Some(17),
            ..Default::default()
        },
    );
    let host = mac("02:cc:00:00:00:10");
    let lan = mac("02:00:00:00:00:02");
    for i in 0..5u16 {
        let f = if i % 2 == 0 {
            tcp4(
                host,
                lan,
                "192.168.1.10",
                "198.51.100.9",
                1000 + i,
                80,
                1,
                true,
                None,
                b"",
            )
        } else {
            udp4(
                host,
                lan,
                &[],
                "192.168.1.10",
                "198.51.100.9",
                64,
                1000 + i,
                53,
                b"x",
            )
        };
        w.receive(1, &[&f], NOW).unwrap();
        w.drain(|_, _| {});
    }
    let lines = rt.trace.lines(&rt.publisher.tables());
    assert!(lines.iter().any(|l| l.contains("proto 17")), "{lines:#?}");
    assert!(!lines.iter().any(|l| l.contains("proto 6")), "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("tx dev wan")), "{lines:#?}");
    assert_eq!(rt.trace.remaining(), 0);
    // Exactly two packets: their receive lines.
    assert_eq!(
        lines.iter().filter(|l| l.contains(" rx port ")).count(),
        2,
        "{lines:#?}"
    );
    assert!(
        !w.pipeline.trace.enabled(),
        "replay-style tracing stays off"
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn metrics_pass_the_prometheus_parser() {
    let d = scratch("metrics");
    let (rt, _w, _view) = runtime(&d);
    let text = xgate_control::metrics::render(&rt);
    assert!(
        text.contains("xgate_drops_total{worker=\"0\",reason=\"filter_forward\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("xgate_port_rx_packets_total{port=\"eth1\",queue=\"0\",worker=\"0\"} 5"),
        "{text}"
    );
    assert!(
        text.contains("xgate_conntrack_entries{proto=\"udp\",state=\"UNREPLIED\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("xgate_nat_ports_in_use{address=\"203.0.113.2\",proto=\"udp\"} 3"),
        "{text}"
    );

    // Over HTTP, on an ephemeral port.
    let h = xgate_control::metrics::serve("127.0.0.1:0", rt.clone())
        .unwrap()
        .unwrap();
    let body = http_get(h.addr(), "/metrics");
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("text/plain; version=0.0.4"), "{body}");
    assert!(http_get(h.addr(), "/nope").starts_with("HTTP/1.1 404"));
    let served = body.split("\r\n\r\n").nth(1).unwrap().to_owned();
    drop(h);
    assert!(xgate_control::metrics::serve("", rt).unwrap().is_none());

    // The reference parser: every family, every sample.
    let python = if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let script = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
n = 0
fams = {}
for f in text_string_to_metric_families(sys.stdin.read()):
    fams[f.name] = f.type
    n += len(f.samples)
assert fams["xgate_drops"] == "counter", fams
assert fams["xgate_conntrack_entries"] == "gauge", fams
print(n, len(fams))
"#;
    let mut child = std::process::Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 (scripts/setup-debian.sh installs python3-prometheus-client)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(served.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus parser refused the exposition: {}\n{served}",
        String::from_utf8_lossy(&out.stderr)
    );
    let counts = String::from_utf8_lossy(&out.stdout);
    let samples: usize = counts.split_whitespace().next().unwrap().parse().unwrap();
    assert!(samples > 50, "{counts}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn start_runs_the_socket_and_the_metrics_endpoint() {
    let d = scratch("start");
    let (rt, _w, _view) = runtime(&d);
    let control = xgate_control::config::Control {
        socket: d.join("x/ctl.sock").display().to_string(),
        metrics: "127.0.0.1:0".into(),
    };
    let s = xgate_control::api::start(rt, &control).unwrap();
    let r = client::request(Path::new(&control.socket), Command::Neigh).unwrap();
    assert!(r.ok);
    let m = s.metrics.as_ref().unwrap().addr();
    assert!(http_get(m, "/metrics").contains("xgate_drops_total"));
    drop(s);
    assert!(!Path::new(&control.socket).exists());
    let _ = std::fs::remove_dir_all(&d);
}

fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// `ctl conntrack` prints the helper of a connection (`helper=ftp`), `ctl
/// expectations` lists what helpers expect as `conntrack -L expect` does,
/// and `ctl stats` counts helper events.
#[test]
fn helpers_and_expectations_are_shown() {
    use xgate_dataplane::conntrack::{Dir, Expectation, FlowKey, HelperKind, PROTO_TCP};
    let d = scratch("expect");
    let (rt, _w, _view) = runtime(&d);
    let ct = &rt.publisher.shared().conntrack;
    let mut tcp = None;
    ct.for_each(|id, f| {
        if f.original.proto == PROTO_TCP {
            tcp = Some((id, *f));
        }
    });
    let (id, flow) = tcp.expect("the TCP connection");
    assert!(ct.attach_helper(id, HelperKind::Ftp));
    let key = FlowKey {
        sport: 0,
        dport: 40_001,
        ..flow.reply
    };
    let e = Expectation {
        key,
        target: FlowKey {
            src: flow.original.dst,
            dst: flow.original.src,
            ..key
        },
        master: id,
        helper: HelperKind::Ftp,
        expires_ms: 0,
    };
    assert_eq!(ct.expect(&e, Dir::Reply, true, NOW), Ok(40_001));
    let r = rt.handle(&xgate_control::api::Request {
        version: xgate_control::api::VERSION,
        command: Command::Conntrack {
            filter: FlowFilter::default(),
            action: CtAction::List,
        },
    });
    let line = r.text.lines().find(|l| l.contains("dport=80")).unwrap();
    assert!(line.contains(" mark=0 helper=ftp use=1"), "{line}");
    let r = rt.handle(&xgate_control::api::Request {
        version: xgate_control::api::VERSION,
        command: Command::Expectations,
    });
    assert!(r.ok, "{:?}", r.error);
    assert!(
        r.text.starts_with(
            "300 proto=6 src=198.51.100.7 dst=203.0.113.2 sport=0 dport=40001 \
             mask-src=255.255.255.255 mask-dst=255.255.255.255 sport=0 dport=65535 \
             master-src=192.168.1.10 master-dst=198.51.100.7 sport=40100 dport=80 class=0 \
             helper=ftp nat-to=192.168.1.10:40001"
        ),
        "{}",
        r.text
    );
    assert_eq!(r.data["expectations"][0]["helper"], "ftp");
    let r = rt.handle(&xgate_control::api::Request {
        version: xgate_control::api::VERSION,
        command: Command::Stats,
    });
    assert_eq!(r.data["helpers"]["attached"], 1);
    assert_eq!(r.data["helpers"]["expect_created"], 1);
    assert!(r.text.contains("helpers: attached 1"), "{}", r.text);
}

/// The nft form of `cfg()`'s ruleset: `ctl rules` lists it as `nft list
/// ruleset` does, each rule with its counter (a vmap's and a set's
/// alternatives summed, statements repeated per rule counted once).
#[test]
fn nft_rules_are_listed_with_counters() {
    let d = scratch("nft-rules");
    let config = cfg().replace(
        &cfg()[cfg().find("[firewall]").unwrap()..],
        r#"[firewall]
nft = """
table ip nat {
    chain post {
        type nat hook postrouting priority srcnat;
        oifname "wan" masquerade
    }
}
table inet filter {
    counter web {
    }
    chain forward {
        type filter hook forward priority filter; policy drop;
        ct state vmap { established : accept, related : accept }
        iifname "lan" oifname "wan" meta l4proto udp log prefix "udp " accept
        iifname "lan" oifname "wan" tcp dport { 80, 443 } counter name "web" accept
    }
}
"""
"#,
    );
    let (rt, _w, _v) = runtime_with(&d, &config);
    let sock = d.join("ctl.sock");
    let server = CtlServer::bind(&sock).unwrap().spawn(rt.clone()).unwrap();
    let r = ask(&sock, Command::Rules);
    let text = &r.text;
    assert!(text.contains("# nftables (nft)"), "{text}");
    assert!(
        text.contains("counter packets 3 bytes 87 accept"),
        "the udp rule, counted once though it logs and accepts: {text}"
    );
    assert!(
        text.contains(
            "tcp dport { 80, 443 } counter name \"web\" counter packets 1 bytes 40 accept"
        ),
        "{text}"
    );
    assert!(text.contains("masquerade"), "{text}");
    assert!(
        text.contains("counter web {\n\t\tpackets 1 bytes 40"),
        "the named counter counts its rule's packets: {text}"
    );
    let chains = r.data["nft_chains"].as_array().unwrap();
    assert!(
        chains
            .iter()
            .any(|c| c["chain"] == "inet filter forward" && c["packets"] == 1),
        "the policy drop counted: {chains:?}"
    );
    // A reload reads the nft ruleset again, as it does iptables rules;
    // a broken one is refused with its line and column, nothing changed.
    std::fs::write(
        d.join("gw.toml"),
        config.replace("tcp dport { 80, 443 }", "tcp dport { 80, 443, 8443 }"),
    )
    .unwrap();
    let r = ask(&sock, Command::Reload);
    assert!(r.text.starts_with("reloaded: generation 2"), "{}", r.text);
    let r = ask(&sock, Command::Rules);
    assert!(r.text.contains("{ 80, 443, 8443 }"), "{}", r.text);
    std::fs::write(d.join("gw.toml"), config.replace("masquerade", "masqerade")).unwrap();
    let r = client::request(&sock, Command::Reload).unwrap();
    assert!(!r.ok);
    let e = r.error.unwrap();
    assert!(e.contains("firewall.nft: column"), "{e}");
    let r = ask(&sock, Command::Rules);
    assert!(
        r.text.contains("8443"),
        "the running ruleset stays: {}",
        r.text
    );
    drop(server);
}

#[test]
fn ipsets_change_live_and_keep_their_changes_across_a_reload() {
    // fail2ban's way: a rule names a set, bans are `ipset add`s while the
    // ruleset runs.
    let d = scratch("ipset");
    let config = cfg()
        .replace(
            "*filter\n:FORWARD DROP [0:0]\n",
            "*filter\n:FORWARD DROP [0:0]\n-A FORWARD -m set --match-set banned src -j DROP\n",
        )
        .replace(
            "[firewall]\n",
            "[firewall]\nipsets = \"\"\"\ncreate banned hash:ip family inet maxelem 2\nadd banned 192.0.2.66\n\"\"\"\n",
        );
    let (rt, mut w, _v) = runtime_with(&d, &config);
    let sock = d.join("ctl.sock");
    let server = CtlServer::bind(&sock).unwrap().spawn(rt.clone()).unwrap();
    let publisher = rt.publisher.clone();
    let mut send = |sport: u16| {
        // Between batches, as a worker does: the tables published last.
        w.pipeline.set_tables(publisher.tables());
        let f = udp4(
            mac("02:cc:00:00:00:10"),
            mac("02:00:00:00:00:02"),
            &[],
            "192.168.1.10",
            "198.51.100.7",
            64,
            sport,
            53,
            b"q",
        );
        w.receive(1, &[f.as_slice()], NOW).unwrap();
        let mut out = 0;
        w.drain(|_, _| out += 1);
        out
    };
    assert_eq!(send(41_000), 1, "not banned yet");
    let ipset = |op: &str, name: Option<&str>, element: Option<&str>| Command::Ipset {
        op: op.into(),
        name: name.map(Into::into),
        element: element.map(Into::into),
    };
    ask(&sock, ipset("add", Some("banned"), Some("192.168.1.10")));
    assert_eq!(send(41_000), 0, "banned: its established flow too");
    assert_eq!(send(41_001), 0, "and new ones");
    let r = ask(&sock, ipset("list", Some("banned"), None));
    assert!(
        r.text
            .contains("Number of entries: 2\nMembers:\n192.0.2.66\n192.168.1.10\n"),
        "{}",
        r.text
    );
    // Bounded, checked and exact, as ipset is.
    for (c, needle) in [
        (ipset("add", Some("banned"), Some("192.0.2.1")), "full"),
        (ipset("add", Some("banned"), Some("2001:db8::1")), "IPv4"),
        (
            ipset("del", Some("banned"), Some("192.0.2.1")),
            "not in the set",
        ),
        (
            ipset("add", Some("nosuch"), Some("192.0.2.1")),
            "no ipset nosuch",
        ),
        (
            ipset("add", Some("banned"), Some("no.such.address")),
            "invalid element",
        ),
    ] {
        let r = client::request(&sock, c.clone()).unwrap();
        assert!(
            !r.ok && r.error.as_deref().unwrap_or("").contains(needle),
            "{c:?}: {r:?}"
        );
    }
    // A reload reads the config's sets and replays the live changes.
    let r = ask(&sock, Command::Reload);
    assert!(r.text.starts_with("reloaded"), "{}", r.text);
    assert_eq!(send(41_002), 0, "still banned after the reload");
    ask(&sock, ipset("del", Some("banned"), Some("192.168.1.10")));
    assert_eq!(send(41_003), 1, "unbanned");
    ask(&sock, ipset("flush", Some("banned"), None));
    let r = ask(&sock, ipset("list", None, None));
    assert!(r.text.contains("Number of entries: 0"), "{}", r.text);
    drop(server);
}

#[test]
fn the_bridge_mac_table_is_listed_flushed_and_counted() {
    // Two ports; the runtime's frames come from 02:cc:..:10 on port 1.
    let d = scratch("fdb");
    let config = r#"
[[bridge]]
name = "br0"
ports = ["p1", "p2"]
[[bridge.fdb]]
mac = "02:dd:00:00:00:01"
port = "p1"

[[interface]]
name = "br0"
device = "br0"
address = ["192.168.1.1/24"]

[[interface]]
name = "p1"
device = "eth0"

[[interface]]
name = "p2"
device = "eth1"
"#;
    let (rt, _w, _v) = runtime_with(&d, config);
    let sock = d.join("ctl.sock");
    let server = CtlServer::bind(&sock).unwrap().spawn(rt.clone()).unwrap();
    let fdb = |bridge: Option<&str>, flush| Command::Fdb {
        bridge: bridge.map(str::to_string),
        flush,
    };
    let r = ask(&sock, fdb(None, false));
    assert!(
        r.text
            .contains("02:cc:00:00:00:10 dev p2 master br0 age 0s"),
        "{}",
        r.text
    );
    assert!(
        r.text
            .contains("02:dd:00:00:00:01 dev p1 master br0 static"),
        "{}",
        r.text
    );
    let m = xgate_control::metrics::render(&rt);
    assert!(
        m.contains("xgate_bridge_fdb_entries{bridge=\"br0\"} 2"),
        "{m}"
    );
    assert!(m.contains("xgate_bridge_fdb_learned_total"), "{m}");
    // Flushing forgets what was learned, not the static entry.
    ask(&sock, fdb(Some("br0"), true));
    let r = ask(&sock, fdb(Some("br0"), false));
    assert_eq!(r.text, "02:dd:00:00:00:01 dev p1 master br0 static\n");
    let e = client::request(&sock, fdb(Some("br9"), false)).unwrap();
    assert!(
        e.error
            .as_deref()
            .is_some_and(|e| e.contains("no bridge \"br9\" (bridges: br0)")),
        "{e:?}"
    );
    drop(server);
}
