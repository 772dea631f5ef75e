//! The ctl protocol over arbitrary request lines, answered by a runtime
//! over a small gateway config (as the control socket's server answers
//! them). Invariants: no panic, and every answer encodes as JSON.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};
use xgate_control::api::{Command, Request, Response, Runtime};
use xgate_control::publish::Publisher;

const CONFIG: &str = r#"
[[interface]]
name = "wan"
device = "eth0"
mac = "02:00:00:00:00:01"
address = ["203.0.113.2/24"]

[[interface]]
name = "lan"
device = "eth1"
mac = "02:00:00:00:00:02"
address = ["192.168.1.1/24", "2001:db8:2::1/64"]

[[route]]
to = "0.0.0.0/0"
via = "203.0.113.1"

[firewall]
rules = """
*nat
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -o wan -j MASQUERADE
COMMIT
*filter
:FORWARD DROP [0:0]
-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A FORWARD -i lan -o wan -j ACCEPT
COMMIT
"""
"#;

/// The runtime and its publisher, built once.
fn runtime() -> &'static (Runtime, Arc<Publisher>) {
    static RT: OnceLock<(Runtime, Arc<Publisher>)> = OnceLock::new();
    RT.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("xgate-fuzz-ctl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("gw.toml");
        std::fs::write(&path, CONFIG).expect("config");
        let p = Publisher::load(
            &path,
            Box::new(|_, p| Some(xgate_control::compile::synthetic_mac(p))),
        )
        .expect("publisher");
        let p = Arc::new(p);
        (Runtime::new(p.clone(), Box::new(|| 1_000_000_000)), p)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let (rt, publisher) = runtime();
    let resp = match serde_json::from_str::<Request>(line.trim()) {
        Ok(req) => {
            let resp = rt.handle(&req);
            // Inputs stay independent: live route changes are undone by a
            // reload of the file (as a real reload drops them), and the
            // replaced tables are freed as the control loop frees them.
            if matches!(req.command, Command::RouteAdd { .. } | Command::RouteDel { .. }) {
                publisher.reload().expect("the fuzz config reloads");
            }
            publisher.collect_retired();
            resp
        }
        Err(e) => Response::error(format!("bad request: {e}")),
    };
    serde_json::to_string(&resp).expect("an answer encodes");
});
