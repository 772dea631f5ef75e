//! Ports: where frames come from and go to.
//!
//! A worker owns one UMEM: a region of fixed-size frames, shared by all of
//! its ports (as one AF_XDP UMEM is shared by one worker's sockets on every
//! device). A frame is named by a [`Desc`]: the offset of its first byte in
//! the UMEM and its length. Receiving hands descriptors to the worker;
//! forwarding hands the same descriptor to another port's transmit side, so
//! no frame is ever copied between ports.
//!
//! Ownership: every frame is in exactly one place at a time: the worker's
//! [`FramePool`] free list, a port's receive side (AF_XDP fill ring), the
//! pipeline (a batch or a neighbour's pending queue), or a port's transmit
//! side until it completes. `tx_burst` takes what it accepts; the caller
//! frees what it does not.
//!
//! Backends: `memory` (in-process queues: tests, benches, `xgate replay`);
//! `afxdp` (AF_XDP sockets: `xgate run`). `tap` and `punt`: the host
//! kernel's side of the router's own traffic (the management punt).

pub mod afxdp;
pub mod bpf;
pub mod memory;
pub mod punt;
pub mod tap;

/// Size of one UMEM frame. A power of two, so a frame's base is `addr & !(FRAME_SIZE - 1)`.
pub const FRAME_SIZE: usize = 2048;
/// Bytes kept free before received data, as XDP does, so VLAN tags can be
/// pushed without moving the payload.
pub const HEADROOM: usize = 256;
/// Largest frame a UMEM frame holds after the headroom.
pub const MAX_FRAME_LEN: usize = FRAME_SIZE - HEADROOM;

/// A frame in the UMEM: its first byte and its length.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Desc {
    pub addr: u64,
    pub len: u32,
}

impl Desc {
    /// The start of the UMEM frame that holds this descriptor.
    #[inline]
    pub fn frame_base(&self) -> u64 {
        self.addr & !(FRAME_SIZE as u64 - 1)
    }

    /// Bytes free between the frame start and the data.
    #[inline]
    pub fn headroom(&self) -> usize {
        (self.addr - self.frame_base()) as usize
    }

    /// Bytes free after the data.
    #[inline]
    pub fn tailroom(&self) -> usize {
        FRAME_SIZE - self.headroom() - self.len as usize
    }

    /// The frame's bytes inside `umem`.
    #[inline]
    pub fn bytes<'a>(&self, umem: &'a [u8]) -> &'a [u8] {
        &umem[self.addr as usize..self.addr as usize + self.len as usize]
    }

    #[inline]
    pub fn bytes_mut<'a>(&self, umem: &'a mut [u8]) -> &'a mut [u8] {
        &mut umem[self.addr as usize..self.addr as usize + self.len as usize]
    }
}

/// The free frames of one UMEM. Allocation and free are a pop and a push on
/// a vector whose capacity is the frame count, so neither ever allocates.
///
/// Debug builds also keep a bit per frame and panic on a double free or
/// on freeing a frame the pool never gave out.
#[derive(Debug)]
pub struct FramePool {
    free: Vec<u64>,
    frames: usize,
    #[cfg(debug_assertions)]
    in_pool: Vec<bool>,
}

impl FramePool {
    /// A pool owning every frame of a UMEM of `frames` frames.
    pub fn new(frames: usize) -> Self {
        let free = (0..frames as u64)
            .rev()
            .map(|i| i * FRAME_SIZE as u64)
            .collect();
        FramePool {
            free,
            frames,
            #[cfg(debug_assertions)]
            in_pool: vec![true; frames],
        }
    }

    /// A frame with the standard headroom and zero length, or `None` when
    /// every frame is in use.
    #[inline]
    pub fn alloc(&mut self) -> Option<Desc> {
        let base = self.free.pop()?;
        #[cfg(debug_assertions)]
        {
            self.in_pool[base as usize / FRAME_SIZE] = false;
        }
        Some(Desc {
            addr: base + HEADROOM as u64,
            len: 0,
        })
    }

    #[inline]
    pub fn free(&mut self, d: Desc) {
        debug_assert!(self.free.len() < self.frames, "frame freed twice");
        #[cfg(debug_assertions)]
        {
            let i = d.frame_base() as usize / FRAME_SIZE;
            assert!(
                i < self.frames,
                "freed frame {:#x} is outside the UMEM",
                d.addr
            );
            assert!(!self.in_pool[i], "frame {:#x} freed twice", d.addr);
            self.in_pool[i] = true;
        }
        self.free.push(d.frame_base());
    }

    pub fn available(&self) -> usize {
        self.free.len()
    }

    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Bytes of UMEM this pool manages.
    pub fn umem_len(&self) -> usize {
        self.frames * FRAME_SIZE
    }
}

/// One queue of one device, as seen by the worker that owns it.
pub trait Port {
    /// Takes up to `out.len()` received frames; returns how many.
    fn rx_burst(&mut self, out: &mut [Desc]) -> usize;
    /// Offers frames for transmission; returns how many the port took (a
    /// prefix of `descs`). The caller still owns the rest.
    fn tx_burst(&mut self, umem: &mut [u8], descs: &[Desc]) -> usize;
    /// Returns frames whose transmission completed to `pool`, and gives the
    /// receive side fresh frames from it (AF_XDP's completion and fill rings).
    fn service(&mut self, umem: &mut [u8], pool: &mut FramePool);
}

/// Waits up to `timeout` for `fd` to be readable (poll(2)); false when the
/// time passed or a signal interrupted the wait. For the control plane's
/// sockets (the netlink mirror), whose crate has no `unsafe`.
pub fn wait_readable(
    fd: std::os::fd::BorrowedFd<'_>,
    timeout: std::time::Duration,
) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: `p` is one valid, initialised pollfd that lives for the
    // call, the count passed is 1, and poll only writes its `revents`; the
    // descriptor is borrowed, so it stays open during the call.
    let r = unsafe { libc::poll(&mut p, 1, ms) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() == std::io::ErrorKind::Interrupted {
            return Ok(false);
        }
        return Err(e);
    }
    Ok(r > 0)
}

/// Sets a socket's receive buffer to `bytes`: SO_RCVBUFFORCE (with
/// CAP_NET_ADMIN, past `net.core.rmem_max`), else SO_RCVBUF (capped by
/// it). Returns the size the kernel reports (it doubles the request for
/// its bookkeeping).
pub fn set_recv_buffer(fd: std::os::fd::BorrowedFd<'_>, bytes: usize) -> std::io::Result<usize> {
    use std::os::fd::AsRawFd;
    let v = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    let set = |opt| {
        // SAFETY: `v` is a c_int that lives for the call and its size is
        // passed; the descriptor is borrowed, so it stays open.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&v as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        }
    };
    if set(libc::SO_RCVBUFFORCE) != 0 && set(libc::SO_RCVBUF) != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut got: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `got` and `len` live for the call and `len` is `got`'s size.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&mut got as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(usize::try_from(got).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_allocates_every_frame_once() {
        let mut p = FramePool::new(4);
        let mut got = Vec::new();
        while let Some(d) = p.alloc() {
            assert_eq!(d.headroom(), HEADROOM);
            assert_eq!(d.tailroom(), MAX_FRAME_LEN);
            got.push(d.frame_base());
        }
        got.sort();
        assert_eq!(got, vec![0, 2048, 4096, 6144]);
        p.free(Desc {
            addr: 2048 + 300,
            len: 10,
        });
        assert_eq!(p.alloc().unwrap().addr, 2048 + HEADROOM as u64);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "freed twice")]
    fn pool_catches_a_double_free() {
        let mut p = FramePool::new(4);
        let d = p.alloc().unwrap();
        p.free(d);
        p.free(d);
    }
}
