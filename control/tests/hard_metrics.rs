//! Issue 13, item 1: the metrics endpoint under a flood of idle local
//! connections. Alone in its file (its own process) so the thread count it
//! reads is its own.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};
use xgate_control::api::Runtime;
use xgate_control::compile::synthetic_mac;
use xgate_control::publish::Publisher;

fn threads() -> usize {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn scrape(addr: std::net::SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    write!(s, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn idle_connections_neither_block_a_scrape_nor_spawn_threads() {
    let d = std::env::temp_dir().join(format!("xgate-hard-metrics-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let path = d.join("gw.toml");
    std::fs::write(&path, Office::new().config("")).unwrap();
    let p = Arc::new(Publisher::load(&path, Box::new(|_, p| Some(synthetic_mac(p)))).unwrap());
    let rt = Arc::new(Runtime::new(p, Box::new(|| 1)));
    let h = xgate_control::metrics::serve("127.0.0.1:0", rt)
        .unwrap()
        .unwrap();
    let before = threads();

    // 2,000 idle clients (well under the test's descriptor limit).
    let mut idle = Vec::new();
    for _ in 0..2000 {
        idle.push(TcpStream::connect(h.addr()).unwrap());
    }
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    let body = scrape(h.addr());
    let took = t.elapsed();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("xgate_drops_total"), "{body}");
    assert!(took < Duration::from_secs(1), "scrape took {took:?}");
    let during = threads();
    assert!(
        during <= before + 2,
        "threads grew from {before} to {during} with idle connections"
    );
    assert!(h.stats().evicted.load(std::sync::atomic::Ordering::Relaxed) > 0);

    // The clients leave: the port still answers.
    drop(idle);
    std::thread::sleep(Duration::from_millis(100));
    assert!(scrape(h.addr()).starts_with("HTTP/1.1 200"));
    assert!(body.contains("xgate_metrics_connections_total{event=\"evicted\"}"));

    // While connections keep coming (a flood that never stops), scrapes
    // are still answered.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = {
        let (stop, addr) = (stop.clone(), h.addr());
        std::thread::spawn(move || {
            let mut open = std::collections::VecDeque::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(c) = TcpStream::connect(addr) {
                    open.push_back(c);
                }
                if open.len() > 1000 {
                    open.pop_front();
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..5 {
        let t = Instant::now();
        let b = scrape(h.addr());
        assert!(b.starts_with("HTTP/1.1 200"), "during a flood: {b}");
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    flood.join().unwrap();

    // A client that sends half a request and stalls is closed after the
    // timeout (slowloris); a head too large is refused.
    let mut slow = TcpStream::connect(h.addr()).unwrap();
    write!(slow, "GET /metr").unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let t = Instant::now();
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_secs(4) && waited < Duration::from_secs(8),
        "closed after {waited:?}"
    );
    assert!(rest.is_empty());
    assert!(
        h.stats()
            .timed_out
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
    let mut big = TcpStream::connect(h.addr()).unwrap();
    // 9,000 bytes, all of which the server reads before it answers (so its
    // close is a FIN, not a reset that could discard the answer).
    let mut head = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
    head.resize(9000, b'a');
    big.write_all(&head).unwrap();
    let mut answer = String::new();
    let _ = big.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    drop(h);
    let _ = std::fs::remove_dir_all(&d);
}
