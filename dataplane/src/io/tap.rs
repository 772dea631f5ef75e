//! A TAP device: the host kernel's view of one of xgate's logical
//! interfaces (the management punt, `crate::io::punt`).
//!
//! The device exists while its file descriptor is open: it is created
//! non-persistent, so it disappears with everything the kernel attached to
//! it (addresses, routes) when xgate exits, however it exits. Frames are
//! plain Ethernet (`IFF_NO_PI`): what the kernel's stack sends on the
//! device is read here, what is written here the kernel receives on it.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

/// Linux's IFNAMSIZ minus the terminating NUL.
pub const MAX_NAME: usize = 15;

/// An open TAP device.
#[derive(Debug)]
pub struct Tap {
    file: File,
    name: String,
}

impl Tap {
    /// Creates TAP device `name` (non-blocking). Fails if a device of
    /// that name already exists and is not a TAP nobody has open, or
    /// without CAP_NET_ADMIN.
    pub fn create(name: &str) -> io::Result<Tap> {
        if name.is_empty() || name.len() > MAX_NAME {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("tap name {name:?}: 1 to {MAX_NAME} bytes"),
            ));
        }
        let cname = CString::new(name)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in tap name"))?;
        let explain = |e: io::Error| {
            let hint = match e.raw_os_error() {
                Some(libc::EPERM | libc::EACCES) => " (needs CAP_NET_ADMIN)",
                Some(libc::EBUSY | libc::EINVAL) => {
                    " (a device of that name exists: pick another `tap` name)"
                }
                Some(libc::ENOENT | libc::ENODEV) => " (no /dev/net/tun: load the tun module)",
                _ => "",
            };
            io::Error::new(e.kind(), format!("creating tap {name:?}: {e}{hint}"))
        };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")
            .map_err(explain)?;
        // SAFETY: `ifreq` is plain old data (zeroes are a valid value).
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        for (d, s) in ifr.ifr_name.iter_mut().zip(cname.as_bytes()) {
            *d = *s as libc::c_char;
        }
        ifr.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
        // SAFETY: TUNSETIFF reads one `ifreq` through the pointer, which
        // points at a live, initialised `ifreq`; the fd is ours and open.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut ifr) };
        if rc < 0 {
            return Err(explain(io::Error::last_os_error()));
        }
        Ok(Tap {
            file,
            name: name.to_owned(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// One frame the kernel sent, or `Ok(None)` when there is none now.
    /// A frame longer than `buf` is truncated by the kernel: the length
    /// returned is then `buf.len()` (the caller treats that as an error).
    pub fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match self.file.read(buf) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Hands one frame to the kernel's stack (received on the device).
    pub fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        self.file.write(frame).map(|_| ())
    }

    pub fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_before_the_kernel_sees_them() {
        assert!(Tap::create("").is_err());
        assert!(Tap::create("a-name-far-too-long").is_err());
        assert!(Tap::create("nul\0x").is_err());
    }
}
