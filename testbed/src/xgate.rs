//! A running `xgate run` inside a namespace.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `xgate run` started by `ip netns exec` (which execs, so the child is
/// xgate itself and receives our SIGINT). Stopped with SIGINT on drop.
pub struct Xgate {
    child: Option<Child>,
    /// The binary, for `xgate ctl`.
    bin: String,
    log: Arc<Mutex<String>>,
    stats: PathBuf,
    dir: PathBuf,
}

/// What `xgate run` said and left after it stopped.
#[derive(Debug)]
pub struct XgateExit {
    pub success: bool,
    pub log: String,
    /// The `--stats-file` lines: one `key=value` line per worker, then drops.
    pub stats: String,
}

impl XgateExit {
    /// `key` of every worker line, as numbers (worker order).
    pub fn per_worker(&self, key: &str) -> Vec<i64> {
        self.stats
            .lines()
            .filter(|l| l.starts_with("worker="))
            .filter_map(|l| {
                l.split_whitespace()
                    .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
                    .and_then(|v| v.parse().ok())
            })
            .collect()
    }
}

impl Xgate {
    /// Writes `config` to a file and starts `bin run` on it in `ns`; waits
    /// until the workers run (or the process exits: see [`Xgate::stop`]).
    pub fn start(bin: &str, ns: &str, config: &str) -> Xgate {
        Self::start_with(bin, ns, config, &[])
    }

    /// [`Xgate::start`] with extra `run` arguments (e.g. `--stats-interval 1`).
    pub fn start_with(bin: &str, ns: &str, config: &str, extra: &[&str]) -> Xgate {
        let dir = std::env::temp_dir().join(format!("{ns}-xgate"));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = dir.join("xgate.toml");
        let stats = dir.join("stats.txt");
        let _ = std::fs::remove_file(&stats);
        std::fs::write(&cfg, with_socket(config, &dir)).unwrap();
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, bin, "run", "--config"])
            .arg(&cfg)
            .arg("--stats-file")
            .arg(&stats)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning xgate");
        let log = Arc::new(Mutex::new(String::new()));
        let err = child.stderr.take().unwrap();
        let l = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut g = l.lock().unwrap();
                g.push_str(&line);
                g.push('\n');
            }
        });
        let x = Xgate {
            child: Some(child),
            bin: bin.to_string(),
            log,
            stats,
            dir,
        };
        let until = Instant::now() + Duration::from_secs(20);
        while Instant::now() < until {
            if x.log().contains("xgate: running") {
                break;
            }
            if x.exited() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        x
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// `xgate ctl ARGS` on this instance's socket: its output; panics
    /// (with what it printed) if it fails.
    pub fn ctl(&self, args: &[&str]) -> String {
        let out = Command::new(&self.bin)
            .arg("ctl")
            .arg("--socket")
            .arg(self.socket())
            .args(args)
            .output()
            .expect("xgate ctl");
        assert!(
            out.status.success(),
            "ctl {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Replaces the config file the instance runs from (with the same
    /// control socket), for a reload (`xgate ctl reload`, SIGHUP) to read.
    pub fn rewrite_config(&self, config: &str) {
        std::fs::write(self.dir.join("xgate.toml"), with_socket(config, &self.dir)).unwrap();
    }

    /// The instance's `xgate ctl` socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("xgate.sock")
    }

    /// Sends `sig` (e.g. SIGHUP: reload) to the running instance.
    pub fn signal(&self, sig: libc::c_int) {
        if let Some(c) = &self.child {
            // SAFETY: signals our own child.
            unsafe { libc::kill(c.id() as i32, sig) };
        }
    }

    fn exited(&self) -> bool {
        let pid = self.child.as_ref().map_or(0, |c| c.id() as i32);
        // SAFETY: siginfo_t is plain data; all zeroes is a valid value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid with WNOHANG|WNOWAIT only peeks at the child, and
        // writes into `info`, which lives across the call.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as u32,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        // SAFETY: `info` was zeroed and filled by waitid for a child event,
        // so its si_pid field is the one set.
        rc == 0 && unsafe { info.si_pid() } != 0
    }

    /// Sends SIGINT, waits for the exit (10 s at most, then SIGKILL).
    pub fn stop(mut self) -> XgateExit {
        let mut child = self.child.take().unwrap();
        // SAFETY: signals our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let until = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break Some(s);
            }
            if Instant::now() > until {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // The stderr reader finishes once the pipe closes.
        std::thread::sleep(Duration::from_millis(50));
        XgateExit {
            success: status.is_some_and(|s| s.success()),
            log: self.log(),
            stats: std::fs::read_to_string(&self.stats).unwrap_or_default(),
        }
    }
}

/// `config` with the instance's own control socket in `dir` (the default
/// path is one per machine; its metrics port is in the instance's own
/// namespace), unless it has a `[control]` section of its own.
fn with_socket(config: &str, dir: &std::path::Path) -> String {
    if config.contains("[control]") {
        config.to_string()
    } else {
        format!(
            "{config}\n[control]\nsocket = {:?}\n",
            dir.join("xgate.sock").display().to_string()
        )
    }
}

impl Drop for Xgate {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: signals our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGINT) };
            let until = Instant::now() + Duration::from_secs(5);
            while Instant::now() < until {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// GET /metrics from the instance running in namespace `ns` (the default
/// address, 127.0.0.1:9482).
pub fn scrape_metrics(ns: &str) -> String {
    crate::in_ns(ns, || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect("127.0.0.1:9482").unwrap();
        s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        body
    })
    .join()
    .unwrap()
}
