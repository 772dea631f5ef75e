//! The fallback order over XDP mode and bind mode, as pure functions
//! (unit-tested without a NIC): native + zero-copy, native + copy, then
//! SKB + copy, never SKB + zero-copy.

use super::{BindMode, XdpMode};

/// The bind modes to try, best first, as `zero_copy` flags: zero-copy
/// only where every device runs the program natively (generic XDP with a
/// zero-copy socket never transmits on Intel and Mellanox drivers), so the
/// order over (XDP mode, bind) is native + zero-copy, native + copy, SKB +
/// copy, never SKB + zero-copy. An error says why nothing fits.
pub fn bind_attempts(bind: BindMode, all_native: bool) -> Result<&'static [bool], &'static str> {
    match (bind, all_native) {
        (BindMode::Copy, _) | (BindMode::Auto, false) => Ok(&[false]),
        (BindMode::Auto, true) => Ok(&[true, false]),
        (BindMode::ZeroCopy, true) => Ok(&[true]),
        (BindMode::ZeroCopy, false) => Err(
            "bind = \"zerocopy\" needs native XDP on every device (a zero-copy socket \
             behind generic XDP never transmits); use bind = \"copy\" or \"auto\"",
        ),
    }
}

/// The XDP modes to try on a device, best first.
pub fn xdp_attempts(xdp: XdpMode) -> &'static [XdpMode] {
    match xdp {
        XdpMode::Native => &[XdpMode::Native],
        XdpMode::Skb => &[XdpMode::Skb],
        XdpMode::Auto => &[XdpMode::Native, XdpMode::Skb],
    }
}

/// The whole fallback order over (XDP mode, zero-copy) for one device, as
/// [`attach_programs`] and [`open_worker_on`] walk it: each XDP mode, and
/// within it each bind mode it allows.
pub fn mode_order(xdp: XdpMode, bind: BindMode) -> Vec<(XdpMode, bool)> {
    xdp_attempts(xdp)
        .iter()
        .flat_map(|&m| {
            bind_attempts(bind, m == XdpMode::Native)
                .unwrap_or(&[])
                .iter()
                .map(move |&zc| (m, zc))
        })
        .collect()
}
