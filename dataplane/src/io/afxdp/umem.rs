//! The UMEM region of one worker: anonymous memory (optionally huge pages)
//! registered with the kernel through libxdp, viewed by the pipeline as one
//! `&mut [u8]`.

use super::AfXdpError;
use crate::io::FRAME_SIZE;
use libxdp_sys as sys;
use std::ptr::{self, NonNull};

/// The memory of a UMEM. Owns the mapping; unmaps it on drop (after the
/// sockets and the libxdp UMEM that use it: see `WorkerIo`'s drop order).
pub(super) struct UmemArea {
    ptr: NonNull<u8>,
    len: usize,
    pub huge_pages: bool,
}

impl UmemArea {
    /// Maps `frames` frames of [`FRAME_SIZE`] bytes, populated. With
    /// `huge_pages`, 2 MiB pages are tried first (falls back to normal pages
    /// when none are reserved: `vm.nr_hugepages`).
    pub fn new(frames: usize, huge_pages: bool) -> Result<Self, AfXdpError> {
        let len = frames * FRAME_SIZE;
        let base = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE;
        let try_map = |flags| {
            // SAFETY: an anonymous private mapping at an address the kernel
            // chooses aliases nothing.
            let p = unsafe {
                libc::mmap(
                    ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    flags,
                    -1,
                    0,
                )
            };
            (p != libc::MAP_FAILED).then_some(p as *mut u8)
        };
        let (p, huge) = match huge_pages
            .then(|| try_map(base | libc::MAP_HUGETLB))
            .flatten()
        {
            Some(p) => (p, true),
            None => match try_map(base) {
                Some(p) => (p, false),
                None => {
                    return Err(AfXdpError::Umem {
                        bytes: len,
                        err: std::io::Error::last_os_error(),
                    });
                }
            },
        };
        Ok(UmemArea {
            ptr: NonNull::new(p).expect("mmap returned NULL"),
            len,
            huge_pages: huge,
        })
    }

    pub fn as_ptr(&self) -> *mut libc::c_void {
        self.ptr.as_ptr() as *mut libc::c_void
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// The whole UMEM as the slice the pipeline works on.
    pub fn slice_mut(&mut self) -> &mut [u8] {
        // SAFETY: `ptr..ptr+len` is one live mapping owned by `self` for as
        // long as the returned borrow (it is unmapped only in `drop`), and
        // `&mut self` makes this the only Rust reference to it. The kernel
        // also writes into it (received frames, like DMA), but only into
        // frames the worker has handed over on a fill ring and has not taken
        // back from the rx ring; the frame ownership rules (io/mod.rs) keep
        // the pipeline from touching those frames, so no byte the pipeline
        // reads or writes changes under it.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for UmemArea {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once; no socket
        // refers to it any more (WorkerIo drops sockets and UMEM first).
        unsafe { libc::munmap(self.ptr.as_ptr() as *mut libc::c_void, self.len) };
    }
}

/// Registers `area` as a UMEM of [`FRAME_SIZE`] frames with no extra
/// headroom (the kernel then puts received data at [`crate::io::HEADROOM`]
/// = XDP_PACKET_HEADROOM, where the pipeline expects it).
pub(super) fn register(
    area: &UmemArea,
    fill: *mut sys::xsk_ring_prod,
    comp: *mut sys::xsk_ring_cons,
    fill_size: u32,
    comp_size: u32,
) -> Result<*mut sys::xsk_umem, AfXdpError> {
    let cfg = sys::xsk_umem_config {
        fill_size,
        comp_size,
        frame_size: FRAME_SIZE as u32,
        frame_headroom: 0,
        flags: 0,
    };
    let mut umem = ptr::null_mut();
    // SAFETY: `area` outlives the UMEM (WorkerIo's drop order); `fill` and
    // `comp` are boxed rings that outlive it too.
    let rc = unsafe {
        sys::xsk_umem__create(
            &mut umem,
            area.as_ptr(),
            area.len() as u64,
            fill,
            comp,
            &cfg,
        )
    };
    if rc != 0 {
        let err = std::io::Error::from_raw_os_error(-rc);
        return Err(match -rc {
            libc::ENOBUFS | libc::EPERM | libc::ENOMEM => AfXdpError::Memlock {
                bytes: area.len(),
                err,
            },
            _ => AfXdpError::Umem {
                bytes: area.len(),
                err,
            },
        });
    }
    Ok(umem)
}
