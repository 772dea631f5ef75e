//! The control socket: a blocking accept loop on its own thread, a thread
//! per client (at most [`MAX_CLIENTS`]), read and write timeouts; shutdown
//! stops the accept loop and never waits for a client.
//!
//! The socket is created mode 0600 (its parent directory is created if
//! missing): only root, who may reload the config and flush connections,
//! talks to it. A socket left by a previous run that nobody answers on is
//! removed at start; one a live xgate answers on is an error.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{Request, Response, Runtime};

/// A request line longer than this is refused (the largest real one is a
/// `route add` of a few words).
const MAX_REQUEST: u64 = 64 * 1024;
/// A client that sends nothing, or takes none of its answer, for this
/// long is dropped.
const IDLE: Duration = Duration::from_secs(10);
/// Clients served at once; more are answered with an error.
pub const MAX_CLIENTS: usize = 16;

/// A bound control socket, not yet serving.
#[derive(Debug)]
pub struct CtlServer {
    path: PathBuf,
    listener: UnixListener,
}

impl CtlServer {
    /// Binds `path` (mode 0600), creating its directory and removing a
    /// stale socket.
    pub fn bind(path: &Path) -> std::io::Result<CtlServer> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a socket", path.display()),
                ));
            }
            if UnixStream::connect(path).is_ok() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    format!("{}: another xgate is running", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        Ok(CtlServer {
            path: path.to_path_buf(),
            listener,
        })
    }

    /// Serves `runtime` on a thread named `xgate-ctl` until the handle is
    /// shut down or dropped. Each client gets a thread of its own (at most
    /// [`MAX_CLIENTS`] at once; more are answered with an error and
    /// closed), so one slow or stuck client delays nobody.
    pub fn spawn(self, runtime: Arc<Runtime>) -> std::io::Result<CtlHandle> {
        let stop = Arc::new(AtomicBool::new(false));
        let path = self.path.clone();
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("xgate-ctl".into())
                .spawn(move || self.serve(runtime, &stop))?
        };
        Ok(CtlHandle {
            path,
            stop,
            thread: Some(thread),
        })
    }

    fn serve(self, runtime: Arc<Runtime>, stop: &AtomicBool) {
        let active = Arc::new(AtomicUsize::new(0));
        let mut last_log: Option<std::time::Instant> = None;
        for conn in self.listener.incoming() {
            if stop.load(Ordering::Acquire) {
                break;
            }
            let c = match conn {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors, say: log (at most once a
                    // second), wait a little, go on accepting.
                    if last_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                        eprintln!("xgate: ctl: accept failed: {e} (retrying)");
                        last_log = Some(std::time::Instant::now());
                    }
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
            };
            if active.fetch_add(1, Ordering::AcqRel) >= MAX_CLIENTS {
                active.fetch_sub(1, Ordering::AcqRel);
                refuse(c);
                continue;
            }
            let (rt, act) = (runtime.clone(), active.clone());
            let spawned = std::thread::Builder::new()
                .name("xgate-ctl-client".into())
                .spawn(move || {
                    let _ = serve_client(c, &rt);
                    act.fetch_sub(1, Ordering::AcqRel);
                });
            if spawned.is_err() {
                active.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
}

/// Tells a client over [`MAX_CLIENTS`] to come back later, without
/// waiting for it.
fn refuse(c: UnixStream) {
    let _ = c.set_nonblocking(true);
    let mut text = serde_json::to_string(&Response::error(format!(
        "busy: {MAX_CLIENTS} ctl clients are being served, try again"
    )))
    .unwrap_or_default();
    text.push('\n');
    let _ = (&c).write_all(text.as_bytes());
}

/// Answers every request line of one client. Reads and writes time out
/// ([`IDLE`]): a client that stops reading its answer is dropped.
pub fn serve_client(stream: UnixStream, runtime: &Runtime) -> std::io::Result<()> {
    stream.set_read_timeout(Some(IDLE))?;
    stream.set_write_timeout(Some(IDLE))?;
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = Read::by_ref(&mut reader)
            .take(MAX_REQUEST)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(());
        }
        let too_long = line.last() != Some(&b'\n') && n as u64 == MAX_REQUEST;
        let resp = if too_long {
            Response::error("request too long")
        } else {
            match std::str::from_utf8(&line) {
                Err(e) => Response::error(format!("bad request: not UTF-8 text ({e})")),
                Ok(text) => match serde_json::from_str::<Request>(text.trim()) {
                    Ok(req) => {
                        let resp = runtime.handle(&req);
                        if matches!(req.command, super::Command::Reload) {
                            // Logged as a SIGHUP reload is.
                            runtime.note(match &resp.error {
                                None => format!("reloaded (ctl): {}", resp.text.trim_end()),
                                Some(e) => format!("ctl {}", e.trim_end()),
                            });
                        }
                        resp
                    }
                    Err(e) => Response::error(format!("bad request: {e}")),
                },
            }
        };
        let mut text = serde_json::to_string(&resp).unwrap_or_else(|e| {
            format!(r#"{{"version":1,"ok":false,"error":"cannot encode the answer: {e}"}}"#)
        });
        text.push('\n');
        out.write_all(text.as_bytes())?;
        if too_long {
            return Ok(());
        }
    }
}

/// The running control server; dropping it stops the thread and removes
/// the socket.
#[derive(Debug)]
pub struct CtlHandle {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl CtlHandle {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops accepting and removes the socket at once; clients being
    /// served finish on their own (their timeouts bound them).
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(t) = self.thread.take() {
            self.stop.store(true, Ordering::Release);
            // Wake the accept loop with a connection of our own. If the
            // socket file is gone (someone removed it), nothing can wake
            // it: leave the thread blocked rather than wait forever.
            if UnixStream::connect(&self.path).is_ok() {
                let _ = t.join();
            }
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Drop for CtlHandle {
    fn drop(&mut self) {
        self.stop_now();
    }
}
