//! End to end: FTP through xgate's FTP helper with the real vsftpd server
//! and curl / lftp clients (Debian packages `vsftpd`, `lftp`, `curl`,
//! installed by scripts/setup-debian.sh), and the same transfers through
//! the Linux kernel with `-t raw ... -j CT --helper ftp` for comparison.
//!
//! The site is seed 003's, on the testbed's gateway (`Gateway`): the LAN
//! (r0, 10.1.0.0/24) is masqueraded out of the wan (r1, 10.2.0.1), and
//! the public address's ports 23, 80, 20 and 21 are forwarded to the
//! server on the LAN (10.1.0.2), with the seed's FORWARD rules except
//! that the LAN may open only FTP control connections (the seed lets it
//! open anything, which would let passive data through without the
//! helper). FORWARD's policy is DROP; only the control connections
//! (port 21) and `RELATED,ESTABLISHED` are accepted, so a data connection
//! passes only if the helper made it RELATED, and an address left
//! unrewritten either is refused by vsftpd (PORT from a masqueraded
//! client: "Illegal PORT command") or leads nowhere (227 naming the
//! inside address). Transfers:
//!
//! - a LAN client (10.1.0.2) from the outside server (10.2.0.2):
//!   passive (PASV, EPSV) and active (PORT, EPRT), through masquerade;
//! - an outside client (10.2.0.2) from the LAN server behind the port
//!   forward (10.2.0.1:21 -> 10.1.0.2:21): passive (the server announces
//!   10.1.0.2, rewritten to 10.2.0.1; curl and lftp with its
//!   fix-pasv-address off) and active (vsftpd's data connection from port
//!   20 leaves through the forward).
//!
//! And TFTP (tftpd-hpa, tftp-hpa) from the LAN through masquerade: the
//! server's answer from a new port passes only as the TFTP helper's
//! expectation (checked with the helper on, then off).
//!
//! Every downloaded file is compared with the served one by checksum.
//! Namespaces are the testbed's (`xgt<pid>...`, removed on any exit);
//! vsftpd processes are killed by their guard. Skipped (with the reason)
//! when not root, without AF_XDP, or without vsftpd/curl/lftp (tftpd-hpa,
//! tftp-hpa for TFTP).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use xgate_testbed::traffic::{fnv, pattern};
use xgate_testbed::xgate::Xgate;
use xgate_testbed::{Gateway, skip};

const XGATE: &str = env!("CARGO_BIN_EXE_xgate");
const FILE_LEN: usize = 3 << 20;

/// A vsftpd serving `data.bin` from a directory of its own; killed and
/// removed on drop.
struct Ftpd {
    child: Child,
    dir: PathBuf,
}

impl Drop for Ftpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ftpd(ns: &str, addr: &str, data: &[u8]) -> Ftpd {
    let dir = std::env::temp_dir().join(format!("{ns}-ftpd"));
    let root = dir.join("root");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("data.bin"), data).unwrap();
    use std::os::unix::fs::PermissionsExt;
    for d in [&dir, &root] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let conf = dir.join("vsftpd.conf");
    std::fs::write(
        &conf,
        format!(
            "listen=YES\nlisten_ipv6=NO\nlisten_address={addr}\nbackground=NO\n\
             anonymous_enable=YES\nlocal_enable=NO\nno_anon_password=YES\n\
             anon_root={root}\nftp_username=ftp\nconnect_from_port_20=YES\n\
             port_enable=YES\npasv_enable=YES\npasv_min_port=41000\npasv_max_port=41100\n\
             seccomp_sandbox=NO\nisolate_network=NO\nisolate=NO\nxferlog_enable=NO\n\
             secure_chroot_dir=/var/run/vsftpd/empty\nvsftpd_log_file={log}\n",
            root = root.display(),
            log = dir.join("vsftpd.log").display()
        ),
    )
    .unwrap();
    let child = Command::new("ip")
        .args(["netns", "exec", ns, "vsftpd"])
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("vsftpd");
    // Listening?
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        let out = Command::new("ip")
            .args(["netns", "exec", ns, "ss", "-ltn"])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&out.stdout).contains(&format!("{addr}:21")) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ftpd { child, dir }
}

/// Runs a client command in `ns` that writes the file to `out`; the
/// file's bytes, or the command's error output.
fn fetch(ns: &str, prog: &str, args: &[&str], out: &Path) -> Result<Vec<u8>, String> {
    let _ = std::fs::remove_file(out);
    let o = Command::new("timeout")
        .args(["30", "ip", "netns", "exec", ns, prog])
        .args(args)
        .output()
        .map_err(|e| format!("{prog}: {e}"))?;
    if !o.status.success() {
        return Err(format!(
            "{prog} {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ));
    }
    std::fs::read(out).map_err(|e| format!("{}: {e}", out.display()))
}

fn tools_missing() -> Option<&'static str> {
    for t in ["vsftpd", "curl", "lftp", "ss"] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(t).exists()))
            .unwrap_or(false);
        if !found {
            return Some(t);
        }
    }
    None
}

/// The transfers of the module comment: (name, client namespace, program,
/// arguments; `OUT` is replaced by the output file).
fn transfers(g: &Gateway) -> Vec<(&'static str, String, &'static str, Vec<String>)> {
    let lan_client = g.client.clone();
    let outside = g.server.clone();
    let curl = |extra: &[&str], url: &str| {
        let mut v: Vec<String> = vec!["-sS".into(), "--max-time".into(), "20".into()];
        v.extend(extra.iter().map(|s| s.to_string()));
        v.extend(["-o".into(), "OUT".into(), url.into()]);
        v
    };
    let out_url = "ftp://10.2.0.2/data.bin";
    let fwd_url = "ftp://10.2.0.1/data.bin";
    vec![
        (
            "masquerade PASV",
            lan_client.clone(),
            "curl",
            curl(&["--disable-epsv"], out_url),
        ),
        (
            "masquerade EPSV",
            lan_client.clone(),
            "curl",
            curl(&[], out_url),
        ),
        (
            "masquerade PORT",
            lan_client.clone(),
            "curl",
            curl(&["--ftp-port", "-", "--disable-eprt"], out_url),
        ),
        (
            "masquerade EPRT",
            lan_client.clone(),
            "curl",
            curl(&["--ftp-port", "-"], out_url),
        ),
        (
            "forward PASV (curl)",
            outside.clone(),
            "curl",
            curl(&["--disable-epsv"], fwd_url),
        ),
        (
            "forward PASV (lftp)",
            outside.clone(),
            "lftp",
            vec![
                "-e".into(),
                "set ftp:passive-mode on; set ftp:prefer-epsv no; set ftp:fix-pasv-address no; \
                 set net:max-retries 1; set net:timeout 10; get data.bin -o OUT; bye"
                    .into(),
                "ftp://anonymous:x@10.2.0.1".into(),
            ],
        ),
        (
            "forward PORT",
            outside.clone(),
            "curl",
            curl(&["--ftp-port", "-", "--disable-eprt"], fwd_url),
        ),
    ]
}

fn run_transfers(g: &Gateway, want: &[u8], tag: &str) -> Vec<(String, Result<(), String>)> {
    let mut results = Vec::new();
    for (k, (name, ns, prog, args)) in transfers(g).into_iter().enumerate() {
        let out = std::env::temp_dir().join(format!("{}-{tag}-{k}.bin", g.router));
        let args: Vec<String> = args
            .into_iter()
            .map(|a| a.replace("OUT", &out.display().to_string()))
            .collect();
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = fetch(&ns, prog, &argv, &out).and_then(|got| {
            if got.len() == want.len() && fnv(&got) == fnv(want) {
                Ok(())
            } else {
                Err(format!(
                    "checksum {:016x} ({} bytes), want {:016x} ({} bytes)",
                    fnv(&got),
                    got.len(),
                    fnv(want),
                    want.len()
                ))
            }
        });
        let _ = std::fs::remove_file(&out);
        eprintln!(
            "{tag}: {name}: {}",
            r.as_ref().map_or_else(|e| e.clone(), |_| "ok".into())
        );
        results.push((name.to_string(), r));
    }
    results
}

const RULES: &str = r#"*nat
-A PREROUTING -d 10.2.0.1 -p tcp --dport 23 -j DNAT --to-destination 10.1.0.2:23
-A PREROUTING -d 10.2.0.1 -p tcp --dport 80 -j DNAT --to-destination 10.1.0.2:80
-A PREROUTING -d 10.2.0.1 -p tcp --dport 20 -j DNAT --to-destination 10.1.0.2:20
-A PREROUTING -d 10.2.0.1 -p tcp --dport 21 -j DNAT --to-destination 10.1.0.2:21
-A POSTROUTING -s 10.1.0.0/24 -o WAN -j MASQUERADE
COMMIT
*filter
:FORWARD DROP [0:0]
-A FORWARD -m state --state RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -i LAN -p tcp --dport 21 -j ACCEPT
-A FORWARD -i WAN -d 10.1.0.2 -p tcp -m multiport --dports 20,21,23,80 -j ACCEPT
COMMIT
"#;

#[test]
fn ftp_through_masquerade_and_port_forward() {
    if skip() {
        return;
    }
    if let Some(t) = tools_missing() {
        eprintln!("skipped: {t} is not installed (scripts/setup-debian.sh)");
        return;
    }
    let data = pattern(FILE_LEN);
    let g = Gateway::new(1);
    let rules = RULES.replace("WAN", "wan").replace("LAN", "lan");
    let config = format!(
        r#"
[dataplane]
workers = 1
flows = 65536

[[interface]]
name = "lan"
device = "{r0}"
address = ["10.1.0.1/24"]

[[interface]]
name = "wan"
device = "{r1}"
address = ["10.2.0.1/24"]

[conntrack]
helpers = [ {{ helper = "ftp", ports = [21] }} ]

[firewall]
rules = """
{rules}"""
"#,
        r0 = g.r0,
        r1 = g.r1
    );
    let x = Xgate::start(XGATE, &g.router, &config);
    assert!(x.log().contains("xgate: running"), "{}", x.log());
    let _outside_ftpd = ftpd(&g.server, "10.2.0.2", &data);
    let _inside_ftpd = ftpd(&g.client, "10.1.0.2", &data);
    let results = run_transfers(&g, &data, "xgate");
    let ctl = Command::new("ip")
        .args(["netns", "exec", &g.router, XGATE, "ctl", "--socket"])
        .arg(x.socket())
        .arg("stats")
        .output()
        .unwrap();
    let stats = String::from_utf8_lossy(&ctl.stdout).to_string();
    let exit = x.stop();
    assert!(exit.success, "xgate did not exit cleanly:\n{}", exit.log);
    let failed: Vec<_> = results.iter().filter(|(_, r)| r.is_err()).collect();
    assert!(failed.is_empty(), "through xgate: {failed:#?}\n{stats}");
    assert!(stats.contains("helpers: attached"), "{stats}");
}

/// The same transfers through the kernel (nf_conntrack_ftp, nf_nat_ftp,
/// attached by the raw table), on the same topology with the kernel
/// forwarding: the reference xgate is compared with.
#[test]
fn ftp_through_the_kernel_for_comparison() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root");
        return;
    }
    if let Some(t) = tools_missing() {
        eprintln!("skipped: {t} is not installed (scripts/setup-debian.sh)");
        return;
    }
    let data = pattern(FILE_LEN);
    let g = Gateway::new(1);
    g.tb.sysctl(&g.router, "net.ipv4.ip_forward=1");
    for (dev, cidr) in [(&g.r0, "10.1.0.1/24"), (&g.r1, "10.2.0.1/24")] {
        g.tb.ip(&g.router, &["addr", "add", cidr, "dev", dev]);
    }
    let rules = format!(
        "*raw\n-A PREROUTING -p tcp --dport 21 -j CT --helper ftp\nCOMMIT\n{}",
        RULES.replace("WAN", &g.r1).replace("LAN", &g.r0)
    );
    let mut child = Command::new("ip")
        .args(["netns", "exec", &g.router, "iptables-restore"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(rules.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    if !o.status.success() {
        eprintln!(
            "skipped: the kernel refused the ruleset (no nf_conntrack_ftp?): {}",
            String::from_utf8_lossy(&o.stderr)
        );
        return;
    }
    let _outside_ftpd = ftpd(&g.server, "10.2.0.2", &data);
    let _inside_ftpd = ftpd(&g.client, "10.1.0.2", &data);
    let results = run_transfers(&g, &data, "kernel");
    let failed: Vec<_> = results.iter().filter(|(_, r)| r.is_err()).collect();
    assert!(failed.is_empty(), "through the kernel: {failed:#?}");
}

/// A tftpd-hpa serving `data.bin`; killed and removed on drop.
fn tftpd(ns: &str, addr: &str, data: &[u8]) -> Ftpd {
    let dir = std::env::temp_dir().join(format!("{ns}-tftpd"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("data.bin"), data).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(dir.join("data.bin"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let child = Command::new("ip")
        .args(["netns", "exec", ns, "in.tftpd", "-L", "-s"])
        .arg(&dir)
        .args(["-a", &format!("{addr}:69")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("in.tftpd");
    std::thread::sleep(Duration::from_millis(300));
    Ftpd { child, dir }
}

/// TFTP (RFC 1350) from a LAN client through masquerade: the server
/// answers from a new port, which passes FORWARD (DROP but for port 69
/// and RELATED,ESTABLISHED) only as the TFTP helper's expectation; the
/// file is compared by checksum. Then the same with the helper off: the
/// transfer must fail (the test shows the helper, not the ruleset).
#[test]
fn tftp_through_masquerade() {
    if skip() {
        return;
    }
    let have = |t: &str| {
        std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(t).exists()))
            .unwrap_or(false)
    };
    if !have("in.tftpd") || !have("tftp") {
        eprintln!("skipped: tftpd-hpa / tftp-hpa not installed (scripts/setup-debian.sh)");
        return;
    }
    let data = pattern(256 << 10);
    for helper in [true, false] {
        let g = Gateway::new(1);
        let helpers = if helper { r#"{ helper = "tftp" }"# } else { "" };
        let config = format!(
            r#"
[dataplane]
workers = 1
flows = 65536

[[interface]]
name = "lan"
device = "{r0}"
address = ["10.1.0.1/24"]

[[interface]]
name = "wan"
device = "{r1}"
address = ["10.2.0.1/24"]

[conntrack]
helpers = [ {helpers} ]

[firewall]
rules = """
*nat
-A POSTROUTING -s 10.1.0.0/24 -o wan -j MASQUERADE
COMMIT
*filter
:FORWARD DROP [0:0]
-A FORWARD -m state --state RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -i lan -p udp --dport 69 -j ACCEPT
COMMIT
"""
"#,
            r0 = g.r0,
            r1 = g.r1
        );
        let x = Xgate::start(XGATE, &g.router, &config);
        assert!(x.log().contains("xgate: running"), "{}", x.log());
        let _tftpd = tftpd(&g.server, "10.2.0.2", &data);
        let out = std::env::temp_dir().join(format!("{}-tftp.bin", g.router));
        let out_s = out.display().to_string();
        let r = fetch(
            &g.client,
            "timeout",
            &[
                "8", "tftp", "-m", "binary", "10.2.0.2", "-c", "get", "data.bin", &out_s,
            ],
            &out,
        );
        let _ = std::fs::remove_file(&out);
        let exit = x.stop();
        assert!(exit.success, "xgate did not exit cleanly:\n{}", exit.log);
        if helper {
            let got = r.unwrap_or_else(|e| panic!("tftp through xgate: {e}"));
            assert_eq!((got.len(), fnv(&got)), (data.len(), fnv(&data)));
        } else {
            assert!(
                r.as_ref().map_or(true, |got| got.len() != data.len()),
                "without the helper the answer from a new port must not pass"
            );
        }
    }
}
