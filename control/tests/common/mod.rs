//! Shared helpers of the replay tests: the office gateway's configuration
//! (office.rs), frame builders (etherparse), pcap files in and out, running
//! a scenario through `xgate replay`, golden trace files, and an
//! independent validity check for every frame xgate emits.
#![allow(dead_code)]
// Frame builders mirror the header fields they fill, one argument each.
#![allow(clippy::too_many_arguments)]

use etherparse::PacketBuilder;
use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};
use std::collections::BTreeMap;
use std::fs::File;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;
use xgate_control::replay::{self, Input, Report};

mod office;
// Not every test binary takes a config from it.
#[allow(unused_imports)]
pub use office::*;

/// Timestamp of the first input frame of every scenario.
pub const T0: u64 = 1_700_000_000;

/// An in-memory worker (1024 frames, 1024 connections, table seed 1) on
/// the configuration `config`.
pub fn memory_worker(config: &str) -> xgate_dataplane::io::memory::MemoryWorker {
    use std::sync::Arc;
    let cfg = xgate_control::parse(config, "t.toml").unwrap();
    let compiled = replay::compile_for_replay(&cfg).unwrap();
    let shared = Arc::new(xgate_control::compile::shared_state(
        &compiled,
        1024,
        Some(1),
    ));
    xgate_dataplane::io::memory::MemoryWorker::new(Arc::new(compiled.tables), shared, 1024)
}

pub type Mac = [u8; 6];

pub fn mac(s: &str) -> Mac {
    let v: Vec<u8> = s
        .split(':')
        .map(|x| u8::from_str_radix(x, 16).unwrap())
        .collect();
    v.try_into().unwrap()
}

pub fn ip4(s: &str) -> [u8; 4] {
    s.parse::<Ipv4Addr>().unwrap().octets()
}

pub fn ip6(s: &str) -> [u8; 16] {
    s.parse::<Ipv6Addr>().unwrap().octets()
}

/// An Ethernet frame carrying IPv4 UDP, optionally tagged. Like every
/// IPv4 frame etherparse builds, it has DF set.
pub fn udp4(
    src_mac: Mac,
    dst_mac: Mac,
    vlans: &[u16],
    src: &str,
    dst: &str,
    ttl: u8,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(src_mac, dst_mac)
        .ipv4(ip4(src), ip4(dst), ttl)
        .udp(sport, dport)
        .write(&mut out, payload)
        .unwrap();
    tagged(out, vlans)
}

/// Inserts VLAN tags after the MACs: 802.1Q for one tag, 802.1ad outer +
/// 802.1Q inner for two (QinQ).
pub fn tagged(mut f: Vec<u8>, vlans: &[u16]) -> Vec<u8> {
    let mut tags = Vec::new();
    for (i, v) in vlans.iter().enumerate() {
        let tpid: u16 = if vlans.len() == 2 && i == 0 {
            0x88a8
        } else {
            0x8100
        };
        tags.extend_from_slice(&tpid.to_be_bytes());
        tags.extend_from_slice(&v.to_be_bytes());
    }
    f.splice(12..12, tags);
    f
}

pub fn fix_ipv4_checksum(ip: &mut [u8]) {
    let hl = (ip[0] & 0xf) as usize * 4;
    ip[10] = 0;
    ip[11] = 0;
    let c = !naive_sum(&ip[..hl], 0);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
}

pub fn icmp4_echo(
    src_mac: Mac,
    dst_mac: Mac,
    src: &str,
    dst: &str,
    ttl: u8,
    id: u16,
    seq: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(src_mac, dst_mac)
        .ipv4(ip4(src), ip4(dst), ttl)
        .icmpv4_echo_request(id, seq)
        .write(&mut out, payload)
        .unwrap();
    out
}

pub fn icmp6_echo(
    src_mac: Mac,
    dst_mac: Mac,
    src: &str,
    dst: &str,
    hop: u8,
    id: u16,
    seq: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(src_mac, dst_mac)
        .ipv6(ip6(src), ip6(dst), hop)
        .icmpv6_echo_request(id, seq)
        .write(&mut out, payload)
        .unwrap();
    out
}

pub fn udp6(
    src_mac: Mac,
    dst_mac: Mac,
    src: &str,
    dst: &str,
    hop: u8,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(src_mac, dst_mac)
        .ipv6(ip6(src), ip6(dst), hop)
        .udp(sport, dport)
        .write(&mut out, payload)
        .unwrap();
    out
}

pub fn tcp4(
    src_mac: Mac,
    dst_mac: Mac,
    src: &str,
    dst: &str,
    sport: u16,
    dport: u16,
    seq: u32,
    syn: bool,
    ack: Option<u32>,
    payload: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    let b = PacketBuilder::ethernet2(src_mac, dst_mac)
        .ipv4(ip4(src), ip4(dst), 64)
        .tcp(sport, dport, seq, 64240);
    let b = if syn { b.syn() } else { b };
    let b = match ack {
        Some(a) => b.ack(a),
        None => b,
    };
    b.write(&mut out, payload).unwrap();
    out
}

/// An ARP frame (Ethernet/IPv4), optionally tagged.
pub fn arp(
    src_mac: Mac,
    dst_mac: Mac,
    vlans: &[u16],
    op: u16,
    sha: Mac,
    spa: &str,
    tha: Mac,
    tpa: &str,
) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    for v in vlans {
        f.extend_from_slice(&[0x81, 0x00]);
        f.extend_from_slice(&v.to_be_bytes());
    }
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4]);
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(&sha);
    f.extend_from_slice(&ip4(spa));
    f.extend_from_slice(&tha);
    f.extend_from_slice(&ip4(tpa));
    f.resize(f.len().max(60), 0);
    f
}

/// An IPv6 neighbour solicitation or advertisement with a link-layer option.
pub fn nd(
    src_mac: Mac,
    dst_mac: Mac,
    src: &str,
    dst: &str,
    icmp_type: u8,
    flags: u8,
    target: &str,
    opt_mac: Mac,
) -> Vec<u8> {
    let (s, d, t) = (ip6(src), ip6(dst), ip6(target));
    let mut msg = vec![icmp_type, 0, 0, 0, flags, 0, 0, 0];
    msg.extend_from_slice(&t);
    msg.extend_from_slice(&[if icmp_type == 135 { 1 } else { 2 }, 1]);
    msg.extend_from_slice(&opt_mac);
    let c = !naive_sum(&msg, pseudo6(&s, &d, 58, msg.len() as u32));
    msg[2..4].copy_from_slice(&c.to_be_bytes());
    let mut f = Vec::new();
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
    f.extend_from_slice(&(msg.len() as u16).to_be_bytes());
    f.extend_from_slice(&[58, 255]);
    f.extend_from_slice(&s);
    f.extend_from_slice(&d);
    f.extend_from_slice(&msg);
    f
}

/// Ones' complement sum, one byte at a time: deliberately the plainest
/// possible implementation, independent of the dataplane's.
pub fn naive_sum(data: &[u8], init: u32) -> u16 {
    let mut s: u64 = init as u64;
    for (i, b) in data.iter().enumerate() {
        s += if i % 2 == 0 {
            (*b as u64) << 8
        } else {
            *b as u64
        };
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

pub fn pseudo4(src: &[u8], dst: &[u8], proto: u8, len: usize) -> u32 {
    naive_sum(src, 0) as u32 + naive_sum(dst, 0) as u32 + proto as u32 + len as u32
}

pub fn pseudo6(src: &[u8], dst: &[u8], next: u8, len: u32) -> u32 {
    naive_sum(src, 0) as u32 + naive_sum(dst, 0) as u32 + (len >> 16) + (len & 0xffff) + next as u32
}

/// The tags and the L3 offset of a frame.
pub fn l2(frame: &[u8]) -> (Vec<u16>, u16, usize) {
    let mut off = 12;
    let mut tags = Vec::new();
    loop {
        let t = u16::from_be_bytes([frame[off], frame[off + 1]]);
        if t == 0x8100 || t == 0x88a8 || t == 0x9100 {
            tags.push(u16::from_be_bytes([frame[off + 2], frame[off + 3]]) & 0xfff);
            off += 4;
        } else {
            return (tags, t, off + 2);
        }
    }
}

/// Checks that a frame xgate emitted is well-formed: L2, ARP or IP header
/// lengths, IPv4 header checksum, and (when `l4` is set) the transport
/// checksum over the pseudo-header. Returns a description of the problem.
pub fn verify_frame(frame: &[u8], l4: bool) -> Result<(), String> {
    if frame.len() < 14 {
        return Err(format!("runt frame of {} bytes", frame.len()));
    }
    let (_, et, off) = l2(frame);
    let p = &frame[off..];
    match et {
        0x0806 => (p.len() >= 28 && p[..6] == [0, 1, 8, 0, 6, 4])
            .then_some(())
            .ok_or("bad ARP".into()),
        0x0800 => {
            if p.len() < 20 || p[0] >> 4 != 4 {
                return Err("bad IPv4 header".into());
            }
            let hl = (p[0] & 0xf) as usize * 4;
            let total = u16::from_be_bytes([p[2], p[3]]) as usize;
            if hl < 20 || total < hl || total > p.len() {
                return Err(format!(
                    "IPv4 lengths hl {hl} total {total} frame {}",
                    p.len()
                ));
            }
            if naive_sum(&p[..hl], 0) != 0xffff {
                return Err("IPv4 header checksum".into());
            }
            let frag = u16::from_be_bytes([p[6], p[7]]) & 0x3fff != 0;
            if !l4 || frag {
                return Ok(());
            }
            let seg = &p[hl..total];
            let (src, dst) = (&p[12..16], &p[16..20]);
            match p[9] {
                1 => (naive_sum(seg, 0) == 0xffff)
                    .then_some(())
                    .ok_or("ICMP checksum".into()),
                6 => (naive_sum(seg, pseudo4(src, dst, 6, seg.len())) == 0xffff)
                    .then_some(())
                    .ok_or("TCP checksum".into()),
                17 if seg.len() >= 8 && seg[6..8] != [0, 0] => {
                    (naive_sum(seg, pseudo4(src, dst, 17, seg.len())) == 0xffff)
                        .then_some(())
                        .ok_or("UDP checksum".into())
                }
                _ => Ok(()),
            }
        }
        0x86dd => {
            if p.len() < 40 || p[0] >> 4 != 6 {
                return Err("bad IPv6 header".into());
            }
            let total = 40 + u16::from_be_bytes([p[4], p[5]]) as usize;
            if total > p.len() {
                return Err("IPv6 payload length".into());
            }
            if !l4 {
                return Ok(());
            }
            let (src, dst, nh) = (&p[8..24], &p[24..40], p[6]);
            let seg = &p[40..total];
            match nh {
                6 | 17 | 58 => (naive_sum(seg, pseudo6(src, dst, nh, seg.len() as u32)) == 0xffff)
                    .then_some(())
                    .ok_or(format!("checksum of next header {nh}")),
                _ => Ok(()),
            }
        }
        other => Err(format!("unexpected ethertype {other:#06x}")),
    }
}

pub fn write_pcap(path: &Path, frames: &[(Duration, Vec<u8>)]) {
    let header = PcapHeader {
        datalink: DataLink::ETHERNET,
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(File::create(path).unwrap(), header).unwrap();
    for (ts, f) in frames {
        w.write_packet(&PcapPacket::new(*ts, f.len() as u32, f))
            .unwrap();
    }
}

pub fn read_pcap(path: &Path) -> Vec<(Duration, Vec<u8>)> {
    let mut r = PcapReader::new(File::open(path).unwrap()).unwrap();
    let mut v = Vec::new();
    while let Some(p) = r.next_packet() {
        let p = p.unwrap();
        v.push((p.timestamp, p.data.into_owned()));
    }
    v
}

/// Seconds after T0 as a pcap timestamp.
pub fn at(secs: f64) -> Duration {
    Duration::from_secs(T0) + Duration::from_secs_f64(secs)
}

/// Frames received on one interface: (time after T0 in seconds, frame).
pub type Inputs<'a> = &'a [(&'a str, Vec<(f64, Vec<u8>)>)];

pub struct Outcome {
    pub out: BTreeMap<String, Vec<(Duration, Vec<u8>)>>,
    pub trace: String,
    pub report: Report,
    pub bytes: BTreeMap<String, Vec<u8>>,
}

impl Outcome {
    /// Frames written on interface `name` (panics if the file is missing).
    pub fn frames(&self, name: &str) -> Vec<Vec<u8>> {
        self.out
            .get(name)
            .unwrap_or_else(|| panic!("no output for {name}"))
            .iter()
            .map(|(_, f)| f.clone())
            .collect()
    }

    pub fn drops(&self, reason: &str) -> u64 {
        self.report
            .drops
            .iter()
            .find(|(r, _)| r.name() == reason)
            .map(|(_, n)| *n)
            .unwrap_or(0)
    }
}

fn scratch_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xgate-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs a scenario through `replay::replay` with tracing on, checks that
/// every emitted frame is valid and that a second run is byte-identical.
pub fn run(name: &str, config: &str, inputs: Inputs) -> Outcome {
    let dir = scratch_dir(name);
    let cfg_path = dir.join("xgate.toml");
    std::fs::write(&cfg_path, config).unwrap();
    let cfg = xgate_control::load(&cfg_path).unwrap_or_else(|e| panic!("config: {e:?}"));
    let mut ins = Vec::new();
    for (k, (iface, frames)) in inputs.iter().enumerate() {
        let p = dir.join(format!("in{k}-{iface}.pcap"));
        let fr: Vec<_> = frames.iter().map(|(t, f)| (at(*t), f.clone())).collect();
        write_pcap(&p, &fr);
        ins.push(Input {
            iface: iface.to_string(),
            path: p,
        });
    }
    let run_once = |sub: &str| {
        let out_dir = dir.join(sub);
        let mut trace = Vec::new();
        let report = replay::replay(&cfg, &ins, &out_dir, true, &mut trace).unwrap();
        let mut out = BTreeMap::new();
        let mut bytes = BTreeMap::new();
        for (n, _) in &report.frames_out {
            let p = out_dir.join(format!("{n}.pcap"));
            out.insert(n.clone(), read_pcap(&p));
            bytes.insert(n.clone(), std::fs::read(&p).unwrap());
        }
        Outcome {
            out,
            trace: String::from_utf8(trace).unwrap(),
            report,
            bytes,
        }
    };
    let a = run_once("out1");
    if std::env::var_os("XGATE_DUMP").is_some() {
        eprintln!("{name} trace:\n{}\n{}", a.trace, a.report.summary());
    }
    let b = run_once("out2");
    assert_eq!(a.bytes, b.bytes, "{name}: replay is not deterministic");
    assert_eq!(a.trace, b.trace, "{name}: trace is not deterministic");
    for (iface, frames) in &a.out {
        for (i, (_, f)) in frames.iter().enumerate() {
            if let Err(e) = verify_frame(f, true) {
                panic!("{name}: frame {i} on {iface} is malformed: {e}\n{f:02x?}");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    a
}

/// Compares `actual` with the golden file `tests/golden/<name>.trace`;
/// `XGATE_BLESS=1` rewrites it.
pub fn golden_trace(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.trace"));
    if std::env::var_os("XGATE_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "missing golden file {}; run with XGATE_BLESS=1",
            path.display()
        )
    });
    if want != actual {
        let diff: Vec<String> = want
            .lines()
            .zip(actual.lines())
            .enumerate()
            .filter(|(_, (w, a))| w != a)
            .take(5)
            .map(|(i, (w, a))| format!("line {}:\n  want {w}\n  got  {a}", i + 1))
            .collect();
        panic!(
            "trace differs from {} ({} vs {} lines):\n{}\n(if the change is intended, rerun with XGATE_BLESS=1)",
            path.display(),
            want.lines().count(),
            actual.lines().count(),
            diff.join("\n")
        );
    }
}

/// An IPv4 TCP segment with the flags named by letters (`S` SYN, `A` ACK,
/// `F` FIN, `R` RST, `P` PSH, `U` URG), e.g. `"SA"`, `"FA"`, `"SF"`.
pub fn tcp4_seg(
    src_mac: Mac,
    dst_mac: Mac,
    src: &str,
    dst: &str,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: &str,
    payload: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut b = PacketBuilder::ethernet2(src_mac, dst_mac)
        .ipv4(ip4(src), ip4(dst), 64)
        .tcp(sport, dport, seq, 64240);
    for f in flags.chars() {
        b = match f {
            'S' => b.syn(),
            'A' => b.ack(ack),
            'F' => b.fin(),
            'R' => b.rst(),
            'P' => b.psh(),
            'U' => b.urg(0),
            _ => panic!("unknown TCP flag {f}"),
        };
    }
    b.write(&mut out, payload).unwrap();
    out
}

/// An ICMPv4 error (`typ`/`code`) from `src` to `dst` quoting `quoted`
/// (an IP packet, typically the L3 part of a frame, trimmed by the caller).
pub fn icmp4_error(
    src_mac: Mac,
    dst_mac: Mac,
    src: &str,
    dst: &str,
    typ: u8,
    code: u8,
    quoted: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(src_mac, dst_mac)
        .ipv4(ip4(src), ip4(dst), 64)
        .icmpv4_raw(typ, code, [0; 4])
        .write(&mut out, quoted)
        .unwrap();
    out
}

/// The IPv4 part of an untagged frame.
pub fn l3_of(frame: &[u8]) -> &[u8] {
    let (_, _, off) = l2(frame);
    &frame[off..]
}

/// `(src, sport, dst, dport)` of an untagged IPv4 TCP/UDP frame (for
/// ICMP queries the ports are the identifier, twice).
pub fn tuple4(frame: &[u8]) -> (Ipv4Addr, u16, Ipv4Addr, u16) {
    let ip = l3_of(frame);
    let hl = (ip[0] & 0xf) as usize * 4;
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let l4 = &ip[hl..];
    let w = |i: usize| u16::from_be_bytes([l4[i], l4[i + 1]]);
    match ip[9] {
        1 => (src, w(4), dst, w(4)),
        _ => (src, w(0), dst, w(2)),
    }
}

/// `tuple4` as text: `"1.2.3.4:80 > 5.6.7.8:1000"`.
pub fn flow4(frame: &[u8]) -> String {
    let (s, sp, d, dp) = tuple4(frame);
    format!("{s}:{sp} > {d}:{dp}")
}

/// The TCP payload of an untagged IPv4 TCP frame.
pub fn tcp_payload(frame: &[u8]) -> &[u8] {
    let ip = l3_of(frame);
    let hl = (ip[0] & 0xf) as usize * 4;
    let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
    let doff = (ip[hl + 12] >> 4) as usize * 4;
    &ip[hl + doff..total]
}

pub fn icmp4_reply(
    src_mac: Mac,
    dst_mac: Mac,
    src: &str,
    dst: &str,
    id: u16,
    seq: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(src_mac, dst_mac)
        .ipv4(ip4(src), ip4(dst), 60)
        .icmpv4_echo_reply(id, seq)
        .write(&mut out, payload)
        .unwrap();
    out
}

/// A TCP SYN (sequence 1000, no payload) between two MACs.
pub fn syn(smac: &str, dmac: &str, src: &str, dst: &str, sport: u16, dport: u16) -> Vec<u8> {
    tcp4_seg(
        mac(smac),
        mac(dmac),
        src,
        dst,
        sport,
        dport,
        1000,
        0,
        "S",
        b"",
    )
}

/// The errors `xgate check` gives for config text `cfg` (parse, then
/// compile), one per line; empty when it is accepted.
pub fn compile_errors(cfg: &str) -> String {
    match xgate_control::parse(cfg, "gw.toml") {
        Err(e) => format!("{e:?}"),
        Ok(c) => match xgate_control::compile::compile(&c, &|_, _| None) {
            Ok(_) => String::new(),
            Err(e) => e
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        },
    }
}
