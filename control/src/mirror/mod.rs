//! The netlink mirror: the kernel's tools own the control plane, xgate's
//! tables follow (VPP's linux-cp is the model).
//!
//! For the interfaces whose `mirror` key asks for it, a control-plane
//! thread (never on the packet path) dumps, then follows over rtnetlink,
//! the addresses of their taps and the routes of `[mirror] tables` that
//! leave by them (`translate.rs` says which). Changes are coalesced per
//! route key for `[mirror] batch_ms` from the first one, then published
//! as one change of xgate's tables through the [`Publisher`], the path
//! `xgate ctl route add` and reload take (`Publisher::mirror_apply`): one
//! publication per batch, never one per route. A batch is gathered for at
//! least twice as long as the last publication took, so cloning a full
//! FIB can never take more than a third of a core.
//!
//! Faults: when the event socket overflows (ENOBUFS: changes were lost),
//! the queue is thrown away and everything is dumped again (a resync),
//! whose result replaces the mirrored set whole; so does the start. A
//! route xgate cannot carry is counted and listed (`xgate ctl mirror`),
//! never fatal. Memory is the mirrored set itself (one entry per kernel
//! route mirrored or unusable), the pending batch (at most one entry per
//! route key) and two 64 KiB buffers.

pub mod netlink;
pub mod translate;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::LinkAttribute;
use xgate_dataplane::iface::IfIndex;

use crate::config::Config;
use crate::publish::{MirrorChanges, Publisher};
use netlink::{Dumper, Events, Recv};
pub use translate::{MirroredRoute, RouteKey, RouteVerdict, TapIface, TapMap, proto_name};

/// Unusable routes listed by `xgate ctl mirror` at most (all are counted).
pub const MAX_LISTED: usize = 64;

/// What `xgate ctl mirror` reports; written by the mirror thread after
/// each batch and by the publisher.
#[derive(Clone, Debug, Default)]
pub struct MirrorStatus {
    pub running: bool,
    pub tables: Vec<u32>,
    /// The event socket's receive buffer as the kernel sized it.
    pub rx_buffer: usize,
    /// Interface name, whether it mirrors addresses, routes, its tap.
    pub interfaces: Vec<(String, bool, bool, String)>,
    /// Full dumps: the first, and one per overrun or failed read.
    pub resyncs: u64,
    /// Times the event socket overflowed (ENOBUFS).
    pub overruns: u64,
    /// Kernel messages read from the event socket.
    pub events: u64,
    /// Publications of xgate's tables the mirror made.
    pub publications: u64,
    /// Route changes in the last batch, and how long publishing it took.
    pub last_batch: usize,
    pub last_publish: Duration,
    /// Routes mirrored and in xgate's tables / mirrored but hidden by a
    /// config route of the same table, prefix and metric.
    pub installed: usize,
    pub shadowed: usize,
    /// Kernel routes in a mirrored table that xgate cannot carry.
    pub unusable: usize,
    /// The first [`MAX_LISTED`] of them with the reason.
    pub unusable_list: Vec<(RouteKey, String)>,
    /// Connections flushed because their masquerade address went away.
    pub flushed: u64,
    /// The last thing that went wrong (a failed dump, a publication the
    /// config refused), if any.
    pub last_error: Option<String>,
}

/// The running mirror thread; dropping it stops the thread.
pub struct MirrorThread {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Drop for MirrorThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// What the thread needs of the config: the taps and what each mirrors.
#[derive(Clone, Debug)]
pub struct MirrorPlan {
    /// (tap device, xgate interface index, interface name, addresses, routes)
    pub taps: Vec<(String, IfIndex, String, bool, bool)>,
    pub tables: Vec<u32>,
    pub batch: Duration,
    /// Receive buffer of the event socket, bytes.
    pub rx_buffer: usize,
}

impl MirrorPlan {
    /// The mirror `cfg` asks for; None when no interface mirrors anything.
    pub fn of(cfg: &Config) -> Option<MirrorPlan> {
        let taps: Vec<_> = cfg
            .interfaces
            .iter()
            .enumerate()
            .filter(|(_, i)| i.mirror.any())
            .filter_map(|(k, i)| {
                Some((
                    i.tap.clone()?,
                    k as IfIndex,
                    i.name.clone(),
                    i.mirror.addresses,
                    i.mirror.routes,
                ))
            })
            .collect();
        (!taps.is_empty()).then(|| MirrorPlan {
            taps,
            tables: cfg.mirror.tables.clone(),
            batch: Duration::from_millis(cfg.mirror.batch_ms),
            rx_buffer: cfg.mirror.rx_buffer,
        })
    }
}

/// Starts the mirror: opens both sockets here (an error is returned, not
/// logged from the thread), then dumps and follows on a thread of its own.
pub fn start(plan: MirrorPlan, publisher: Arc<Publisher>) -> std::io::Result<MirrorThread> {
    let (events, rx_buffer) = Events::new(plan.rx_buffer)?;
    let dumper = Dumper::new()?;
    {
        let mut s = publisher.mirror_status();
        s.rx_buffer = rx_buffer;
        s.running = true;
        s.tables = plan.tables.clone();
        s.interfaces = plan
            .taps
            .iter()
            .map(|(tap, _, name, a, r)| (name.clone(), *a, *r, tap.clone()))
            .collect();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let handle = std::thread::Builder::new()
        .name("xgate-mirror".into())
        .spawn(move || {
            let mut m = Mirror {
                plan,
                publisher,
                events,
                dumper,
                taps: TapMap::default(),
                addresses: HashMap::new(),
                unusable: HashMap::new(),
                pending: HashMap::new(),
                pending_addrs: BTreeMap::new(),
                first_pending: None,
                last_cost: Duration::ZERO,
            };
            m.run(&flag);
        })?;
    Ok(MirrorThread {
        stop,
        handle: Some(handle),
    })
}

/// The newest state of one route key in a batch.
enum Pending {
    Set(MirroredRoute),
    Delete,
    /// Next hops (gateway, interface) the kernel removed from a multipath
    /// route it keeps (IPv6 announces that as a deletion of one).
    DropNexthops(Vec<crate::publish::NexthopId>),
}

struct Mirror {
    plan: MirrorPlan,
    publisher: Arc<Publisher>,
    events: Events,
    dumper: Dumper,
    taps: TapMap,
    /// Per kernel ifindex of a tap mirroring addresses: (address, primary).
    addresses: HashMap<u32, Vec<(IpNet, bool)>>,
    /// Kernel routes in mirrored tables that xgate cannot carry.
    unusable: HashMap<RouteKey, String>,
    /// The batch: the newest state of each changed route key.
    pending: HashMap<RouteKey, Pending>,
    /// Interfaces whose address list changed in this batch.
    pending_addrs: BTreeMap<IfIndex, Vec<IpNet>>,
    first_pending: Option<Instant>,
    last_cost: Duration,
}

/// How long the event socket is waited on at most (the stop flag is read
/// this often).
const POLL: Duration = Duration::from_millis(100);

impl Mirror {
    fn run(&mut self, stop: &AtomicBool) {
        let mut resync = true;
        while !stop.load(Ordering::Relaxed) {
            if resync {
                match self.resync() {
                    Ok(()) => resync = false,
                    Err(e) => {
                        self.error(format!("resync: {e}"));
                        std::thread::sleep(Duration::from_millis(200));
                    }
                }
                continue;
            }
            let wait = match self.first_pending {
                None => POLL,
                Some(t) => self.batch_interval().saturating_sub(t.elapsed()).min(POLL),
            };
            let mut msgs = Vec::new();
            match self.events.recv(wait, |m| msgs.push(m)) {
                Ok(Recv::Messages(n)) => self.publisher.mirror_status().events += n as u64,
                Ok(Recv::Overrun) => {
                    self.publisher.mirror_status().overruns += 1;
                    resync = true;
                    continue;
                }
                Err(e) => {
                    self.error(format!("reading netlink events: {e}; resyncing"));
                    resync = true;
                    continue;
                }
            }
            for m in msgs {
                self.event(m);
            }
            if self
                .first_pending
                .is_some_and(|t| t.elapsed() >= self.batch_interval())
            {
                self.flush();
            }
        }
        self.publisher.mirror_status().running = false;
    }

    /// At least `[mirror] batch_ms`, and twice what the last publication
    /// took.
    fn batch_interval(&self) -> Duration {
        self.plan.batch.max(self.last_cost * 2)
    }

    fn error(&self, msg: String) {
        self.publisher.mirror_status().last_error = Some(msg);
    }

    /// Dumps links, addresses and routes, and publishes them as the whole
    /// mirrored state.
    fn resync(&mut self) -> Result<(), String> {
        self.events.drain().map_err(|e| e.to_string())?;
        self.pending.clear();
        self.pending_addrs.clear();
        self.first_pending = None;
        // Links: which kernel devices are our taps.
        let mut names = HashMap::new();
        self.dump_retry(|d| {
            names.clear();
            d.links(|l| {
                for a in &l.attributes {
                    if let LinkAttribute::IfName(n) = a {
                        names.insert(n.clone(), l.header.index);
                    }
                }
            })
        })?;
        let mut taps = TapMap::default();
        for (tap, iface, name, a, r) in &self.plan.taps {
            match names.get(tap) {
                Some(&k) => {
                    taps.taps.insert(
                        k,
                        TapIface {
                            iface: *iface,
                            name: name.clone(),
                            addresses: *a,
                            routes: *r,
                        },
                    );
                }
                None => {
                    return Err(format!(
                        "tap {tap} of interface {name} is not in the kernel"
                    ));
                }
            }
        }
        self.taps = taps;
        // Addresses of the taps that mirror them.
        let mut addrs: HashMap<u32, Vec<(IpNet, bool)>> = HashMap::new();
        let taps = self.taps.clone();
        let taps = &taps;
        self.dump_retry(|d| {
            addrs.clear();
            d.addresses(|a| {
                if let Some((k, net, primary)) = translate::address_from_kernel(&a)
                    && taps.taps.get(&k).is_some_and(|t| t.addresses)
                {
                    addrs.entry(k).or_default().push((net, primary));
                }
            })
        })?;
        // Routes of the chosen tables.
        let mut routes: Vec<(RouteKey, Option<MirroredRoute>)> = Vec::new();
        let mut unusable = HashMap::new();
        let tables = self.plan.tables.clone();
        self.dump_retry(|d| {
            routes.clear();
            unusable.clear();
            d.routes(|r| match translate::route_from_kernel(&r, taps, &tables) {
                RouteVerdict::Mirror(m) => routes.push((m.key, Some(m))),
                RouteVerdict::Unusable { key, reason } => {
                    unusable.insert(key, reason);
                }
                RouteVerdict::Ignore => {}
            })
        })?;
        self.unusable = unusable;
        let mut addr_changes = Vec::new();
        for (k, t) in &self.taps.taps {
            if t.addresses {
                let list = addrs.remove(k).unwrap_or_default();
                addr_changes.push((t.iface, ordered(&list)));
                self.addresses.insert(*k, list);
            }
        }
        let n = routes.len();
        self.publish(MirrorChanges {
            full: true,
            routes,
            nexthops_gone: Vec::new(),
            addresses: addr_changes,
        });
        let mut s = self.publisher.mirror_status();
        s.resyncs += 1;
        s.last_batch = n;
        Ok(())
    }

    /// Runs a dump, again while a concurrent change interrupts it.
    fn dump_retry(
        &mut self,
        mut f: impl FnMut(&mut Dumper) -> Result<(), netlink::DumpError>,
    ) -> Result<(), String> {
        for _ in 0..10 {
            match f(&mut self.dumper) {
                Ok(()) => return Ok(()),
                Err(netlink::DumpError::Interrupted) => continue,
                Err(e) => return Err(e.to_string()),
            }
        }
        Err("dump interrupted 10 times in a row".into())
    }

    /// One kernel event into the batch.
    fn event(&mut self, m: RouteNetlinkMessage) {
        let now = Instant::now();
        match m {
            RouteNetlinkMessage::NewRoute(r) => {
                match translate::route_from_kernel(&r, &self.taps, &self.plan.tables) {
                    RouteVerdict::Mirror(m) => {
                        self.unusable.remove(&m.key);
                        self.pending.insert(m.key, Pending::Set(m));
                    }
                    RouteVerdict::Unusable { key, reason } => {
                        // It may replace a usable route of the same key.
                        self.unusable.insert(key, reason);
                        self.pending.insert(key, Pending::Delete);
                    }
                    RouteVerdict::Ignore => {
                        // `ip route replace` may have turned a mirrored
                        // route into one xgate ignores (by a tap that
                        // does not mirror routes): the old one goes.
                        match translate::route_key(&r) {
                            Some(key) if self.plan.tables.contains(&key.table) => {
                                self.unusable.remove(&key);
                                self.pending.insert(key, Pending::Delete);
                            }
                            _ => return,
                        }
                    }
                }
            }
            RouteNetlinkMessage::DelRoute(r) => {
                let Some(key) = translate::route_key(&r) else {
                    return;
                };
                if !self.plan.tables.contains(&key.table) {
                    return;
                }
                if let Some(gone) = translate::deleted_nexthop(&r, &self.taps) {
                    // One next hop of an IPv6 multipath route: the others
                    // stay in the kernel.
                    match self.pending.get_mut(&key) {
                        Some(Pending::Set(m)) => {
                            m.route
                                .nexthops
                                .retain(|n| (n.via, n.dev) != (gone.0, gone.1));
                            if m.route.nexthops.is_empty() {
                                self.pending.insert(key, Pending::Delete);
                            }
                        }
                        Some(Pending::Delete) => {}
                        Some(Pending::DropNexthops(v)) => v.push(gone),
                        None => {
                            self.pending.insert(key, Pending::DropNexthops(vec![gone]));
                        }
                    }
                } else {
                    self.unusable.remove(&key);
                    self.pending.insert(key, Pending::Delete);
                }
            }
            RouteNetlinkMessage::NewAddress(a) => {
                if !self.address_event(&a, false) {
                    return;
                }
            }
            RouteNetlinkMessage::DelAddress(a) => {
                if !self.address_event(&a, true) {
                    return;
                }
            }
            _ => return,
        }
        self.first_pending.get_or_insert(now);
    }

    /// An address added to or removed from a tap; false when it is not
    /// one xgate mirrors.
    fn address_event(
        &mut self,
        a: &netlink_packet_route::address::AddressMessage,
        deleted: bool,
    ) -> bool {
        let Some((k, net, primary)) = translate::address_from_kernel(a) else {
            return false;
        };
        let Some(t) = self.taps.taps.get(&k).filter(|t| t.addresses) else {
            return false;
        };
        let list = self.addresses.entry(k).or_default();
        list.retain(|(n, _)| *n != net);
        if !deleted {
            list.push((net, primary));
        }
        self.pending_addrs.insert(t.iface, ordered(list));
        true
    }

    /// Publishes the batch.
    fn flush(&mut self) {
        let mut routes = Vec::new();
        let mut nexthops_gone = Vec::new();
        for (k, p) in self.pending.drain() {
            match p {
                Pending::Set(m) => routes.push((k, Some(m))),
                Pending::Delete => routes.push((k, None)),
                Pending::DropNexthops(v) => nexthops_gone.push((k, v)),
            }
        }
        let addresses: Vec<_> = std::mem::take(&mut self.pending_addrs)
            .into_iter()
            .collect();
        self.first_pending = None;
        let n = routes.len();
        self.publish(MirrorChanges {
            full: false,
            routes,
            nexthops_gone,
            addresses,
        });
        self.publisher.mirror_status().last_batch = n;
    }

    fn publish(&mut self, ch: MirrorChanges) {
        let t = Instant::now();
        let res = self.publisher.mirror_apply(ch);
        self.last_cost = t.elapsed();
        let mut s = self.publisher.mirror_status();
        s.last_publish = self.last_cost;
        s.unusable = self.unusable.len();
        let mut list: Vec<_> = self.unusable.iter().map(|(k, r)| (*k, r.clone())).collect();
        list.sort();
        list.truncate(MAX_LISTED);
        s.unusable_list = list;
        match res {
            Ok(r) => {
                s.publications += u64::from(r.published);
                s.installed = r.installed;
                s.shadowed = r.shadowed;
                s.flushed += r.flushed;
            }
            Err(e) => s.last_error = Some(e),
        }
    }
}

/// An interface's addresses as xgate lists them: primaries first (the
/// first IPv4 one is MASQUERADE's), in the kernel's order otherwise.
fn ordered(list: &[(IpNet, bool)]) -> Vec<IpNet> {
    let mut v: Vec<IpNet> = list.iter().filter(|(_, p)| *p).map(|(n, _)| *n).collect();
    v.extend(list.iter().filter(|(_, p)| !*p).map(|(n, _)| *n));
    v
}
