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

mod modes;
pub mod offload;
mod open;
pub mod prog;
mod umem;
mod xsk;

pub use modes::{bind_attempts, mode_order, xdp_attempts};
pub use open::{open_worker, open_worker_on};

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
    attach_programs_offload(devices, xdp_mode, modes, None)
}

/// [`attach_programs`], with the offload program ([`offload`]) where XDP
/// is native when `offload_flows` is given (its flow map's size): one
/// object per device, all sharing the first one's flow, port and counter
/// maps. A device in SKB mode gets the plain program (generic XDP gains
/// nothing from the offload: the skb exists already).
pub fn attach_programs_offload(
    devices: &[String],
    xdp_mode: XdpMode,
    modes: &[Option<XdpMode>],
    offload_flows: Option<u32>,
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
        let share = out.progs.iter().find_map(XskProgram::offload);
        let attach = |m: XdpMode| match offload_flows {
            Some(flows) if m == XdpMode::Native => {
                XskProgram::attach_offload(dev, queues, flags(m), flows, share)
            }
            _ => XskProgram::attach(dev, queues, flags(m)),
        };
        let (p, mode, refused) = match attach(first) {
            Ok(p) => (p, first, None),
            Err(e) if xdp_attempts(want).len() > 1 && !fatal(&e) => {
                let why = attach_error(dev, XdpMode::Native, e).to_string();
                match attach(XdpMode::Skb) {
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
