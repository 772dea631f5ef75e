//! xgate-testbed: network namespaces and veth topologies for end-to-end
//! tests, traffic helpers that run inside a namespace, and a handle on a
//! running `xgate run`.
//!
//! Everything it creates is named with a per-process prefix
//! (`xgt<pid hex><n>`), lives inside namespaces it created (veth pairs are
//! created directly in their namespaces, never in the machine's own), and
//! is deleted when the [`Testbed`] guard drops, also when a test panics.
//! It never touches a namespace it did not create. Addresses are from
//! 10.0.0.0/8. Topology set-up uses the `ip`, `ethtool` and `sysctl`
//! commands (iproute2 and ethtool, installed by scripts/setup-debian.sh);
//! traffic is generated from threads that enter a namespace with setns(2),
//! so no extra tools are needed.

pub mod bpf;
pub mod demo;
pub mod pktgen;
pub mod traffic;
pub mod xgate;

use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// For a live test: true, with the reason printed, when it cannot run
/// here (see [`skip_reason`]).
pub fn skip() -> bool {
    match skip_reason() {
        Some(r) => {
            eprintln!("skipped: {r}");
            true
        }
        None => false,
    }
}

/// The live tests' site: a client, a router (where xgate runs, its own
/// forwarding off) and a server namespace joined by veth pairs with
/// `queues` queues each way:
///
/// ```text
///  client c0 10.1.0.2/24 ---- r0 (router) r1 ---- s0 10.2.0.2/24 server
/// ```
///
/// The endpoints route by 10.1.0.1 and 10.2.0.1, the router's addresses
/// in xgate's config. Everything goes with the `Testbed`.
pub struct Gateway {
    pub tb: Testbed,
    pub client: String,
    pub router: String,
    pub server: String,
    pub c0: String,
    pub r0: String,
    pub r1: String,
    pub s0: String,
}

impl Gateway {
    pub fn new(queues: u32) -> Gateway {
        let mut tb = Testbed::new();
        let client = tb.netns("c");
        let router = tb.netns("r");
        let server = tb.netns("s");
        let (c0, r0) = tb.veth(&client, "c0", &router, "r0", queues);
        let (r1, s0) = tb.veth(&router, "r1", &server, "s0", queues);
        tb.sysctl(&router, "net.ipv4.ip_forward=0");
        tb.endpoint(&client, &c0, "10.1.0.2/24", "10.1.0.1");
        tb.endpoint(&server, &s0, "10.2.0.2/24", "10.2.0.1");
        Gateway {
            tb,
            client,
            router,
            server,
            c0,
            r0,
            r1,
            s0,
        }
    }
}

/// Why a live test cannot run on this kernel (None: it can).
pub fn skip_reason() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("needs root (network namespaces, AF_XDP)".into());
    }
    // SAFETY: socket/close on a fresh descriptor.
    let fd = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW, 0) };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        return Some(format!("the kernel has no AF_XDP sockets ({e})"));
    }
    // SAFETY: `fd` is the descriptor just opened, closed once.
    unsafe { libc::close(fd) };
    if !std::path::Path::new("/proc/self/ns/net").exists() {
        return Some("the kernel has no network namespaces".into());
    }
    None
}

/// Runs a command; panics with its output when it fails.
pub fn run(prog: &str, args: &[&str]) -> Output {
    let out = Command::new(prog)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{prog}: {e} (run scripts/setup-debian.sh)"));
    assert!(
        out.status.success(),
        "{prog} {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A set of namespaces (and the veths inside them), deleted on drop.
pub struct Testbed {
    prefix: String,
    namespaces: Vec<String>,
}

impl Default for Testbed {
    fn default() -> Self {
        Self::new()
    }
}

impl Testbed {
    pub fn new() -> Self {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Testbed {
            prefix: format!("xgt{:x}{:x}", std::process::id(), n),
            namespaces: Vec::new(),
        }
    }

    /// The prefixed name of `tag` (namespaces and devices). Device names
    /// must stay within 15 bytes: tags of up to 3 characters.
    pub fn name(&self, tag: &str) -> String {
        let n = format!("{}{tag}", self.prefix);
        assert!(n.len() <= 15, "device name {n} too long");
        n
    }

    /// Creates namespace `tag` (loopback up); returns its name.
    pub fn netns(&mut self, tag: &str) -> String {
        let ns = self.name(tag);
        run("ip", &["netns", "add", &ns]);
        self.namespaces.push(ns.clone());
        self.ip(&ns, &["link", "set", "lo", "up"]);
        ns
    }

    /// A veth pair with `queues` rx and tx queues per end, end `a` in
    /// namespace `ns_a`, end `b` in `ns_b`, both up. Returns the device names.
    pub fn veth(
        &self,
        ns_a: &str,
        tag_a: &str,
        ns_b: &str,
        tag_b: &str,
        queues: u32,
    ) -> (String, String) {
        let (a, b) = (self.name(tag_a), self.name(tag_b));
        let q = queues.to_string();
        self.ip(
            ns_a,
            &[
                "link",
                "add",
                &a,
                "numtxqueues",
                &q,
                "numrxqueues",
                &q,
                "type",
                "veth",
                "peer",
                "name",
                &b,
                "netns",
                ns_b,
                "numtxqueues",
                &q,
                "numrxqueues",
                &q,
            ],
        );
        self.ip(ns_a, &["link", "set", &a, "up"]);
        self.ip(ns_b, &["link", "set", &b, "up"]);
        (a, b)
    }

    /// The namespaces created so far (deleted on drop).
    pub fn namespaces(&self) -> &[String] {
        &self.namespaces
    }

    /// `ip -n NS ARGS`.
    pub fn ip(&self, ns: &str, args: &[&str]) -> Output {
        let mut v = vec!["-n", ns];
        v.extend_from_slice(args);
        run("ip", &v)
    }

    /// Runs PROG ARGS inside namespace `ns`.
    pub fn exec(&self, ns: &str, prog: &str, args: &[&str]) -> Output {
        let mut v = vec!["netns", "exec", ns, prog];
        v.extend_from_slice(args);
        run("ip", &v)
    }

    pub fn sysctl(&self, ns: &str, key_value: &str) {
        self.exec(ns, "sysctl", &["-qw", key_value]);
    }

    /// A traffic endpoint's device: address, default route via `gw`, full
    /// checksums on transmit (`tx off`) and GRO on, so frames xgate sends
    /// into the veth are accepted (veth drops frames redirected into it
    /// unless its peer has XDP or GRO).
    pub fn endpoint(&self, ns: &str, dev: &str, cidr: &str, gw: &str) {
        self.ip(ns, &["addr", "add", cidr, "dev", dev]);
        self.ip(ns, &["route", "add", "default", "via", gw]);
        self.exec(ns, "ethtool", &["-K", dev, "tx", "off", "gro", "on"]);
    }

    /// The MAC address of `dev` in `ns`.
    pub fn mac(&self, ns: &str, dev: &str) -> [u8; 6] {
        let out = self.ip(ns, &["link", "show", dev]);
        let s = String::from_utf8_lossy(&out.stdout);
        let hex = s
            .split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .expect("no link/ether");
        let mut mac = [0u8; 6];
        for (b, h) in mac.iter_mut().zip(hex.split(':')) {
            *b = u8::from_str_radix(h, 16).unwrap();
        }
        mac
    }

    /// Whether any device in `ns` has an XDP program attached.
    pub fn has_xdp(&self, ns: &str) -> bool {
        let out = self.ip(ns, &["link", "show"]);
        String::from_utf8_lossy(&out.stdout).contains("xdp")
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veths inside it (and their peers).
        for ns in self.namespaces.drain(..).rev() {
            let _ = Command::new("ip").args(["netns", "del", &ns]).output();
        }
    }
}

/// Runs `f` on a new thread that has entered network namespace `ns`;
/// sockets it opens belong to that namespace.
pub fn in_ns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        use std::os::fd::AsRawFd;
        // SAFETY: setns on a namespace file descriptor, for this thread only.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
}

/// Pins the calling thread to `cpu`.
pub fn pin_to_cpu(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t with one bit set, for this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}
