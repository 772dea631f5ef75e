//! `xgate replay`: the pipeline run offline over captures.
//!
//! Inputs are pcap files, each received on one logical interface's device
//! (`--input IFACE=FILE`; IFACE may also name a device, or a `tap`: then
//! the frames are what the host kernel sends on that tap). Frames are taken in
//! timestamp order across all inputs (ties: input order, then file order),
//! one at a time, and the pipeline's clock is the frame's timestamp, so
//! timeouts behave as they would have live. Every frame that leaves a
//! logical interface is written to `DIR/<interface>.pcap`, with the
//! timestamp of the frame that caused it, exactly as it would go on the
//! wire (tags, checksums, MACs). Generated frames (ARP, NDP, ICMP errors,
//! resets) are written the same way. What the management punt hands to
//! the host kernel is written to `DIR/<tap>.pcap` for each `tap`. An output
//! file exists for every interface and tap, empty or not. The same inputs
//! give byte-identical outputs.
//!
//! The firewall runs as it would live: connections are tracked in pcap
//! time (so timeouts can be tested), NAT ports come from the same
//! allocator, LOG lines are collected in the report. The connection table
//! holds at most [`REPLAY_FLOWS`] connections, whatever `flows` says: a
//! capture small enough to replay needs no more, and a test suite should
//! not allocate a million entries per scenario.

use crate::compile::{Compiled, compile, shared_state, synthetic_mac};
use crate::config::{Config, ConfigError, render_errors};
use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use xgate_dataplane::iface::IfIndex;
use xgate_dataplane::io::memory::MemoryWorker;
use xgate_dataplane::io::punt;
use xgate_dataplane::packet::ether;
use xgate_dataplane::pipeline::trace;
use xgate_dataplane::stats::DropReason;

/// One `--input IFACE=FILE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Input {
    pub iface: String,
    pub path: PathBuf,
}

impl std::str::FromStr for Input {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (iface, path) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?}: expected IFACE=FILE.pcap"))?;
        if iface.is_empty() || path.is_empty() {
            return Err(format!("{s:?}: expected IFACE=FILE.pcap"));
        }
        Ok(Input {
            iface: iface.to_string(),
            path: PathBuf::from(path),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{}", render_errors(.0).trim_end())]
    Config(Vec<ConfigError>),
    #[error("--input {0}: no interface, device or tap of that name in the config")]
    UnknownInterface(String),
    #[error("{path}: {msg}")]
    Pcap { path: String, msg: String },
    #[error("{path}: {err}")]
    Io { path: String, err: std::io::Error },
}

/// What a replay did.
#[derive(Debug, Default)]
pub struct Report {
    pub frames_in: u64,
    /// Input frames longer than a UMEM frame holds (not replayed).
    pub frames_too_long: u64,
    /// Frames written, per interface name (every interface listed), then
    /// per tap (frames handed to the kernel).
    pub frames_out: Vec<(String, u64)>,
    pub drops: Vec<(DropReason, u64)>,
    /// Packets still waiting for a neighbour at the end.
    pub pending_at_end: usize,
    /// LOG target lines, in order.
    pub log: Vec<String>,
    /// Connections in the table at the end.
    pub connections: usize,
    /// What was wrong with the inputs but could be repaired (e.g. a
    /// capture record's microseconds of 1,000,000 or more).
    pub warnings: Vec<String>,
}

/// The connection table capacity of a replay.
pub const REPLAY_FLOWS: usize = 1 << 16;

impl Report {
    pub fn summary(&self) -> String {
        let mut s = String::new();
        for w in &self.warnings {
            s += &format!("warning: {w}\n");
        }
        s += &format!("replayed {} frames", self.frames_in);
        if self.frames_too_long > 0 {
            s += &format!(" ({} too long, skipped)", self.frames_too_long);
        }
        s += "\nout:";
        for (n, c) in &self.frames_out {
            s += &format!(" {n}={c}");
        }
        if !self.drops.is_empty() {
            s += "\ndrops:";
            for (r, c) in &self.drops {
                s += &format!(" {}={c}", r.name());
            }
        }
        if self.pending_at_end > 0 {
            s += &format!("\nstill waiting for a neighbour: {}", self.pending_at_end);
        }
        if self.connections > 0 {
            s += &format!("\nconnections tracked at the end: {}", self.connections);
        }
        for l in &self.log {
            s += &format!("\nlog: {l}");
        }
        s
    }
}

/// Where an input's frames enter.
#[derive(Clone, Copy)]
enum Source {
    /// Received on this port.
    Port(u16),
    /// Sent by the host kernel on this tap.
    Tap(u16),
}

struct Frame {
    ts: Duration,
    input: usize,
    data: Vec<u8>,
}

/// Carries a record's sub-second field of a second or more into its
/// seconds, in place, over a whole pcap file (scapy writes microseconds of
/// 1,000,000, which tcpdump reads and `pcap-file` refuses). Returns how
/// many records were fixed. Anything it does not understand (not pcap, a
/// cut record) is left for the reader to report.
pub fn normalize_pcap_timestamps(data: &mut [u8]) -> usize {
    if data.len() < 24 {
        return 0;
    }
    let magic = [data[0], data[1], data[2], data[3]];
    let (big, nanos) = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] => (false, false),
        [0xa1, 0xb2, 0xc3, 0xd4] => (true, false),
        [0x4d, 0x3c, 0xb2, 0xa1] => (false, true),
        [0xa1, 0xb2, 0x3c, 0x4d] => (true, true),
        _ => return 0,
    };
    let unit: u32 = if nanos { 1_000_000_000 } else { 1_000_000 };
    let get = |b: &[u8]| {
        let a = [b[0], b[1], b[2], b[3]];
        if big {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }
    };
    let put = |v: u32| {
        if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let mut fixed = 0;
    let mut at = 24;
    while at + 16 <= data.len() {
        let h = &mut data[at..at + 16];
        let (sec, frac, incl) = (get(&h[0..4]), get(&h[4..8]), get(&h[8..12]));
        if frac >= unit {
            let sec = sec.saturating_add(frac / unit);
            h[0..4].copy_from_slice(&put(sec));
            h[4..8].copy_from_slice(&put(frac % unit));
            fixed += 1;
        }
        at = at.saturating_add(16).saturating_add(incl as usize);
    }
    fixed
}

fn read_pcap(
    path: &Path,
    input: usize,
    out: &mut Vec<Frame>,
    warnings: &mut Vec<String>,
) -> Result<(), ReplayError> {
    let p = path.display().to_string();
    let data = std::fs::read(path).map_err(|err| ReplayError::Io {
        path: p.clone(),
        err,
    })?;
    for (ts, data) in read_pcap_bytes(data, &p, warnings)? {
        out.push(Frame { ts, input, data });
    }
    Ok(())
}

/// The Ethernet frames of a pcap file's bytes with their timestamps, in
/// file order; `name` names the file in errors and in the warnings pushed
/// to `warnings` (timestamps normalised).
pub fn read_pcap_bytes(
    mut data: Vec<u8>,
    name: &str,
    warnings: &mut Vec<String>,
) -> Result<Vec<(Duration, Vec<u8>)>, ReplayError> {
    let p = name.to_string();
    let fixed = normalize_pcap_timestamps(&mut data);
    if fixed > 0 {
        warnings.push(format!(
            "{p}: {fixed} record(s) with a sub-second timestamp field of a second or more \
             (as scapy writes): carried into the seconds"
        ));
    }
    let pcap_err = |e: pcap_file::PcapError| ReplayError::Pcap {
        path: p.clone(),
        msg: e.to_string(),
    };
    let mut r = PcapReader::new(std::io::Cursor::new(data)).map_err(pcap_err)?;
    if r.header().datalink != DataLink::ETHERNET {
        return Err(ReplayError::Pcap {
            path: p.clone(),
            msg: format!(
                "link type {:?}: only Ethernet captures can be replayed",
                r.header().datalink
            ),
        });
    }
    let mut out = Vec::new();
    while let Some(pkt) = r.next_packet() {
        let pkt = pkt.map_err(pcap_err)?;
        out.push((pkt.timestamp, pkt.data.into_owned()));
    }
    Ok(out)
}

/// Compiles `cfg` for replay (devices get synthetic MACs where none is set).
pub fn compile_for_replay(cfg: &Config) -> Result<Compiled, ReplayError> {
    compile(cfg, &|_, port| Some(synthetic_mac(port))).map_err(ReplayError::Config)
}

/// Runs the replay. With `trace`, one line per packet per stage goes to
/// `trace_out`.
pub fn replay(
    cfg: &Config,
    inputs: &[Input],
    out_dir: &Path,
    trace: bool,
    trace_out: &mut dyn Write,
) -> Result<Report, ReplayError> {
    let compiled = compile_for_replay(cfg)?;
    let sources: Vec<Source> = inputs
        .iter()
        .map(|i| {
            let ifs = &compiled.tables.interfaces;
            ifs.by_name(&i.iface)
                .map(|x| Source::Port(ifs.get(x).port))
                .or_else(|| {
                    let dev = compiled.devices.iter().position(|d| *d == i.iface);
                    dev.map(|p| Source::Port(p as u16))
                })
                .or_else(|| {
                    let tap = compiled.taps.iter().position(|t| *t == i.iface);
                    tap.map(|t| Source::Tap(t as u16))
                })
                .ok_or_else(|| ReplayError::UnknownInterface(i.iface.clone()))
        })
        .collect::<Result<_, _>>()?;
    let mut frames = Vec::new();
    let mut warnings = Vec::new();
    for (k, i) in inputs.iter().enumerate() {
        read_pcap(&i.path, k, &mut frames, &mut warnings)?;
    }
    // Stable: equal timestamps keep input order, then file order.
    frames.sort_by_key(|f| (f.ts, f.input));

    let flows = cfg.dataplane.flows.min(REPLAY_FLOWS);
    let shared = Arc::new(shared_state(&compiled, flows, Some(0x5eed)));
    crate::runtime::apply_limits(&shared, &cfg.dataplane);
    let tables = Arc::new(compiled.tables);
    let mut worker = MemoryWorker::new(tables.clone(), shared, 8192);
    worker.pipeline.trace.set_enabled(trace);
    // The taps' side: frames to the kernel are collected, frames from it
    // injected, both in pcap order.
    let punt = if compiled.taps.is_empty() {
        None
    } else {
        let ch = punt::channels(1)
            .map_err(|err| ReplayError::Io {
                path: "eventfd".into(),
                err,
            })?
            .remove(0);
        worker.pipeline.set_punt(ch.clone());
        Some(ch)
    };

    std::fs::create_dir_all(out_dir).map_err(|err| ReplayError::Io {
        path: out_dir.display().to_string(),
        err,
    })?;
    let header = PcapHeader {
        datalink: DataLink::ETHERNET,
        snaplen: 65535,
        ..PcapHeader::default()
    };
    let mut writers = Vec::new();
    let names = tables.interfaces.iter().map(|(_, ic)| &ic.name);
    for name in names.chain(&compiled.taps) {
        let path = out_dir.join(format!("{name}.pcap"));
        let p = path.display().to_string();
        let f = File::create(&path).map_err(|err| ReplayError::Io {
            path: p.clone(),
            err,
        })?;
        let w =
            PcapWriter::with_header(BufWriter::new(f), header).map_err(|e| ReplayError::Pcap {
                path: p.clone(),
                msg: e.to_string(),
            })?;
        writers.push((w, p, 0u64));
    }

    let mut report = Report {
        warnings,
        ..Report::default()
    };
    let mut now = Duration::ZERO;
    let mut write_err = None;
    let ifaces = tables.interfaces.len();
    let mut emit = |worker: &mut MemoryWorker, ts: Duration| {
        let mut write = |out: usize, bytes: &[u8]| {
            let (w, p, n) = &mut writers[out];
            if let Err(e) = w.write_packet(&PcapPacket::new(ts, bytes.len() as u32, bytes)) {
                write_err.get_or_insert(ReplayError::Pcap {
                    path: p.clone(),
                    msg: e.to_string(),
                });
            }
            *n += 1;
        };
        worker.drain(|port, bytes| {
            // The frame's own tags say which logical interface it left by.
            let vlans = ether::parse_l2(bytes).map(|l| l.vlans).unwrap_or_default();
            // (A bridge port's untagged interface takes the tags its
            // bridge VLANs add.)
            if let Some(ifx) = tables
                .interfaces
                .classify(port, &vlans)
                .or_else(|| tables.interfaces.bridge_port(port))
            {
                write(ifx as usize, bytes);
            }
        });
        if let Some(ch) = &punt {
            for (tap, bytes) in ch.take_to_kernel() {
                write(ifaces + tap as usize, &bytes);
            }
        }
    };
    let mut log = Vec::new();
    let mut collect_log = |worker: &MemoryWorker| {
        let ifs = &worker.pipeline.tables.interfaces;
        while let Some(rec) = worker.pipeline.shared.log.pop() {
            log.push(
                worker
                    .pipeline
                    .tables
                    .filter
                    .format_log(&rec, |i| ifs.name(i)),
            );
        }
    };
    let print_trace = |worker: &mut MemoryWorker, out: &mut dyn Write| -> Result<(), ReplayError> {
        for r in worker.pipeline.trace.drain() {
            writeln!(out, "{}", trace::format_record(&r, &tables.interfaces)).map_err(|err| {
                ReplayError::Io {
                    path: "trace output".into(),
                    err,
                }
            })?;
        }
        Ok(())
    };
    for f in &frames {
        now = f.ts;
        report.frames_in += 1;
        let ns = f.ts.as_nanos() as u64;
        match sources[f.input] {
            Source::Port(port) => {
                if worker.receive(port, &[&f.data], ns).is_err() {
                    report.frames_too_long += 1;
                }
            }
            Source::Tap(tap) => {
                let queued = punt
                    .as_ref()
                    .is_some_and(|ch| ch.inject_from_kernel(tap, &f.data));
                if !queued {
                    report.frames_too_long += 1;
                }
                worker.kernel_input(ns);
            }
        }
        emit(&mut worker, f.ts);
        collect_log(&worker);
        print_trace(&mut worker, trace_out)?;
    }
    worker.tick(now.as_nanos() as u64);
    emit(&mut worker, now);
    collect_log(&worker);
    print_trace(&mut worker, trace_out)?;
    if let Some(e) = write_err {
        return Err(e);
    }
    for (i, (w, p, n)) in writers.into_iter().enumerate() {
        let mut inner = w.into_writer();
        inner.flush().map_err(|err| ReplayError::Io {
            path: p.clone(),
            err,
        })?;
        let name = match i.checked_sub(ifaces) {
            None => &tables.interfaces.get(i as IfIndex).name,
            Some(t) => &compiled.taps[t],
        };
        report.frames_out.push((name.clone(), n));
    }
    report.drops = worker.pipeline.stats.nonzero_drops();
    report.pending_at_end = worker.pipeline.pending_packets();
    report.log = log;
    report.connections = worker.pipeline.shared.conntrack.len();
    Ok(report)
}
