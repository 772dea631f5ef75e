//! One AF_XDP socket: one queue of one device, with its own rx, tx, fill
//! and completion rings, on the worker's shared UMEM. Implements [`Port`].

use crate::io::{Desc, FRAME_SIZE, FramePool, HEADROOM, Port};
use libxdp_sys as sys;

/// The four rings of a socket. Boxed by the owner: libxdp keeps pointers to
/// the fill and completion rings until the socket and UMEM are deleted.
pub(super) struct Rings {
    pub rx: sys::xsk_ring_cons,
    pub tx: sys::xsk_ring_prod,
    pub fill: sys::xsk_ring_prod,
    pub comp: sys::xsk_ring_cons,
}

impl Rings {
    pub fn new() -> Box<Self> {
        // SAFETY: the ring structs are plain C data (integers and pointers)
        // that libxdp fills in; all-zero is their documented initial state.
        Box::new(unsafe { std::mem::zeroed() })
    }
}

/// Frame movements of one socket, for the frame accounting.
#[derive(Clone, Copy, Debug, Default)]
pub struct XskCounters {
    /// Frames on the fill ring or the rx ring (the kernel's receive side).
    pub rx_owned: u32,
    /// Frames on the tx ring or the completion ring.
    pub tx_outstanding: u32,
    /// Transmissions the kernel completed, since the socket was opened.
    pub tx_completed: u64,
    /// Wake-up system calls made (need_wakeup set).
    pub tx_kicks: u64,
    pub fill_kicks: u64,
    /// Receive calls made to busy-poll the device (preferred busy polling).
    pub busy_polls: u64,
    /// Transmit kicks (`sendto`) that failed, and the last errno.
    pub tx_kick_errors: u64,
    pub tx_kick_errno: i32,
}

/// The kernel's drop counters of one socket (getsockopt XDP_STATISTICS,
/// struct xdp_statistics; the last three since Linux 5.9, zero before).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct XdpStats {
    /// Frames dropped for reasons other than invalid descriptors (e.g.
    /// longer than a frame).
    pub rx_dropped: u64,
    pub rx_invalid_descs: u64,
    pub tx_invalid_descs: u64,
    /// Frames dropped because the rx ring was full (the worker fell behind).
    pub rx_ring_full: u64,
    /// Times the fill ring was empty when a frame arrived.
    pub rx_fill_ring_empty_descs: u64,
    /// Times the tx ring was empty when the kernel looked for frames.
    pub tx_ring_empty_descs: u64,
}

impl XdpStats {
    /// `name=value` pairs, the exit report's format.
    pub fn pairs(&self) -> [(&'static str, u64); 6] {
        [
            ("rx_dropped", self.rx_dropped),
            ("rx_invalid_descs", self.rx_invalid_descs),
            ("tx_invalid_descs", self.tx_invalid_descs),
            ("rx_ring_full", self.rx_ring_full),
            ("rx_fill_ring_empty_descs", self.rx_fill_ring_empty_descs),
            ("tx_ring_empty_descs", self.tx_ring_empty_descs),
        ]
    }

    pub fn add(&mut self, o: &XdpStats) {
        self.rx_dropped += o.rx_dropped;
        self.rx_invalid_descs += o.rx_invalid_descs;
        self.tx_invalid_descs += o.tx_invalid_descs;
        self.rx_ring_full += o.rx_ring_full;
        self.rx_fill_ring_empty_descs += o.rx_fill_ring_empty_descs;
        self.tx_ring_empty_descs += o.tx_ring_empty_descs;
    }
}

/// One AF_XDP socket: one receive queue of one device.
pub(super) struct Xsk {
    xsk: *mut sys::xsk_socket,
    rings: *mut Rings,
    fd: i32,
    queue: u32,
    /// Frames kept on the receive side (fill + rx rings).
    fill_target: u32,
    /// Frames on the fill ring or the rx ring.
    rx_owned: u32,
    /// Frames on the tx ring or the completion ring.
    tx_outstanding: u32,
    /// Frames received on this socket (its queue).
    rx_frames: u64,
}

/// The sockets one worker has on one device (one per receive queue the
/// worker owns there), seen by the pipeline as one port: receive takes
/// from every socket, transmit goes out through the worker's own sockets
/// of the device (the first one, the next ones when its ring is full).
pub struct XskPort {
    socks: Vec<Xsk>,
    pub device: String,
    /// The first queue (the only one for a single-socket port).
    pub queue: u32,
    /// A transmit-only socket (`AfXdpConfig::tx_only`): no rx ring, and
    /// completed frames stay the caller's instead of going to the pool.
    pub(super) tx_only: bool,
    /// Preferred busy polling is on: an empty receive ring asks the kernel
    /// to poll the device.
    busy_poll: bool,
    /// The socket whose rx ring is read first (rotates for fairness).
    next_rx: usize,
    /// Totals over the port's sockets.
    pub counters: XskCounters,
    comp_batch: Vec<u64>,
}

// SAFETY: an XskPort is used by one thread at a time (created by the
// control thread, moved into its worker, moved back to be deleted); libxdp
// keeps no thread-local state for a socket.
unsafe impl Send for XskPort {}

const KICK_BATCH: u32 = 64;

impl Xsk {
    fn rings(&mut self) -> &mut Rings {
        // SAFETY: the rings outlive the socket (WorkerIo owns both and
        // drops ports first) and only this socket uses them.
        unsafe { &mut *self.rings }
    }

    /// Whether the socket runs in zero-copy mode (XDP_OPTIONS).
    fn zero_copy(&self) -> bool {
        let mut opts = sys::xdp_options { flags: 0 };
        let mut len = std::mem::size_of::<sys::xdp_options>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `opts`.
        let rc = unsafe {
            libc::getsockopt(
                self.fd,
                libc::SOL_XDP,
                sys::XDP_OPTIONS as i32,
                &mut opts as *mut _ as *mut libc::c_void,
                &mut len,
            )
        };
        rc == 0 && opts.flags & sys::XDP_OPTIONS_ZEROCOPY != 0
    }

    /// The kernel's counters for this socket (zeros if it refuses).
    fn statistics(&self) -> XdpStats {
        const XDP_STATISTICS: libc::c_int = 7;
        let mut st = XdpStats::default();
        let mut len = std::mem::size_of::<XdpStats>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `st`, a
        // repr(C) struct of six u64 as the kernel's struct xdp_statistics
        // (older kernels write the first three only).
        unsafe {
            libc::getsockopt(
                self.fd,
                libc::SOL_XDP,
                XDP_STATISTICS,
                &mut st as *mut XdpStats as *mut libc::c_void,
                &mut len,
            )
        };
        st
    }

    /// Frames the kernel has not yet taken from the tx ring.
    fn tx_unsent(&mut self) -> u32 {
        let tx = &mut self.rings().tx;
        let size = tx.size;
        // SAFETY: a ring libxdp set up; nb_free refreshes the cached consumer.
        size - unsafe { sys::xsk_prod_nb_free(tx, size) }
    }

    fn kick_tx(&mut self, c: &mut XskCounters) {
        // SAFETY: the tx ring of this socket.
        if unsafe { sys::xsk_ring_prod__needs_wakeup(&self.rings().tx) } == 0 {
            return;
        }
        c.tx_kicks += 1;
        // In copy mode the kernel transmits inside this call (up to the
        // socket's budget, see `set_tx_budget`). EAGAIN/EBUSY/ENOBUFS mean
        // "later": the next service() kicks again while frames remain
        // unsent. Every failure is counted (a zero-copy socket whose
        // driver cannot transmit fails here, e.g. ENXIO/EOPNOTSUPP).
        // SAFETY: a zero-length send on our own socket.
        let rc = unsafe {
            libc::sendto(
                self.fd,
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        };
        if rc < 0 {
            c.tx_kick_errors += 1;
            c.tx_kick_errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        }
    }

    fn setsockopt(&self, level: libc::c_int, opt: libc::c_int, v: libc::c_int) -> bool {
        // SAFETY: setsockopt reads size_of::<c_int>() bytes from `v`, a
        // live local; the socket is ours.
        unsafe {
            libc::setsockopt(
                self.fd,
                level,
                opt,
                &v as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            ) == 0
        }
    }

    /// Takes back every completed transmission: its frame goes back to
    /// `pool`, except on a transmit-only socket, whose frames stay the
    /// caller's (a generator sends the same frames again and again).
    fn reap_completions(
        &mut self,
        pool: &mut FramePool,
        c: &mut XskCounters,
        batch: &mut Vec<u64>,
        tx_only: bool,
    ) {
        loop {
            let mut idx = 0;
            let comp = &mut self.rings().comp as *mut sys::xsk_ring_cons;
            // SAFETY: the completion ring of this socket; entries
            // idx..idx+n are ours until released.
            let n = unsafe { sys::xsk_ring_cons__peek(comp, KICK_BATCH * 4, &mut idx) };
            if n == 0 {
                return;
            }
            batch.clear();
            if !tx_only {
                for i in 0..n {
                    // SAFETY: as above.
                    let addr = unsafe { *sys::xsk_ring_cons__comp_addr(comp, idx.wrapping_add(i)) };
                    batch.push(addr);
                }
            }
            // SAFETY: releases the entries just read (or counted).
            unsafe { sys::xsk_ring_cons__release(comp, n) };
            for &addr in batch.iter() {
                pool.free(Desc { addr, len: 0 });
            }
            self.tx_outstanding -= n;
            c.tx_outstanding -= n;
            c.tx_completed += n as u64;
        }
    }

    /// Gives the receive side frames until it holds `fill_target` (zero
    /// on a transmit-only socket).
    fn refill(&mut self, pool: &mut FramePool, c: &mut XskCounters) {
        let want = self
            .fill_target
            .saturating_sub(self.rx_owned)
            .min(pool.available() as u32);
        if want < KICK_BATCH.min(self.fill_target) && self.rx_owned > 0 {
            return; // refill in batches
        }
        if want == 0 {
            return;
        }
        let fill = &mut self.rings().fill as *mut sys::xsk_ring_prod;
        let mut idx = 0;
        // SAFETY: the fill ring of this socket; reserved entries are ours
        // until submitted.
        let n = unsafe { sys::xsk_ring_prod__reserve(fill, want, &mut idx) };
        for i in 0..n {
            let d = pool.alloc().expect("counted available above");
            // SAFETY: as above; the kernel takes the frame (aligned mode
            // masks the address to its chunk).
            unsafe { *sys::xsk_ring_prod__fill_addr(fill, idx.wrapping_add(i)) = d.frame_base() };
        }
        // SAFETY: submits what was reserved and written.
        unsafe { sys::xsk_ring_prod__submit(fill, n) };
        self.rx_owned += n;
        c.rx_owned += n;
        // SAFETY: the fill ring of this socket.
        if n > 0 && unsafe { sys::xsk_ring_prod__needs_wakeup(fill) } != 0 {
            c.fill_kicks += 1;
            self.poll_rx();
        }
    }

    fn fill_needs_wakeup(&mut self) -> bool {
        // SAFETY: the fill ring of this socket; reads its flags word.
        unsafe { sys::xsk_ring_prod__needs_wakeup(&self.rings().fill) != 0 }
    }

    /// A zero-length non-blocking receive on our own socket: wakes the
    /// driver's receive path (and busy-polls it with preferred busy
    /// polling).
    fn poll_rx(&self) {
        // SAFETY: a zero-length receive into no buffer.
        unsafe {
            libc::recvfrom(
                self.fd,
                std::ptr::null_mut(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
    }

    fn rx_burst(&mut self, out: &mut [Desc], c: &mut XskCounters, busy_poll: bool) -> usize {
        let rx = &mut self.rings().rx as *mut sys::xsk_ring_cons;
        let mut idx = 0;
        // SAFETY: the rx ring of this socket.
        let n = unsafe { sys::xsk_ring_cons__peek(rx, out.len() as u32, &mut idx) };
        for (i, slot) in out.iter_mut().take(n as usize).enumerate() {
            // SAFETY: entries idx..idx+n were peeked above.
            let d = unsafe { *sys::xsk_ring_cons__rx_desc(rx, idx.wrapping_add(i as u32)) };
            debug_assert!(d.len as usize + HEADROOM <= FRAME_SIZE);
            *slot = Desc {
                addr: d.addr,
                len: d.len,
            };
        }
        // SAFETY: releases the entries just read.
        unsafe { sys::xsk_ring_cons__release(rx, n) };
        self.rx_owned -= n;
        self.rx_frames += n as u64;
        c.rx_owned -= n;
        if n == 0 {
            if busy_poll {
                c.busy_polls += 1;
                self.poll_rx();
            } else if self.fill_needs_wakeup() {
                // The kernel's rule (need_wakeup, Documentation/networking/
                // af_xdp.rst): an empty rx ring with the fill ring's
                // wake-up flag set means the driver stopped for want of
                // buffers and waits for a receive call, whether or not we
                // just refilled. (Copy mode never sets the flag.)
                c.fill_kicks += 1;
                self.poll_rx();
            }
        }
        n as usize
    }

    fn tx_burst(&mut self, descs: &[Desc], c: &mut XskCounters) -> usize {
        let tx = &mut self.rings().tx as *mut sys::xsk_ring_prod;
        let mut idx = 0;
        // xsk_ring_prod__reserve takes n slots or none: ask for what is
        // free, so a burst larger than the free space sends what fits and
        // only the rest is refused.
        // SAFETY: the tx ring of this socket; nb_free refreshes the cached
        // consumer index only.
        let free = unsafe { sys::xsk_prod_nb_free(tx, descs.len() as u32) };
        let want = (descs.len() as u32).min(free);
        if want == 0 {
            return 0;
        }
        // SAFETY: the tx ring of this socket; `want` slots are free.
        let n = unsafe { sys::xsk_ring_prod__reserve(tx, want, &mut idx) };
        for (i, d) in descs.iter().take(n as usize).enumerate() {
            // SAFETY: entries idx..idx+n were reserved above.
            let slot = unsafe { &mut *sys::xsk_ring_prod__tx_desc(tx, idx.wrapping_add(i as u32)) };
            slot.addr = d.addr;
            slot.len = d.len;
            slot.options = 0;
        }
        // SAFETY: submits what was reserved and written.
        unsafe { sys::xsk_ring_prod__submit(tx, n) };
        self.tx_outstanding += n;
        c.tx_outstanding += n;
        if n > 0 {
            self.kick_tx(c);
        }
        n as usize
    }
}

impl Drop for Xsk {
    fn drop(&mut self) {
        // SAFETY: deleted once. The rings it unmaps are still allocated
        // (WorkerIo frees them after every port).
        unsafe { sys::xsk_socket__delete(self.xsk) };
    }
}

impl XskPort {
    /// A port of `device` with no socket yet (see [`XskPort::add`]).
    pub(super) fn new(device: &str, tx_only: bool) -> Self {
        XskPort {
            socks: Vec::new(),
            device: device.to_string(),
            queue: 0,
            tx_only,
            busy_poll: false,
            next_rx: 0,
            counters: XskCounters::default(),
            comp_batch: Vec::with_capacity(KICK_BATCH as usize * 4),
        }
    }

    /// Adds socket `xsk` (queue `queue`, rings `rings`) to the port.
    pub(super) fn add(
        &mut self,
        xsk: *mut sys::xsk_socket,
        rings: *mut Rings,
        queue: u32,
        fill_target: u32,
    ) {
        // SAFETY: `xsk` is a socket libxdp just created.
        let fd = unsafe { sys::xsk_socket__fd(xsk) };
        if self.socks.is_empty() {
            self.queue = queue;
        }
        self.socks.push(Xsk {
            xsk,
            rings,
            fd,
            queue,
            fill_target,
            rx_owned: 0,
            tx_outstanding: 0,
            rx_frames: 0,
        });
    }

    /// The receive queues of the port's sockets.
    pub fn queues(&self) -> impl Iterator<Item = u32> + '_ {
        self.socks.iter().map(|s| s.queue)
    }

    /// The descriptors of the port's sockets, with their queues.
    pub(super) fn fds(&self) -> impl Iterator<Item = (u32, i32)> + '_ {
        self.socks.iter().map(|s| (s.queue, s.fd))
    }

    /// XDP_STATISTICS of each of the port's sockets, with its queue and
    /// the frames received on it.
    pub fn statistics(&self) -> Vec<(u32, u64, XdpStats)> {
        self.socks
            .iter()
            .map(|s| (s.queue, s.rx_frames, s.statistics()))
            .collect()
    }

    /// Whether the port's sockets run in zero-copy mode (XDP_OPTIONS).
    pub fn zero_copy(&self) -> bool {
        self.socks.first().is_some_and(Xsk::zero_copy)
    }

    /// Copy mode: lets one send call hand up to `budget` frames to the
    /// driver (XDP_MAX_TX_SKB_BUDGET, Linux >= 6.17; the kernel clamps
    /// nothing and refuses values outside 32..=tx ring size). Before it,
    /// and on a refusal, 32 frames per call: a 64-frame burst then needs
    /// two kicks. Returns the budget in force (the smallest of the port's
    /// sockets).
    pub(super) fn set_tx_budget(&mut self, budget: u32) -> u32 {
        const XDP_MAX_TX_SKB_BUDGET: libc::c_int = 9;
        const KERNEL_DEFAULT: u32 = 32;
        self.socks
            .iter()
            .map(|s| {
                if s.setsockopt(libc::SOL_XDP, XDP_MAX_TX_SKB_BUDGET, budget as libc::c_int) {
                    budget
                } else {
                    KERNEL_DEFAULT
                }
            })
            .min()
            .unwrap_or(KERNEL_DEFAULT)
    }

    /// Preferred busy polling (`AfXdpConfig::busy_poll`): the device's
    /// NAPI runs when this socket's owner asks (the empty-ring receive and
    /// the send kick), up to 64 frames a time, spinning at most 20 µs.
    /// False if the kernel refused (before 5.11, or no CAP_NET_ADMIN).
    pub(super) fn set_busy_poll(&mut self) -> bool {
        const SO_PREFER_BUSY_POLL: libc::c_int = 69;
        const SO_BUSY_POLL_BUDGET: libc::c_int = 70;
        let mut ok = true;
        for s in &self.socks {
            ok &= s.setsockopt(libc::SOL_SOCKET, SO_PREFER_BUSY_POLL, 1)
                && s.setsockopt(libc::SOL_SOCKET, libc::SO_BUSY_POLL, 20)
                && s.setsockopt(libc::SOL_SOCKET, SO_BUSY_POLL_BUDGET, 64);
        }
        self.busy_poll = ok;
        ok
    }

    /// Whether this is a transmit-only socket (`AfXdpConfig::tx_only`).
    pub fn tx_only(&self) -> bool {
        self.tx_only
    }
}

impl Port for XskPort {
    fn rx_burst(&mut self, out: &mut [Desc]) -> usize {
        if self.tx_only {
            return 0; // no rx ring: its pointers are null
        }
        let k = self.socks.len();
        let mut got = 0;
        for i in 0..k {
            if got == out.len() {
                break;
            }
            let s = (self.next_rx + i) % k;
            got += self.socks[s].rx_burst(&mut out[got..], &mut self.counters, self.busy_poll);
        }
        // The next burst starts at the next socket: a busy queue cannot
        // starve the others.
        self.next_rx = if self.next_rx + 1 >= k {
            0
        } else {
            self.next_rx + 1
        };
        got
    }

    fn tx_burst(&mut self, _umem: &mut [u8], descs: &[Desc]) -> usize {
        let mut sent = 0;
        for s in &mut self.socks {
            if sent == descs.len() {
                break;
            }
            sent += s.tx_burst(&descs[sent..], &mut self.counters);
        }
        sent
    }

    fn service(&mut self, _umem: &mut [u8], pool: &mut FramePool) {
        for s in &mut self.socks {
            s.reap_completions(pool, &mut self.counters, &mut self.comp_batch, self.tx_only);
            if s.tx_outstanding > 0 && s.tx_unsent() > 0 {
                s.kick_tx(&mut self.counters);
            }
            s.refill(pool, &mut self.counters);
        }
    }
}

impl XskPort {
    /// Waits up to `timeout` for the kernel to complete every transmission,
    /// kicking as needed; frames come back to `pool`.
    pub fn drain_tx(&mut self, pool: &mut FramePool, timeout: std::time::Duration) {
        let until = std::time::Instant::now() + timeout;
        while self.counters.tx_outstanding > 0 && std::time::Instant::now() < until {
            for s in &mut self.socks {
                s.reap_completions(pool, &mut self.counters, &mut self.comp_batch, self.tx_only);
                if s.tx_unsent() > 0 {
                    s.kick_tx(&mut self.counters);
                }
            }
            std::thread::yield_now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket whose tx ring is `size` slots of plain memory, `used` of
    /// them taken by the kernel (not yet consumed); no real socket.
    struct FakeTx {
        rings: Box<Rings>,
        _prod: Box<u32>,
        cons: Box<u32>,
        flags: Box<u32>,
        _slots: Vec<sys::xdp_desc>,
    }

    impl FakeTx {
        fn new(size: u32, used: u32) -> FakeTx {
            let mut rings = Rings::new();
            let mut prod = Box::new(used);
            let mut cons = Box::new(0u32);
            let mut flags = Box::new(0u32);
            let mut slots = vec![
                sys::xdp_desc {
                    addr: 0,
                    len: 0,
                    options: 0
                };
                size as usize
            ];
            rings.tx = sys::xsk_ring_prod {
                cached_prod: used,
                cached_cons: size,
                mask: size - 1,
                size,
                producer: &mut *prod,
                consumer: &mut *cons,
                ring: slots.as_mut_ptr() as *mut libc::c_void,
                flags: &mut *flags,
            };
            FakeTx {
                rings,
                _prod: prod,
                cons,
                flags,
                _slots: slots,
            }
        }

        fn xsk(&mut self) -> std::mem::ManuallyDrop<Xsk> {
            std::mem::ManuallyDrop::new(Xsk {
                xsk: std::ptr::null_mut(),
                rings: &mut *self.rings,
                fd: -1,
                queue: 0,
                fill_target: 0,
                rx_owned: 0,
                tx_outstanding: 0,
                rx_frames: 0,
            })
        }
    }

    fn descs(n: usize) -> Vec<Desc> {
        (0..n)
            .map(|i| Desc {
                addr: (i * FRAME_SIZE + HEADROOM) as u64,
                len: 60,
            })
            .collect()
    }

    #[test]
    fn tx_takes_what_is_free_and_refuses_only_the_rest() {
        // 256 slots, 1 still held by the kernel: 255 free.
        let mut f = FakeTx::new(256, 1);
        let mut s = f.xsk();
        let mut c = XskCounters::default();
        assert_eq!(s.tx_burst(&descs(256), &mut c), 255);
        assert_eq!((s.tx_outstanding, c.tx_outstanding), (255, 255));
        assert_eq!(s.tx_burst(&descs(8), &mut c), 0, "ring full");
        // The kernel consumes 10: exactly 10 more fit.
        *f.cons = 10;
        assert_eq!(s.tx_burst(&descs(64), &mut c), 10);
        assert_eq!(c.tx_kicks, 0, "no wake-up asked");
    }

    #[test]
    fn a_port_spills_a_burst_over_its_sockets() {
        let (mut a, mut b) = (FakeTx::new(8, 5), FakeTx::new(8, 0));
        let mut port = XskPort::new("fake", false);
        port.socks.push(std::mem::ManuallyDrop::into_inner(a.xsk()));
        port.socks.push(std::mem::ManuallyDrop::into_inner(b.xsk()));
        let sent = Port::tx_burst(&mut port, &mut [], &descs(12));
        assert_eq!(sent, 3 + 8, "3 free on the first socket, 8 on the second");
        assert_eq!(port.counters.tx_outstanding, 11);
        // No real sockets to delete.
        for s in port.socks.drain(..) {
            std::mem::forget(s);
        }
    }

    #[test]
    fn an_empty_rx_ring_wakes_the_fill_ring_when_the_kernel_asks() {
        let mut f = FakeTx::new(8, 0);
        // Empty rx ring (producer = consumer = 0) and fill ring, both
        // backed by the fake's words; the fill ring's flags decide.
        let (mut prod, mut cons, mut fill_flags) = (0u32, 0u32, 0u32);
        let mut slots = [0u64; 8];
        f.rings.rx = sys::xsk_ring_cons {
            cached_prod: 0,
            cached_cons: 0,
            mask: 7,
            size: 8,
            producer: &mut prod,
            consumer: &mut cons,
            ring: slots.as_mut_ptr() as *mut libc::c_void,
            flags: std::ptr::null_mut(),
        };
        f.rings.fill = sys::xsk_ring_prod {
            cached_prod: 0,
            cached_cons: 8,
            mask: 7,
            size: 8,
            producer: &mut prod,
            consumer: &mut cons,
            ring: slots.as_mut_ptr() as *mut libc::c_void,
            flags: &mut fill_flags,
        };
        let mut s = f.xsk();
        let mut c = XskCounters::default();
        let mut out = [Desc::default(); 4];
        assert_eq!(s.rx_burst(&mut out, &mut c, false), 0);
        assert_eq!(c.fill_kicks, 0, "no flag, no system call");
        fill_flags = sys::XDP_RING_NEED_WAKEUP;
        std::hint::black_box(&mut fill_flags);
        assert_eq!(s.rx_burst(&mut out, &mut c, false), 0);
        assert_eq!(c.fill_kicks, 1, "flag set and rx empty: wake the driver");
    }

    #[test]
    fn a_failed_kick_is_counted() {
        let mut f = FakeTx::new(8, 0);
        *f.flags = sys::XDP_RING_NEED_WAKEUP;
        let mut s = f.xsk();
        let mut c = XskCounters::default();
        assert_eq!(s.tx_burst(&descs(2), &mut c), 2);
        assert_eq!((c.tx_kicks, c.tx_kick_errors), (1, 1));
        assert_eq!(c.tx_kick_errno, libc::EBADF);
    }
}
