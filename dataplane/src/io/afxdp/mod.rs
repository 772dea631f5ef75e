//! The AF_XDP port backend.
//!
//! Per worker one UMEM (fixed [`FRAME_SIZE`] frames, no extra headroom, so
//! received data starts at [`crate::io::HEADROOM`] = XDP_PACKET_HEADROOM),
//! shared by that worker's sockets on every device, all on the same queue
//! id. Each socket ([`XskPort`]) has its own rx, tx, fill and completion
//! rings; forwarding hands a descriptor from one port's rx ring to another
//! port's tx ring without copying the frame.
//!
//! Frame accounting: the worker's [`FramePool`] owns every free frame. A
//! frame given to a fill ring counts in that port's `rx_owned` until it
//! comes back on the rx ring; a frame given to a tx ring counts in
//! `tx_outstanding` until it comes back on the completion ring (then it is
//! freed to the pool). So at any time
//! `pool + Σ rx_owned + Σ tx_outstanding + frames held by the pipeline =
//! frames`, which [`WorkerIo::frames_unaccounted`] checks.
//!
//! Built directly on libxdp-sys (the bindings xsk-rs itself wraps, with the
//! same vendored libxdp and libbpf): xsk-rs 0.11's frame descriptors can
//! only carry addresses the kernel or its own UMEM constructor produced,
//! while the pipeline moves a frame's start (VLAN pop/push) and allocates
//! frames itself. The unsafe code stays in this module.
//!
//! Modes: XDP native (driver) or SKB (generic) per device, copy or
//! zero-copy per UMEM, need_wakeup always. `auto` tries native, then SKB;
//! zero-copy, then copy; what was obtained is reported by [`Obtained`].
//! Sockets are created one at a time (libxdp's program set-up races when
//! several are created at once).
//!
//! Transmit-only sockets ([`AfXdpConfig::tx_only`], for a traffic
//! generator) have no rx ring and attach nothing to the device: libxdp is
//! told not to load its redirect program (XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD),
//! so the device's own traffic is untouched. The frames they send stay the
//! caller's: a completion is counted, not freed to the pool, so the same
//! frame may be on the tx ring many times at once.

mod umem;
mod xsk;

pub use xsk::{XskCounters, XskPort};

use crate::io::{FRAME_SIZE, FramePool};
use libxdp_sys as sys;
use std::ffi::CString;
use std::path::Path;
use umem::UmemArea;
use xsk::Rings;

const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

/// How the XDP program that steers frames to the sockets is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpMode {
    /// In the driver (fast; the driver must support XDP).
    Native,
    /// Generic XDP on the skb path (any device, slower).
    Skb,
    /// Native if the driver accepts it, else SKB.
    Auto,
}

/// How sockets bind to their queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindMode {
    /// The kernel copies frames between its buffers and the UMEM.
    Copy,
    /// The NIC reads and writes the UMEM itself (driver support needed).
    ZeroCopy,
    /// Zero-copy if every device of the worker supports it, else copy.
    Auto,
}

impl XdpMode {
    pub fn name(self) -> &'static str {
        match self {
            XdpMode::Native => "native",
            XdpMode::Skb => "skb",
            XdpMode::Auto => "auto",
        }
    }
}

/// Settings of the AF_XDP backend.
#[derive(Clone, Debug)]
pub struct AfXdpConfig {
    pub xdp_mode: XdpMode,
    pub bind: BindMode,
    /// Back the UMEM with 2 MiB huge pages when some are reserved.
    pub huge_pages: bool,
    /// Entries of every ring (power of two).
    pub ring_size: u32,
    /// Transmit-only sockets: no rx ring, nothing on the fill ring, and no
    /// XDP program loaded or attached (`xdp_mode` does not apply; the
    /// device keeps whatever it has). Frames handed to `tx_burst` stay the
    /// caller's: completions are counted in [`XskCounters::tx_completed`]
    /// and not freed to the pool, so a generator can write its frames into
    /// the UMEM once and send each of them again and again.
    pub tx_only: bool,
    /// UMEM frames; None: [`umem_frames`] for the worker's sockets.
    pub frames: Option<usize>,
    /// The kernel's preferred busy polling (SO_PREFER_BUSY_POLL, Linux >=
    /// 5.11): the device's receive processing runs in the worker's own
    /// receive/send calls rather than in a softirq on whichever CPU raised
    /// it. For workers that own their cores (`xgate run --busy-poll`).
    pub busy_poll: bool,
}

impl Default for AfXdpConfig {
    fn default() -> Self {
        AfXdpConfig {
            xdp_mode: XdpMode::Auto,
            bind: BindMode::Auto,
            huge_pages: false,
            ring_size: 1024,
            tx_only: false,
            frames: None,
            busy_poll: false,
        }
    }
}

/// What the kernel granted for one worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Obtained {
    /// XDP attach mode per device (Native or Skb), in device order; empty
    /// for transmit-only sockets, which attach no program.
    pub xdp: Vec<XdpMode>,
    pub zero_copy: bool,
    pub huge_pages: bool,
    pub frames: usize,
    /// Copy mode: frames one send call may pass to the driver (the
    /// smallest over the worker's sockets); `None` in zero-copy mode.
    pub tx_budget: Option<u32>,
    /// Preferred busy polling is on for every socket.
    pub busy_poll: bool,
}

/// Why the AF_XDP backend could not start.
#[derive(Debug, thiserror::Error)]
pub enum AfXdpError {
    #[error("device {0:?} does not exist in this network namespace")]
    NoDevice(String),
    #[error(
        "device {device:?} has {available} queue(s); queue {queue} was asked for (set [dataplane] queues/workers to at most {available})"
    )]
    NoQueue {
        device: String,
        queue: u32,
        available: u32,
    },
    #[error("allocating a {bytes}-byte UMEM failed: {err}")]
    Umem { bytes: usize, err: std::io::Error },
    #[error(
        "registering the {bytes}-byte UMEM failed: {err}: locked-memory limit \
         (RLIMIT_MEMLOCK): run as root with CAP_IPC_LOCK, or raise `ulimit -l`"
    )]
    Memlock { bytes: usize, err: std::io::Error },
    #[error("AF_XDP socket on {device} queue {queue} (xdp {xdp}, {bind}): {err}{hint}")]
    Socket {
        device: String,
        queue: u32,
        xdp: &'static str,
        bind: &'static str,
        err: std::io::Error,
        hint: String,
    },
}

/// The sockets of one queue id, one per device (index = port number).
pub struct QueueSet {
    pub queue: u32,
    pub ports: Vec<XskPort>,
}

/// One worker's AF_XDP resources: UMEM, frame pool, sockets.
pub struct WorkerIo {
    /// Dropped first: deleting sockets detaches XDP programs.
    pub queues: Vec<QueueSet>,
    pub pool: FramePool,
    umem: *mut sys::xsk_umem,
    rings: Vec<*mut Rings>,
    area: UmemArea,
    pub obtained: Obtained,
}

// SAFETY: a WorkerIo is used by one thread at a time (built by the control
// thread, moved to its worker, moved back to be dropped); libxdp keeps no
// thread-local state for a UMEM or socket.
unsafe impl Send for WorkerIo {}

impl WorkerIo {
    /// The UMEM, the pool and the queue sets, borrowed together.
    pub fn parts(&mut self) -> (&mut [u8], &mut FramePool, &mut [QueueSet]) {
        (self.area.slice_mut(), &mut self.pool, &mut self.queues)
    }

    /// Every socket of the worker (each queue's, each device's).
    fn ports(&self) -> impl Iterator<Item = &XskPort> {
        self.queues.iter().flat_map(|q| &q.ports)
    }

    fn ports_mut(&mut self) -> impl Iterator<Item = &mut XskPort> {
        self.queues.iter_mut().flat_map(|q| q.ports.iter_mut())
    }

    /// The system calls this worker's sockets made: (tx kicks, fill-ring
    /// wake-ups, busy polls).
    pub fn syscalls(&self) -> (u64, u64, u64) {
        self.ports().fold((0, 0, 0), |(t, f, b), p| {
            (
                t + p.counters.tx_kicks,
                f + p.counters.fill_kicks,
                b + p.counters.busy_polls,
            )
        })
    }

    /// Frames neither free, nor on a ring, nor among `held` (frames the
    /// pipeline holds): leaked frames. Zero when accounting is right.
    ///
    /// On transmit-only sockets the tx ring holds the caller's frames
    /// (counted in `held`), so only the pool and `held` count.
    pub fn frames_unaccounted(&self, held: usize) -> isize {
        let on_rings: usize = self
            .ports()
            .filter(|p| !p.tx_only())
            .map(|p| (p.counters.rx_owned + p.counters.tx_outstanding) as usize)
            .sum();
        self.pool.frames() as isize - (self.pool.available() + on_rings + held) as isize
    }

    /// Waits (bounded) until every transmitted frame has completed.
    pub fn drain_tx(&mut self, timeout: std::time::Duration) {
        for q in &mut self.queues {
            for p in &mut q.ports {
                p.drain_tx(&mut self.pool, timeout);
            }
        }
    }

    /// Closes the sockets (detaching the XDP programs with the last one)
    /// and gives the frames the kernel held on fill and rx rings back to
    /// the pool's count. Returns the frames still unaccounted for.
    pub fn close(mut self, held: usize) -> isize {
        let left = self.frames_unaccounted(held);
        self.queues.clear();
        left
    }
}

impl Drop for WorkerIo {
    fn drop(&mut self) {
        self.queues.clear();
        if !self.umem.is_null() {
            // SAFETY: every socket on it is deleted above.
            unsafe { sys::xsk_umem__delete(self.umem) };
        }
        for r in self.rings.drain(..) {
            // SAFETY: allocated by Box::into_raw in `open_with`; nothing
            // refers to the rings once sockets and UMEM are deleted.
            drop(unsafe { Box::from_raw(r) });
        }
        // `area` is unmapped by its own drop, after this.
    }
}

/// Frames of a worker's UMEM for `ports` sockets with rings of `ring` entries.
pub fn umem_frames(ports: usize, ring: u32) -> usize {
    // Each socket: a full fill ring and a full tx ring; plus room for what
    // the pipeline holds (batches, neighbour queues, generated packets).
    ports * 2 * ring as usize + 4096
}

/// Number of receive queues of `device` (from sysfs), or NoDevice.
pub fn device_queues(device: &str) -> Result<u32, AfXdpError> {
    let dir = Path::new("/sys/class/net").join(device);
    if device.is_empty() || device.contains('/') || !dir.exists() {
        return Err(AfXdpError::NoDevice(device.to_string()));
    }
    let n = std::fs::read_dir(dir.join("queues"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                .count() as u32
        })
        .unwrap_or(1);
    Ok(n.max(1))
}

fn device_mtu(device: &str) -> Option<u32> {
    std::fs::read_to_string(Path::new("/sys/class/net").join(device).join("mtu"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Silences libxdp's and libbpf's own stderr messages (fallbacks from
/// native to SKB or zero-copy to copy would print alarming errors); our
/// errors say what failed. XGATE_LIBXDP_DEBUG=1 keeps them.
fn quiet_libxdp() {
    unsafe extern "C" fn quiet(
        _level: sys::libxdp_print_level,
        _fmt: *const libc::c_char,
        _ap: *mut sys::__va_list_tag,
    ) -> libc::c_int {
        0
    }
    unsafe extern "C" {
        fn libbpf_set_print(f: sys::libxdp_print_fn_t) -> sys::libxdp_print_fn_t;
    }
    if std::env::var_os("XGATE_LIBXDP_DEBUG").is_some() {
        return;
    }
    // SAFETY: installs a callback that ignores its arguments. libbpf's
    // callback has the same C signature (level enum, format, va_list).
    unsafe {
        sys::libxdp_set_print(Some(quiet));
        libbpf_set_print(Some(quiet));
    }
}

/// Opens one worker's UMEM and its sockets on `queues` of every device in
/// `devices` (index = port number). `modes[i]` is the XDP mode device i
/// already has (set by an earlier worker), or None: filled in here.
pub fn open_worker(
    devices: &[String],
    queues: &[u32],
    cfg: &AfXdpConfig,
    modes: &mut [Option<XdpMode>],
) -> Result<WorkerIo, AfXdpError> {
    quiet_libxdp();
    for d in devices {
        let n = device_queues(d)?;
        if let Some(&q) = queues.iter().find(|&&q| q >= n) {
            return Err(AfXdpError::NoQueue {
                device: d.clone(),
                queue: q,
                available: n,
            });
        }
    }
    let try_bind = |zero_copy: bool, modes: &mut [Option<XdpMode>]| {
        // A socket whose program attach failed stays bound to its queue (a
        // socket cannot be unbound), so a fallback to SKB starts the
        // worker's UMEM and sockets afresh with that device's mode fixed.
        let mut local = modes.to_vec();
        loop {
            match open_with(devices, queues, cfg, &mut local, zero_copy) {
                Ok(io) => {
                    modes.copy_from_slice(&local);
                    return Ok(io);
                }
                Err((_, Some(port))) if local[port].is_none() => local[port] = Some(XdpMode::Skb),
                Err((e, _)) => return Err(e),
            }
        }
    };
    match cfg.bind {
        BindMode::Copy => try_bind(false, modes),
        BindMode::ZeroCopy => try_bind(true, modes),
        BindMode::Auto => try_bind(true, modes).or_else(|_| try_bind(false, modes)),
    }
}

/// Opens the worker with one bind mode; `modes` gives each device's XDP
/// mode (None: native first). On failure, the port whose native attach an
/// `auto` fallback could retry in SKB mode comes with the error.
fn open_with(
    devices: &[String],
    queues: &[u32],
    cfg: &AfXdpConfig,
    modes: &mut [Option<XdpMode>],
    zero_copy: bool,
) -> Result<WorkerIo, (AfXdpError, Option<usize>)> {
    let frames = cfg
        .frames
        .unwrap_or_else(|| umem_frames(devices.len() * queues.len(), cfg.ring_size));
    let area = UmemArea::new(frames, cfg.huge_pages).map_err(|e| (e, None))?;
    let first = Box::into_raw(Rings::new());
    let mut io = WorkerIo {
        queues: Vec::new(),
        pool: FramePool::new(frames),
        umem: std::ptr::null_mut(),
        rings: vec![first],
        obtained: Obtained {
            xdp: if cfg.tx_only {
                Vec::new()
            } else {
                vec![XdpMode::Auto; devices.len()]
            },
            zero_copy,
            huge_pages: area.huge_pages,
            frames,
            tx_budget: None,
            busy_poll: false,
        },
        area,
    };
    // SAFETY: `first` is a live boxed ring set owned by `io`.
    let (fill, comp) = unsafe { (&mut (*first).fill as *mut _, &mut (*first).comp as *mut _) };
    io.umem = umem::register(&io.area, fill, comp, cfg.ring_size).map_err(|e| (e, None))?;
    let bind_flags = sys::XDP_USE_NEED_WAKEUP as u16
        | if zero_copy {
            sys::XDP_ZEROCOPY as u16
        } else {
            sys::XDP_COPY as u16
        };
    let fill_target = if cfg.tx_only { 0 } else { cfg.ring_size };
    for &q in queues {
        let mut set = QueueSet {
            queue: q,
            ports: Vec::with_capacity(devices.len()),
        };
        for (port, dev) in devices.iter().enumerate() {
            let rings = if io.queues.is_empty() && port == 0 {
                first
            } else {
                let r = Box::into_raw(Rings::new());
                io.rings.push(r);
                r
            };
            // None: a transmit-only socket, no XDP program.
            let mode = (!cfg.tx_only).then(|| match modes[port].unwrap_or(cfg.xdp_mode) {
                XdpMode::Auto => XdpMode::Native,
                m => m,
            });
            match create_socket(dev, q, io.umem, rings, cfg.ring_size, mode, bind_flags) {
                Ok(xsk) => {
                    if let Some(mode) = mode {
                        modes[port] = Some(mode);
                        io.obtained.xdp[port] = mode;
                    }
                    set.ports
                        .push(XskPort::new(xsk, rings, dev, q, fill_target, cfg.tx_only));
                }
                Err(err) => {
                    let retry = (mode == Some(XdpMode::Native) && cfg.xdp_mode == XdpMode::Auto)
                        .then_some(port);
                    return Err((socket_error(dev, q, mode, zero_copy, cfg, err), retry));
                }
            }
        }
        io.queues.push(set);
    }
    // Report what the kernel granted (XDP_OPTIONS), not what was asked;
    // shared sockets inherit the first socket's mode.
    io.obtained.zero_copy = io.queues[0].ports[0].zero_copy();
    if cfg.busy_poll {
        // Every socket asks, even after one is refused (`all` would stop).
        let refused = io
            .ports_mut()
            .map(|p| p.set_busy_poll())
            .filter(|ok| !ok)
            .count();
        io.obtained.busy_poll = refused == 0;
    }
    if !io.obtained.zero_copy {
        // Copy mode sends inside the kick: one kick per burst, not two.
        let budget = cfg.ring_size;
        io.obtained.tx_budget = io.ports_mut().map(|p| p.set_tx_budget(budget)).min();
    }
    // Every port starts with a full fill ring (transmit-only: none).
    let (umem, pool, sets) = io.parts();
    for set in sets.iter_mut() {
        for p in &mut set.ports {
            crate::io::Port::service(p, umem, pool);
        }
    }
    Ok(io)
}

/// Creates one socket; `mode` None: a transmit-only socket (no rx ring, no
/// XDP program).
fn create_socket(
    dev: &str,
    queue: u32,
    umem: *mut sys::xsk_umem,
    rings: *mut Rings,
    ring_size: u32,
    mode: Option<XdpMode>,
    bind_flags: u16,
) -> Result<*mut sys::xsk_socket, std::io::Error> {
    let name = CString::new(dev).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    let cfg = sys::xsk_socket_config {
        rx_size: if mode.is_some() { ring_size } else { 0 },
        tx_size: ring_size,
        __bindgen_anon_1: sys::xsk_socket_config__bindgen_ty_1 {
            libxdp_flags: if mode.is_some() {
                0
            } else {
                sys::XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD
            },
        },
        xdp_flags: match mode {
            Some(XdpMode::Skb) => XDP_FLAGS_SKB_MODE,
            Some(_) => XDP_FLAGS_DRV_MODE,
            None => 0,
        },
        bind_flags,
    };
    // Without an rx ring pointer libxdp creates none (a transmit-only socket).
    let rx: *mut sys::xsk_ring_cons = if mode.is_some() {
        // SAFETY: `rings` is a live boxed ring set (see below); no
        // reference is made, only the field's address.
        unsafe { &raw mut (*rings).rx }
    } else {
        std::ptr::null_mut()
    };
    let mut xsk = std::ptr::null_mut();
    // A queue released by a socket closed just before (a failed attempt)
    // is freed by the kernel asynchronously: EBUSY for a short while.
    let mut busy_retries = 50;
    let rc = loop {
        // SAFETY: `rings` is a live boxed ring set that outlives the socket;
        // `umem` was created by xsk_umem__create and outlives it too.
        let rc = unsafe {
            sys::xsk_socket__create_shared(
                &mut xsk,
                name.as_ptr(),
                queue,
                umem,
                rx,
                &mut (*rings).tx,
                &mut (*rings).fill,
                &mut (*rings).comp,
                &cfg,
            )
        };
        if rc != -libc::EBUSY || busy_retries == 0 {
            break rc;
        }
        busy_retries -= 1;
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    if rc != 0 {
        return Err(std::io::Error::from_raw_os_error(-rc));
    }
    Ok(xsk)
}

fn socket_error(
    dev: &str,
    queue: u32,
    mode: Option<XdpMode>,
    zero_copy: bool,
    cfg: &AfXdpConfig,
    err: std::io::Error,
) -> AfXdpError {
    let errno = err.raw_os_error().unwrap_or(0);
    let hint = match errno {
        libc::EPERM | libc::EACCES => {
            " — permission denied: AF_XDP sockets and XDP programs need CAP_NET_ADMIN, \
             CAP_NET_RAW and CAP_BPF, and the UMEM CAP_IPC_LOCK (run as root)"
                .to_string()
        }
        libc::ENOBUFS | libc::ENOMEM => {
            " — locked-memory limit (RLIMIT_MEMLOCK): run as root with CAP_IPC_LOCK, or raise `ulimit -l`"
                .to_string()
        }
        libc::EBUSY => format!(
            " — queue {queue} of {dev} is taken (another AF_XDP program or XDP program on the device?)"
        ),
        libc::ENODEV | libc::ENXIO => format!(" — device {dev} vanished or is down"),
        _ if zero_copy && cfg.bind == BindMode::ZeroCopy => format!(
            " — zero-copy bind refused: the driver of {dev} has no AF_XDP zero-copy support \
             (veth never has); use {}",
            // Transmit-only sockets are xgate-pktgen's, whose option it is.
            if cfg.tx_only {
                "--bind copy or auto"
            } else {
                "bind = \"copy\" or \"auto\""
            }
        ),
        _ if mode == Some(XdpMode::Native) => format!(
            " — the driver of {dev} refused a native XDP program{}; use xdp_mode = \"skb\" \
             (or \"auto\"), which works on any device",
            match device_mtu(dev) {
                Some(m) => format!(
                    " (on veth, native XDP needs the MTU of both ends at most about 3.5 KB; \
                     {dev} has MTU {m})"
                ),
                None => String::new(),
            }
        ),
        _ => String::new(),
    };
    AfXdpError::Socket {
        device: dev.to_string(),
        queue,
        xdp: mode.map_or("none (transmit-only)", XdpMode::name),
        bind: if zero_copy { "zero-copy" } else { "copy" },
        err,
        hint,
    }
}

// Frames must be a power of two for the pool's frame_base() and for the
// kernel's aligned mode.
const _: () = assert!(FRAME_SIZE.is_power_of_two());
