//! The offload program (offload.bpf.c, built by dataplane/build.rs) and
//! what the workers give it: issue 16's XDP fast path for established
//! connections. This module holds the program's loader and maps, the
//! key/action layout shared with the C code, and [`learn`]: the action for
//! one direction of a connection, read off a frame the pipeline received
//! and the frame it sent for it. Whatever the pipeline did to that frame
//! (TTL, NAT, MACs, VLAN), the program then does to the next frames of
//! the same direction, so its output is the pipeline's byte for byte
//! (control/tests/offload_prog.rs checks it against the pipeline).
//!
//! Not attached by `xgate run` yet: which connections may be offloaded,
//! how entries are inserted (the control thread, never a worker's
//! syscall), expire and are invalidated is the rest of issue 16.

use crate::io::bpf;
use crate::packet::{ether, ipv4, ipv6, proto};
use libbpf_sys as sys;
use std::ffi::c_void;
use std::io;
use std::ptr::NonNull;

/// The compiled object, 8-byte aligned for libelf.
#[repr(C, align(8))]
struct Aligned<T: ?Sized>(T);
static OBJECT: &Aligned<[u8]> =
    &Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/offload.bpf.o")));

/// `struct flow_key`: one direction of a connection as it arrives.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub ifindex: u32,
    /// VLAN ID of the frame's one tag, 0 when untagged.
    pub vlan: u16,
    /// 4 or 6.
    pub family: u8,
    pub proto: u8,
    /// Ports and addresses as they lie in the frame (network order).
    pub sport: [u8; 2],
    pub dport: [u8; 2],
    pub pad: u32,
    /// IPv4 in the first four bytes, the rest zero.
    pub src: [u8; 16],
    pub dst: [u8; 16],
}

/// `struct flow_action`: what the program does to a frame of that
/// direction, and its counters.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowAction {
    pub out_ifindex: u32,
    /// The egress tag's VLAN ID, 0: untagged.
    pub out_vlan: u16,
    /// The largest IP packet the egress takes; larger go to the workers.
    pub mtu: u16,
    pub dmac: [u8; 6],
    pub smac: [u8; 6],
    /// Addresses and ports after NAT (as before when there is none).
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub sport: [u8; 2],
    pub dport: [u8; 2],
    pub flags: u32,
    pub pad: u32,
    /// Packets and bytes (IP length) the program forwarded.
    pub packets: u64,
    pub bytes: u64,
    /// CLOCK_MONOTONIC_COARSE nanoseconds of the last one (the coarse
    /// clock: 22 ns a frame cheaper, a tick or so behind; for expiry).
    pub last_seen: u64,
}

const _: () = assert!(std::mem::size_of::<FlowKey>() == 48);
const _: () = assert!(std::mem::size_of::<FlowAction>() == 88);

/// `enum outcome`: what the program did with a frame, counted per CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Outcome {
    Offloaded,
    Miss,
    NotOffloadable,
    IpOptions,
    Fragment,
    Ttl,
    TcpFlags,
    Mtu,
    NoRoom,
}

impl Outcome {
    pub const ALL: [Outcome; 9] = [
        Outcome::Offloaded,
        Outcome::Miss,
        Outcome::NotOffloadable,
        Outcome::IpOptions,
        Outcome::Fragment,
        Outcome::Ttl,
        Outcome::TcpFlags,
        Outcome::Mtu,
        Outcome::NoRoom,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Outcome::Offloaded => "offloaded",
            Outcome::Miss => "miss",
            Outcome::NotOffloadable => "not_offloadable",
            Outcome::IpOptions => "ip_options",
            Outcome::Fragment => "fragment",
            Outcome::Ttl => "ttl",
            Outcome::TcpFlags => "tcp_flags",
            Outcome::Mtu => "mtu",
            Outcome::NoRoom => "no_room",
        }
    }
}

/// One direction's key fields read from an IP packet: (family, protocol,
/// source, destination, source port, destination port). `None` for what
/// the program leaves to the workers (options, fragments, other
/// protocols, extension headers).
type Tuple = (u8, u8, [u8; 16], [u8; 16], [u8; 2], [u8; 2]);

fn tuple(l3: &[u8], ethertype: u16) -> Option<Tuple> {
    let (family, p, src, dst, l4) = match ethertype {
        ether::ETHERTYPE_IPV4 => {
            let ip = ipv4::Packet::new_checked(l3).ok()?;
            if ip.header_len() != 20 || ip.is_fragment() {
                return None;
            }
            let mut s = [0u8; 16];
            let mut d = [0u8; 16];
            s[..4].copy_from_slice(&ip.src());
            d[..4].copy_from_slice(&ip.dst());
            (4, ip.protocol(), s, d, &l3[20..])
        }
        ether::ETHERTYPE_IPV6 => {
            let ip = ipv6::Packet::new_checked(l3).ok()?;
            (
                6,
                ip.next_header(),
                ip.src(),
                ip.dst(),
                &l3[ipv6::HEADER_LEN..],
            )
        }
        _ => return None,
    };
    if (p != proto::TCP && p != proto::UDP) || l4.len() < 4 {
        return None;
    }
    Some((family, p, src, dst, [l4[0], l4[1]], [l4[2], l4[3]]))
}

/// The key and action for the direction of `rx`, a frame received on
/// device `rx_ifindex`, from `tx`, the frame the pipeline sent for it on
/// `tx_ifindex` whose MTU is `mtu`. `None` when the frames are not a
/// forwarded TCP/UDP packet the program could handle (several tags, IP
/// options, a fragment, a family or protocol change).
pub fn learn(
    rx: &[u8],
    tx: &[u8],
    rx_ifindex: u32,
    tx_ifindex: u32,
    mtu: u16,
) -> Option<(FlowKey, FlowAction)> {
    let r = ether::parse_l2(rx).ok()?;
    let t = ether::parse_l2(tx).ok()?;
    if r.vlans.len > 1 || t.vlans.len > 1 || r.ethertype != t.ethertype {
        return None;
    }
    let (family, p, src, dst, sport, dport) = tuple(&rx[r.l3_off..], r.ethertype)?;
    let (tf, tp, nsrc, ndst, nsport, ndport) = tuple(&tx[t.l3_off..], t.ethertype)?;
    if (tf, tp) != (family, p) {
        return None;
    }
    let key = FlowKey {
        ifindex: rx_ifindex,
        vlan: r.vlans.as_slice().first().copied().unwrap_or(0),
        family,
        proto: p,
        sport,
        dport,
        pad: 0,
        src,
        dst,
    };
    let action = FlowAction {
        out_ifindex: tx_ifindex,
        out_vlan: t.vlans.as_slice().first().copied().unwrap_or(0),
        mtu,
        dmac: tx[..6].try_into().ok()?,
        smac: tx[6..12].try_into().ok()?,
        src: nsrc,
        dst: ndst,
        sport: nsport,
        dport: ndport,
        ..FlowAction::default()
    };
    Some((key, action))
}

/// The loaded program and its maps (not attached to a device).
pub struct OffloadProgram {
    obj: NonNull<sys::bpf_object>,
    prog: i32,
    flows: i32,
    ports: i32,
    stats: i32,
}

// SAFETY: the bpf_object is only used to close it on drop; the program
// and map descriptors are plain file descriptors, usable from any thread.
unsafe impl Send for OffloadProgram {}
// SAFETY: &self methods only issue bpf(2) calls on the descriptors, which
// the kernel serialises.
unsafe impl Sync for OffloadProgram {}

fn err(rc: i32, what: &str) -> io::Error {
    let e = io::Error::from_raw_os_error(rc.abs());
    io::Error::new(e.kind(), format!("offload program: {what}: {e}"))
}

impl OffloadProgram {
    /// Opens and loads the object (the kernel verifies the program; libbpf
    /// prints the verifier's log on refusal).
    pub fn load() -> io::Result<OffloadProgram> {
        let bytes = &OBJECT.0;
        // SAFETY: `bytes` is a static ELF object that outlives the
        // bpf_object; a null opts pointer asks for the defaults.
        let obj = unsafe {
            sys::bpf_object__open_mem(
                bytes.as_ptr().cast::<c_void>(),
                bytes.len() as _,
                std::ptr::null(),
            )
        };
        // SAFETY: libbpf_get_error only inspects the pointer value.
        let rc = unsafe { sys::libbpf_get_error(obj.cast::<c_void>()) };
        let Some(obj) = NonNull::new(obj).filter(|_| rc == 0) else {
            return Err(err(rc as i32, "open"));
        };
        let mut me = OffloadProgram {
            obj,
            prog: -1,
            flows: -1,
            ports: -1,
            stats: -1,
        };
        // SAFETY: `obj` is an open object; dropping `me` closes it on error.
        let rc = unsafe { sys::bpf_object__load(obj.as_ptr()) };
        if rc != 0 {
            return Err(err(rc, "load"));
        }
        let map = |name: &std::ffi::CStr| {
            // SAFETY: a loaded object and a NUL-terminated name; the map
            // pointer is owned by the object.
            let m = unsafe { sys::bpf_object__find_map_by_name(obj.as_ptr(), name.as_ptr()) };
            if m.is_null() {
                return Err(err(libc::ENOENT, &format!("no map {name:?}")));
            }
            // SAFETY: a map of the loaded object.
            Ok(unsafe { sys::bpf_map__fd(m) })
        };
        me.flows = map(c"flows")?;
        me.ports = map(c"ports")?;
        me.stats = map(c"stats")?;
        // SAFETY: as above, for the program.
        let p = unsafe {
            sys::bpf_object__find_program_by_name(obj.as_ptr(), c"xgate_offload".as_ptr())
        };
        if p.is_null() {
            return Err(err(libc::ENOENT, "no program xgate_offload"));
        }
        // SAFETY: a program of the loaded object.
        me.prog = unsafe { sys::bpf_program__fd(p) };
        Ok(me)
    }

    /// Offloads one direction (creates or replaces its entry).
    pub fn insert(&self, key: &FlowKey, action: &FlowAction) -> io::Result<()> {
        // SAFETY: key and value point to structs of the map's key and
        // value sizes (asserted above).
        let rc = unsafe {
            sys::bpf_map_update_elem(
                self.flows,
                (key as *const FlowKey).cast(),
                (action as *const FlowAction).cast(),
                0,
            )
        };
        if rc != 0 {
            Err(err(rc, "flows update"))
        } else {
            Ok(())
        }
    }

    /// The entry of one direction, with its counters.
    pub fn get(&self, key: &FlowKey) -> Option<FlowAction> {
        let mut a = FlowAction::default();
        // SAFETY: as in insert; the kernel writes one value into `a`.
        let rc = unsafe {
            sys::bpf_map_lookup_elem(
                self.flows,
                (key as *const FlowKey).cast(),
                (&mut a as *mut FlowAction).cast(),
            )
        };
        (rc == 0).then_some(a)
    }

    /// Ends the offload of one direction (its frames go to the workers).
    pub fn remove(&self, key: &FlowKey) -> bool {
        // SAFETY: as in insert.
        unsafe { sys::bpf_map_delete_elem(self.flows, (key as *const FlowKey).cast()) == 0 }
    }

    /// Lets the program redirect to device `ifindex`.
    pub fn add_port(&self, ifindex: u32) -> io::Result<()> {
        // SAFETY: a u32 key and a u32 value (the device), as the map says.
        let rc = unsafe {
            sys::bpf_map_update_elem(
                self.ports,
                (&ifindex as *const u32).cast(),
                (&ifindex as *const u32).cast(),
                0,
            )
        };
        if rc != 0 {
            Err(err(rc, "ports update"))
        } else {
            Ok(())
        }
    }

    /// The outcome counters, summed over CPUs, in [`Outcome::ALL`] order.
    pub fn outcomes(&self) -> io::Result<[u64; 9]> {
        let cpus = bpf::possible_cpus();
        let mut out = [0u64; 9];
        let mut per_cpu = vec![0u64; cpus];
        for (k, o) in out.iter_mut().enumerate() {
            let key = k as u32;
            // SAFETY: a per-CPU array of u64: the kernel writes one u64
            // per possible CPU into `per_cpu`.
            let rc = unsafe {
                sys::bpf_map_lookup_elem(
                    self.stats,
                    (&key as *const u32).cast(),
                    per_cpu.as_mut_ptr().cast(),
                )
            };
            if rc != 0 {
                return Err(err(rc, "stats lookup"));
            }
            *o = per_cpu.iter().sum();
        }
        Ok(out)
    }

    /// BPF_PROG_RUN on one frame as if received on device `ifindex` queue
    /// `queue`: the verdict and the frame as the program left it.
    pub fn run_once(&self, frame: &[u8], ifindex: u32, queue: u32) -> io::Result<(u32, Vec<u8>)> {
        bpf::run_once_fd(self.prog, frame, Some((ifindex, queue)))
    }

    /// The kernel's mean time in nanoseconds of one run on `frame`, over
    /// `repeat` runs (for benches/offload_prog.rs), and the verdict.
    pub fn time_run(
        &self,
        frame: &[u8],
        ifindex: u32,
        queue: u32,
        repeat: u32,
    ) -> io::Result<(u32, u32)> {
        bpf::run_fd(self.prog, frame, Some((ifindex, queue)), repeat).map(|(v, _, ns)| (v, ns))
    }
}

impl Drop for OffloadProgram {
    fn drop(&mut self) {
        // SAFETY: the object was opened by load and is closed once; its
        // descriptors go with it.
        unsafe { sys::bpf_object__close(self.obj.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An untagged (or tagged with `vlan`) Ethernet II / IPv4 / UDP frame.
    fn frame(
        dmac: u8,
        vlan: Option<u16>,
        src: [u8; 4],
        dst: [u8; 4],
        sport: u16,
        ihl: u8,
    ) -> Vec<u8> {
        let mut f = vec![dmac; 6];
        f.extend_from_slice(&[2, 0, 0, 0, 0, 9]);
        if let Some(v) = vlan {
            f.extend_from_slice(&[0x81, 0, (v >> 8) as u8, v as u8]);
        }
        f.extend_from_slice(&[0x08, 0x00]);
        let hl = usize::from(ihl) * 4;
        let total = (hl + 8 + 4) as u16;
        let mut ip = vec![
            0x40 | ihl,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            0,
            0,
            0,
            64,
            17,
            0,
            0,
        ];
        ip.extend_from_slice(&src);
        ip.extend_from_slice(&dst);
        ip.resize(hl, 1);
        let c = crate::packet::checksum::checksum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&sport.to_be_bytes());
        f.extend_from_slice(&[0, 53, 0, 12, 0, 0, 1, 2, 3, 4]);
        f
    }

    #[test]
    fn learn_reads_the_key_off_the_received_frame_and_the_action_off_the_sent_one() {
        let rx = frame(1, Some(20), [10, 20, 0, 5], [198, 51, 100, 9], 5353, 5);
        let tx = frame(7, None, [203, 0, 113, 2], [198, 51, 100, 9], 61000, 5);
        let (k, a) = learn(&rx, &tx, 3, 4, 1500).unwrap();
        assert_eq!((k.ifindex, k.vlan, k.family, k.proto), (3, 20, 4, 17));
        assert_eq!(
            (k.sport, k.dport),
            (5353u16.to_be_bytes(), 53u16.to_be_bytes())
        );
        assert_eq!(&k.src[..4], &[10, 20, 0, 5]);
        assert_eq!(k.src[4..], [0; 12]);
        assert_eq!((a.out_ifindex, a.out_vlan, a.mtu), (4, 0, 1500));
        assert_eq!((a.dmac, a.smac), ([7; 6], [2, 0, 0, 0, 0, 9]));
        assert_eq!(&a.src[..4], &[203, 0, 113, 2]);
        assert_eq!(a.sport, 61000u16.to_be_bytes());
        assert_eq!(a.packets, 0);
    }

    /// The IPv4 header checksum of an untagged frame, after an edit.
    fn refix(f: &mut [u8]) {
        f[24..26].fill(0);
        let c = crate::packet::checksum::checksum(&f[14..34]);
        f[24..26].copy_from_slice(&c.to_be_bytes());
    }

    #[test]
    fn what_the_program_leaves_to_the_workers_is_not_learned() {
        let plain = frame(1, None, [10, 0, 0, 1], [10, 0, 0, 2], 1, 5);
        // IPv4 options.
        let opts = frame(1, None, [10, 0, 0, 1], [10, 0, 0, 2], 1, 6);
        assert!(learn(&opts, &plain, 1, 2, 1500).is_none());
        assert!(learn(&plain, &opts, 1, 2, 1500).is_none());
        // A fragment.
        let mut frag = plain.clone();
        frag[14 + 6] = 0x20;
        refix(&mut frag);
        assert!(learn(&frag, &plain, 1, 2, 1500).is_none());
        // Two tags.
        let mut qinq = frame(1, Some(10), [10, 0, 0, 1], [10, 0, 0, 2], 1, 5);
        qinq.splice(12..12, [0x81, 0, 0, 30]);
        assert!(learn(&qinq, &plain, 1, 2, 1500).is_none());
        // Not TCP/UDP.
        let mut icmp = plain.clone();
        icmp[14 + 9] = 1;
        refix(&mut icmp);
        assert!(learn(&icmp, &icmp, 1, 2, 1500).is_none());
        assert!(learn(&plain, &plain, 1, 2, 1500).is_some());
    }
}
