//! Publication of the dataplane tables to the workers, RCU style, and the
//! changes that produce new tables: a config reload and live route changes.
//!
//! # Design
//!
//! The tables a worker reads ([`Tables`]: interfaces, FIB, ruleset) are
//! immutable. A change builds a complete new [`Snapshot`] beside the old
//! one and publishes it with one atomic pointer store
//! ([`arc_swap::ArcSwap`]), then bumps a generation counter. A worker
//! polls between two batches ([`TablesHandle::apply`]): when the
//! generation is the one it saw last, that costs one relaxed-cache atomic
//! load and nothing else; otherwise it loads the new snapshot and switches
//! its pipeline over (`Pipeline::set_tables`). A batch therefore always
//! runs against one consistent set of tables, and no packet waits for a
//! lock or is dropped because of a reload.
//!
//! Reclamation is `Arc` counting, our grace period: a replaced snapshot
//! goes to a retired list, and the control thread frees it
//! ([`Publisher::collect_retired`], once per control loop) when no
//! worker's pipeline or view holds it or its tables any more. A worker
//! that is slow to poll only delays that moment; it never reads freed
//! memory, and never pays for freeing a full RIB itself.
//!
//! What a reload keeps: connections, NAT bindings and learned neighbours
//! live in [`Shared`], which a reload never replaces. New NAT addresses
//! are registered with the shared port allocator before the tables that
//! use them are published; static neighbours of the new config are
//! inserted and those the config dropped removed. A connection whose rule
//! disappeared keeps its translation until it expires (netfilter does the
//! same: NAT is decided on a connection's first packet only). A reload
//! that would change the set of devices (ports) is refused: the AF_XDP
//! sockets and queues are set up at start. Settings read only at start
//! (`[dataplane]`, `[timeouts]`, `[control]`) are reported as warnings.
//!
//! Mirrored state ([`Publisher::mirror_apply`], fed by `crate::mirror`):
//! routes and addresses the kernel holds for the taps. They are kept here
//! and laid over every compile of the config (a reload keeps them): a
//! mirrored route goes into its table unless a config route has the same
//! table, prefix and metric (the config wins; the mirrored one is kept,
//! counted as shadowed, and takes over if the config route goes);
//! mirrored addresses replace the config's addresses of their interface.
//! A batch of route changes clones the current FIB, changes it and
//! publishes it like a `ctl route add`; a change of addresses recompiles
//! the config (connected routes, NAT addresses, gateways) with the new
//! ones, keeps the running ruleset and its counters, and flushes the
//! connections masqueraded to an address that went away (Linux's
//! `nf_nat_masquerade` does the same on an address's removal).
//!
//! Live route changes ([`Publisher::route_add`], [`Publisher::route_del`])
//! clone the current FIB, change the clone and publish it with the same
//! ruleset; workers keep their rule counters across them. They are not
//! written back to the config: the next full reload re-reads the file and
//! drops them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use ipnet::IpNet;

use arc_swap::ArcSwap;
use xgate_dataplane::filter::RuleCounters;
use xgate_dataplane::iface::IfIndex;
use xgate_dataplane::pipeline::{Pipeline, Shared, Tables};
use xgate_dataplane::stats::WorkerStats;

use crate::compile::{self, Compiled};
use crate::config::{self, Config, ConfigError};
use crate::iptables;
use crate::mirror::{MirrorStatus, MirroredRoute, RouteKey};
use crate::routes::{self, RouteSpec};
use xgate_dataplane::addr::ip_key;
use xgate_dataplane::iface::Interfaces;
use xgate_dataplane::route::{Fib, Route};

/// A device's MAC when the config sets none: (device, port) -> MAC.
pub type DeviceMac = dyn Fn(&str, usize) -> Option<[u8; 6]> + Send + Sync;

/// One published version of the tables, with what the control plane
/// needs to describe them.
#[derive(Debug)]
pub struct Snapshot {
    pub tables: Arc<Tables>,
    /// 1 for the tables of the start, +1 per publication.
    pub generation: u64,
    /// Changes whenever the ruleset does (a reload); a route change keeps
    /// it, so workers keep their rule counters.
    pub ruleset_epoch: u64,
    /// The ruleset as parsed, the model `tables.filter` was compiled from
    /// (for `xgate ctl rules`: iptables-save text).
    pub iptables: Arc<iptables::FirewallRules>,
    /// Kernel device of each port.
    pub devices: Arc<Vec<String>>,
    /// TAP device of each tap id.
    pub taps: Arc<Vec<String>>,
}

/// The published snapshot and its generation, shared with the workers.
#[derive(Debug)]
struct Board {
    current: ArcSwap<Snapshot>,
    generation: AtomicU64,
}

/// What a successful reload did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReloadReport {
    pub generation: u64,
    /// One line on what is now published.
    pub summary: String,
    /// Changes that take effect only at the next start.
    pub warnings: Vec<String>,
}

struct State {
    config: Config,
    static_neighbors: Vec<(IfIndex, u128, [u8; 6])>,
    next_epoch: u64,
    mirror: MirrorRoutes,
    /// `xgate ctl ipset` changes since the start, replayed onto the sets a
    /// reload reads (as the kernel's ipsets outlive `iptables-restore`).
    ipset_ops: Vec<IpsetOp>,
}

/// A live change of an ipset (`xgate ctl ipset add|del|flush`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IpsetOp {
    /// Set name and element text (read as the set's type reads it).
    Add(String, String),
    Del(String, String),
    Flush(String),
}

impl std::fmt::Display for IpsetOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IpsetOp::Add(n, e) => write!(f, "add {n} {e}"),
            IpsetOp::Del(n, e) => write!(f, "del {n} {e}"),
            IpsetOp::Flush(n) => write!(f, "flush {n}"),
        }
    }
}

impl IpsetOp {
    fn name(&self) -> &str {
        match self {
            IpsetOp::Add(n, _) | IpsetOp::Del(n, _) | IpsetOp::Flush(n) => n,
        }
    }

    /// Applies the change to the set of its name among `sets`.
    fn apply(&self, sets: &iptables::FirewallRules) -> Result<(), String> {
        let set = sets
            .ipsets
            .get(self.name())
            .ok_or_else(|| format!("no ipset {} in the running config", self.name()))?;
        match self {
            IpsetOp::Add(_, e) => set.add(crate::iptables::ipset::element_for(set, e)?),
            IpsetOp::Del(_, e) => set.del(crate::iptables::ipset::element_for(set, e)?),
            IpsetOp::Flush(_) => {
                set.flush();
                Ok(())
            }
        }
    }
}

/// What the kernel gave xgate through the mirror (see the module comment).
#[derive(Debug, Default)]
pub struct MirrorRoutes {
    pub routes: HashMap<RouteKey, Mirrored>,
    /// The mirrored addresses of each interface, by name.
    pub addresses: BTreeMap<String, Vec<IpNet>>,
}

/// One mirrored route.
#[derive(Debug)]
pub struct Mirrored {
    pub route: Route,
    /// The kernel's `rtm_protocol`.
    pub proto: u8,
    /// In xgate's table (false: a config route of the same key hides it).
    pub installed: bool,
}

/// A next hop as the kernel names it: gateway and interface.
pub type NexthopId = (Option<std::net::IpAddr>, IfIndex);

/// One batch of the mirror.
#[derive(Debug, Default)]
pub struct MirrorChanges {
    /// A resync: `routes` is every mirrored route, the others go.
    pub full: bool,
    /// The new state of each changed key (None: deleted).
    pub routes: Vec<(RouteKey, Option<MirroredRoute>)>,
    /// Next hops (gateway, interface) removed from a mirrored multipath
    /// route the kernel keeps; keys not in `routes`.
    pub nexthops_gone: Vec<(RouteKey, Vec<NexthopId>)>,
    /// The whole new address list of each interface whose list changed.
    pub addresses: Vec<(IfIndex, Vec<IpNet>)>,
}

/// What a mirror batch did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MirrorApplied {
    /// The generation published, or the current one when the batch
    /// changed nothing (`published` false).
    pub generation: u64,
    pub published: bool,
    pub installed: usize,
    pub shadowed: usize,
    /// Connections flushed because their masquerade address went away.
    pub flushed: u64,
}

/// A config whose mirroring interfaces have the kernel's addresses.
fn with_mirrored_addresses(cfg: &Config, m: &MirrorRoutes) -> Config {
    let mut c = cfg.clone();
    for i in &mut c.interfaces {
        if i.mirror.addresses
            && let Some(a) = m.addresses.get(&i.name)
        {
            i.addresses = a.clone();
        }
    }
    c
}

/// Puts a mirrored route in `fib` unless a route of the config (or `ctl
/// route add`) has its key. Returns whether it is installed.
fn install(fib: &mut Fib, k: &RouteKey, r: &Route) -> bool {
    let t = fib.table_mut(k.table);
    if t.get(k.prefix, k.len).iter().any(|x| x.metric == k.metric) {
        return false;
    }
    t.try_replace(r.clone()).is_ok()
}

/// Lays every mirrored route over a freshly compiled `fib`, moving their
/// interfaces from `old` numbering to `new` by name (a route whose
/// interface is gone is dropped).
fn overlay(fib: &mut Fib, m: &mut MirrorRoutes, old: &Interfaces, new: &Interfaces) {
    let remap: Vec<Option<IfIndex>> = old.iter().map(|(_, i)| new.by_name(&i.name)).collect();
    m.routes.retain(|_, r| {
        for nh in &mut r.route.nexthops {
            match remap.get(nh.dev as usize).copied().flatten() {
                Some(d) => nh.dev = d,
                None => return false,
            }
        }
        true
    });
    for (k, r) in m.routes.iter_mut() {
        r.installed = install(fib, k, &r.route);
    }
}

fn counts(m: &MirrorRoutes) -> (usize, usize) {
    let installed = m.routes.values().filter(|r| r.installed).count();
    (installed, m.routes.len() - installed)
}

/// Owns the config path and publishes tables to the workers. Reloads and
/// route changes are serialised; readers never wait for them.
pub struct Publisher {
    path: PathBuf,
    shared: Arc<Shared>,
    board: Arc<Board>,
    device_mac: Box<DeviceMac>,
    state: Mutex<State>,
    /// Snapshots replaced but maybe still run by a worker.
    retired: Mutex<Vec<Arc<Snapshot>>>,
    /// Reloads that published new tables.
    pub reloads: AtomicU64,
    /// Reloads refused (invalid config, changed devices).
    pub reload_failures: AtomicU64,
    /// What the netlink mirror reports (`xgate ctl mirror`).
    mirror_status: Mutex<MirrorStatus>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("path", &self.path)
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

impl Publisher {
    /// Loads and compiles the config at `path` and builds the shared state
    /// (connection table of `[dataplane] flows`, NAT addresses, static
    /// neighbours): what `xgate run` does at start.
    pub fn load(path: &Path, device_mac: Box<DeviceMac>) -> Result<Publisher, Vec<ConfigError>> {
        let cfg = config::load(path)?;
        let compiled = compile::compile(&cfg, &*device_mac)?;
        let shared = Arc::new(compile::shared_state(&compiled, cfg.dataplane.flows, None));
        Self::new(path, cfg, compiled, shared, device_mac)
    }

    /// A publisher for tables already compiled from `cfg` (read from
    /// `path`), whose shared state is `shared`.
    pub fn new(
        path: &Path,
        cfg: Config,
        compiled: Compiled,
        shared: Arc<Shared>,
        device_mac: Box<DeviceMac>,
    ) -> Result<Publisher, Vec<ConfigError>> {
        let snapshot = Snapshot {
            tables: Arc::new(compiled.tables),
            generation: 1,
            ruleset_epoch: 1,
            iptables: Arc::new(compiled.iptables),
            devices: Arc::new(compiled.devices),
            taps: Arc::new(compiled.taps),
        };
        Ok(Publisher {
            path: path.to_path_buf(),
            shared,
            board: Arc::new(Board {
                current: ArcSwap::from_pointee(snapshot),
                generation: AtomicU64::new(1),
            }),
            device_mac,
            state: Mutex::new(State {
                config: cfg,
                static_neighbors: compiled.static_neighbors,
                next_epoch: 2,
                mirror: MirrorRoutes::default(),
                ipset_ops: Vec::new(),
            }),
            retired: Mutex::new(Vec::new()),
            reloads: AtomicU64::new(0),
            reload_failures: AtomicU64::new(0),
            mirror_status: Mutex::new(MirrorStatus::default()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The state every worker shares (connections, NAT, neighbours).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The snapshot published last.
    pub fn current(&self) -> Arc<Snapshot> {
        self.board.current.load_full()
    }

    /// The tables published last (what a new worker starts with).
    pub fn tables(&self) -> Arc<Tables> {
        self.current().tables.clone()
    }

    pub fn generation(&self) -> u64 {
        self.board.generation.load(Ordering::Acquire)
    }

    /// The config the current tables were compiled from.
    pub fn config(&self) -> Config {
        self.lock().config.clone()
    }

    /// A worker's view of the publications; call
    /// [`TablesHandle::apply`] between batches.
    pub fn subscribe(&self) -> TablesHandle {
        TablesHandle {
            board: self.board.clone(),
            seen: 0,
            epoch: 0,
        }
    }

    /// The mirror's report (`xgate ctl mirror`).
    pub fn mirror_status(&self) -> MutexGuard<'_, MirrorStatus> {
        self.mirror_status.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Calls `f` with the mirrored routes and addresses (for `ctl routes`,
    /// which names each mirrored route's protocol). Publications wait
    /// while `f` runs.
    pub fn with_mirrored<R>(&self, f: impl FnOnce(&MirrorRoutes) -> R) -> R {
        f(&self.lock().mirror)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (every
        // change is published last): carry on.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(&self, snapshot: Snapshot) -> u64 {
        let g = snapshot.generation;
        let old = self.board.current.swap(Arc::new(snapshot));
        self.board.generation.store(g, Ordering::Release);
        // Kept until every worker has moved on, then freed here by
        // `collect_retired` on the control thread, never by a worker (a
        // full RIB takes milliseconds to free).
        self.retired
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(old);
        g
    }

    /// Frees the tables no worker runs any more (call from the control
    /// thread, e.g. once per loop). Returns how many were freed.
    pub fn collect_retired(&self) -> usize {
        let mut r = self.retired.lock().unwrap_or_else(|e| e.into_inner());
        let before = r.len();
        // Only the retired list holds the snapshot and its tables: the
        // workers and their views have switched.
        r.retain(|s| Arc::strong_count(s) > 1 || Arc::strong_count(&s.tables) > 1);
        before - r.len()
    }

    /// Re-reads and compiles the config file and publishes it. A config
    /// with any error changes nothing and returns every error; so does
    /// one that changes the set of devices (restart needed).
    pub fn reload(&self) -> Result<ReloadReport, Vec<ConfigError>> {
        let res = self.try_reload();
        match &res {
            Ok(_) => self.reloads.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.reload_failures.fetch_add(1, Ordering::Relaxed),
        };
        res
    }

    fn try_reload(&self) -> Result<ReloadReport, Vec<ConfigError>> {
        let mut st = self.lock();
        let cfg = config::load(&self.path)?;
        let mut compiled = compile::compile(
            &with_mirrored_addresses(&cfg, &st.mirror),
            &*self.device_mac,
        )?;
        let cur = self.current();
        if *cur.devices != compiled.devices {
            let line = cfg.interfaces.first().map_or(1, |i| i.line);
            return Err(vec![ConfigError::new(
                &cfg.source,
                line,
                "interface",
                format!(
                    "the devices change ({} -> {}): ports are set up at start, restart xgate to apply",
                    cur.devices.join(", "),
                    compiled.devices.join(", ")
                ),
            )]);
        }
        if *cur.taps != compiled.taps {
            let line = cfg.interfaces.first().map_or(1, |i| i.line);
            return Err(vec![ConfigError::new(
                &cfg.source,
                line,
                "interface",
                format!(
                    "the taps change ([{}] -> [{}]): taps are created at start, restart xgate to apply",
                    cur.taps.join(", "),
                    compiled.taps.join(", ")
                ),
            )]);
        }
        // Addresses first: the new tables may translate to them at once.
        for a in &compiled.nat_addresses {
            if self.shared.nat.register(*a).is_err() {
                let line = cfg.firewall.as_ref().map_or(1, |f| f.line);
                return Err(vec![ConfigError::new(
                    &cfg.source,
                    line,
                    "firewall",
                    "the NAT address registry is full (addresses of earlier configs stay \
                     registered): restart xgate to apply",
                )]);
            }
        }
        let neigh = &self.shared.neighbors;
        for old in &st.static_neighbors {
            if !compiled.static_neighbors.contains(old) {
                neigh.remove(old.0, old.1);
            }
        }
        for (dev, key, mac) in &compiled.static_neighbors {
            neigh.insert_static(*dev, *key, mac);
        }
        // Window checking on or off for connections opened from now on
        // (those opened while liberal stay unchecked).
        self.shared
            .conntrack
            .set_tcp_be_liberal(compiled.tcp_be_liberal);
        let mut warnings = restart_only_changes(&st.config, &cfg);
        // The live ipset changes go on in the sets just read; one that no
        // longer applies (its set is gone, its element already there or
        // no longer) is dropped and said.
        let ops = std::mem::take(&mut st.ipset_ops);
        for op in ops {
            match op.apply(&compiled.iptables) {
                Ok(()) => st.ipset_ops.push(op),
                Err(e) => warnings.push(format!("ctl ipset {op}: not kept: {e}")),
            }
        }
        // What the kernel gave stays (the config wins where both have a
        // route of the same key).
        overlay(
            &mut compiled.tables.fib,
            &mut st.mirror,
            &cur.tables.interfaces,
            &compiled.tables.interfaces,
        );
        let (_, shadowed) = counts(&st.mirror);
        self.mirror_status().shadowed = shadowed;
        let summary = format!(
            "{}: {} interfaces, {} routes, {} firewall rules",
            cfg.source,
            compiled.tables.interfaces.len(),
            compiled
                .tables
                .fib
                .tables()
                .map(|(_, t)| t.len())
                .sum::<usize>(),
            compiled.tables.filter.rule_count(),
        );
        let new_bridges = compiled.tables.bridges.clone();
        if new_bridges.fdb_slots > self.shared.fdb.capacity() {
            warnings.push(format!(
                "the bridges' fdb_max ({}) exceeds the MAC table made at start ({} entries): \
                 restart xgate to apply",
                new_bridges.fdb_slots,
                self.shared.fdb.capacity()
            ));
        }
        let epoch = st.next_epoch;
        st.next_epoch += 1;
        let generation = self.publish(Snapshot {
            tables: Arc::new(compiled.tables),
            generation: cur.generation + 1,
            ruleset_epoch: epoch,
            iptables: Arc::new(compiled.iptables),
            devices: cur.devices.clone(),
            taps: cur.taps.clone(),
        });
        // Port numbers may name other interfaces now: the bridges learn
        // again (floods until they have).
        if !cur.tables.bridges.same_layout(&new_bridges) {
            self.shared.fdb.flush();
        }
        for (b, vid, mac, _) in new_bridges.install_static(&self.shared.fdb) {
            warnings.push(format!(
                "static MAC {} (bridge {b}, VLAN {vid}) found no free slot in the MAC table",
                xgate_dataplane::packet::ether::fmt_mac(&mac)
            ));
        }
        st.config = cfg;
        st.static_neighbors = compiled.static_neighbors;
        Ok(ReloadReport {
            generation,
            summary,
            warnings,
        })
    }

    /// `ipset add|del|flush` on a running set: the workers see the new
    /// contents at their next lookup; the change is kept across reloads.
    pub fn ipset(&self, op: IpsetOp) -> Result<(), String> {
        let mut st = self.lock();
        op.apply(&self.current().iptables)?;
        if let IpsetOp::Flush(name) = &op {
            st.ipset_ops.retain(|o| o.name() != name);
        }
        st.ipset_ops.push(op);
        Ok(())
    }

    /// `ip route add`: publishes the current tables with one more route.
    /// Returns the new generation.
    pub fn route_add(&self, spec: &RouteSpec) -> Result<u64, String> {
        self.change_fib(|t, fib, _| {
            let r = routes::resolve(spec, &t.interfaces, fib)?;
            fib.table_mut(spec.table).add(r).map_err(|e| e.to_string())
        })
    }

    /// `ip route del`: the route `spec.to` of `spec.table` with
    /// `spec.metric` (the active one when the metric is 0 and no route of
    /// metric 0 exists). A route mirrored from the kernel is refused (the
    /// kernel owns it); a mirrored route the deleted one shadowed takes
    /// its place.
    pub fn route_del(&self, spec: &RouteSpec) -> Result<u64, String> {
        self.change_fib(|_, fib, mirror| {
            let table = fib
                .table(spec.table)
                .ok_or_else(|| format!("no table {}", spec.table))?;
            let (p, l) = (spec.to.addr(), spec.to.prefix_len());
            let routes = table.get(p, l);
            let metric = if routes.iter().any(|r| r.metric == spec.metric) {
                spec.metric
            } else if spec.metric == 0 {
                routes.first().ok_or("no such route")?.metric
            } else {
                return Err("no such route".into());
            };
            let key = RouteKey {
                table: spec.table,
                prefix: p,
                len: l,
                metric,
            };
            if let Some(m) = mirror.routes.get(&key).filter(|m| m.installed) {
                return Err(format!(
                    "{} metric {metric} is mirrored from the kernel (proto {}): delete it there \
                     (ip route del)",
                    spec.to,
                    crate::mirror::proto_name(m.proto)
                ));
            }
            fib.table_mut(spec.table)
                .del(p, l, Some(metric))
                .map_err(|e| e.to_string())?;
            if let Some(m) = mirror.routes.get_mut(&key) {
                m.installed = install(fib, &key, &m.route);
            }
            Ok(())
        })
    }

    fn change_fib(
        &self,
        change: impl FnOnce(
            &Tables,
            &mut xgate_dataplane::route::Fib,
            &mut MirrorRoutes,
        ) -> Result<(), String>,
    ) -> Result<u64, String> {
        let mut st = self.lock();
        let cur = self.current();
        let t = &cur.tables;
        let mut fib = t.fib.clone();
        change(t, &mut fib, &mut st.mirror)?;
        let tables = Tables {
            interfaces: t.interfaces.clone(),
            fib,
            icmp: t.icmp,
            filter: t.filter.clone(),
            tracking: t.tracking,
            helper_ports: t.helper_ports.clone(),
            ct_checksum: t.ct_checksum,
            bridges: t.bridges.clone(),
        };
        Ok(self.publish(Snapshot {
            tables: Arc::new(tables),
            generation: cur.generation + 1,
            ruleset_epoch: cur.ruleset_epoch,
            iptables: cur.iptables.clone(),
            devices: cur.devices.clone(),
            taps: cur.taps.clone(),
        }))
    }
}

impl Publisher {
    /// Publishes one batch of the mirror: route changes on a clone of the
    /// current FIB; address changes by recompiling the config with the
    /// kernel's addresses (see the module comment). One publication.
    pub fn mirror_apply(&self, ch: MirrorChanges) -> Result<MirrorApplied, String> {
        let mut st = self.lock();
        let cur = self.current();
        let ifs = &cur.tables.interfaces;
        let mut addr_changed = Vec::new();
        for (i, list) in ch.addresses {
            if (i as usize) >= ifs.len() {
                continue;
            }
            let name = ifs.get(i).name.clone();
            let now = config_or_mirrored(&st, &name);
            if now.as_deref() != Some(list.as_slice()) {
                addr_changed.push(i);
            }
            st.mirror.addresses.insert(name, list);
        }
        // Deletions of keys never mirrored (a kernel route xgate ignored
        // or found unusable) change nothing.
        let mut changes: Vec<_> = ch
            .routes
            .into_iter()
            .filter(|(k, new)| new.is_some() || st.mirror.routes.contains_key(k))
            .collect();
        for (k, gone) in ch.nexthops_gone {
            let Some(m) = st.mirror.routes.get(&k) else {
                continue;
            };
            let mut route = m.route.clone();
            route.nexthops.retain(|n| !gone.contains(&(n.via, n.dev)));
            if route.nexthops.len() == m.route.nexthops.len() {
                continue;
            }
            let proto = m.proto;
            changes.push((
                k,
                (!route.nexthops.is_empty()).then_some(MirroredRoute {
                    key: k,
                    route,
                    proto,
                }),
            ));
        }
        if ch.full {
            let keep: HashSet<RouteKey> = changes.iter().map(|(k, _)| *k).collect();
            changes.extend(
                st.mirror
                    .routes
                    .keys()
                    .filter(|k| !keep.contains(k))
                    .map(|k| (*k, None))
                    .collect::<Vec<_>>(),
            );
        }
        if addr_changed.is_empty() && changes.is_empty() && !ch.full {
            let (installed, shadowed) = counts(&st.mirror);
            return Ok(MirrorApplied {
                generation: cur.generation,
                published: false,
                installed,
                shadowed,
                flushed: 0,
            });
        }
        if addr_changed.is_empty() {
            let mut fib = cur.tables.fib.clone();
            for (k, new) in changes {
                if let Some(old) = st.mirror.routes.remove(&k)
                    && old.installed
                {
                    let _ = fib.table_mut(k.table).del(k.prefix, k.len, Some(k.metric));
                }
                if let Some(n) = new {
                    let installed = install(&mut fib, &k, &n.route);
                    st.mirror.routes.insert(
                        k,
                        Mirrored {
                            route: n.route,
                            proto: n.proto,
                            installed,
                        },
                    );
                }
            }
            let (installed, shadowed) = counts(&st.mirror);
            let generation = self.publish_tables(&cur, cur.tables.interfaces.clone(), fib);
            return Ok(MirrorApplied {
                generation,
                published: true,
                installed,
                shadowed,
                flushed: 0,
            });
        }
        // Addresses changed: the routes into the state, then a compile of
        // the config with the kernel's addresses and every mirrored route
        // laid over it.
        for (k, new) in changes {
            st.mirror.routes.remove(&k);
            if let Some(n) = new {
                st.mirror.routes.insert(
                    k,
                    Mirrored {
                        route: n.route,
                        proto: n.proto,
                        installed: false,
                    },
                );
            }
        }
        let eff = with_mirrored_addresses(&st.config, &st.mirror);
        let mut compiled = compile::compile(&eff, &*self.device_mac).map_err(|errs| {
            let lines: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
            format!(
                "the kernel's addresses do not compile with the config, tables unchanged: {}",
                lines.join("; ")
            )
        })?;
        overlay(
            &mut compiled.tables.fib,
            &mut st.mirror,
            &cur.tables.interfaces,
            &compiled.tables.interfaces,
        );
        let mut warnings = Vec::new();
        for a in &compiled.nat_addresses {
            if self.shared.nat.register(*a).is_err() {
                warnings.push(a);
            }
        }
        // Connections masqueraded to an address that went away.
        let mut gone = Vec::new();
        for &i in &addr_changed {
            let (old, new) = (ifs.get(i), compiled.tables.interfaces.get(i));
            for (a, _) in &old.v4 {
                if !new.v4.iter().any(|(b, _)| b == a) {
                    gone.push(ip_key((*a).into()));
                }
            }
            for (a, _) in &old.v6 {
                if !new.v6.iter().any(|(b, _)| b == a) {
                    gone.push(ip_key((*a).into()));
                }
            }
        }
        let (installed, shadowed) = counts(&st.mirror);
        let generation = self.publish_tables(&cur, compiled.tables.interfaces, compiled.tables.fib);
        // Flushed once no worker runs the old tables, so no packet can
        // open a connection to the old address after the flush.
        wait_unused(&cur.tables, std::time::Duration::from_millis(500));
        let flushed = flush_masqueraded(&self.shared, &gone);
        drop(st);
        if !warnings.is_empty() {
            self.mirror_status().last_error = Some(format!(
                "the NAT address registry is full: {} new address(es) cannot be NAT sources \
                 until a restart",
                warnings.len()
            ));
        }
        Ok(MirrorApplied {
            generation,
            published: true,
            installed,
            shadowed,
            flushed,
        })
    }

    /// Publishes `cur`'s tables with other interfaces and FIB (same
    /// ruleset and epoch: workers keep their rule counters).
    fn publish_tables(&self, cur: &Snapshot, interfaces: Interfaces, fib: Fib) -> u64 {
        let t = &cur.tables;
        let tables = Tables {
            interfaces,
            fib,
            icmp: t.icmp,
            filter: t.filter.clone(),
            tracking: t.tracking,
            helper_ports: t.helper_ports.clone(),
            ct_checksum: t.ct_checksum,
            bridges: t.bridges.clone(),
        };
        self.publish(Snapshot {
            tables: Arc::new(tables),
            generation: cur.generation + 1,
            ruleset_epoch: cur.ruleset_epoch,
            iptables: cur.iptables.clone(),
            devices: cur.devices.clone(),
            taps: cur.taps.clone(),
        })
    }
}

/// Waits (at most `limit`) until only the snapshot holds `tables`: every
/// worker and view has moved to newer ones.
fn wait_unused(tables: &Arc<Tables>, limit: std::time::Duration) {
    let t = std::time::Instant::now();
    while Arc::strong_count(tables) > 1 && t.elapsed() < limit {
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
}

/// The addresses interface `name` has now: mirrored, else the config's.
fn config_or_mirrored(st: &State, name: &str) -> Option<Vec<IpNet>> {
    st.mirror
        .addresses
        .get(name)
        .cloned()
        .or_else(|| st.config.interface(name).map(|i| i.addresses.clone()))
}

/// Removes the connections whose source was translated to one of `gone`
/// (their reply goes to it): what Linux's masquerade does when an address
/// is removed. Returns how many.
pub fn flush_masqueraded(shared: &Shared, gone: &[u128]) -> u64 {
    if gone.is_empty() {
        return 0;
    }
    let ct = &shared.conntrack;
    let mut picked = Vec::new();
    ct.for_each(|id, f| {
        if gone.contains(&f.reply.dst) && f.original.src != f.reply.dst {
            picked.push(id);
        }
    });
    picked.into_iter().filter(|id| ct.remove(*id)).count() as u64
}

/// Settings a running dataplane reads only at start.
fn restart_only_changes(old: &Config, new: &Config) -> Vec<String> {
    let mut w = Vec::new();
    let mut check = |changed: bool, what: &str| {
        if changed {
            w.push(format!("{what} changed: takes effect at the next start"));
        }
    };
    check(old.dataplane != new.dataplane, "[dataplane]");
    check(old.timeouts != new.timeouts, "[timeouts]");
    check(old.control != new.control, "[control]");
    check(old.mirror != new.mirror, "[mirror]");
    check(
        old.interfaces
            .iter()
            .map(|i| (&i.name, i.mirror))
            .collect::<Vec<_>>()
            != new
                .interfaces
                .iter()
                .map(|i| (&i.name, i.mirror))
                .collect::<Vec<_>>(),
        "an interface's mirror",
    );
    // The kernel's side of a tap (MAC, MTU, addresses, mirrored routes) is
    // set up at start.
    type Host<'a> = (
        Vec<(&'a str, Option<[u8; 6]>, u16, &'a [ipnet::IpNet])>,
        &'a [config::RouteCfg],
    );
    fn host(c: &Config) -> Host<'_> {
        let taps = c
            .interfaces
            .iter()
            .filter(|i| i.tap.is_some())
            .map(|i| (i.name.as_str(), i.mac, i.mtu, i.addresses.as_slice()))
            .collect();
        (taps, &c.routes)
    }
    if old.interfaces.iter().any(|i| i.tap.is_some()) {
        check(
            host(old) != host(new),
            "the kernel's side of the taps (addresses, routes)",
        );
    }
    w
}

/// A worker's subscription to the published tables.
#[derive(Debug)]
pub struct TablesHandle {
    board: Arc<Board>,
    seen: u64,
    epoch: u64,
}

impl TablesHandle {
    /// The newest snapshot if it is newer than the last one returned: one
    /// atomic load when nothing changed.
    #[inline]
    pub fn latest_snapshot(&mut self) -> Option<Arc<Snapshot>> {
        if self.board.generation.load(Ordering::Acquire) == self.seen {
            return None;
        }
        let s = self.board.current.load_full();
        self.seen = s.generation;
        Some(s)
    }

    /// The newest tables if they changed since the last call.
    #[inline]
    pub fn latest(&mut self) -> Option<Arc<Tables>> {
        self.latest_snapshot().map(|s| s.tables.clone())
    }

    /// What a worker calls between batches: switches `pipeline` to newer
    /// tables if there are any (keeping the rule counters when only the
    /// routes changed) and tells the control side through `view` which
    /// counters now go with which tables. Returns whether it switched.
    #[inline]
    pub fn apply(&mut self, pipeline: &mut Pipeline, view: &WorkerView) -> bool {
        match self.latest_snapshot() {
            None => false,
            Some(s) => {
                self.switch(pipeline, view, &s);
                true
            }
        }
    }

    #[cold]
    fn switch(&mut self, pipeline: &mut Pipeline, view: &WorkerView, s: &Snapshot) {
        let keep = (s.ruleset_epoch == self.epoch).then(|| pipeline.eval.counters.clone());
        pipeline.set_tables(s.tables.clone());
        pipeline.tables_gen = s.generation;
        if let Some(c) = keep {
            pipeline.eval.counters = c;
        }
        self.epoch = s.ruleset_epoch;
        view.set_current(
            pipeline.tables.clone(),
            pipeline.eval.counters.clone(),
            s.ruleset_epoch,
        );
    }
}

/// The tables a worker runs and the rule counters that go with them.
#[derive(Debug)]
pub struct WorkerTables {
    pub tables: Arc<Tables>,
    pub counters: Arc<RuleCounters>,
    /// The [`Snapshot::ruleset_epoch`] of `tables`; 0 when unknown (a
    /// pipeline built from tables the publisher did not publish).
    pub ruleset_epoch: u64,
}

/// The control thread's view of one worker: its counters, and which
/// tables and rule counters it runs now (the worker replaces its rule
/// counters when the ruleset changes).
#[derive(Debug)]
pub struct WorkerView {
    /// Worker number; worker i serves queues i, i + W, ... of every port.
    pub index: usize,
    pub stats: Arc<WorkerStats>,
    current: ArcSwap<WorkerTables>,
}

impl WorkerView {
    /// The view of a worker whose `pipeline` was built from tables of
    /// `publisher` (normally [`Publisher::tables`]).
    pub fn new(index: usize, pipeline: &Pipeline, publisher: &Publisher) -> Self {
        let cur = publisher.current();
        let epoch = if Arc::ptr_eq(&cur.tables, &pipeline.tables) {
            cur.ruleset_epoch
        } else {
            0
        };
        WorkerView {
            index,
            stats: pipeline.stats.clone(),
            current: ArcSwap::from_pointee(WorkerTables {
                tables: pipeline.tables.clone(),
                counters: pipeline.eval.counters.clone(),
                ruleset_epoch: epoch,
            }),
        }
    }

    pub fn set_current(&self, tables: Arc<Tables>, counters: Arc<RuleCounters>, epoch: u64) {
        self.current.store(Arc::new(WorkerTables {
            tables,
            counters,
            ruleset_epoch: epoch,
        }));
    }

    /// The worker's rule counters if they count `snapshot`'s ruleset
    /// (a worker that has not switched yet counts an older one).
    pub fn counters_for(&self, snapshot: &Snapshot) -> Option<Arc<RuleCounters>> {
        let cur = self.current.load();
        let same = if cur.ruleset_epoch == 0 {
            Arc::ptr_eq(&cur.tables, &snapshot.tables)
        } else {
            cur.ruleset_epoch == snapshot.ruleset_epoch
        };
        same.then(|| cur.counters.clone())
    }
}
