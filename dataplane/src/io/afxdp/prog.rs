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

use super::offload::{OffloadProgram, Sizes};
use crate::io::bpf::{
    self, BPF_FUNC_REDIRECT_MAP, BPF_MAP_TYPE_XSKMAP, Insn, Map, Program, XDP_DROP, asm,
};
use std::io;
use std::os::fd::OwnedFd;

pub(super) use crate::io::bpf::{XDP_FLAGS_DRV_MODE, XDP_FLAGS_SKB_MODE};

/// The program, for the XSKMAP with descriptor `map` (public for the
/// offload bench's baseline).
pub fn program(map: i32) -> [Insn; 6] {
    let [ld_map, ld_map_hi] = asm::ld_map_fd(asm::R1, map);
    [
        // r2 = *(u32 *)(r1 + 16): struct xdp_md's rx_queue_index.
        asm::ldx(asm::W, asm::R2, asm::R1, 16),
        // r1 = map (ld_imm64 with BPF_PSEUDO_MAP_FD: two slots).
        ld_map,
        ld_map_hi,
        // r3 = XDP_DROP: the action when the map has no socket for the key.
        asm::mov_imm(asm::R3, XDP_DROP),
        asm::call(BPF_FUNC_REDIRECT_MAP),
        asm::exit(),
    ]
}

/// The index of `device` in this network namespace.
pub(super) fn ifindex(device: &str) -> io::Result<u32> {
    bpf::ifindex(device)
}

/// The index of `device` in this network namespace (for callers outside).
pub fn ifindex_of(device: &str) -> io::Result<u32> {
    bpf::ifindex(device)
}

/// The program attached to one device, with its socket map.
pub struct XskProgram {
    /// Closed first: detaches the program from the device.
    link: Option<OwnedFd>,
    kind: Kind,
    /// The device's receive queues (the map's size).
    pub queues: u32,
}

enum Kind {
    /// The five instructions above.
    Plain { _prog: Program, map: Map },
    /// The offload program (`offload.rs`): established connections
    /// forwarded in XDP, the rest to the sockets as with `Plain`.
    Offload(OffloadProgram),
}

impl XskProgram {
    /// Creates the map (one slot per receive queue), loads the program
    /// and attaches it to `device` with `xdp_flags` (XDP_FLAGS_DRV_MODE or
    /// XDP_FLAGS_SKB_MODE). Fails with EBUSY/EEXIST when the device
    /// already has an XDP program.
    pub fn attach(device: &str, queues: u32, xdp_flags: u32) -> io::Result<XskProgram> {
        let ifindex = ifindex(device)?;
        let map = Map::new(BPF_MAP_TYPE_XSKMAP, 4, queues.max(1))?;
        let prog = Program::load_xdp("xgate_xsk", &program(map.fd()))?;
        let link = prog.attach(ifindex, xdp_flags)?;
        Ok(XskProgram {
            link: Some(link),
            kind: Kind::Plain { _prog: prog, map },
            queues,
        })
    }

    /// Loads the offload program for `device` (sharing the flow, port and
    /// counter maps of `share`, if given) and attaches it.
    pub fn attach_offload(
        device: &str,
        queues: u32,
        xdp_flags: u32,
        flows: u32,
        share: Option<&OffloadProgram>,
    ) -> io::Result<XskProgram> {
        let ifindex = ifindex(device)?;
        let prog = OffloadProgram::load_with(&Sizes { queues, flows }, share)?;
        let link = prog.attach(ifindex, xdp_flags)?;
        Ok(XskProgram {
            link: Some(link),
            kind: Kind::Offload(prog),
            queues,
        })
    }

    /// Steers receive queue `queue` to the socket `xsk_fd`.
    pub fn insert(&self, queue: u32, xsk_fd: i32) -> io::Result<()> {
        match &self.kind {
            Kind::Plain { map, .. } => map.update(queue, &(xsk_fd as u32).to_ne_bytes()),
            Kind::Offload(p) => p.set_socket(queue, xsk_fd),
        }
    }

    /// The offload program, when this is one.
    pub fn offload(&self) -> Option<&OffloadProgram> {
        match &self.kind {
            Kind::Offload(p) => Some(p),
            Kind::Plain { .. } => None,
        }
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

    /// The kernel runs the program (BPF_PROG_RUN, no device): a frame of a
    /// queue without a socket gets XDP_DROP, never XDP_PASS. Needs root
    /// (CAP_BPF); skipped with the reason otherwise.
    #[test]
    fn a_queue_without_a_socket_drops_in_the_kernel() {
        let map = match Map::new(BPF_MAP_TYPE_XSKMAP, 4, 4) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("skipped: cannot create an XSKMAP here ({e})");
                return;
            }
        };
        let prog = Program::load_xdp("xgate_xsk_test", &program(map.fd())).unwrap();
        let frame = [0u8; 64];
        let (verdict, _) = prog.run_once(&frame).unwrap();
        assert_eq!(verdict, XDP_DROP as u32);
    }
}
