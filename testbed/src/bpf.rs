//! The bpf(2) plumbing lives in the dataplane (`xgate_dataplane::io::bpf`,
//! which xgate's own XDP program uses too); here what only the testbed
//! needs besides: a device's MAC and entering a network namespace.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

pub use xgate_dataplane::io::bpf::*;

/// The MAC address of device `name` in the calling thread's namespace.
pub fn mac_of(name: &str) -> io::Result<[u8; 6]> {
    // SAFETY: an ioctl on a fresh datagram socket with a zeroed ifreq.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let sock = OwnedFd::from_raw_fd(fd);
        let mut req: libc::ifreq = std::mem::zeroed();
        for (d, s) in req.ifr_name.iter_mut().zip(name.bytes().take(15)) {
            *d = s as libc::c_char;
        }
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFHWADDR, &mut req) < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENODEV) {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no device {name} in this network namespace"),
                ));
            }
            return Err(e);
        }
        let sa = req.ifr_ifru.ifru_hwaddr.sa_data;
        let mut mac = [0u8; 6];
        for (m, s) in mac.iter_mut().zip(sa.iter()) {
            *m = *s as u8;
        }
        Ok(mac)
    }
}

/// Enters network namespace `name` (/run/netns/NAME) for the calling
/// thread and the threads it starts afterwards, and, as `ip netns exec`
/// does, gives them a private mount namespace with that namespace's sysfs
/// on /sys (AF_XDP set-up reads a device's queues from
/// /sys/class/net/DEV). Nothing outside the calling thread changes.
pub fn enter_netns(name: &str) -> io::Result<()> {
    let path = format!("/run/netns/{name}");
    let f =
        std::fs::File::open(&path).map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))?;
    let fail = |what: &str| {
        let e = io::Error::last_os_error();
        io::Error::new(
            e.kind(),
            format!("entering network namespace {name}: {what}: {e}"),
        )
    };
    // SAFETY: setns on a namespace file descriptor.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(fail("setns"));
    }
    // SAFETY: unshare and mount calls with NUL-terminated constant
    // strings; the mount namespace they change is this thread's new one,
    // whose mounts are slaves of the machine's (nothing propagates back).
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            return Err(fail("unshare(CLONE_NEWNS)"));
        }
        if libc::mount(
            c"none".as_ptr(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_SLAVE | libc::MS_REC,
            std::ptr::null(),
        ) != 0
        {
            return Err(fail("making / a slave mount"));
        }
        libc::umount2(c"/sys".as_ptr(), libc::MNT_DETACH);
        if libc::mount(
            c"sysfs".as_ptr(),
            c"/sys".as_ptr(),
            c"sysfs".as_ptr(),
            0,
            std::ptr::null(),
        ) != 0
        {
            return Err(fail("mounting sysfs"));
        }
    }
    Ok(())
}
