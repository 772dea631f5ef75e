//! Opening a worker: its UMEM, one socket per (device, queue), the bind
//! mode fallback ([`super::bind_attempts`]) with the kernel's reasons for
//! each refusal, and errors that name their cause. All unsafe code here
//! carries its SAFETY argument.

use super::*;

/// Opens one worker's UMEM and its sockets on `queues` of every device in
/// `devices` (index = port number): one port per device holding one
/// socket per queue. `modes[i]` is the XDP mode device i must have (set
/// by an earlier worker), or None: filled in here. Transmit-only sockets
/// attach nothing; otherwise the worker owns the XDP programs it attaches
/// (for several workers on the same devices, use [`attach_programs`] once
/// and [`open_worker_on`]).
pub fn open_worker(
    devices: &[String],
    queues: &[u32],
    cfg: &AfXdpConfig,
    modes: &mut [Option<XdpMode>],
) -> Result<WorkerIo, AfXdpError> {
    quiet_libxdp();
    let per_device = vec![queues.to_vec(); devices.len()];
    if cfg.tx_only {
        check_queues(devices, &per_device)?;
        return open_binds(devices, &per_device, cfg, None);
    }
    let progs = attach_programs(devices, cfg.xdp_mode, modes)?;
    let mut io = open_worker_on(devices, &per_device, cfg, &progs)?;
    for (m, &o) in modes.iter_mut().zip(&progs.modes) {
        *m = Some(o);
    }
    io.progs = progs.progs;
    Ok(io)
}

/// Opens one worker's UMEM and its sockets: on device i (index = port
/// number), one socket per queue of `queues[i]`, steered to by the
/// device's program in `progs`. The bind mode follows [`bind_attempts`].
pub fn open_worker_on(
    devices: &[String],
    queues: &[Vec<u32>],
    cfg: &AfXdpConfig,
    progs: &DevicePrograms,
) -> Result<WorkerIo, AfXdpError> {
    check_queues(devices, queues)?;
    let mut io = open_binds(devices, queues, cfg, Some(progs))?;
    io.obtained.xdp = progs.modes.clone();
    for (dev, why) in devices.iter().zip(&progs.refused) {
        if let Some(why) = why {
            io.obtained
                .refused
                .push(format!("native XDP on {dev}: {why}"));
        }
    }
    Ok(io)
}

fn check_queues(devices: &[String], queues: &[Vec<u32>]) -> Result<(), AfXdpError> {
    for (d, qs) in devices.iter().zip(queues) {
        let n = device_queues(d)?;
        if let Some(&q) = qs.iter().find(|&&q| q >= n) {
            return Err(AfXdpError::NoQueue {
                device: d.clone(),
                queue: q,
                available: n,
            });
        }
    }
    Ok(())
}

/// Tries the bind modes of [`bind_attempts`] in order; the reasons of the
/// refused ones go to `Obtained::refused`.
fn open_binds(
    devices: &[String],
    queues: &[Vec<u32>],
    cfg: &AfXdpConfig,
    progs: Option<&DevicePrograms>,
) -> Result<WorkerIo, AfXdpError> {
    let all_native = progs.is_none_or(|p| p.modes.iter().all(|&m| m == XdpMode::Native));
    let attempts = bind_attempts(cfg.bind, all_native).map_err(|why| AfXdpError::Socket {
        device: devices.join(", "),
        queue: 0,
        xdp: "skb",
        bind: "zero-copy",
        err: std::io::Error::from_raw_os_error(libc::EOPNOTSUPP),
        hint: format!(" — {why}"),
    })?;
    let mut refused = Vec::new();
    if cfg.bind == BindMode::Auto && !all_native {
        refused.push("zero-copy: not tried, a device runs generic (skb) XDP".to_string());
    }
    for (i, &zc) in attempts.iter().enumerate() {
        match open_with(devices, queues, cfg, progs, zc) {
            Ok(mut io) => {
                io.obtained.refused = refused;
                return Ok(io);
            }
            Err(e) if i + 1 < attempts.len() => refused.push(format!("zero-copy: {e}")),
            Err(e) => return Err(e),
        }
    }
    unreachable!("bind_attempts returns at least one mode")
}

/// Opens the worker with one bind mode.
fn open_with(
    devices: &[String],
    queues: &[Vec<u32>],
    cfg: &AfXdpConfig,
    progs: Option<&DevicePrograms>,
    zero_copy: bool,
) -> Result<WorkerIo, AfXdpError> {
    let sockets: usize = queues.iter().map(Vec::len).sum();
    let frames = cfg
        .frames
        .unwrap_or_else(|| umem_frames(sockets, cfg.fill_ring, cfg.ring_size));
    let area = UmemArea::new(frames, cfg.huge_pages)?;
    let first = Box::into_raw(Rings::new());
    let mut io = WorkerIo {
        queues: Vec::new(),
        pool: FramePool::new(frames),
        umem: std::ptr::null_mut(),
        rings: vec![first],
        progs: Vec::new(),
        obtained: Obtained {
            xdp: Vec::new(),
            zero_copy,
            huge_pages: area.huge_pages,
            frames,
            tx_budget: None,
            busy_poll: false,
            refused: Vec::new(),
        },
        area,
    };
    // SAFETY: `first` is a live boxed ring set owned by `io`.
    let (fill, comp) = unsafe { (&mut (*first).fill as *mut _, &mut (*first).comp as *mut _) };
    io.umem = umem::register(&io.area, fill, comp, cfg.fill_ring, cfg.ring_size)?;
    let bind_flags = sys::XDP_USE_NEED_WAKEUP as u16
        | if zero_copy {
            sys::XDP_ZEROCOPY as u16
        } else {
            sys::XDP_COPY as u16
        };
    let fill_target = if cfg.tx_only { 0 } else { cfg.fill_ring };
    let mut first_used = false;
    let mut set = QueueSet {
        queue: queues.iter().flatten().copied().min().unwrap_or(0),
        ports: Vec::with_capacity(devices.len()),
    };
    for (port, dev) in devices.iter().enumerate() {
        let mut xp = XskPort::new(dev, cfg.tx_only);
        for &q in &queues[port] {
            let rings = if !first_used {
                first_used = true;
                first
            } else {
                let r = Box::into_raw(Rings::new());
                io.rings.push(r);
                r
            };
            match create_socket(
                dev,
                q,
                io.umem,
                rings,
                (if cfg.tx_only { 0 } else { cfg.rx_ring }, cfg.ring_size),
                bind_flags,
            ) {
                Ok(xsk) => xp.add(xsk, rings, q, fill_target),
                Err(err) => {
                    let mode = progs.map(|p| p.modes[port]);
                    // Sockets made so far close before the UMEM.
                    drop(xp);
                    return Err(socket_error(dev, q, mode, zero_copy, cfg, err));
                }
            }
        }
        set.ports.push(xp);
    }
    io.queues.push(set);
    // Report what the kernel granted (XDP_OPTIONS), not what was asked;
    // shared sockets inherit the first socket's mode.
    let zc = io.ports().next().is_some_and(XskPort::zero_copy);
    io.obtained.zero_copy = zc;
    if cfg.busy_poll {
        // Every socket asks, even after one is refused (`all` would stop).
        let refused = io
            .ports_mut()
            .map(|p| p.set_busy_poll())
            .filter(|ok| !ok)
            .count();
        io.obtained.busy_poll = refused == 0;
    }
    if !io.obtained.zero_copy {
        // Copy mode sends inside the kick: one kick per burst, not two.
        let budget = cfg.ring_size;
        io.obtained.tx_budget = io.ports_mut().map(|p| p.set_tx_budget(budget)).min();
    }
    // Every socket starts with a full fill ring (transmit-only: none)...
    let (umem, pool, sets) = io.parts();
    for set in sets.iter_mut() {
        for p in &mut set.ports {
            crate::io::Port::service(p, umem, pool);
        }
    }
    // ... before the device's program steers its queue to it.
    if let Some(progs) = progs {
        for (port, p) in io.queues[0].ports.iter().enumerate() {
            for (q, fd) in p.fds() {
                progs.progs[port]
                    .insert(q, fd)
                    .map_err(|err| AfXdpError::Socket {
                        device: p.device.clone(),
                        queue: q,
                        xdp: progs.modes[port].name(),
                        bind: if zero_copy { "zero-copy" } else { "copy" },
                        err,
                        hint: " — adding the socket to the XDP program's map".to_string(),
                    })?;
            }
        }
    }
    Ok(io)
}

/// Creates one socket, with an rx ring of `rx_size` entries (0: none). libxdp loads no program:
/// xgate's own ([`prog`]) steers the queue to the socket.
fn create_socket(
    dev: &str,
    queue: u32,
    umem: *mut sys::xsk_umem,
    rings: *mut Rings,
    (rx_size, tx_size): (u32, u32),
    bind_flags: u16,
) -> Result<*mut sys::xsk_socket, std::io::Error> {
    let rx = rx_size > 0;
    let name = CString::new(dev).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    let cfg = sys::xsk_socket_config {
        rx_size,
        tx_size,
        __bindgen_anon_1: sys::xsk_socket_config__bindgen_ty_1 {
            libxdp_flags: sys::XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
        },
        xdp_flags: 0,
        bind_flags,
    };
    // Without an rx ring pointer libxdp creates none (a transmit-only socket).
    let rx: *mut sys::xsk_ring_cons = if rx {
        // SAFETY: `rings` is a live boxed ring set (see below); no
        // reference is made, only the field's address.
        unsafe { &raw mut (*rings).rx }
    } else {
        std::ptr::null_mut()
    };
    let mut xsk = std::ptr::null_mut();
    // A queue released by a socket closed just before (a failed attempt)
    // is freed by the kernel asynchronously: EBUSY for a short while.
    let mut busy_retries = 50;
    let rc = loop {
        // SAFETY: `rings` is a live boxed ring set that outlives the socket;
        // `umem` was created by xsk_umem__create and outlives it too.
        let rc = unsafe {
            sys::xsk_socket__create_shared(
                &mut xsk,
                name.as_ptr(),
                queue,
                umem,
                rx,
                &mut (*rings).tx,
                &mut (*rings).fill,
                &mut (*rings).comp,
                &cfg,
            )
        };
        if rc != -libc::EBUSY || busy_retries == 0 {
            break rc;
        }
        busy_retries -= 1;
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    if rc != 0 {
        return Err(std::io::Error::from_raw_os_error(-rc));
    }
    Ok(xsk)
}

fn socket_error(
    dev: &str,
    queue: u32,
    mode: Option<XdpMode>,
    zero_copy: bool,
    cfg: &AfXdpConfig,
    err: std::io::Error,
) -> AfXdpError {
    let errno = err.raw_os_error().unwrap_or(0);
    let hint = match errno {
        libc::EPERM | libc::EACCES => {
            " — permission denied: AF_XDP sockets and XDP programs need CAP_NET_ADMIN, \
             CAP_NET_RAW and CAP_BPF, and the UMEM CAP_IPC_LOCK (run as root)"
                .to_string()
        }
        libc::ENOBUFS | libc::ENOMEM => {
            " — locked-memory limit (RLIMIT_MEMLOCK): run as root with CAP_IPC_LOCK, or raise `ulimit -l`"
                .to_string()
        }
        libc::EBUSY => format!(
            " — queue {queue} of {dev} is taken (another AF_XDP program or XDP program on the device?)"
        ),
        libc::ENODEV | libc::ENXIO => format!(" — device {dev} vanished or is down"),
        _ if zero_copy && cfg.bind == BindMode::ZeroCopy => format!(
            " — zero-copy bind refused: the driver of {dev} has no AF_XDP zero-copy support \
             (veth never has); use {}",
            // Transmit-only sockets are xgate-pktgen's, whose option it is.
            if cfg.tx_only {
                "--bind copy or auto"
            } else {
                "bind = \"copy\" or \"auto\""
            }
        ),
        _ => String::new(),
    };
    AfXdpError::Socket {
        device: dev.to_string(),
        queue,
        xdp: mode.map_or("none (transmit-only)", XdpMode::name),
        bind: if zero_copy { "zero-copy" } else { "copy" },
        err,
        hint,
    }
}
