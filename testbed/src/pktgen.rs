//! The benchmark generator and sink (the `xgate-pktgen` binary).
//!
//! Transmit, `--mode live`: XDP live-frame mode, as xdp-tools'
//! xdp-trafficgen does it. A
//! tiny XDP program ([`gen_program`]) is loaded but never attached; each
//! thread calls BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES on a template
//! frame, "received" on the egress device. The kernel runs the program
//! `repeat` times on page-pool copies of the frame; the program gives each
//! copy its flow (source port and the low 16 bits of the source address,
//! checksums updated incrementally) and returns XDP_TX, which in live
//! mode is a redirect out of that same device: on veth, straight into the
//! peer's XDP receive path. No socket, no skb, no copy to user space.
//!
//! Transmit, `--mode afxdp` ([`afxdp`]): transmit-only AF_XDP sockets, for
//! kernels before 5.18, which have no live frames. Each thread's UMEM holds
//! the frames of [`Template::flow_frame`], written once; the send loop only
//! queues descriptors. `--mode auto` (the default) takes live frames when
//! the kernel has them ([`choose_mode`]). Both paths send flow `k % flows`
//! as a thread's k-th frame, and split `--rate` and `--count` over the
//! threads the same way ([`shares`]).
//!
//! Receive: [`sink_program`] is attached (through a BPF link) to the sink
//! device; it counts frames and bytes in a per-CPU map, counts the frames
//! carrying [`MAGIC`] at the payload offset of one of the templates, and
//! drops them.

pub mod afxdp;

use crate::bpf::{self, Insn, PerCpuArray, Program, asm::*};

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The first payload bytes of every generated frame.
pub const MAGIC: [u8; 4] = *b"XGPK";
/// Payload offsets of the templates: IPv4 UDP, IPv4 TCP, IPv6 UDP, IPv6 TCP.
pub const MAGIC_OFFSETS: [usize; 4] = [42, 54, 62, 74];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Udp,
    Tcp,
}

/// What to send: one template frame and how its flows vary.
#[derive(Clone, Debug)]
pub struct Template {
    pub proto: Proto,
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    /// Frame size counting the 4-byte FCS, as in RFC 2544 (64 -> 60 bytes
    /// handed to the device).
    pub size: usize,
    /// Distinct flows, cycled per frame.
    pub flows: u32,
    /// Flows are spread over this many source addresses (consecutive from
    /// `src`), and over source ports from `sport` for the rest.
    pub addrs: u32,
}

/// Byte offsets the generator program patches.
struct Offsets {
    addr_lo: usize,
    ip_csum: Option<usize>,
    l4: usize,
    l4_csum: usize,
    payload: usize,
}

impl Template {
    fn offsets(&self) -> Offsets {
        let (addr_lo, ip_csum, l4) = match self.src {
            IpAddr::V4(_) => (28, Some(24), 34),
            IpAddr::V6(_) => (36, None, 54),
        };
        let (csum, hdr) = match self.proto {
            Proto::Udp => (6, 8),
            Proto::Tcp => (16, 20),
        };
        Offsets {
            addr_lo,
            ip_csum,
            l4,
            l4_csum: l4 + csum,
            payload: l4 + hdr,
        }
    }

    /// Checks the parameters; the reason when they cannot work.
    pub fn validate(&self) -> Result<(), String> {
        if self.src.is_ipv4() != self.dst.is_ipv4() {
            return Err("--src and --dst must be of the same family".into());
        }
        let o = self.offsets();
        let min = o.payload + MAGIC.len() + 4;
        if self.size < min.max(64) || self.size > 3500 {
            return Err(format!(
                "frame size {} out of range: {}..=3500 for this template",
                self.size,
                min.max(64)
            ));
        }
        if self.flows == 0 || self.addrs == 0 || self.addrs > self.flows {
            return Err("--flows and --addrs must be >= 1, addrs <= flows".into());
        }
        let lo = self.addr_low16() as u32;
        if lo + self.addrs > 0x10000 {
            return Err("the source addresses would wrap their low 16 bits".into());
        }
        if self.sport as u32 + self.flows.div_ceil(self.addrs) > 0x10000 {
            return Err("the source ports would pass 65535".into());
        }
        Ok(())
    }

    fn addr_low16(&self) -> u16 {
        match self.src {
            IpAddr::V4(a) => u32::from(a) as u16,
            IpAddr::V6(a) => u128::from(a) as u16,
        }
    }

    /// Flow `i` (0 <= i < flows): its source address and port. Address
    /// number `i % addrs` (counted up from `src` in the low 16 bits) and
    /// port `sport + i / addrs`: the mapping [`gen_program`] computes in
    /// BPF from its frame counter, so both transmit paths send the same
    /// flows in the same order (a test checks them against each other).
    pub fn flow(&self, i: u32) -> (IpAddr, u16) {
        let i = i % self.flows.max(1);
        let addrs = self.addrs.max(1);
        // 16-bit sums as the program's; `validate` keeps them from wrapping.
        let lo = (self.addr_low16() as u32 + i % addrs) & 0xffff;
        let src = match self.src {
            IpAddr::V4(a) => IpAddr::V4((u32::from(a) & !0xffff | lo).into()),
            IpAddr::V6(a) => IpAddr::V6((u128::from(a) & !0xffff | lo as u128).into()),
        };
        (src, self.sport.wrapping_add((i / addrs) as u16))
    }

    /// The frame of flow `i`, full checksums: what [`gen_program`] makes
    /// of the template for that flow.
    pub fn flow_frame(&self, i: u32) -> Vec<u8> {
        let (src, sport) = self.flow(i);
        Template {
            src,
            sport,
            ..self.clone()
        }
        .frame()
    }

    /// The template frame (flow 0), full checksums, MAGIC then zeros as payload.
    pub fn frame(&self) -> Vec<u8> {
        let o = self.offsets();
        let len = self.size - 4;
        let mut f = vec![0u8; len];
        f[0..6].copy_from_slice(&self.dst_mac);
        f[6..12].copy_from_slice(&self.src_mac);
        let l4_len = len - o.l4;
        let (src, dst): (Vec<u8>, Vec<u8>) = match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                f[12..14].copy_from_slice(&[0x08, 0x00]);
                let ip = &mut f[14..34];
                ip[0] = 0x45;
                ip[2..4].copy_from_slice(&((len - 14) as u16).to_be_bytes());
                ip[6] = 0x40; // DF
                ip[8] = 64;
                ip[9] = self.proto_number();
                ip[12..16].copy_from_slice(&s.octets());
                ip[16..20].copy_from_slice(&d.octets());
                let c = crate::traffic::checksum(ip);
                ip[10..12].copy_from_slice(&c.to_be_bytes());
                (s.octets().to_vec(), d.octets().to_vec())
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                f[12..14].copy_from_slice(&[0x86, 0xdd]);
                let ip = &mut f[14..54];
                ip[0] = 0x60;
                ip[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
                ip[6] = self.proto_number();
                ip[7] = 64;
                ip[8..24].copy_from_slice(&s.octets());
                ip[24..40].copy_from_slice(&d.octets());
                (s.octets().to_vec(), d.octets().to_vec())
            }
            _ => panic!("mixed address families (validate first)"),
        };
        let l4 = &mut f[o.l4..];
        l4[0..2].copy_from_slice(&self.sport.to_be_bytes());
        l4[2..4].copy_from_slice(&self.dport.to_be_bytes());
        match self.proto {
            Proto::Udp => l4[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes()),
            Proto::Tcp => {
                l4[4..8].copy_from_slice(&1u32.to_be_bytes()); // seq
                l4[12] = 5 << 4;
                l4[13] = 0x02; // SYN
                l4[14..16].copy_from_slice(&65535u16.to_be_bytes());
            }
        }
        l4[o.payload - o.l4..][..4].copy_from_slice(&MAGIC);
        let mut pseudo = Vec::with_capacity(40 + l4_len);
        pseudo.extend_from_slice(&src);
        pseudo.extend_from_slice(&dst);
        pseudo.extend_from_slice(&[0, self.proto_number()]);
        pseudo.extend_from_slice(&(l4_len as u16).to_be_bytes());
        pseudo.extend_from_slice(l4);
        let mut c = crate::traffic::checksum(&pseudo);
        if c == 0 && self.proto == Proto::Udp {
            c = 0xffff;
        }
        let at = o.l4_csum - o.l4;
        l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
        f
    }

    fn proto_number(&self) -> u8 {
        match self.proto {
            Proto::Udp => 17,
            Proto::Tcp => 6,
        }
    }
}

/// Resolves jumps to a label at the end of a program.
struct Code {
    insns: Vec<Insn>,
    fixups: Vec<(usize, &'static str)>,
}

impl Code {
    fn new() -> Code {
        Code {
            insns: Vec::new(),
            fixups: Vec::new(),
        }
    }
    fn push(&mut self, i: Insn) {
        self.insns.push(i);
    }
    /// A jump whose target is `label` (placed later with [`Code::label`]).
    fn jump_to(&mut self, i: Insn, label: &'static str) {
        self.fixups.push((self.insns.len(), label));
        self.insns.push(i);
    }
    fn label(&mut self, label: &'static str) {
        let here = self.insns.len();
        for (at, l) in &self.fixups {
            if *l == label {
                self.insns[*at].off = (here - at - 1) as i16;
            }
        }
    }
    /// r5 = fold(r5) twice (one's complement), using r3.
    fn fold(&mut self) {
        for _ in 0..2 {
            self.push(mov_reg(R3, R5));
            self.push(alu_imm(RSH, R3, 16));
            self.push(alu_imm(AND, R5, 0xffff));
            self.push(alu_reg(ADD, R5, R3));
        }
    }
}

/// The generator program for `t`; `counter` is a 1-word per-CPU array.
pub fn gen_program(t: &Template, counter: &PerCpuArray) -> Vec<Insn> {
    let o = t.offsets();
    let mut c = Code::new();
    c.push(mov_reg(R6, R1));
    c.push(ldx(W, R7, R6, 0));
    c.push(ldx(W, R8, R6, 4));
    c.push(mov_reg(R2, R7));
    c.push(alu_imm(ADD, R2, (o.payload + MAGIC.len()) as i32));
    c.jump_to(jmp_reg(JGT, R2, R8, 0), "tx");
    // The headers and the magic are written anew every time: the page pool
    // hands back pages whose frame a forwarder changed (the kernel's
    // forwarding rewrites MACs, TTL and checksums in place).
    let head = &t.frame()[..o.payload + MAGIC.len()];
    let mut at = 0;
    while at < head.len() {
        if head.len() - at >= 4 {
            let w = u32::from_le_bytes(head[at..at + 4].try_into().unwrap());
            c.push(st(W, R7, at as i16, w as i32));
            at += 4;
        } else {
            let w = u16::from_le_bytes([head[at], *head.get(at + 1).unwrap_or(&0)]);
            if head.len() - at >= 2 {
                c.push(st(H, R7, at as i16, w as i32));
                at += 2;
            } else {
                c.push(st(B, R7, at as i16, head[at] as i32));
                at += 1;
            }
        }
    }
    // The per-CPU frame counter picks the flow.
    c.push(st(W, R10, -4, 0));
    for i in ld_map_fd(R1, counter.fd()) {
        c.push(i);
    }
    c.push(mov_reg(R2, R10));
    c.push(alu_imm(ADD, R2, -4));
    c.push(call(bpf::BPF_FUNC_MAP_LOOKUP_ELEM));
    c.jump_to(jmp_imm(JEQ, R0, 0, 0), "tx");
    c.push(ldx(DW, R1, R0, 0));
    c.push(mov_reg(R2, R1));
    c.push(alu_imm(ADD, R2, 1));
    c.push(stx(DW, R0, 0, R2));
    c.push(alu_imm(MOD, R1, t.flows as i32));
    // r2 = address offset, r1 = port offset; then the new words, in
    // network order.
    c.push(mov_reg(R2, R1));
    c.push(alu_imm(MOD, R2, t.addrs as i32));
    c.push(alu_imm(DIV, R1, t.addrs as i32));
    c.push(alu_imm(ADD, R2, t.addr_low16() as i32));
    c.push(alu_imm(AND, R2, 0xffff));
    c.push(be16(R2));
    c.push(alu_imm(ADD, R1, t.sport as i32));
    c.push(alu_imm(AND, R1, 0xffff));
    c.push(be16(R1));
    // The template's words, just written.
    c.push(ldx(H, R3, R7, o.addr_lo as i16));
    c.push(ldx(H, R4, R7, o.l4 as i16));
    c.push(stx(H, R7, o.addr_lo as i16, R2));
    c.push(stx(H, R7, o.l4 as i16, R1));
    // RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m').
    c.push(alu_imm(XOR, R3, 0xffff));
    c.push(alu_imm(XOR, R4, 0xffff));
    c.push(mov_reg(R0, R3));
    c.push(alu_reg(ADD, R0, R2)); // the address's part, for both sums
    c.push(ldx(H, R5, R7, o.l4_csum as i16));
    c.push(alu_imm(XOR, R5, 0xffff));
    c.push(alu_reg(ADD, R5, R0));
    c.push(alu_reg(ADD, R5, R4));
    c.push(alu_reg(ADD, R5, R1));
    c.fold();
    c.push(alu_imm(XOR, R5, 0xffff));
    if t.proto == Proto::Udp {
        // 0 means "no checksum" in UDP: send 0xffff instead.
        c.push(jmp_imm(JNE, R5, 0, 1));
        c.push(mov_imm(R5, 0xffff));
    }
    c.push(stx(H, R7, o.l4_csum as i16, R5));
    if let Some(ip) = o.ip_csum {
        c.push(ldx(H, R5, R7, ip as i16));
        c.push(alu_imm(XOR, R5, 0xffff));
        c.push(alu_reg(ADD, R5, R0));
        c.fold();
        c.push(alu_imm(XOR, R5, 0xffff));
        c.push(stx(H, R7, ip as i16, R5));
    }
    c.label("tx");
    c.push(mov_imm(R0, bpf::XDP_TX));
    c.push(exit());
    c.insns
}

/// The sink: words [frames, frames with MAGIC, bytes] in a 3-word per-CPU
/// array; every frame is dropped.
pub fn sink_program(counters: &PerCpuArray) -> Vec<Insn> {
    let mut c = Code::new();
    c.push(mov_reg(R6, R1));
    c.push(ldx(W, R7, R6, 0));
    c.push(ldx(W, R8, R6, 4));
    c.push(mov_reg(R9, R8));
    c.push(alu_reg(SUB, R9, R7)); // frame length
    c.push(st(W, R10, -4, 0));
    for i in ld_map_fd(R1, counters.fd()) {
        c.push(i);
    }
    c.push(mov_reg(R2, R10));
    c.push(alu_imm(ADD, R2, -4));
    c.push(call(bpf::BPF_FUNC_MAP_LOOKUP_ELEM));
    c.jump_to(jmp_imm(JEQ, R0, 0, 0), "drop");
    c.push(ldx(DW, R1, R0, 0));
    c.push(alu_imm(ADD, R1, 1));
    c.push(stx(DW, R0, 0, R1));
    c.push(ldx(DW, R1, R0, 16));
    c.push(alu_reg(ADD, R1, R9));
    c.push(stx(DW, R0, 16, R1));
    let magic = i32::from_le_bytes(MAGIC);
    for off in MAGIC_OFFSETS {
        c.push(mov_reg(R2, R7));
        c.push(alu_imm(ADD, R2, off as i32 + 4));
        c.push(jmp_reg(JGT, R2, R8, 2));
        c.push(ldx(W, R2, R7, off as i16));
        c.jump_to(jmp_imm(JEQ, R2, magic, 0), "hit");
    }
    c.jump_to(ja(0), "drop");
    c.label("hit");
    c.push(ldx(DW, R1, R0, 8));
    c.push(alu_imm(ADD, R1, 1));
    c.push(stx(DW, R0, 8, R1));
    c.label("drop");
    c.push(mov_imm(R0, bpf::XDP_DROP));
    c.push(exit());
    c.insns
}

/// XDP_REDIRECT of every frame to device `to` (the in-kernel forwarding
/// ceiling of the benchmark).
pub fn redirect_program(to: u32) -> Vec<Insn> {
    vec![
        mov_imm(R1, to as i32),
        mov_imm(R2, 0),
        call(bpf::BPF_FUNC_REDIRECT),
        exit(),
    ]
}

/// A loaded generator: its program, its flow counter, the template frame.
pub struct Generator {
    pub program: Program,
    _counter: PerCpuArray,
    pub frame: Vec<u8>,
}

impl Generator {
    pub fn new(t: &Template) -> std::io::Result<Generator> {
        t.validate()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let counter = PerCpuArray::new(1, 1)?;
        let program = Program::load_xdp("xgate_pktgen", &gen_program(t, &counter))?;
        Ok(Generator {
            program,
            _counter: counter,
            frame: t.frame(),
        })
    }

    /// Sends one thread's `share` out of device `ifindex` (the calling
    /// thread's CPU picks the per-CPU flow counter: pin it), adding what
    /// was handed to the kernel to `sent`, until the share is done, its
    /// deadline passes or `stop` is set.
    pub fn send(
        &self,
        ifindex: u32,
        share: &Share,
        stop: &AtomicBool,
        sent: &AtomicU64,
    ) -> std::io::Result<()> {
        // One BPF_PROG_RUN costs about 25 ms beyond its frames on this
        // kernel (page pool teardown waits for the frames in flight), so
        // calls must be long: flood runs about 100 ms per call, paced mode
        // 50 ms worth of frames (bursts at 20 Hz).
        let mut chunk: u64 = if share.rate > 0.0 {
            (share.rate / 20.0).max(64.0) as u64
        } else {
            1 << 18
        };
        let t0 = Instant::now();
        let mut mine = 0u64;
        while Instant::now() < share.until && !stop.load(Ordering::Relaxed) && mine < share.count {
            let n = chunk.min(share.count - mine);
            let c0 = Instant::now();
            self.program
                .run_live(&self.frame, ifindex, 0, n as u32)
                .map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!("BPF_PROG_RUN (live frames) on ifindex {ifindex}: {e}"),
                    )
                })?;
            mine += n;
            sent.fetch_add(n, Ordering::Relaxed);
            if share.rate > 0.0 {
                let due = Duration::from_secs_f64(mine as f64 / share.rate);
                if let Some(wait) = due.checked_sub(t0.elapsed()) {
                    std::thread::sleep(wait);
                }
            } else {
                // Aim at 100 ms per call, and never past the end.
                let pps = n as f64 / c0.elapsed().as_secs_f64().max(1e-6);
                let left = share
                    .until
                    .saturating_duration_since(Instant::now())
                    .as_secs_f64();
                chunk = (pps * left.min(0.1)).clamp(4096.0, 1e9) as u64;
            }
        }
        Ok(())
    }
}

/// How `xgate-pktgen tx` sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TxMode {
    /// XDP live frames (BPF_PROG_RUN, Linux 5.18+): the fastest.
    Live,
    /// Transmit-only AF_XDP sockets: any kernel with AF_XDP.
    #[value(name = "afxdp")]
    AfXdp,
    /// Live frames when the kernel has them, else AF_XDP.
    Auto,
}

impl TxMode {
    pub fn name(self) -> &'static str {
        match self {
            TxMode::Live => "live",
            TxMode::AfXdp => "afxdp",
            TxMode::Auto => "auto",
        }
    }
}

/// The mode to send with, and why: `asked`, with `Auto` settled by
/// `has_live` (whether the kernel has XDP live frames; asked only when
/// needed). `Live` on a kernel without live frames is an error.
pub fn choose_mode(
    asked: TxMode,
    has_live: impl FnOnce() -> std::io::Result<bool>,
) -> Result<(TxMode, String), String> {
    const NO_LIVE: &str = "this kernel has no XDP live-frame mode \
                           (BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES, Linux 5.18+)";
    match asked {
        TxMode::AfXdp => Ok((TxMode::AfXdp, "asked for".into())),
        TxMode::Live => match has_live() {
            Ok(true) => Ok((TxMode::Live, "asked for".into())),
            Ok(false) => Err(format!("--mode live: {NO_LIVE}; use --mode afxdp")),
            Err(e) => Err(format!(
                "--mode live: asking the kernel for XDP live frames failed: {e}"
            )),
        },
        TxMode::Auto => match has_live() {
            Ok(true) => Ok((TxMode::Live, "auto: the kernel has XDP live frames".into())),
            Ok(false) => Ok((TxMode::AfXdp, format!("auto: {NO_LIVE}"))),
            Err(e) => Ok((
                TxMode::AfXdp,
                format!("auto: asking the kernel for XDP live frames failed ({e})"),
            )),
        },
    }
}

/// One sending thread's part of a run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Share {
    /// Frames per second; 0: as fast as possible.
    pub rate: f64,
    /// Frames to send; `u64::MAX`: no limit.
    pub count: u64,
    /// When to stop sending.
    pub until: Instant,
}

/// Splits `--rate` and `--count` (0: no limit) over `threads`: the rate
/// evenly, the count so that the shares add up to it exactly (the first
/// `count % threads` threads send one frame more).
pub fn shares(rate: u64, count: u64, threads: usize, until: Instant) -> Vec<Share> {
    let threads = threads.max(1);
    let n = threads as u64;
    (0..n)
        .map(|i| Share {
            rate: rate as f64 / threads as f64,
            count: if count == 0 {
                u64::MAX
            } else {
                count / n + u64::from(i < count % n)
            },
            until,
        })
        .collect()
}

/// An attached sink and its counters.
pub struct Sink {
    counters: PerCpuArray,
    _program: Program,
    _link: std::os::fd::OwnedFd,
}

/// What a sink counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SinkCounts {
    pub frames: u64,
    pub magic: u64,
    pub bytes: u64,
}

impl Sink {
    /// Attaches the counting XDP_DROP program to `dev` (in the calling
    /// thread's namespace); `skb` selects generic XDP.
    pub fn attach(dev: &str, skb: bool) -> std::io::Result<Sink> {
        let counters = PerCpuArray::new(3, 1)?;
        let program = Program::load_xdp("xgate_sink", &sink_program(&counters))?;
        let flags = if skb {
            bpf::XDP_FLAGS_SKB_MODE
        } else {
            bpf::XDP_FLAGS_DRV_MODE
        };
        let link = program.attach(bpf::ifindex(dev)?, flags).map_err(|e| {
            std::io::Error::new(e.kind(), format!("attaching the sink to {dev}: {e}"))
        })?;
        Ok(Sink {
            counters,
            _program: program,
            _link: link,
        })
    }

    pub fn counts(&self) -> std::io::Result<SinkCounts> {
        let v = self.counters.sum(0)?;
        Ok(SinkCounts {
            frames: v[0],
            magic: v[1],
            bytes: v[2],
        })
    }
}

/// An attached XDP_REDIRECT program (detached on drop).
pub struct Redirect {
    _program: Program,
    _link: std::os::fd::OwnedFd,
}

impl Redirect {
    pub fn attach(dev: &str, to: &str) -> std::io::Result<Redirect> {
        let program = Program::load_xdp("xgate_redirect", &redirect_program(bpf::ifindex(to)?))?;
        let link = program.attach(bpf::ifindex(dev)?, bpf::XDP_FLAGS_DRV_MODE)?;
        Ok(Redirect {
            _program: program,
            _link: link,
        })
    }
}

#[cfg(test)]
mod tests;
