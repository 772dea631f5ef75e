//! The management punt: traffic between the workers and the host kernel's
//! TAP devices, the way VPP's linux-cp hands a router's own traffic to
//! Linux.
//!
//! xgate owns the devices it binds: every frame they receive reaches a
//! worker, none the kernel. For an interface with a `tap`, the kernel gets
//! a TAP device with the same MAC, MTU and addresses (set up by the
//! control plane, without ARP: the kernel resolves nothing itself).
//! Packets for the router that xgate does not answer itself (TCP, UDP,
//! other protocols, ICMP other than echo requests, fragments) are copied
//! to that TAP after filter INPUT, so sshd, a BGP daemon or a DNS resolver
//! on the router work. What the kernel sends on a TAP comes back to a
//! worker as the router's own traffic: conntrack, filter OUTPUT, nat
//! POSTROUTING, xgate's routes and neighbour table, out of the wire.
//!
//! Between each worker and the punt thread there is a [`PuntChannel`]: two
//! bounded lock-free queues of preallocated frame-sized slots (to the
//! kernel, from the kernel), each with its free list, so a worker copies a
//! frame into a slot and never allocates, locks or makes a system call per
//! packet. When a queue is full the frame is dropped and counted
//! (`punt_queue_full`): a flood to the router's address costs the workers
//! a copy, never their forwarding. The punt thread does the system calls:
//! it writes queued frames to the TAPs, reads what the kernel sends, and
//! sleeps in `poll(2)` when there is nothing to do; a worker wakes it
//! (an eventfd write) at most once per batch, and only when it sleeps,
//! like AF_XDP's need_wakeup.
//!
//! Frames from the kernel all go to one worker (the first channel), so the
//! kernel's own flows are never reordered between workers.

use super::MAX_FRAME_LEN;
use super::tap::Tap;
use crate::stats::Counter;
use crossbeam_queue::ArrayQueue;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::thread::JoinHandle;
use std::time::Duration;

/// Slots per direction per channel.
pub const SLOTS: usize = 256;

/// One frame on its way to or from a TAP.
pub struct Slot {
    /// Tap id (`crate::iface::Interface::tap`).
    pub tap: u16,
    pub len: u16,
    pub data: [u8; MAX_FRAME_LEN],
}

impl Slot {
    pub fn frame(&self) -> &[u8] {
        &self.data[..self.len as usize]
    }
}

/// A bounded queue of filled slots with the free list it draws from.
struct Queue {
    free: ArrayQueue<Box<Slot>>,
    full: ArrayQueue<Box<Slot>>,
}

impl Queue {
    fn new(slots: usize) -> Self {
        let free = ArrayQueue::new(slots);
        for _ in 0..slots {
            let _ = free.push(Box::new(Slot {
                tap: 0,
                len: 0,
                data: [0; MAX_FRAME_LEN],
            }));
        }
        Queue {
            free,
            full: ArrayQueue::new(slots),
        }
    }

    /// Copies `frame` into a free slot and queues it; false when no slot
    /// is free (or the frame does not fit one).
    fn push(&self, tap: u16, frame: &[u8]) -> bool {
        if frame.len() > MAX_FRAME_LEN {
            return false;
        }
        let Some(mut s) = self.free.pop() else {
            return false;
        };
        s.tap = tap;
        s.len = frame.len() as u16;
        s.data[..frame.len()].copy_from_slice(frame);
        // Capacity equals the slot count: a slot from the free list always fits.
        let _ = self.full.push(s);
        true
    }

    fn recycle(&self, s: Box<Slot>) {
        let _ = self.free.push(s);
    }
}

/// Counters of the punt thread (the workers count their side in
/// `WorkerStats`).
#[derive(Debug, Default)]
pub struct PuntStats {
    /// Frames written to a TAP.
    pub to_kernel: Counter,
    /// Frames read from a TAP.
    pub from_kernel: Counter,
    /// TAP writes the kernel refused (device down, out of memory).
    pub write_errors: Counter,
    /// Frames the kernel sent that do not fit a frame (larger than the
    /// interface MTU allows): dropped.
    pub oversized: Counter,
}

/// What the punt thread and the workers share: the thread's wake-up.
struct Waker {
    /// eventfd the punt thread polls.
    fd: OwnedFd,
    /// The punt thread is (about to be) asleep: the next worker that
    /// queues a frame writes the eventfd.
    sleeping: AtomicBool,
}

impl Waker {
    fn new() -> io::Result<Self> {
        // SAFETY: eventfd takes integer arguments and returns a new fd or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Waker {
            // SAFETY: `fd` was just returned by eventfd and is owned by no one else.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            sleeping: AtomicBool::new(false),
        })
    }

    fn wake(&self) {
        // Pairs with the fence in the punt thread between setting
        // `sleeping` and its last look at the queues: either it sees the
        // frame queued before this fence, or this sees it sleeping.
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::Relaxed) && self.sleeping.swap(false, Ordering::AcqRel) {
            let one = 1u64.to_ne_bytes();
            // SAFETY: writes 8 bytes from a live buffer to our eventfd. A
            // failure (counter saturated) means a wake-up is pending anyway.
            unsafe { libc::write(self.fd.as_raw_fd(), one.as_ptr().cast(), 8) };
        }
    }

    fn drain(&self) {
        let mut buf = [0u8; 8];
        // SAFETY: reads at most 8 bytes into a live buffer from our
        // non-blocking eventfd; EAGAIN (nothing pending) is fine.
        unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), 8) };
    }
}

/// One worker's way to the kernel and back.
pub struct PuntChannel {
    to_kernel: Queue,
    from_kernel: Queue,
    waker: Arc<Waker>,
}

impl std::fmt::Debug for PuntChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PuntChannel")
            .field("to_kernel", &self.to_kernel.full.len())
            .field("from_kernel", &self.from_kernel.full.len())
            .finish()
    }
}

impl PuntChannel {
    /// Worker side: queues a copy of `frame` for tap `tap`; false when the
    /// queue is full.
    #[inline]
    pub fn send(&self, tap: u16, frame: &[u8]) -> bool {
        self.to_kernel.push(tap, frame)
    }

    /// Worker side: wakes the punt thread if it sleeps (once per batch
    /// that queued something).
    pub fn notify(&self) {
        self.waker.wake();
    }

    /// Worker side: whether the kernel sent something (one load).
    #[inline]
    pub fn has_from_kernel(&self) -> bool {
        !self.from_kernel.full.is_empty()
    }

    /// Worker side: the next frame the kernel sent; give the slot back
    /// with [`PuntChannel::recycle`].
    pub fn recv(&self) -> Option<Box<Slot>> {
        self.from_kernel.full.pop()
    }

    pub fn recycle(&self, s: Box<Slot>) {
        self.from_kernel.recycle(s);
    }

    /// Frames the kernel sent that no worker took yet, plus frames
    /// queued for the kernel: zero once everything moved.
    pub fn queued(&self) -> (usize, usize) {
        (self.to_kernel.full.len(), self.from_kernel.full.len())
    }

    /// The punt thread's part without a thread (replay, tests): the frames
    /// queued for the kernel, in order, as (tap, bytes).
    pub fn take_to_kernel(&self) -> Vec<(u16, Vec<u8>)> {
        let mut v = Vec::new();
        while let Some(s) = self.to_kernel.full.pop() {
            v.push((s.tap, s.frame().to_vec()));
            self.to_kernel.recycle(s);
        }
        v
    }

    /// The kernel's part without a kernel (replay, tests): queues `frame`
    /// as if tap `tap` had sent it. False when the queue is full.
    pub fn inject_from_kernel(&self, tap: u16, frame: &[u8]) -> bool {
        self.from_kernel.push(tap, frame)
    }
}

/// Channels for `workers` workers, sharing one wake-up.
pub fn channels(workers: usize) -> io::Result<Vec<Arc<PuntChannel>>> {
    let waker = Arc::new(Waker::new()?);
    Ok((0..workers)
        .map(|_| {
            Arc::new(PuntChannel {
                to_kernel: Queue::new(SLOTS),
                from_kernel: Queue::new(SLOTS),
                waker: waker.clone(),
            })
        })
        .collect())
}

/// The running punt thread.
pub struct PuntThread {
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    pub stats: Arc<PuntStats>,
    handle: Option<JoinHandle<Vec<Tap>>>,
}

impl PuntThread {
    /// Starts the thread moving frames between `taps` (index = tap id)
    /// and `channels`; frames from the kernel go to `channels[0]`.
    pub fn spawn(taps: Vec<Tap>, channels: Vec<Arc<PuntChannel>>) -> io::Result<PuntThread> {
        let Some(first) = channels.first() else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "no channel"));
        };
        let waker = first.waker.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(PuntStats::default());
        let (s, st) = (stop.clone(), stats.clone());
        let handle = std::thread::Builder::new()
            .name("xgate-punt".into())
            .spawn(move || punt_loop(taps, &channels, &s, &st))?;
        Ok(PuntThread {
            stop,
            waker,
            stats,
            handle: Some(handle),
        })
    }

    /// Stops the thread and closes the TAPs (the kernel removes them,
    /// with their addresses and routes).
    pub fn stop(mut self) -> Arc<PuntStats> {
        self.join();
        self.stats.clone()
    }

    fn join(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.waker.sleeping.store(true, Ordering::Relaxed);
        self.waker.wake();
        if let Some(h) = self.handle.take() {
            // The TAPs close here, whatever the thread's outcome.
            drop(h.join());
        }
    }
}

impl Drop for PuntThread {
    /// An error path of the start: the TAPs still go.
    fn drop(&mut self) {
        self.join();
    }
}

/// How long the thread sleeps at most when nothing moves (the stop flag
/// is checked this often even without a wake-up).
const IDLE_POLL: Duration = Duration::from_millis(100);

fn punt_loop(
    mut taps: Vec<Tap>,
    channels: &[Arc<PuntChannel>],
    stop: &AtomicBool,
    st: &PuntStats,
) -> Vec<Tap> {
    let inject = &channels[0];
    let waker = &inject.waker;
    // What the thread sleeps on: the wake-up, then every tap (built once).
    let pollfd = |fd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let mut fds: Vec<libc::pollfd> = std::iter::once(waker.fd.as_raw_fd())
        .chain(taps.iter().map(Tap::fd))
        .map(pollfd)
        .collect();
    while !stop.load(Ordering::Relaxed) {
        let mut moved = false;
        // Workers -> kernel.
        for ch in channels {
            while let Some(s) = ch.to_kernel.full.pop() {
                moved = true;
                match taps.get_mut(s.tap as usize).map(|t| t.send(s.frame())) {
                    Some(Ok(())) => st.to_kernel.inc(),
                    _ => st.write_errors.inc(),
                }
                ch.to_kernel.recycle(s);
            }
        }
        // Kernel -> the first worker, while it has free slots.
        let mut starved = false;
        for (id, tap) in taps.iter_mut().enumerate() {
            loop {
                let Some(mut s) = inject.from_kernel.free.pop() else {
                    starved = true;
                    break;
                };
                match tap.recv(&mut s.data) {
                    Ok(Some(n)) if n < MAX_FRAME_LEN => {
                        moved = true;
                        st.from_kernel.inc();
                        s.tap = id as u16;
                        s.len = n as u16;
                        let _ = inject.from_kernel.full.push(s);
                    }
                    Ok(Some(_)) => {
                        moved = true;
                        st.oversized.inc();
                        inject.from_kernel.recycle(s);
                    }
                    Ok(None) | Err(_) => {
                        inject.from_kernel.recycle(s);
                        break;
                    }
                }
            }
        }
        if moved {
            continue;
        }
        // Nothing moved: sleep until a worker queues a frame, the kernel
        // sends one, or the idle timeout. When the worker has not taken
        // the kernel's frames yet, the TAPs are not polled (they would be
        // readable at once) and the timeout is short.
        waker.sleeping.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if channels.iter().any(|c| !c.to_kernel.full.is_empty()) {
            waker.sleeping.store(false, Ordering::Relaxed);
            continue;
        }
        // The wake-up first: when starved, it alone is polled.
        let (n, timeout) = if starved {
            (1, 1)
        } else {
            (fds.len(), IDLE_POLL.as_millis() as i32)
        };
        // SAFETY: `fds` is a live array of at least `n` initialised pollfds.
        unsafe { libc::poll(fds.as_mut_ptr(), n as libc::nfds_t, timeout) };
        waker.sleeping.store(false, Ordering::Relaxed);
        waker.drain();
    }
    taps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_never_holds_more_than_its_slots_and_gives_them_back() {
        let ch = channels(1).unwrap().pop().unwrap();
        for i in 0..SLOTS {
            assert!(ch.send(1, &[i as u8; 60]), "slot {i}");
        }
        assert!(!ch.send(1, &[0; 60]), "full");
        let got = ch.take_to_kernel();
        assert_eq!(got.len(), SLOTS);
        assert_eq!(got[7], (1, vec![7u8; 60]));
        assert!(ch.send(2, &[9; 1500]), "slots are back");
        assert!(!ch.send(2, &[0; MAX_FRAME_LEN + 1]), "too long for a slot");
    }

    #[test]
    fn kernel_frames_come_back_in_order() {
        let ch = channels(1).unwrap().pop().unwrap();
        assert!(!ch.has_from_kernel());
        assert!(ch.inject_from_kernel(0, b"first"));
        assert!(ch.inject_from_kernel(3, b"second"));
        assert!(ch.has_from_kernel());
        let a = ch.recv().unwrap();
        assert_eq!((a.tap, a.frame()), (0, &b"first"[..]));
        ch.recycle(a);
        let b = ch.recv().unwrap();
        assert_eq!((b.tap, b.frame()), (3, &b"second"[..]));
        ch.recycle(b);
        assert!(ch.recv().is_none());
    }
}
