//! Issue 13, item 3 (and the ctl parts of item 6): a stuck ctl client
//! blocks neither other clients nor shutdown; a line that is not UTF-8
//! gets an answer; clients over the cap are told so.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use xgate_control::api::server::{CtlServer, MAX_CLIENTS};
use xgate_control::api::{Command, CtAction, FlowFilter, Request, Runtime};
use xgate_control::compile::synthetic_mac;
use xgate_control::publish::{Publisher, WorkerView};
use xgate_dataplane::io::memory::MemoryWorker;

const NOW: u64 = 5_000_000_000;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xgate-hard-ctl-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A runtime whose connection table holds `flows` masqueraded UDP flows.
fn runtime(dir: &Path, flows: u16) -> Arc<Runtime> {
    let path = dir.join("gw.toml");
    let cfg = Office::new().config(
        r#"
[firewall]
rules = """
*nat
-A POSTROUTING -o wan -j MASQUERADE
COMMIT
"""
"#,
    );
    std::fs::write(&path, cfg).unwrap();
    let p = Arc::new(Publisher::load(&path, Box::new(|_, p| Some(synthetic_mac(p)))).unwrap());
    let mut w = MemoryWorker::new(p.tables(), p.shared().clone(), 4096);
    let view = Arc::new(WorkerView::new(0, &w.pipeline, &p));
    let rt = Arc::new(Runtime::new(p, Box::new(|| NOW)));
    rt.add_worker(view);
    let frames: Vec<Vec<u8>> = (0..flows)
        .map(|i| {
            udp4(
                mac("02:cc:00:00:00:10"),
                mac("02:00:00:00:00:02"),
                &[],
                "192.168.1.10",
                "198.51.100.7",
                64,
                10_000 + i,
                53,
                b"q",
            )
        })
        .collect();
    for chunk in frames.chunks(256) {
        let refs: Vec<&[u8]> = chunk.iter().map(|f| f.as_slice()).collect();
        w.receive(1, &refs, NOW).unwrap();
        w.drain(|_, _| {});
    }
    rt
}

fn line(c: Command) -> String {
    let mut l = serde_json::to_string(&Request::new(c)).unwrap();
    l.push('\n');
    l
}

/// One request on a fresh connection, answer within 3 s or fail.
fn ask_raw(sock: &Path, req: &[u8]) -> String {
    let s = UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    // A server over its client cap answers with the refusal and closes
    // at once: the write may then fail (EPIPE) though the answer is there.
    let _ = (&s).write_all(req);
    let mut answer = String::new();
    BufReader::new(&s)
        .read_line(&mut answer)
        .expect("an answer within 3 s");
    answer
}

#[test]
fn a_client_that_never_reads_blocks_no_one() {
    let d = scratch("stuck");
    let rt = runtime(&d, 4000);
    assert!(rt.publisher.shared().conntrack.len() >= 3900);
    let sock = d.join("ctl.sock");
    let server = CtlServer::bind(&sock).unwrap().spawn(rt).unwrap();

    // Asks for every connection (megabytes of answer) and reads nothing.
    let stuck = UnixStream::connect(&sock).unwrap();
    let req = line(Command::Conntrack {
        filter: FlowFilter::default(),
        action: CtAction::List,
    });
    (&stuck).write_all(req.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let t = Instant::now();
    let a = ask_raw(&sock, line(Command::Stats).as_bytes());
    assert!(a.contains("\"ok\":true"), "{a}");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());

    // Shutdown does not wait for the stuck client.
    let t = Instant::now();
    drop(server);
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    assert!(!sock.exists());
    drop(stuck);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_line_that_is_not_utf8_gets_an_error_answer() {
    let d = scratch("utf8");
    let rt = runtime(&d, 1);
    let sock = d.join("ctl.sock");
    let _server = CtlServer::bind(&sock).unwrap().spawn(rt).unwrap();
    let a = ask_raw(&sock, b"{\"version\":1,\"command\":\"\xff\xfe\"}\n");
    assert!(a.contains("\"ok\":false"), "{a}");
    assert!(a.contains("not UTF-8"), "{a}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn clients_over_the_cap_are_refused_with_a_reason() {
    let d = scratch("cap");
    let rt = runtime(&d, 1);
    let sock = d.join("ctl.sock");
    let server = CtlServer::bind(&sock).unwrap().spawn(rt).unwrap();
    let idle: Vec<_> = (0..MAX_CLIENTS)
        .map(|_| UnixStream::connect(&sock).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let a = ask_raw(&sock, line(Command::Stats).as_bytes());
    assert!(a.contains("busy"), "{a}");
    drop(idle);
    std::thread::sleep(Duration::from_millis(200));
    let a = ask_raw(&sock, line(Command::Stats).as_bytes());
    assert!(a.contains("\"ok\":true"), "{a}");
    drop(server);
    let _ = std::fs::remove_dir_all(&d);
}

/// `ctl reload` leaves a line for the log of `xgate run`, as SIGHUP does.
#[test]
fn ctl_reload_is_logged() {
    let d = scratch("reload");
    let rt = runtime(&d, 1);
    let sock = d.join("ctl.sock");
    let _server = CtlServer::bind(&sock).unwrap().spawn(rt.clone()).unwrap();
    assert!(rt.take_events().is_empty());
    let a = ask_raw(&sock, line(Command::Reload).as_bytes());
    assert!(a.contains("\"ok\":true"), "{a}");
    let ev = rt.take_events();
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert!(ev[0].starts_with("reloaded (ctl): "), "{ev:?}");
    // A refused one says so.
    std::fs::write(d.join("gw.toml"), "[dataplane]\nflows = 1\n").unwrap();
    let a = ask_raw(&sock, line(Command::Reload).as_bytes());
    assert!(a.contains("\"ok\":false"), "{a}");
    let ev = rt.take_events();
    assert!(ev[0].starts_with("ctl reload refused"), "{ev:?}");
    let _ = std::fs::remove_dir_all(&d);
}
