//! The AF_XDP port backend.
//!
//! Per worker one UMEM (fixed [`FRAME_SIZE`] frames, no extra headroom, so
//! received data starts at [`crate::io::HEADROOM`] = XDP_PACKET_HEADROOM),
//! shared by that worker's sockets on every device and queue. Each socket
//! has its own rx, tx, fill and completion rings; a worker's sockets on
//! one device form one [`XskPort`] (receive from all of them, transmit
//! through them); forwarding hands a descriptor from one port's rx ring to
//! another port's tx ring without copying the frame.
//!
//! Every receive queue of a bound device is owned: xgate attaches its own
//! XDP program ([`XskProgram`]) that redirects a frame to the socket of its
//! queue and drops it when the queue has none (libxdp's program passed
//! such frames to the kernel's stack: a firewall bypass).
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
//! zero-copy per UMEM, need_wakeup always. `auto` tries native + zero-copy,
//! native + copy, then SKB + copy, never SKB + zero-copy
//! ([`bind_attempts`]); what was obtained, and why the better modes were
//! refused, is reported by [`Obtained`]. Sockets are created one at a time.
//!
//! Transmit-only sockets ([`AfXdpConfig::tx_only`], for a traffic
//! generator) have no rx ring and attach nothing to the device, so the
//! device's own traffic is untouched. (libxdp never loads its own program:
//! XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD.) The frames they send stay the
//! caller's: a completion is counted, not freed to the pool, so the same
//! frame may be on the tx ring many times at once.

mod prog;
mod umem;
mod xsk;

pub use prog::XskProgram;
pub use xsk::{XdpStats, XskCounters, XskPort};

use crate::io::{FRAME_SIZE, FramePool};
use libxdp_sys as sys;
use std::ffi::CString;
use std::path::Path;
use umem::UmemArea;
use xsk::Rings;

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
    /// Entries of the tx and completion rings (power of two).
    pub ring_size: u32,
    /// Entries of the rx ring (power of two).
    pub rx_ring: u32,
    /// Entries of the fill ring (power of two); the receive side is kept
    /// this full. Guidance: at least the NIC's rx ring plus `rx_ring`, so
    /// the NIC never waits for buffers while the worker holds a full rx
    /// ring.
    pub fill_ring: u32,
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
            rx_ring: 1024,
            fill_ring: 2048,
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
    /// Why better modes were refused (native XDP on a device, zero-copy),
    /// in the kernel's words: the start line shows them.
    pub refused: Vec<String>,
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
    #[error("attaching xgate's XDP program to {device} (xdp {xdp}): {err}{hint}")]
    Attach {
        device: String,
        xdp: &'static str,
        err: std::io::Error,
        hint: String,
    },
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

/// A worker's ports, one per device (index = port number); each port
/// holds the worker's sockets on that device, one per receive queue.
pub struct QueueSet {
    /// The lowest queue of the set's sockets.
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
    /// XDP programs the worker attached itself ([`open_worker`]); detached
    /// after its sockets close.
    progs: Vec<XskProgram>,
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

    /// The receive queues the worker's sockets serve (sorted, each once).
    pub fn queue_ids(&self) -> Vec<u32> {
        let mut q: Vec<u32> = self.ports().flat_map(|p| p.queues()).collect();
        q.sort_unstable();
        q.dedup();
        q
    }

    /// Every port of the worker (one per device and queue set).
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

    /// The kernel's XDP_STATISTICS of every socket: (device, queue,
    /// frames received, counters).
    pub fn xdp_statistics(&self) -> Vec<(String, u32, u64, XdpStats)> {
        self.ports()
            .flat_map(|p| {
                p.statistics()
                    .into_iter()
                    .map(|(q, rx, st)| (p.device.clone(), q, rx, st))
            })
            .collect()
    }

    /// Failed transmit kicks of this worker's sockets and the last errno
    /// (0: none).
    pub fn kick_errors(&self) -> (u64, i32) {
        self.ports().fold((0, 0), |(n, e), p| {
            let c = &p.counters;
            (
                n + c.tx_kick_errors,
                if c.tx_kick_errors > 0 {
                    c.tx_kick_errno
                } else {
                    e
                },
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
        // The programs after the sockets (a queue without a socket
        // drops); `area` is unmapped by its own drop, after this.
        self.progs.clear();
    }
}

/// Frames of a worker's UMEM for `sockets` sockets with fill rings of
/// `fill` entries and tx rings of `tx` entries.
pub fn umem_frames(sockets: usize, fill: u32, tx: u32) -> usize {
    // Each socket: a full fill ring (frames on it or on the rx ring) and
    // a full tx ring; plus room for what the pipeline holds (batches,
    // neighbour queues, generated packets).
    sockets * (fill + tx) as usize + 4096
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

/// How `xdp_mode` turned out on each device: the programs attached, the
/// mode obtained, and why a better mode was refused.
pub struct DevicePrograms {
    /// One per device (index = port number); empty for transmit-only use.
    pub progs: Vec<XskProgram>,
    pub modes: Vec<XdpMode>,
    /// Why native XDP was refused on a device that got SKB (`auto`).
    pub refused: Vec<Option<String>>,
}

/// Attaches xgate's XDP program ([`prog`]) to every device: `modes[i]`
/// (Native or Skb) when given, else `xdp_mode`, where `auto` tries native
/// first and falls back to SKB, keeping the reason native was refused.
pub fn attach_programs(
    devices: &[String],
    xdp_mode: XdpMode,
    modes: &[Option<XdpMode>],
) -> Result<DevicePrograms, AfXdpError> {
    quiet_libxdp();
    let mut out = DevicePrograms {
        progs: Vec::with_capacity(devices.len()),
        modes: Vec::with_capacity(devices.len()),
        refused: Vec::with_capacity(devices.len()),
    };
    for (i, dev) in devices.iter().enumerate() {
        let queues = device_queues(dev)?;
        let want = modes.get(i).copied().flatten().unwrap_or(xdp_mode);
        let first = xdp_attempts(want)[0];
        let flags = |m| {
            if m == XdpMode::Skb {
                prog::XDP_FLAGS_SKB_MODE
            } else {
                prog::XDP_FLAGS_DRV_MODE
            }
        };
        let (p, mode, refused) = match XskProgram::attach(dev, queues, flags(first)) {
            Ok(p) => (p, first, None),
            Err(e) if xdp_attempts(want).len() > 1 && !fatal(&e) => {
                let why = attach_error(dev, XdpMode::Native, e).to_string();
                match XskProgram::attach(dev, queues, flags(XdpMode::Skb)) {
                    Ok(p) => (p, XdpMode::Skb, Some(why)),
                    Err(e) => return Err(attach_error(dev, XdpMode::Skb, e)),
                }
            }
            Err(e) => return Err(attach_error(dev, first, e)),
        };
        out.progs.push(p);
        out.modes.push(mode);
        out.refused.push(refused);
    }
    Ok(out)
}

/// Errors no other XDP mode would cure.
fn fatal(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EPERM | libc::EACCES | libc::EBUSY | libc::EEXIST | libc::ENODEV)
    )
}

fn attach_error(dev: &str, mode: XdpMode, err: std::io::Error) -> AfXdpError {
    let hint = match err.raw_os_error().unwrap_or(0) {
        libc::EPERM | libc::EACCES => {
            " — permission denied: XDP programs need CAP_NET_ADMIN and CAP_BPF (run as root)"
                .to_string()
        }
        libc::EBUSY | libc::EEXIST => format!(
            " — {dev} already has an XDP program (another AF_XDP application? \
             `ip link set dev {dev} xdp off` removes a stale one)"
        ),
        _ if mode == XdpMode::Native => native_refused_hint(dev),
        _ => String::new(),
    };
    AfXdpError::Attach {
        device: dev.to_string(),
        xdp: mode.name(),
        err,
        hint,
    }
}

fn native_refused_hint(dev: &str) -> String {
    format!(
        " — the driver of {dev} refused a native XDP program{}; use xdp_mode = \"skb\" \
         (or \"auto\"), which works on any device",
        match device_mtu(dev) {
            Some(m) => format!(
                " (on veth, native XDP needs the MTU of both ends at most about 3.5 KB; \
                 {dev} has MTU {m})"
            ),
            None => String::new(),
        }
    )
}

/// Opens one worker's UMEM and its sockets on `queues` of every device in
/// `devices` (index = port number): one port per device holding one
/// socket per queue. `modes[i]` is the XDP mode device i must have (set
/// by an earlier worker), or None: filled in here. Transmit-only sockets
/// attach nothing; otherwise the worker owns the XDP programs it attaches
/// (for several workers on the same devices, use [`attach_programs`] once
/// and [`open_worker_on`]).
pub fn open_worker(
    devices: &[String],
    queues: &[u32],
    cfg: &AfXdpConfig,
    modes: &mut [Option<XdpMode>],
) -> Result<WorkerIo, AfXdpError> {
    quiet_libxdp();
    let per_device = vec![queues.to_vec(); devices.len()];
    if cfg.tx_only {
        check_queues(devices, &per_device)?;
        return open_binds(devices, &per_device, cfg, None);
    }
    let progs = attach_programs(devices, cfg.xdp_mode, modes)?;
    let mut io = open_worker_on(devices, &per_device, cfg, &progs)?;
    for (m, &o) in modes.iter_mut().zip(&progs.modes) {
        *m = Some(o);
    }
    io.progs = progs.progs;
    Ok(io)
}

/// Opens one worker's UMEM and its sockets: on device i (index = port
/// number), one socket per queue of `queues[i]`, steered to by the
/// device's program in `progs`. The bind mode follows [`bind_attempts`].
pub fn open_worker_on(
    devices: &[String],
    queues: &[Vec<u32>],
    cfg: &AfXdpConfig,
    progs: &DevicePrograms,
) -> Result<WorkerIo, AfXdpError> {
    check_queues(devices, queues)?;
    let mut io = open_binds(devices, queues, cfg, Some(progs))?;
    io.obtained.xdp = progs.modes.clone();
    for (dev, why) in devices.iter().zip(&progs.refused) {
        if let Some(why) = why {
            io.obtained
                .refused
                .push(format!("native XDP on {dev}: {why}"));
        }
    }
    Ok(io)
}

fn check_queues(devices: &[String], queues: &[Vec<u32>]) -> Result<(), AfXdpError> {
    for (d, qs) in devices.iter().zip(queues) {
        let n = device_queues(d)?;
        if let Some(&q) = qs.iter().find(|&&q| q >= n) {
            return Err(AfXdpError::NoQueue {
                device: d.clone(),
                queue: q,
                available: n,
            });
        }
    }
    Ok(())
}

/// The bind modes to try, best first, as `zero_copy` flags: zero-copy
/// only where every device runs the program natively (generic XDP with a
/// zero-copy socket never transmits on Intel and Mellanox drivers), so the
/// order over (XDP mode, bind) is native + zero-copy, native + copy, SKB +
/// copy, never SKB + zero-copy. An error says why nothing fits.
pub fn bind_attempts(bind: BindMode, all_native: bool) -> Result<&'static [bool], &'static str> {
    match (bind, all_native) {
        (BindMode::Copy, _) | (BindMode::Auto, false) => Ok(&[false]),
        (BindMode::Auto, true) => Ok(&[true, false]),
        (BindMode::ZeroCopy, true) => Ok(&[true]),
        (BindMode::ZeroCopy, false) => Err(
            "bind = \"zerocopy\" needs native XDP on every device (a zero-copy socket \
             behind generic XDP never transmits); use bind = \"copy\" or \"auto\"",
        ),
    }
}

/// The XDP modes to try on a device, best first.
pub fn xdp_attempts(xdp: XdpMode) -> &'static [XdpMode] {
    match xdp {
        XdpMode::Native => &[XdpMode::Native],
        XdpMode::Skb => &[XdpMode::Skb],
        XdpMode::Auto => &[XdpMode::Native, XdpMode::Skb],
    }
}

/// The whole fallback order over (XDP mode, zero-copy) for one device, as
/// [`attach_programs`] and [`open_worker_on`] walk it: each XDP mode, and
/// within it each bind mode it allows.
pub fn mode_order(xdp: XdpMode, bind: BindMode) -> Vec<(XdpMode, bool)> {
    xdp_attempts(xdp)
        .iter()
        .flat_map(|&m| {
            bind_attempts(bind, m == XdpMode::Native)
                .unwrap_or(&[])
                .iter()
                .map(move |&zc| (m, zc))
        })
        .collect()
}

/// Tries the bind modes of [`bind_attempts`] in order; the reasons of the
/// refused ones go to `Obtained::refused`.
fn open_binds(
    devices: &[String],
    queues: &[Vec<u32>],
    cfg: &AfXdpConfig,
    progs: Option<&DevicePrograms>,
) -> Result<WorkerIo, AfXdpError> {
    let all_native = progs.is_none_or(|p| p.modes.iter().all(|&m| m == XdpMode::Native));
    let attempts = bind_attempts(cfg.bind, all_native).map_err(|why| AfXdpError::Socket {
        device: devices.join(", "),
        queue: 0,
        xdp: "skb",
        bind: "zero-copy",
        err: std::io::Error::from_raw_os_error(libc::EOPNOTSUPP),
        hint: format!(" — {why}"),
    })?;
    let mut refused = Vec::new();
    if cfg.bind == BindMode::Auto && !all_native {
        refused.push("zero-copy: not tried, a device runs generic (skb) XDP".to_string());
    }
    for (i, &zc) in attempts.iter().enumerate() {
        match open_with(devices, queues, cfg, progs, zc) {
            Ok(mut io) => {
                io.obtained.refused = refused;
                return Ok(io);
            }
            Err(e) if i + 1 < attempts.len() => refused.push(format!("zero-copy: {e}")),
            Err(e) => return Err(e),
        }
    }
    unreachable!("bind_attempts returns at least one mode")
}

/// Opens the worker with one bind mode.
fn open_with(
    devices: &[String],
    queues: &[Vec<u32>],
    cfg: &AfXdpConfig,
    progs: Option<&DevicePrograms>,
    zero_copy: bool,
) -> Result<WorkerIo, AfXdpError> {
    let sockets: usize = queues.iter().map(Vec::len).sum();
    let frames = cfg
        .frames
        .unwrap_or_else(|| umem_frames(sockets, cfg.fill_ring, cfg.ring_size));
    let area = UmemArea::new(frames, cfg.huge_pages)?;
    let first = Box::into_raw(Rings::new());
    let mut io = WorkerIo {
        queues: Vec::new(),
        pool: FramePool::new(frames),
        umem: std::ptr::null_mut(),
        rings: vec![first],
        progs: Vec::new(),
        obtained: Obtained {
            xdp: Vec::new(),
            zero_copy,
            huge_pages: area.huge_pages,
            frames,
            tx_budget: None,
            busy_poll: false,
            refused: Vec::new(),
        },
        area,
    };
    // SAFETY: `first` is a live boxed ring set owned by `io`.
    let (fill, comp) = unsafe { (&mut (*first).fill as *mut _, &mut (*first).comp as *mut _) };
    io.umem = umem::register(&io.area, fill, comp, cfg.fill_ring, cfg.ring_size)?;
    let bind_flags = sys::XDP_USE_NEED_WAKEUP as u16
        | if zero_copy {
            sys::XDP_ZEROCOPY as u16
        } else {
            sys::XDP_COPY as u16
        };
    let fill_target = if cfg.tx_only { 0 } else { cfg.fill_ring };
    let mut first_used = false;
    let mut set = QueueSet {
        queue: queues.iter().flatten().copied().min().unwrap_or(0),
        ports: Vec::with_capacity(devices.len()),
    };
    for (port, dev) in devices.iter().enumerate() {
        let mut xp = XskPort::new(dev, cfg.tx_only);
        for &q in &queues[port] {
            let rings = if !first_used {
                first_used = true;
                first
            } else {
                let r = Box::into_raw(Rings::new());
                io.rings.push(r);
                r
            };
            match create_socket(
                dev,
                q,
                io.umem,
                rings,
                (if cfg.tx_only { 0 } else { cfg.rx_ring }, cfg.ring_size),
                bind_flags,
            ) {
                Ok(xsk) => xp.add(xsk, rings, q, fill_target),
                Err(err) => {
                    let mode = progs.map(|p| p.modes[port]);
                    // Sockets made so far close before the UMEM.
                    drop(xp);
                    return Err(socket_error(dev, q, mode, zero_copy, cfg, err));
                }
            }
        }
        set.ports.push(xp);
    }
    io.queues.push(set);
    // Report what the kernel granted (XDP_OPTIONS), not what was asked;
    // shared sockets inherit the first socket's mode.
    let zc = io.ports().next().is_some_and(XskPort::zero_copy);
    io.obtained.zero_copy = zc;
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
    // Every socket starts with a full fill ring (transmit-only: none)...
    let (umem, pool, sets) = io.parts();
    for set in sets.iter_mut() {
        for p in &mut set.ports {
            crate::io::Port::service(p, umem, pool);
        }
    }
    // ... before the device's program steers its queue to it.
    if let Some(progs) = progs {
        for (port, p) in io.queues[0].ports.iter().enumerate() {
            for (q, fd) in p.fds() {
                progs.progs[port]
                    .insert(q, fd)
                    .map_err(|err| AfXdpError::Socket {
                        device: p.device.clone(),
                        queue: q,
                        xdp: progs.modes[port].name(),
                        bind: if zero_copy { "zero-copy" } else { "copy" },
                        err,
                        hint: " — adding the socket to the XDP program's map".to_string(),
                    })?;
            }
        }
    }
    Ok(io)
}

/// Creates one socket, with an rx ring of `rx_size` entries (0: none). libxdp loads no program:
/// xgate's own ([`prog`]) steers the queue to the socket.
fn create_socket(
    dev: &str,
    queue: u32,
    umem: *mut sys::xsk_umem,
    rings: *mut Rings,
    (rx_size, tx_size): (u32, u32),
    bind_flags: u16,
) -> Result<*mut sys::xsk_socket, std::io::Error> {
    let rx = rx_size > 0;
    let name = CString::new(dev).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    let cfg = sys::xsk_socket_config {
        rx_size,
        tx_size,
        __bindgen_anon_1: sys::xsk_socket_config__bindgen_ty_1 {
            libxdp_flags: sys::XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
        },
        xdp_flags: 0,
        bind_flags,
    };
    // Without an rx ring pointer libxdp creates none (a transmit-only socket).
    let rx: *mut sys::xsk_ring_cons = if rx {
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

#[cfg(test)]
mod tests {
    use super::*;
    use BindMode as B;
    use XdpMode::{Native as N, Skb as S};

    #[test]
    fn fallback_order_is_native_zero_copy_native_copy_skb_copy() {
        assert_eq!(
            mode_order(XdpMode::Auto, B::Auto),
            [(N, true), (N, false), (S, false)]
        );
        assert_eq!(mode_order(N, B::Auto), [(N, true), (N, false)]);
        assert_eq!(mode_order(S, B::Auto), [(S, false)]);
        assert_eq!(mode_order(XdpMode::Auto, B::Copy), [(N, false), (S, false)]);
        assert_eq!(mode_order(XdpMode::Auto, B::ZeroCopy), [(N, true)]);
        assert_eq!(mode_order(S, B::ZeroCopy), []);
        for x in [N, S, XdpMode::Auto] {
            for b in [B::Auto, B::Copy, B::ZeroCopy] {
                assert!(
                    !mode_order(x, b).contains(&(S, true)),
                    "never skb + zero-copy ({x:?}, {b:?})"
                );
            }
        }
    }

    #[test]
    fn zero_copy_only_where_every_device_is_native() {
        assert_eq!(bind_attempts(B::Auto, true), Ok(&[true, false][..]));
        assert_eq!(bind_attempts(B::Auto, false), Ok(&[false][..]));
        assert_eq!(bind_attempts(B::Copy, true), Ok(&[false][..]));
        assert_eq!(bind_attempts(B::ZeroCopy, true), Ok(&[true][..]));
        let e = bind_attempts(B::ZeroCopy, false).unwrap_err();
        assert!(e.contains("needs native XDP"), "{e}");
    }
}
