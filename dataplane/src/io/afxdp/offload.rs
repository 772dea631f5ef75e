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
    /// The entry is valid while this is the program's epoch
    /// ([`OffloadProgram::set_epoch`]).
    pub epoch: u32,
    /// Packets and bytes (IP length) the program forwarded.
    pub packets: u64,
    pub bytes: u64,
    /// CLOCK_MONOTONIC_COARSE nanoseconds of the last one (the coarse
    /// clock: 22 ns a frame cheaper, a tick or so behind; for expiry).
    pub last_seen: u64,
    /// The ingress interface's MAC: a frame sent to another (broadcast,
    /// multicast, another host's) goes to the workers.
    pub in_mac: [u8; 6],
    pub pad: u16,
}

// The C structs' layout, field by field.
const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(size_of::<FlowKey>() == 48);
    assert!(offset_of!(FlowKey, vlan) == 4 && offset_of!(FlowKey, family) == 6);
    assert!(offset_of!(FlowKey, proto) == 7 && offset_of!(FlowKey, sport) == 8);
    assert!(offset_of!(FlowKey, dport) == 10 && offset_of!(FlowKey, pad) == 12);
    assert!(offset_of!(FlowKey, src) == 16 && offset_of!(FlowKey, dst) == 32);
    assert!(size_of::<FlowAction>() == 96);
    assert!(offset_of!(FlowAction, out_vlan) == 4 && offset_of!(FlowAction, mtu) == 6);
    assert!(offset_of!(FlowAction, dmac) == 8 && offset_of!(FlowAction, smac) == 14);
    assert!(offset_of!(FlowAction, src) == 20 && offset_of!(FlowAction, dst) == 36);
    assert!(offset_of!(FlowAction, sport) == 52 && offset_of!(FlowAction, dport) == 54);
    assert!(offset_of!(FlowAction, flags) == 56 && offset_of!(FlowAction, epoch) == 60);
    assert!(offset_of!(FlowAction, packets) == 64 && offset_of!(FlowAction, bytes) == 72);
    assert!(offset_of!(FlowAction, last_seen) == 80 && offset_of!(FlowAction, in_mac) == 88);
};

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
    NoPort,
    Malformed,
    Stale,
}

/// How many outcomes the program counts.
pub const OUTCOMES: usize = 12;

impl Outcome {
    pub const ALL: [Outcome; OUTCOMES] = [
        Outcome::Offloaded,
        Outcome::Miss,
        Outcome::NotOffloadable,
        Outcome::IpOptions,
        Outcome::Fragment,
        Outcome::Ttl,
        Outcome::TcpFlags,
        Outcome::Mtu,
        Outcome::NoRoom,
        Outcome::NoPort,
        Outcome::Malformed,
        Outcome::Stale,
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
            Outcome::NoPort => "no_port",
            Outcome::Malformed => "malformed",
            Outcome::Stale => "stale",
        }
    }
}

/// One direction's fields read from an IP packet.
struct Tuple {
    family: u8,
    proto: u8,
    src: [u8; 16],
    dst: [u8; 16],
    sport: [u8; 2],
    dport: [u8; 2],
    /// TTL or hop limit.
    ttl: u8,
    /// What the program never changes: TOS / traffic class and flow
    /// label, IPv4 identification, IP length.
    kept: ([u8; 4], [u8; 2], u16),
    /// Where the transport header starts and the packet ends (from L3).
    l4: (usize, usize),
}

/// `None` for what the program leaves to the workers (options,
/// fragments, other protocols, extension headers). `l3` may end early
/// (the workers keep only a packet's first bytes): it must hold the IP
/// header and the transport header up to its checksum.
fn tuple(l3: &[u8], ethertype: u16) -> Option<Tuple> {
    let (family, p, src, dst, ttl, kept, l4) = match ethertype {
        ether::ETHERTYPE_IPV4 => {
            let ip = ipv4::Packet::new_unchecked(l3.get(..20)?);
            if ip.version() != 4
                || ip.header_len() != 20
                || ip.is_fragment()
                || !crate::packet::checksum::verify_ipv4_header(&l3[..20])
            {
                return None;
            }
            let mut s = [0u8; 16];
            let mut d = [0u8; 16];
            s[..4].copy_from_slice(&ip.src());
            d[..4].copy_from_slice(&ip.dst());
            let total = ip.total_len();
            let kept = ([ip.tos(), 0, 0, 0], ip.ident().to_be_bytes(), total);
            (
                4,
                ip.protocol(),
                s,
                d,
                ip.ttl(),
                kept,
                (20, usize::from(total)),
            )
        }
        ether::ETHERTYPE_IPV6 => {
            let ip = ipv6::Packet::new_unchecked(l3.get(..ipv6::HEADER_LEN)?);
            if ip.version() != 6 {
                return None;
            }
            let kept = (
                [l3[0] & 0x0f, l3[1], l3[2], l3[3]],
                [0, 0],
                ip.payload_len(),
            );
            let end = ipv6::HEADER_LEN + usize::from(ip.payload_len());
            let (s, d) = (ip.src(), ip.dst());
            (
                6,
                ip.next_header(),
                s,
                d,
                ip.hop_limit(),
                kept,
                (ipv6::HEADER_LEN, end),
            )
        }
        _ => return None,
    };
    let after = match p {
        proto::TCP => 18,
        proto::UDP => 8,
        _ => return None,
    };
    if l4.1 < l4.0 + after || l3.len() < l4.0 + after {
        return None;
    }
    let ports = &l3[l4.0..];
    Some(Tuple {
        family,
        proto: p,
        src,
        dst,
        sport: [ports[0], ports[1]],
        dport: [ports[2], ports[3]],
        ttl,
        kept,
        l4,
    })
}

/// The key and action for the direction of `rx`, a frame received on
/// device `rx_ifindex`, from `tx`, the frame the pipeline sent for it on
/// `tx_ifindex` whose MTU is `mtu`. `None` when the frames are not a
/// forwarded TCP/UDP packet the program could handle (several tags or a
/// priority tag, IP options, a fragment, a family or protocol change) or
/// the pipeline did more to it than the program would (anything but TTL
/// - 1, addresses, ports, MACs and the tag).
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
    // A priority tag (VLAN ID 0) is not the program's.
    if r.vlans.as_slice().contains(&0) || t.vlans.as_slice().contains(&0) {
        return None;
    }
    let (rl3, tl3) = (&rx[r.l3_off..], &tx[t.l3_off..]);
    let a = tuple(rl3, r.ethertype)?;
    let b = tuple(tl3, t.ethertype)?;
    // The program does exactly this: the same family and protocol, the
    // TTL one less, the rest but addresses, ports and the transport
    // checksum unchanged. Whatever else a pipeline did (a bridged frame's
    // TTL kept, a DSCP rewrite) is not copied.
    if (b.family, b.proto) != (a.family, a.proto)
        || b.ttl.checked_add(1) != Some(a.ttl)
        || b.kept != a.kept
    {
        return None;
    }
    // The transport header past its checksum, and the payload, as far
    // as both frames hold them.
    let after = if a.proto == proto::TCP { 18 } else { 8 };
    let range = |l3: &[u8], t: &Tuple| {
        let from = t.l4.0 + after;
        from..t.l4.1.min(l3.len()).max(from)
    };
    let (ra, rb) = (&rl3[range(rl3, &a)], &tl3[range(tl3, &b)]);
    let n = ra.len().min(rb.len());
    if ra[..n] != rb[..n] {
        return None;
    }
    let key = FlowKey {
        ifindex: rx_ifindex,
        vlan: r.vlans.as_slice().first().copied().unwrap_or(0),
        family: a.family,
        proto: a.proto,
        sport: a.sport,
        dport: a.dport,
        pad: 0,
        src: a.src,
        dst: a.dst,
    };
    let action = FlowAction {
        in_mac: rx[..6].try_into().ok()?,
        out_ifindex: tx_ifindex,
        out_vlan: t.vlans.as_slice().first().copied().unwrap_or(0),
        mtu,
        dmac: tx[..6].try_into().ok()?,
        smac: tx[6..12].try_into().ok()?,
        src: b.src,
        dst: b.dst,
        sport: b.sport,
        dport: b.dport,
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
    xsks: i32,
    epoch: i32,
}

/// How large a device's maps are.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    /// The device's receive queues (its socket map).
    pub queues: u32,
    /// Directions the flow map holds (only for the first device's object:
    /// the others share it).
    pub flows: u32,
}

impl Default for Sizes {
    fn default() -> Self {
        Sizes {
            queues: 64,
            flows: DEFAULT_FLOWS,
        }
    }
}

/// Directions the flow map holds unless the config says otherwise.
pub const DEFAULT_FLOWS: u32 = 65536;

/// `NETDEV_XDP_ACT_NDO_XMIT`: the device takes frames redirected to it.
const XDP_ACT_NDO_XMIT: u64 = 1 << 2;

/// Whether device `ifindex` takes frames XDP redirects to it, as the
/// kernel reports it (`xdp_features`, Linux 6.3; a veth only while its
/// peer runs an XDP program or has GRO on). `None` when the kernel does
/// not say (older kernels): then xgate does not redirect to it.
pub fn takes_redirects(ifindex: u32) -> Option<bool> {
    // SAFETY: a zeroed opts struct with its size set, as libbpf's
    // OPTS macros build it; the kernel's answer is written into it.
    let mut opts: sys::bpf_xdp_query_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<sys::bpf_xdp_query_opts>() as _;
    // SAFETY: a valid opts pointer for the duration of the call.
    let rc = unsafe { sys::bpf_xdp_query(ifindex as i32, 0, &mut opts) };
    if rc != 0 || opts.feature_flags == 0 {
        return None;
    }
    Some(opts.feature_flags & XDP_ACT_NDO_XMIT != 0)
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

/// Sets `key` to `value` in the map `fd` of u32 keys and values (the
/// socket, port and epoch maps); `what` names it in the error.
fn update_u32(fd: i32, key: u32, value: u32, what: &str) -> io::Result<()> {
    // SAFETY: a u32 key and a u32 value, the sizes the map was made with.
    let rc = unsafe {
        sys::bpf_map_update_elem(
            fd,
            (&key as *const u32).cast(),
            (&value as *const u32).cast(),
            0,
        )
    };
    if rc != 0 { Err(err(rc, what)) } else { Ok(()) }
}

impl OffloadProgram {
    /// Opens and loads the object (the kernel verifies the program; libbpf
    /// prints the verifier's log on refusal).
    pub fn load() -> io::Result<OffloadProgram> {
        Self::load_with(&Sizes::default(), None)
    }

    /// Loads one device's object: its socket map sized for `sizes.queues`,
    /// and the flow, port and counter maps of `share` if given (every
    /// device's program then reads one flow table and counts in one
    /// place), else new ones with room for `sizes.flows` directions.
    pub fn load_with(sizes: &Sizes, share: Option<&OffloadProgram>) -> io::Result<OffloadProgram> {
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
            xsks: -1,
            epoch: -1,
        };
        let find = |name: &std::ffi::CStr| {
            // SAFETY: an open object and a NUL-terminated name; the map
            // pointer is owned by the object.
            let m = unsafe { sys::bpf_object__find_map_by_name(obj.as_ptr(), name.as_ptr()) };
            if m.is_null() {
                return Err(err(libc::ENOENT, &format!("no map {name:?}")));
            }
            Ok(m)
        };
        // Before the load: sizes, and the maps shared with another device.
        // SAFETY: maps of the open, not yet loaded object.
        let rc = unsafe { sys::bpf_map__set_max_entries(find(c"xsks")?, sizes.queues.max(1)) };
        if rc != 0 {
            return Err(err(rc, "xsks size"));
        }
        match share {
            Some(o) => {
                for (name, fd) in [
                    (c"flows", o.flows),
                    (c"ports", o.ports),
                    (c"stats", o.stats),
                ] {
                    // SAFETY: as above; libbpf dups `fd`, which stays ours.
                    let rc = unsafe { sys::bpf_map__reuse_fd(find(name)?, fd) };
                    if rc != 0 {
                        return Err(err(rc, &format!("reuse of map {name:?}")));
                    }
                }
            }
            None => {
                // SAFETY: as above.
                let rc = unsafe { sys::bpf_map__set_max_entries(find(c"flows")?, sizes.flows) };
                if rc != 0 {
                    return Err(err(rc, "flows size"));
                }
            }
        }
        // SAFETY: `obj` is an open object; dropping `me` closes it on error.
        let rc = unsafe { sys::bpf_object__load(obj.as_ptr()) };
        if rc != 0 {
            return Err(err(rc, "load"));
        }
        // SAFETY: maps of the loaded object.
        let map = |name: &std::ffi::CStr| find(name).map(|m| unsafe { sys::bpf_map__fd(m) });
        me.xsks = map(c"xsks")?;
        me.epoch = map(c"epoch")?;
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

    /// Makes `epoch` the current one: entries of another epoch go to the
    /// workers at once (counted `stale`); [`OffloadProgram::insert`]
    /// takes the action's `epoch` as given.
    pub fn set_epoch(&self, epoch: u32) -> io::Result<()> {
        update_u32(self.epoch, 0, epoch, "epoch update")
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

    /// Attaches the program to device `ifindex` with `flags`
    /// (XDP_FLAGS_*); detached when the returned link closes.
    pub fn attach(&self, ifindex: u32, flags: u32) -> io::Result<std::os::fd::OwnedFd> {
        bpf::attach_fd(self.prog, ifindex, flags)
    }

    /// Steers receive queue `queue` to the socket `xsk_fd` (frames the
    /// program leaves to the workers).
    pub fn set_socket(&self, queue: u32, xsk_fd: i32) -> io::Result<()> {
        update_u32(self.xsks, queue, xsk_fd as u32, "xsks update")
    }

    /// Stops redirecting to device `ifindex` (its entries then go to the
    /// workers, counted as no_port).
    pub fn remove_port(&self, ifindex: u32) -> bool {
        // SAFETY: a u32 key, as the map takes it.
        unsafe { sys::bpf_map_delete_elem(self.ports, (&ifindex as *const u32).cast()) == 0 }
    }

    /// Lets the program redirect to device `ifindex`.
    pub fn add_port(&self, ifindex: u32) -> io::Result<()> {
        update_u32(self.ports, ifindex, ifindex, "ports update")
    }

    /// The outcome counters, summed over CPUs, in [`Outcome::ALL`] order.
    pub fn outcomes(&self) -> io::Result<[u64; OUTCOMES]> {
        // SAFETY: no arguments; libbpf reads sysfs.
        let n = unsafe { sys::libbpf_num_possible_cpus() };
        let cpus = usize::try_from(n).map_err(|_| err(n, "possible CPUs"))?;
        let mut out = [0u64; OUTCOMES];
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
        let tx = hop(frame(
            7,
            None,
            [203, 0, 113, 2],
            [198, 51, 100, 9],
            61000,
            5,
        ));
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

    /// An untagged frame as a router sends it on: TTL - 1.
    fn hop(mut f: Vec<u8>) -> Vec<u8> {
        f[14 + 8] -= 1;
        refix(&mut f);
        f
    }

    /// The workers keep only a packet's first bytes: enough for the
    /// headers; what both frames hold is compared.
    #[test]
    fn learn_takes_frames_cut_after_the_transport_header() {
        let mut rx = frame(1, None, [10, 0, 0, 1], [10, 0, 0, 2], 1, 5);
        rx.extend_from_slice(&[9; 100]);
        let total = (rx.len() - 14) as u16;
        rx[16..18].copy_from_slice(&total.to_be_bytes());
        refix(&mut rx);
        let tx = hop(rx.clone());
        let full = learn(&rx, &tx, 1, 2, 1500).unwrap();
        assert_eq!(learn(&rx[..14 + 64], &tx, 1, 2, 1500), Some(full));
        assert_eq!(
            learn(&rx[..14 + 28], &tx[..14 + 40], 1, 2, 1500),
            Some(full)
        );
        // Cut inside the UDP header: not enough to know.
        assert!(learn(&rx[..14 + 26], &tx, 1, 2, 1500).is_none());
        // A change in the part both hold is still seen.
        let mut other = tx.clone();
        other[14 + 30] ^= 1;
        assert!(learn(&rx[..14 + 64], &other, 1, 2, 1500).is_none());
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
        assert!(learn(&icmp, &hop(icmp.clone()), 1, 2, 1500).is_none());
        // Sent on as the program would send it: learned.
        let next = hop(plain.clone());
        assert!(learn(&plain, &next, 1, 2, 1500).is_some());
        // The TTL kept (a bridged frame), a DSCP rewrite, a changed
        // payload: the pipeline did what the program would not.
        assert!(learn(&plain, &plain, 1, 2, 1500).is_none());
        let mut dscp = next.clone();
        dscp[14 + 1] = 0x28;
        refix(&mut dscp);
        assert!(learn(&plain, &dscp, 1, 2, 1500).is_none());
        let mut payload = next.clone();
        *payload.last_mut().unwrap() ^= 1;
        assert!(learn(&plain, &payload, 1, 2, 1500).is_none());
        // A priority tag (VLAN ID 0).
        let prio = frame(1, Some(0), [10, 0, 0, 1], [10, 0, 0, 2], 1, 5);
        assert!(learn(&prio, &next, 1, 2, 1500).is_none());
    }
}
