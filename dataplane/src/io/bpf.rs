//! Just enough of the bpf(2) system call for xgate's own XDP program
//! (`afxdp/prog.rs`) and the testbed's generator and sinks: load an XDP
//! program written as raw instructions, maps (an XSKMAP, per-CPU arrays),
//! attach through a BPF link (detached when the descriptor closes, so a
//! crashed process leaves nothing on the device), and BPF_PROG_RUN (one
//! frame, for tests, or live frames). No libbpf, no clang, no ELF: the
//! programs are a few instructions built with [`asm`].

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

const BPF_MAP_CREATE: i64 = 0;
const BPF_MAP_LOOKUP_ELEM: i64 = 1;
const BPF_MAP_UPDATE_ELEM: i64 = 2;
const BPF_PROG_LOAD: i64 = 5;
const BPF_PROG_TEST_RUN: i64 = 10;
const BPF_LINK_CREATE: i64 = 28;

const BPF_MAP_TYPE_PERCPU_ARRAY: u32 = 6;
pub const BPF_MAP_TYPE_XSKMAP: u32 = 17;
const BPF_PROG_TYPE_XDP: u32 = 6;
/// enum bpf_attach_type: BPF_XDP.
const BPF_XDP: u32 = 37;
/// BPF_PROG_RUN: inject the frames into the device's XDP path.
const BPF_F_TEST_XDP_LIVE_FRAMES: u32 = 1 << 1;
/// The largest batch_size live-frame mode accepts (net/bpf/test_run.c).
const TEST_XDP_MAX_BATCH: u32 = 256;

pub const XDP_DROP: i32 = 1;
pub const XDP_PASS: i32 = 2;
pub const XDP_TX: i32 = 3;
/// XDP_FLAGS_SKB_MODE / XDP_FLAGS_DRV_MODE.
pub const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
pub const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

/// One instruction (struct bpf_insn).
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct Insn {
    pub code: u8,
    /// dst in the low nibble, src in the high one.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

/// Instruction builders (the kernel's BPF_* macros, named the same way).
pub mod asm {
    use super::Insn;

    pub const R0: u8 = 0;
    pub const R1: u8 = 1;
    pub const R2: u8 = 2;
    pub const R3: u8 = 3;
    pub const R4: u8 = 4;
    pub const R5: u8 = 5;
    pub const R6: u8 = 6;
    pub const R7: u8 = 7;
    pub const R8: u8 = 8;
    pub const R9: u8 = 9;
    pub const R10: u8 = 10;

    pub const W: u8 = 0x00;
    pub const H: u8 = 0x08;
    pub const B: u8 = 0x10;
    pub const DW: u8 = 0x18;

    pub const ADD: u8 = 0x00;
    pub const SUB: u8 = 0x10;
    pub const DIV: u8 = 0x30;
    pub const AND: u8 = 0x50;
    pub const RSH: u8 = 0x70;
    pub const MOD: u8 = 0x90;
    pub const XOR: u8 = 0xa0;
    pub const MOV: u8 = 0xb0;

    pub const JEQ: u8 = 0x10;
    pub const JGT: u8 = 0x20;
    pub const JNE: u8 = 0x50;

    fn i(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            regs: dst | (src << 4),
            off,
            imm,
        }
    }
    /// dst op= imm (64-bit).
    pub fn alu_imm(op: u8, dst: u8, imm: i32) -> Insn {
        i(0x07 | op, dst, 0, 0, imm)
    }
    /// dst op= src (64-bit).
    pub fn alu_reg(op: u8, dst: u8, src: u8) -> Insn {
        i(0x07 | op | 0x08, dst, src, 0, 0)
    }
    pub fn mov_imm(dst: u8, imm: i32) -> Insn {
        alu_imm(MOV, dst, imm)
    }
    pub fn mov_reg(dst: u8, src: u8) -> Insn {
        alu_reg(MOV, dst, src)
    }
    /// dst = htons(dst) on a little-endian machine (BPF_END | BPF_TO_BE, 16).
    pub fn be16(dst: u8) -> Insn {
        i(0xdc, dst, 0, 0, 16)
    }
    /// dst = *(size *)(src + off).
    pub fn ldx(size: u8, dst: u8, src: u8, off: i16) -> Insn {
        i(0x61 | size, dst, src, off, 0)
    }
    /// *(size *)(dst + off) = src.
    pub fn stx(size: u8, dst: u8, off: i16, src: u8) -> Insn {
        i(0x63 | size, dst, src, off, 0)
    }
    /// *(size *)(dst + off) = imm.
    pub fn st(size: u8, dst: u8, off: i16, imm: i32) -> Insn {
        i(0x62 | size, dst, 0, off, imm)
    }
    /// if dst op imm goto +off.
    pub fn jmp_imm(op: u8, dst: u8, imm: i32, off: i16) -> Insn {
        i(0x05 | op, dst, 0, off, imm)
    }
    /// if dst op src goto +off.
    pub fn jmp_reg(op: u8, dst: u8, src: u8, off: i16) -> Insn {
        i(0x05 | op | 0x08, dst, src, off, 0)
    }
    /// goto +off.
    pub fn ja(off: i16) -> Insn {
        i(0x05, 0, 0, off, 0)
    }
    pub fn call(helper: i32) -> Insn {
        i(0x85, 0, 0, 0, helper)
    }
    pub fn exit() -> Insn {
        i(0x95, 0, 0, 0, 0)
    }
    /// dst = the map with descriptor `fd` (two instructions).
    pub fn ld_map_fd(dst: u8, fd: i32) -> [Insn; 2] {
        [i(0x18, dst, 1, 0, fd), Insn::default()]
    }
}

/// Helper ids.
pub const BPF_FUNC_MAP_LOOKUP_ELEM: i32 = 1;
pub const BPF_FUNC_REDIRECT: i32 = 23;
pub const BPF_FUNC_REDIRECT_MAP: i32 = 51;

fn sys_bpf(cmd: i64, attr: &mut [u64]) -> io::Result<i64> {
    // SAFETY: `attr` is a zero-padded union bpf_attr of the given size.
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

/// The number of possible CPUs: the stride of a per-CPU map value.
pub fn possible_cpus() -> usize {
    // "0-1" or "0,2-3": the highest id + 1.
    std::fs::read_to_string("/sys/devices/system/cpu/possible")
        .ok()
        .and_then(|s| {
            s.trim()
                .split([',', '-'])
                .filter_map(|n| n.parse::<usize>().ok())
                .max()
        })
        .map_or(1, |m| m + 1)
}

/// A map of `entries` u32 keys to `value_size`-byte values.
pub struct Map {
    fd: OwnedFd,
}

impl Map {
    pub fn new(map_type: u32, value_size: u32, entries: u32) -> io::Result<Map> {
        let mut attr = [0u64; 8];
        put32(&mut attr, 0, map_type);
        put32(&mut attr, 4, 4);
        put32(&mut attr, 8, value_size);
        put32(&mut attr, 12, entries);
        Ok(Map {
            fd: fd_of(sys_bpf(BPF_MAP_CREATE, &mut attr)?),
        })
    }

    pub fn fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// Sets entry `key` to `value` (of the map's value size).
    pub fn update(&self, key: u32, value: &[u8]) -> io::Result<()> {
        let mut attr = [0u64; 4];
        put32(&mut attr, 0, self.fd() as u32);
        attr[1] = &key as *const u32 as u64;
        attr[2] = value.as_ptr() as u64;
        sys_bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map(|_| ())
    }
}

/// A per-CPU array map of `entries` values of `words` u64 each.
pub struct PerCpuArray {
    map: Map,
    words: usize,
}

impl PerCpuArray {
    pub fn new(words: usize, entries: u32) -> io::Result<PerCpuArray> {
        let map = Map::new(BPF_MAP_TYPE_PERCPU_ARRAY, (words * 8) as u32, entries)?;
        Ok(PerCpuArray { map, words })
    }

    pub fn fd(&self) -> i32 {
        self.map.fd()
    }

    /// Entry `key`, each word summed over the CPUs.
    pub fn sum(&self, key: u32) -> io::Result<Vec<u64>> {
        let cpus = possible_cpus();
        let mut vals = vec![0u64; self.words * cpus];
        let mut attr = [0u64; 4];
        put32(&mut attr, 0, self.fd() as u32);
        attr[1] = &key as *const u32 as u64;
        attr[2] = vals.as_mut_ptr() as u64;
        sys_bpf(BPF_MAP_LOOKUP_ELEM, &mut attr)?;
        let mut out = vec![0u64; self.words];
        for cpu in vals.chunks(self.words) {
            for (o, v) in out.iter_mut().zip(cpu) {
                *o += v;
            }
        }
        Ok(out)
    }
}

/// Attaches the XDP program `prog` to device `ifindex` through a BPF link
/// (detached when the link's descriptor closes).
pub fn attach_fd(prog: i32, ifindex: u32, flags: u32) -> io::Result<OwnedFd> {
    let mut attr = [0u64; 8];
    put32(&mut attr, 0, prog as u32);
    put32(&mut attr, 4, ifindex);
    put32(&mut attr, 8, BPF_XDP);
    put32(&mut attr, 12, flags);
    sys_bpf(BPF_LINK_CREATE, &mut attr).map(fd_of)
}

/// A loaded XDP program.
pub struct Program {
    fd: OwnedFd,
}

impl Program {
    /// Loads `insns` as an XDP program; on refusal the error carries the
    /// verifier's log.
    pub fn load_xdp(name: &str, insns: &[Insn]) -> io::Result<Program> {
        let license = c"GPL";
        let mut log = vec![0u8; 1 << 16];
        let mut attr = [0u64; 16];
        put32(&mut attr, 0, BPF_PROG_TYPE_XDP);
        put32(&mut attr, 4, insns.len() as u32);
        attr[1] = insns.as_ptr() as u64;
        attr[2] = license.as_ptr() as u64;
        put32(&mut attr, 24, 1);
        put32(&mut attr, 28, log.len() as u32);
        attr[4] = log.as_mut_ptr() as u64;
        let mut nm = [0u8; 16];
        for (d, s) in nm.iter_mut().zip(name.bytes().take(15)) {
            *d = s;
        }
        attr[6] = u64::from_le_bytes(nm[..8].try_into().unwrap());
        attr[7] = u64::from_le_bytes(nm[8..].try_into().unwrap());
        put32(&mut attr, 68, BPF_XDP);
        match sys_bpf(BPF_PROG_LOAD, &mut attr) {
            Ok(rc) => Ok(Program { fd: fd_of(rc) }),
            Err(e) => {
                let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                Err(io::Error::new(
                    e.kind(),
                    format!(
                        "loading XDP program {name}: {e}\n{}",
                        String::from_utf8_lossy(&log[..end])
                    ),
                ))
            }
        }
    }

    pub fn fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// Attaches the program to device `ifindex` (of the calling thread's
    /// namespace) with `flags` (XDP_FLAGS_*); detached when the returned
    /// link is dropped.
    pub fn attach(&self, ifindex: u32, flags: u32) -> io::Result<OwnedFd> {
        attach_fd(self.fd(), ifindex, flags)
    }

    /// BPF_PROG_RUN in live-frame mode: runs the program `repeat` times on
    /// copies of `frame` as if received on `ifindex` queue `queue`; frames
    /// it returns XDP_TX for leave through that device.
    pub fn run_live(&self, frame: &[u8], ifindex: u32, queue: u32, repeat: u32) -> io::Result<()> {
        // struct xdp_md: data, data_end, data_meta, ingress_ifindex,
        // rx_queue_index, egress_ifindex.
        let ctx: [u32; 6] = [0, frame.len() as u32, 0, ifindex, queue, 0];
        let mut attr = [0u64; 10];
        put32(&mut attr, 0, self.fd() as u32);
        put32(&mut attr, 8, frame.len() as u32);
        attr[2] = frame.as_ptr() as u64;
        put32(&mut attr, 32, repeat);
        put32(&mut attr, 40, std::mem::size_of_val(&ctx) as u32);
        attr[6] = ctx.as_ptr() as u64;
        put32(&mut attr, 64, BPF_F_TEST_XDP_LIVE_FRAMES);
        sys_bpf(BPF_PROG_TEST_RUN, &mut attr).map(|_| ())
    }

    /// Whether this kernel has BPF_PROG_RUN's live-frame mode (Linux 5.18+),
    /// asked without sending anything: a live run with a batch size over
    /// the maximum fails with E2BIG where the mode exists, and with EINVAL
    /// where it does not (an unknown flag, or a nonzero attribute past the
    /// ones the kernel knows). Other errors (EPERM) are returned.
    pub fn has_live_frames(&self) -> io::Result<bool> {
        let mut attr = [0u64; 10];
        put32(&mut attr, 0, self.fd() as u32);
        put32(&mut attr, 64, BPF_F_TEST_XDP_LIVE_FRAMES);
        put32(&mut attr, 72, TEST_XDP_MAX_BATCH + 1);
        match sys_bpf(BPF_PROG_TEST_RUN, &mut attr) {
            Err(e) if e.raw_os_error() == Some(libc::E2BIG) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(false),
            Err(e) => Err(e),
            Ok(_) => Err(io::Error::other(
                "BPF_PROG_RUN accepted an oversized live-frame batch",
            )),
        }
    }

    /// BPF_PROG_RUN on one frame (no device): the verdict and the frame as
    /// the program left it. For testing the programs.
    pub fn run_once(&self, frame: &[u8]) -> io::Result<(u32, Vec<u8>)> {
        run_once_fd(self.fd(), frame, None)
    }
}

/// BPF_PROG_RUN of the XDP program `fd` on one frame, optionally as if
/// received on (device, queue) of this namespace: the verdict and the
/// frame as the program left it.
pub fn run_once_fd(
    fd: i32,
    frame: &[u8],
    ingress: Option<(u32, u32)>,
) -> io::Result<(u32, Vec<u8>)> {
    run_fd(fd, frame, ingress, 1).map(|(v, f, _)| (v, f))
}

/// BPF_PROG_RUN of the XDP program `fd` on `frame`, `repeat` times in the
/// kernel: the last verdict and frame, and the mean time of one run in
/// nanoseconds as the kernel measured it (no system call per run).
pub fn run_fd(
    fd: i32,
    frame: &[u8],
    ingress: Option<(u32, u32)>,
    repeat: u32,
) -> io::Result<(u32, Vec<u8>, u32)> {
    let mut out = vec![0u8; frame.len() + 256];
    // struct xdp_md: data, data_end, data_meta, ingress_ifindex,
    // rx_queue_index, egress_ifindex.
    let ctx: [u32; 6] = match ingress {
        Some((ifindex, queue)) => [0, frame.len() as u32, 0, ifindex, queue, 0],
        None => [0; 6],
    };
    let mut attr = [0u64; 10];
    put32(&mut attr, 0, fd as u32);
    put32(&mut attr, 8, frame.len() as u32);
    put32(&mut attr, 12, out.len() as u32);
    attr[2] = frame.as_ptr() as u64;
    attr[3] = out.as_mut_ptr() as u64;
    put32(&mut attr, 32, repeat.max(1));
    if ingress.is_some() {
        put32(&mut attr, 40, std::mem::size_of_val(&ctx) as u32);
        attr[6] = ctx.as_ptr() as u64;
    }
    sys_bpf(BPF_PROG_TEST_RUN, &mut attr)?;
    let retval = (attr[0] >> 32) as u32;
    let n = (attr[1] >> 32) as usize;
    // duration, at byte 36.
    let duration = (attr[4] >> 32) as u32;
    out.truncate(n);
    Ok((retval, out, duration))
}

/// Whether the kernel has XDP live-frame mode (see
/// [`Program::has_live_frames`]); loads a two-instruction program to ask.
pub fn live_frames_supported() -> io::Result<bool> {
    let pass = [asm::mov_imm(asm::R0, XDP_PASS), asm::exit()];
    Program::load_xdp("xgate_probe", &pass)?.has_live_frames()
}

/// The index of device `name` in the calling thread's namespace.
pub fn ifindex(name: &str) -> io::Result<u32> {
    let c = std::ffi::CString::new(name).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: a NUL-terminated name.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no device {name} in this network namespace"),
        ))
    } else {
        Ok(i)
    }
}
