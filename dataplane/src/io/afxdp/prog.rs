//! xgate's own XDP program: every frame a device receives goes to the
//! AF_XDP socket of its receive queue, and a frame of a queue without a
//! socket is dropped, never passed to the kernel's stack.
//!
//! libxdp's default program ends with XDP_PASS for a queue that has no
//! socket: with more device queues than sockets, the kernel then received
//! (and with `ip_forward=1` forwarded, past xgate's firewall) whatever RSS
//! put on the unbound queues. This program is five instructions:
//!
//! ```text
//! r2 = ctx->rx_queue_index
//! r1 = xskmap
//! r3 = XDP_DROP                // bpf_redirect_map's fallback action (Linux >= 5.3)
//! r0 = bpf_redirect_map(r1, r2, r3)
//! exit
//! ```
//!
//! written as raw instructions (no clang, no ELF, no libbpf object), loaded
//! with bpf(2) and attached through a BPF link (Linux >= 5.9): the link
//! detaches the program when its descriptor closes, so nothing stays on
//! the device after xgate exits, however it exits. A socket leaves the map
//! by itself when it closes (its queue then drops).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

const BPF_MAP_CREATE: i64 = 0;
const BPF_MAP_UPDATE_ELEM: i64 = 2;
const BPF_PROG_LOAD: i64 = 5;
const BPF_LINK_CREATE: i64 = 28;
const BPF_MAP_TYPE_XSKMAP: u32 = 17;
const BPF_PROG_TYPE_XDP: u32 = 6;
/// enum bpf_attach_type: BPF_XDP.
const BPF_XDP: u32 = 37;
const BPF_FUNC_REDIRECT_MAP: i32 = 51;
const XDP_DROP: i32 = 1;
pub(super) const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
pub(super) const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

/// struct bpf_insn.
#[derive(Clone, Copy, Default)]
#[repr(C)]
struct Insn {
    code: u8,
    /// dst in the low nibble, src in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

/// The program, for the XSKMAP with descriptor `map`.
fn program(map: i32) -> [Insn; 6] {
    [
        // r2 = *(u32 *)(r1 + 16): struct xdp_md's rx_queue_index.
        insn(0x61, 2, 1, 16, 0),
        // r1 = map (ld_imm64 with BPF_PSEUDO_MAP_FD: two slots).
        insn(0x18, 1, 1, 0, map),
        Insn::default(),
        // r3 = XDP_DROP: the action when the map has no socket for the key.
        insn(0xb7, 3, 0, 0, XDP_DROP),
        insn(0x85, 0, 0, 0, BPF_FUNC_REDIRECT_MAP),
        insn(0x95, 0, 0, 0, 0),
    ]
}

fn sys_bpf(cmd: i64, attr: &mut [u64]) -> io::Result<i64> {
    // SAFETY: `attr` is a zero-padded union bpf_attr of the given size;
    // the pointers it carries point to live buffers of the caller.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.as_mut_ptr(),
            std::mem::size_of_val(attr) as u32,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn fd_of(rc: i64) -> OwnedFd {
    // SAFETY: the kernel just returned this new descriptor to us.
    unsafe { OwnedFd::from_raw_fd(rc as RawFd) }
}

/// Writes `v` at byte `off` of an attr made of u64 words (little-endian).
fn put32(attr: &mut [u64], off: usize, v: u32) {
    let w = &mut attr[off / 8];
    let shift = (off % 8) * 8;
    *w = (*w & !(0xffff_ffffu64 << shift)) | ((v as u64) << shift);
}

/// The index of `device` in this network namespace.
pub(super) fn ifindex(device: &str) -> io::Result<u32> {
    let c = std::ffi::CString::new(device).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: a NUL-terminated name.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(i)
    }
}

/// The program attached to one device, with its socket map.
pub struct XskProgram {
    /// Closed first: detaches the program from the device.
    link: Option<OwnedFd>,
    _prog: OwnedFd,
    map: OwnedFd,
    /// The device's receive queues (the map's size).
    pub queues: u32,
}

impl XskProgram {
    /// Creates the map (one slot per receive queue), loads the program
    /// and attaches it to `device` with `xdp_flags` (XDP_FLAGS_DRV_MODE or
    /// XDP_FLAGS_SKB_MODE). Fails with EBUSY/EEXIST when the device
    /// already has an XDP program.
    pub fn attach(device: &str, queues: u32, xdp_flags: u32) -> io::Result<XskProgram> {
        let ifindex = ifindex(device)?;
        let mut attr = [0u64; 8];
        put32(&mut attr, 0, BPF_MAP_TYPE_XSKMAP);
        put32(&mut attr, 4, 4);
        put32(&mut attr, 8, 4);
        put32(&mut attr, 12, queues.max(1));
        let map = fd_of(sys_bpf(BPF_MAP_CREATE, &mut attr)?);
        let insns = program(map.as_raw_fd());
        let license = c"GPL";
        let mut log = vec![0u8; 4096];
        let mut attr = [0u64; 16];
        put32(&mut attr, 0, BPF_PROG_TYPE_XDP);
        put32(&mut attr, 4, insns.len() as u32);
        attr[1] = insns.as_ptr() as u64;
        attr[2] = license.as_ptr() as u64;
        put32(&mut attr, 24, 1);
        put32(&mut attr, 28, log.len() as u32);
        attr[4] = log.as_mut_ptr() as u64;
        attr[6] = u64::from_le_bytes(*b"xgate_xs");
        attr[7] = u64::from_le_bytes(*b"k\0\0\0\0\0\0\0");
        put32(&mut attr, 68, BPF_XDP);
        let prog = match sys_bpf(BPF_PROG_LOAD, &mut attr) {
            Ok(rc) => fd_of(rc),
            Err(e) => {
                let end = log.iter().position(|&b| b == 0).unwrap_or(0);
                return Err(io::Error::new(
                    e.kind(),
                    format!(
                        "loading xgate's XDP program: {e} {}",
                        String::from_utf8_lossy(&log[..end]).trim()
                    ),
                ));
            }
        };
        let mut attr = [0u64; 8];
        put32(&mut attr, 0, prog.as_raw_fd() as u32);
        put32(&mut attr, 4, ifindex);
        put32(&mut attr, 8, BPF_XDP);
        put32(&mut attr, 12, xdp_flags);
        let link = fd_of(sys_bpf(BPF_LINK_CREATE, &mut attr)?);
        Ok(XskProgram {
            link: Some(link),
            _prog: prog,
            map,
            queues,
        })
    }

    /// Steers receive queue `queue` to the socket `xsk_fd`.
    pub fn insert(&self, queue: u32, xsk_fd: i32) -> io::Result<()> {
        let key = queue;
        let value = xsk_fd as u32;
        let mut attr = [0u64; 4];
        put32(&mut attr, 0, self.map.as_raw_fd() as u32);
        attr[1] = &key as *const u32 as u64;
        attr[2] = &value as *const u32 as u64;
        sys_bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map(|_| ())
    }
}

impl Drop for XskProgram {
    fn drop(&mut self) {
        // The link first: the device stops running the program, then the
        // program and the map go.
        self.link.take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_redirects_by_queue_and_drops_otherwise() {
        let p = program(7);
        assert_eq!((p[0].code, p[0].regs, p[0].off), (0x61, 0x12, 16));
        assert_eq!((p[1].code, p[1].regs, p[1].imm), (0x18, 0x11, 7));
        assert_eq!((p[3].regs, p[3].imm), (3, XDP_DROP));
        assert_eq!(p[4].imm, BPF_FUNC_REDIRECT_MAP);
        assert_eq!(p[5].code, 0x95);
    }
}
