//! The control thread's part of the XDP offload (issue 16; design in
//! docs/architecture.md, "Offload"). The workers decide which directions
//! may be offloaded and queue them (`xgate_dataplane::offload`); here,
//! with system calls allowed:
//!
//! - **Insert**: each queued direction becomes the program's map entry
//!   through [`offload::learn`] (the key read off the packet as it
//!   arrived, the action off the frame the pipeline sent); the connection
//!   stops having its TCP windows checked (Linux's flowtable does the
//!   same: the workers no longer see every segment). A record made with
//!   tables that are no longer current is thrown away.
//! - **Scan** (each second): the program's packet and byte counts and its
//!   last-seen time go into the connection (counters, timeout), and an
//!   entry leaves when its connection left ESTABLISHED, or its neighbour
//!   went or moved (the workers then resolve it again and ask anew).
//!   Which devices take redirected frames is asked of the kernel again (a
//!   veth's peer may lose its XDP program).
//! - **Flush**: a reload or a route change (new tables) and a trace
//!   request (traced packets must walk the pipeline) move the program's
//!   epoch (every entry void at once) and empty the map.
//! - **Ends**: an offloaded connection ends only here: its entries go
//!   first, then the connection (expired by its folded last-seen time, or
//!   deleted by `ctl conntrack -D`), so its NAT port is never reused while
//!   an entry still translates to it.
//! - **Teardown**: a TCP FIN or RST a worker saw ends the connection's
//!   entries at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use xgate_dataplane::conntrack::{ConnId, Dir, PROTO_TCP, TcpState};
use xgate_dataplane::iface::IfIndex;
use xgate_dataplane::io::afxdp::offload::{
    self, FlowKey, OUTCOMES, OffloadProgram, Outcome, takes_redirects,
};
use xgate_dataplane::offload::{Learned, Request};
use xgate_dataplane::pipeline::{Shared, Tables};

/// The flow map's size for a connection table of `flows`: two directions
/// per connection, within [1024, 262144] (the map is not preallocated:
/// about 200 bytes of kernel memory per entry present).
pub fn map_capacity(flows: usize) -> u32 {
    (2 * flows).clamp(1024, 1 << 18) as u32
}

/// Requests handled per call at most (the control loop runs every 10 ms).
const PER_TICK: usize = 4096;

/// What the offload did, for `ctl stats` and the metrics.
#[derive(Debug, Default)]
pub struct OffloadStats {
    /// Directions in the program's map now.
    pub entries: AtomicU64,
    /// The map's capacity.
    pub capacity: AtomicU64,
    pub inserted: AtomicU64,
    /// Directions `learn` refused (the pipeline did more than the program
    /// would), or whose egress takes no redirected frame.
    pub refused: AtomicU64,
    /// Inserts the full map refused (the direction stays with the workers).
    pub map_full: AtomicU64,
    /// Entries that left: connection ended or expired, neighbour, flush.
    pub removed: AtomicU64,
    pub flushes: AtomicU64,
    /// Records thrown away: made with tables no longer current.
    pub stale: AtomicU64,
    /// The program's outcome counters (all CPUs), as of the last scan.
    pub outcomes: [AtomicU64; OUTCOMES],
    /// Ports whose device runs the offload program / takes redirects.
    pub rx_ports: AtomicU64,
    pub tx_ports: AtomicU64,
}

impl OffloadStats {
    /// (name, value) of the program's outcomes.
    pub fn outcomes(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        Outcome::ALL
            .iter()
            .zip(&self.outcomes)
            .map(|(o, n)| (o.name(), n.load(Relaxed)))
    }
}

/// One device, by port number.
#[derive(Debug)]
pub struct Device {
    pub name: String,
    pub ifindex: u32,
    /// Runs the offload program (native XDP): its frames may be offloaded.
    pub rx: bool,
}

struct Entry {
    conn: ConnId,
    dir: Dir,
    oif: IfIndex,
    nexthop: u128,
    dmac: [u8; 6],
    packets: u64,
    bytes: u64,
}

/// The control thread's offload state (one per `xgate run`).
pub struct Offloader<'a> {
    prog: &'a OffloadProgram,
    devices: Vec<Device>,
    /// Per port: the device takes redirected frames (in the port map).
    tx: Vec<bool>,
    entries: HashMap<FlowKey, Entry>,
    /// Per connection (entry index): the keys of its directions.
    by_conn: HashMap<u32, Vec<FlowKey>>,
    tables: Arc<Tables>,
    /// The generation of `tables`: records of another are void.
    generation: u64,
    /// The program's epoch: entries of another go to the workers.
    epoch: u32,
    last_scan: Instant,
    pub stats: Arc<OffloadStats>,
}

impl<'a> Offloader<'a> {
    /// Starts offloading frames received on the devices with `rx`, to the
    /// devices that take redirects. Returns the offloader and a line for
    /// the log saying where it runs.
    pub fn start(
        prog: &'a OffloadProgram,
        devices: Vec<Device>,
        shared: &Shared,
        (generation, tables): (u64, Arc<Tables>),
        capacity: u32,
    ) -> (Self, String) {
        let stats = Arc::new(OffloadStats::default());
        stats.capacity.store(u64::from(capacity), Relaxed);
        let mut me = Offloader {
            prog,
            tx: vec![false; devices.len()],
            devices,
            entries: HashMap::new(),
            by_conn: HashMap::new(),
            tables,
            generation,
            epoch: 0,
            last_scan: Instant::now(),
            stats,
        };
        me.refresh_ports(shared);
        for (p, d) in me.devices.iter().enumerate() {
            shared.offload.set_rx_port(p as u16, d.rx);
        }
        let names = |f: &dyn Fn(usize, &Device) -> bool| {
            let v: Vec<&str> = me
                .devices
                .iter()
                .enumerate()
                .filter(|(p, d)| f(*p, d))
                .map(|(_, d)| d.name.as_str())
                .collect();
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(", ")
            }
        };
        let line = format!(
            "offload: established connections forwarded in XDP from {} to {} \
             ({capacity} directions at most)",
            names(&|_, d| d.rx),
            names(&|p, _| me.tx[p])
        );
        (me, line)
    }

    /// Asks the kernel which devices take redirected frames and puts
    /// them in (or out of) the program's port map and the workers' mask.
    fn refresh_ports(&mut self, shared: &Shared) {
        let (mut rx, mut tx) = (0u64, 0u64);
        for (p, d) in self.devices.iter().enumerate() {
            let ok = takes_redirects(d.ifindex) == Some(true);
            if ok != self.tx[p] {
                let done = if ok {
                    self.prog.add_port(d.ifindex).is_ok()
                } else {
                    self.prog.remove_port(d.ifindex);
                    false
                };
                self.tx[p] = done;
            }
            if self.tx[p] && p < 64 {
                tx |= 1 << p;
            }
            if d.rx && p < 64 {
                rx |= 1 << p;
            }
        }
        self.stats.rx_ports.store(rx, Relaxed);
        self.stats.tx_ports.store(tx, Relaxed);
        shared.offload.set_tx_ports(tx);
    }

    /// One turn of the control loop: flush if needed, insert what the
    /// workers queued, and once a second scan the map.
    pub fn tick(&mut self, shared: &Shared, (generation, tables): (u64, &Arc<Tables>), now: u64) {
        if generation != self.generation {
            self.flush(shared);
            self.generation = generation;
            self.tables = tables.clone();
        }
        let tracing = shared.trace.active();
        if tracing != shared.offload.paused() {
            shared.offload.pause(tracing);
            if tracing {
                self.flush(shared);
            }
        }
        for _ in 0..PER_TICK {
            match shared.offload.pop() {
                Some(Request::Learn(r)) => self.insert(shared, &r),
                Some(Request::Teardown(c)) => self.teardown(shared, c),
                Some(Request::Kill(c)) => {
                    self.teardown(shared, c);
                    shared.conntrack.remove(c);
                }
                None => break,
            }
        }
        if self.last_scan.elapsed() >= Duration::from_secs(1) {
            self.last_scan = Instant::now();
            self.scan(shared, now);
        }
    }

    fn insert(&mut self, shared: &Shared, r: &Learned) {
        let ct = &shared.conntrack;
        let (dir, conn) = (r.conn.dir(), r.conn);
        if r.tables_gen != self.generation || shared.offload.paused() {
            self.stats.stale.fetch_add(1, Relaxed);
            ct.offload_mark(conn, dir, false, true);
            return;
        }
        let (Some(rxd), Some(&txok)) = (
            self.devices.get(usize::from(r.rx_port)),
            self.tx.get(usize::from(r.tx_port)),
        ) else {
            return;
        };
        let txd = &self.devices[usize::from(r.tx_port)];
        let rx = rx_frame(r);
        let tx = &r.tx[..usize::from(r.tx_len)];
        let learned = txok
            .then(|| offload::learn(&rx, tx, rxd.ifindex, txd.ifindex, r.mtu))
            .flatten();
        let Some((key, mut action)) = learned else {
            self.stats.refused.fetch_add(1, Relaxed);
            return;
        };
        action.epoch = self.epoch;
        // Still there and still established (a FIN may have passed).
        let tcp = key.proto == PROTO_TCP;
        match ct.tcp_state(conn) {
            None => return,
            Some(s) if tcp && s != TcpState::Established => return,
            _ => {}
        }
        // The key of another connection's entry (it went meanwhile).
        if let Some(old) = self.entries.get(&key)
            && !old.conn.same_conn(&conn)
        {
            self.remove(shared, &key, false);
        }
        if self.prog.insert(&key, &action).is_err() {
            self.stats.map_full.fetch_add(1, Relaxed);
            return;
        }
        // Installed, then still live: a connection that went meanwhile
        // (its expiry or a removal did not see the bit) loses the entry.
        ct.offload_mark(conn, dir, true, false);
        if ct.tcp_state(conn).is_none() {
            self.prog.remove(&key);
            ct.offload_mark(conn, dir, false, false);
            return;
        }
        if tcp {
            ct.tcp_liberal_conn(conn);
        }
        self.stats.inserted.fetch_add(1, Relaxed);
        self.entries.insert(
            key,
            Entry {
                conn,
                dir,
                oif: r.oif,
                nexthop: r.nexthop,
                dmac: action.dmac,
                packets: 0,
                bytes: 0,
            },
        );
        let keys = self.by_conn.entry(conn.index()).or_default();
        if !keys.contains(&key) {
            keys.push(key);
        }
        self.stats.entries.store(self.entries.len() as u64, Relaxed);
    }

    /// Removes one entry; `forget` lets the workers ask for it again.
    fn remove(&mut self, shared: &Shared, key: &FlowKey, forget: bool) {
        if let Some(e) = self.entries.remove(key) {
            self.prog.remove(key);
            shared.conntrack.offload_mark(e.conn, e.dir, false, forget);
            self.stats.removed.fetch_add(1, Relaxed);
            if let Some(keys) = self.by_conn.get_mut(&e.conn.index()) {
                keys.retain(|k| k != key);
                if keys.is_empty() {
                    self.by_conn.remove(&e.conn.index());
                }
            }
        }
        self.stats.entries.store(self.entries.len() as u64, Relaxed);
    }

    /// Removes connection `c`'s entries (its counts folded first).
    fn teardown(&mut self, shared: &Shared, c: ConnId) {
        let keys: Vec<FlowKey> = self
            .by_conn
            .get(&c.index())
            .into_iter()
            .flatten()
            .filter(|k| self.entries.get(*k).is_some_and(|e| e.conn.same_conn(&c)))
            .copied()
            .collect();
        for k in keys {
            self.fold(shared, &k);
            self.remove(shared, &k, false);
        }
    }

    /// Empties the map: nothing the workers decided before holds now.
    pub fn flush(&mut self, shared: &Shared) {
        // One write voids every entry in the program at once; removing
        // them from the map is then housekeeping.
        self.epoch = self.epoch.wrapping_add(1);
        if let Err(e) = self.prog.set_epoch(self.epoch) {
            eprintln!("xgate: offload: {e}");
        }
        let keys: Vec<FlowKey> = self.entries.keys().copied().collect();
        for k in &keys {
            self.fold(shared, k);
            self.prog.remove(k);
            if let Some(e) = self.entries.get(k) {
                shared.conntrack.offload_mark(e.conn, e.dir, false, false);
            }
        }
        self.stats.removed.fetch_add(keys.len() as u64, Relaxed);
        self.entries.clear();
        self.by_conn.clear();
        shared.conntrack.offload_flush();
        self.stats.flushes.fetch_add(1, Relaxed);
        self.stats.entries.store(0, Relaxed);
    }

    /// Moves the program's counts of `key` into its connection; false if
    /// the entry or the connection is gone.
    fn fold(&mut self, shared: &Shared, key: &FlowKey) -> bool {
        let Some(e) = self.entries.get_mut(key) else {
            return false;
        };
        let Some(a) = self.prog.get(key) else {
            return false;
        };
        let (dp, db) = (
            a.packets.saturating_sub(e.packets),
            a.bytes.saturating_sub(e.bytes),
        );
        e.packets = a.packets;
        e.bytes = a.bytes;
        if dp == 0 {
            return shared.conntrack.get(e.conn).is_some();
        }
        shared
            .conntrack
            .offload_fold(e.conn, e.dir, dp as u32, db, a.last_seen)
    }

    fn scan(&mut self, shared: &Shared, now: u64) {
        self.refresh_ports(shared);
        if let Ok(o) = self.prog.outcomes() {
            for (a, v) in self.stats.outcomes.iter().zip(o) {
                a.store(v, Relaxed);
            }
        }
        let keys: Vec<FlowKey> = self.entries.keys().copied().collect();
        for k in keys {
            if !self.entries.contains_key(&k) {
                continue; // its connection went with an earlier key
            }
            if !self.fold(shared, &k) {
                self.remove(shared, &k, false);
                continue;
            }
            let e = &self.entries[&k];
            let (conn, oif, nexthop, dmac) = (e.conn, e.oif, e.nexthop, e.dmac);
            let ct = &shared.conntrack;
            // Expired by its traffic (the program's last-seen time is in
            // it now): the entries go first, then the connection, so its
            // NAT binding is never reused while an entry translates to it.
            if ct.get(conn).is_none_or(|f| f.remaining_ms(now) == 0) {
                self.teardown(shared, conn);
                ct.expire_due(conn, now);
                continue;
            }
            if k.proto == PROTO_TCP && ct.tcp_state(conn) != Some(TcpState::Established) {
                self.remove(shared, &k, false);
                continue;
            }
            // The neighbour went or moved: the workers resolve it again
            // (and may ask anew). Merely unconfirmed, it stays (nothing
            // confirms a neighbour the workers no longer send to).
            if shared.neighbors.mac(oif, nexthop) != Some(dmac) {
                self.remove(shared, &k, true);
                continue;
            }
            let port = self.tables.interfaces.hot(oif).port;
            if !self.tx.get(usize::from(port)).copied().unwrap_or(false) {
                // The device may take redirects again later: ask anew then.
                self.remove(shared, &k, true);
            }
        }
    }
}

/// The frame a learned record's packet arrived as: sent to the ingress
/// interface's MAC (the entry takes only such frames), its tag, its
/// headers; the source MAC does not matter.
fn rx_frame(r: &Learned) -> Vec<u8> {
    let mut f = r.rx_mac.to_vec();
    f.extend_from_slice(&[0; 6]);
    if r.rx_vlan != 0 {
        f.extend_from_slice(&[0x81, 0x00]);
        f.extend_from_slice(&r.rx_vlan.to_be_bytes());
    }
    let et: u16 = if r.rx[0] >> 4 == 6 { 0x86dd } else { 0x0800 };
    f.extend_from_slice(&et.to_be_bytes());
    f.extend_from_slice(&r.rx[..usize::from(r.rx_len)]);
    f
}
