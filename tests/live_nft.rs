//! End to end: one nftables ruleset file, unchanged, run by the Linux
//! kernel (`nft -f` in the router namespace) and by xgate (`nft_file`),
//! with real clients and servers: curl against Python's http.server on
//! both sides of the testbed's gateway, and ping. Each outcome (a file
//! fetched and compared by checksum, or refused) must be the same through
//! both, and what the ruleset says.
//!
//! The ruleset is an office gateway in nft's words: the LAN (r0,
//! 10.1.0.0/24) masqueraded out of r1, its web access and pings allowed,
//! everything else forwarded dropped (`policy drop`, a verdict map on the
//! connection state), and port 8080 of the router's wan address forwarded
//! to the LAN server's port 8000 (`dnat`, then `ct status dnat accept`).
//! The interfaces are named like the devices so that the file runs
//! unchanged in both. Skipped (with the reason) when not root, without
//! AF_XDP, without nft, curl, python3 or ping.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use xgate_testbed::traffic::{fnv, pattern};
use xgate_testbed::xgate::Xgate;
use xgate_testbed::{Gateway, skip};

const XGATE: &str = env!("CARGO_BIN_EXE_xgate");

const RULESET: &str = r#"flush ruleset

define LAN_IF = "R0"
define WAN_IF = "R1"
define LAN = 10.1.0.0/24

table inet filter {
    chain forward {
        type filter hook forward priority filter; policy drop;
        ct state vmap { established : accept, related : accept, invalid : drop }
        iifname $LAN_IF oifname $WAN_IF ip saddr $LAN tcp dport { 80, 8000 } accept
        iifname $LAN_IF oifname $WAN_IF icmp type echo-request accept
        iifname $WAN_IF oifname $LAN_IF ip daddr 10.1.0.2 tcp dport 8000 ct status dnat accept
    }
}

table ip nat {
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        iifname $WAN_IF tcp dport 8080 dnat to 10.1.0.2:8000
    }
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        oifname $WAN_IF ip saddr $LAN masquerade
    }
}
"#;

/// Python's http.server serving `data.bin`; killed and removed on drop.
struct Web {
    child: Child,
    dir: PathBuf,
}

impl Drop for Web {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn web(ns: &str, addr: &str, data: &[u8]) -> Web {
    let dir = std::env::temp_dir().join(format!("{ns}-web"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("data.bin"), data).unwrap();
    let child = Command::new("ip")
        .args(["netns", "exec", ns, "python3", "-m", "http.server", "8000"])
        .args(["--bind", addr, "--directory"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Until it listens.
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(10) {
        let o = Command::new("ip")
            .args(["netns", "exec", ns, "ss", "-ltn"])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&o.stdout).contains(&format!("{addr}:8000")) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Web { child, dir }
}

/// curl from `ns` to `url`: the body's checksum, or why not (short
/// timeouts: a dropped connection fails in 3 s).
fn curl(ns: &str, url: &str) -> Result<u64, String> {
    let o = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "curl",
            "-s",
            "-f",
            "--max-time",
            "3",
            url,
        ])
        .output()
        .map_err(|e| e.to_string())?;
    if o.status.success() {
        Ok(fnv(&o.stdout))
    } else {
        Err(format!("curl {url}: exit {:?}", o.status.code()))
    }
}

fn ping(ns: &str, to: &str) -> Result<u64, String> {
    let o = Command::new("ip")
        .args(["netns", "exec", ns, "ping", "-c", "1", "-W", "2", to])
        .output()
        .map_err(|e| e.to_string())?;
    if o.status.success() {
        Ok(0)
    } else {
        Err(format!("ping {to}: no answer"))
    }
}

fn tools_missing() -> Option<&'static str> {
    for t in ["nft", "curl", "python3", "ping"] {
        let ok = Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            return Some(t);
        }
    }
    None
}

/// Every outcome, in order, through the router of `g`.
fn outcomes(g: &Gateway) -> Vec<(&'static str, Result<u64, String>)> {
    let _outside = web(&g.server, "10.2.0.2", &pattern(1 << 20));
    let _inside = web(&g.client, "10.1.0.2", &pattern(1 << 20));
    vec![
        (
            "lan -> web out (masquerade)",
            curl(&g.client, "http://10.2.0.2:8000/data.bin"),
        ),
        ("lan -> ping out", ping(&g.client, "10.2.0.2")),
        (
            "wan -> port forward 8080",
            curl(&g.server, "http://10.2.0.1:8080/data.bin"),
        ),
        (
            "wan -> lan server direct (dropped)",
            curl(&g.server, "http://10.1.0.2:8000/data.bin"),
        ),
        ("wan -> ping lan (dropped)", ping(&g.server, "10.1.0.2")),
    ]
}

fn ruleset(g: &Gateway) -> String {
    RULESET.replace("R0", &g.r0).replace("R1", &g.r1)
}

#[test]
fn one_nft_file_runs_the_same_in_the_kernel_and_in_xgate() {
    if skip() {
        return;
    }
    if let Some(t) = tools_missing() {
        eprintln!("skipped: {t} is not installed (scripts/setup-debian.sh)");
        return;
    }
    let want = fnv(&pattern(1 << 20));
    let expected = [true, true, true, false, false];

    // The kernel.
    let kernel = {
        let g = Gateway::new(1);
        g.tb.sysctl(&g.router, "net.ipv4.ip_forward=1");
        for (dev, cidr) in [(&g.r0, "10.1.0.1/24"), (&g.r1, "10.2.0.1/24")] {
            g.tb.ip(&g.router, &["addr", "add", cidr, "dev", dev]);
        }
        let file = std::env::temp_dir().join(format!("{}-ruleset.nft", g.router));
        std::fs::write(&file, ruleset(&g)).unwrap();
        let o = Command::new("ip")
            .args(["netns", "exec", &g.router, "nft", "-f"])
            .arg(&file)
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&file);
        if !o.status.success() {
            eprintln!(
                "skipped: the kernel refused the ruleset: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            return;
        }
        outcomes(&g)
    };

    // xgate, the same file.
    let g = Gateway::new(1);
    let file = std::env::temp_dir().join(format!("{}-ruleset.nft", g.router));
    std::fs::write(&file, ruleset(&g)).unwrap();
    let config = format!(
        r#"
[dataplane]
workers = 1
flows = 65536

[[interface]]
name = "{r0}"
device = "{r0}"
address = ["10.1.0.1/24"]

[[interface]]
name = "{r1}"
device = "{r1}"
address = ["10.2.0.1/24"]

[firewall]
nft_file = "{file}"
"#,
        r0 = g.r0,
        r1 = g.r1,
        file = file.display()
    );
    let x = Xgate::start(XGATE, &g.router, &config);
    assert!(x.log().contains("xgate: running"), "{}", x.log());
    let through_xgate = outcomes(&g);
    let exit = x.stop();
    let _ = std::fs::remove_file(&file);
    assert!(exit.success, "xgate did not exit cleanly:\n{}", exit.log);

    for (i, ((what, k), (_, x))) in kernel.iter().zip(&through_xgate).enumerate() {
        eprintln!("{what}: kernel {k:?}, xgate {x:?}");
        assert_eq!(k.is_ok(), expected[i], "the kernel: {what}: {k:?}");
        assert_eq!(x.is_ok(), expected[i], "xgate: {what}: {x:?}");
        if let (Ok(a), Ok(b)) = (k, x) {
            assert_eq!(a, b, "{what}: different bytes");
            if what.contains("web") || what.contains("port forward") {
                assert_eq!(*a, want, "{what}: the file");
            }
        }
    }
}
