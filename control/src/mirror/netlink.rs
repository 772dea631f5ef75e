//! The two rtnetlink sockets of the mirror: one that dumps (links,
//! addresses, routes) on request, one subscribed to the address and route
//! groups. Messages are built and parsed by `netlink-packet-route`; this
//! file only frames requests, reads multipart answers and reports an
//! overrun of the event socket (ENOBUFS) as [`Recv::Overrun`].

use std::io;
use std::os::fd::AsFd;
use std::time::Duration;

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_MULTIPART, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::AddressMessage;
use netlink_packet_route::link::LinkMessage;
use netlink_packet_route::route::RouteMessage;
use netlink_sys::protocols::NETLINK_ROUTE;
use netlink_sys::{Socket, SocketAddr};

/// rtnetlink multicast groups (linux/rtnetlink.h `RTNLGRP_*`).
const RTNLGRP_IPV4_IFADDR: u32 = 5;
const RTNLGRP_IPV4_ROUTE: u32 = 7;
const RTNLGRP_IPV6_IFADDR: u32 = 9;
const RTNLGRP_IPV6_ROUTE: u32 = 11;

/// Largest datagram the kernel sends on a route socket (dump parts are
/// at most 32 KiB).
const RECV_BUF: usize = 64 << 10;

/// What a dump found unusable: interrupted by a concurrent change
/// (`NLM_F_DUMP_INTR`, to be repeated) or an error.
#[derive(Debug)]
pub enum DumpError {
    Interrupted,
    Io(io::Error),
}

impl From<io::Error> for DumpError {
    fn from(e: io::Error) -> Self {
        DumpError::Io(e)
    }
}

impl std::fmt::Display for DumpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DumpError::Interrupted => write!(f, "dump interrupted by a change"),
            DumpError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// A socket for dumps.
pub struct Dumper {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Dumper {
    pub fn new() -> io::Result<Self> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        Ok(Dumper {
            sock,
            seq: 0,
            buf: vec![0; RECV_BUF],
        })
    }

    pub fn links(&mut self, f: impl FnMut(LinkMessage)) -> Result<(), DumpError> {
        let mut f = f;
        self.dump(RouteNetlinkMessage::GetLink(LinkMessage::default()), |m| {
            if let RouteNetlinkMessage::NewLink(l) = m {
                f(l)
            }
        })
    }

    pub fn addresses(&mut self, f: impl FnMut(AddressMessage)) -> Result<(), DumpError> {
        let mut f = f;
        self.dump(
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            |m| {
                if let RouteNetlinkMessage::NewAddress(a) = m {
                    f(a)
                }
            },
        )
    }

    /// Every route of every table, both families.
    pub fn routes(&mut self, f: impl FnMut(RouteMessage)) -> Result<(), DumpError> {
        let mut f = f;
        self.dump(
            RouteNetlinkMessage::GetRoute(RouteMessage::default()),
            |m| {
                if let RouteNetlinkMessage::NewRoute(r) = m {
                    f(r)
                }
            },
        )
    }

    /// Sends a dump request and hands each answer to `f` as it is read
    /// (a full table is never held as messages).
    fn dump(
        &mut self,
        req: RouteNetlinkMessage,
        mut f: impl FnMut(RouteNetlinkMessage),
    ) -> Result<(), DumpError> {
        self.seq = self.seq.wrapping_add(1);
        let mut hdr = NetlinkHeader::default();
        hdr.flags = NLM_F_REQUEST | NLM_F_DUMP;
        hdr.sequence_number = self.seq;
        let mut msg = NetlinkMessage::new(hdr, NetlinkPayload::from(req));
        msg.finalize();
        let mut out = vec![0; msg.buffer_len()];
        msg.serialize(&mut out);
        self.sock.send(&out, 0)?;
        let mut interrupted = false;
        loop {
            let n = self.sock.recv(&mut &mut self.buf[..], 0)?;
            let mut off = 0;
            while off < n.min(self.buf.len()) {
                let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[off..n])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = m.header.length as usize;
                if m.header.sequence_number == self.seq {
                    if m.header.flags & NLM_F_DUMP_INTR != 0 {
                        interrupted = true;
                    }
                    match m.payload {
                        NetlinkPayload::Done(_) => {
                            return if interrupted {
                                Err(DumpError::Interrupted)
                            } else {
                                Ok(())
                            };
                        }
                        NetlinkPayload::Error(e) => {
                            return Err(DumpError::Io(e.to_io()));
                        }
                        NetlinkPayload::InnerMessage(inner) => f(inner),
                        _ => {}
                    }
                    if m.header.flags & NLM_F_MULTIPART == 0 {
                        return Ok(());
                    }
                }
                if len == 0 {
                    break;
                }
                off += (len + 3) & !3;
            }
        }
    }
}

/// The socket that follows address and route changes.
pub struct Events {
    sock: Socket,
    buf: Vec<u8>,
}

/// One read of the event socket.
pub enum Recv {
    /// Messages read (maybe none: the timeout passed).
    Messages(usize),
    /// The socket overflowed (ENOBUFS): changes were lost, resync.
    Overrun,
}

impl Events {
    /// A socket subscribed to address and route changes, with a receive
    /// buffer of `rx_buffer` bytes (where a burst of changes, a BGP session
    /// coming up, waits while the mirror publishes). Returns the size the
    /// kernel gave too.
    pub fn new(rx_buffer: usize) -> io::Result<(Self, usize)> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        for g in [
            RTNLGRP_IPV4_IFADDR,
            RTNLGRP_IPV6_IFADDR,
            RTNLGRP_IPV4_ROUTE,
            RTNLGRP_IPV6_ROUTE,
        ] {
            sock.add_membership(g)?;
        }
        let got = xgate_dataplane::io::set_recv_buffer(sock.as_fd(), rx_buffer)?;
        sock.set_non_blocking(true)?;
        Ok((
            Events {
                sock,
                buf: vec![0; RECV_BUF],
            },
            got,
        ))
    }

    /// Waits up to `timeout` for changes, then reads every queued one into
    /// `f`.
    pub fn recv(
        &mut self,
        timeout: Duration,
        mut f: impl FnMut(RouteNetlinkMessage),
    ) -> io::Result<Recv> {
        if !xgate_dataplane::io::wait_readable(self.sock.as_fd(), timeout)? {
            return Ok(Recv::Messages(0));
        }
        let mut count = 0;
        loop {
            let n = match self.sock.recv(&mut &mut self.buf[..], 0) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(Recv::Messages(count));
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => return Ok(Recv::Overrun),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let mut off = 0;
            while off < n.min(self.buf.len()) {
                let Ok(m) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[off..n])
                else {
                    // A message this crate cannot parse (a newer kernel's
                    // attribute layout): skip the datagram's rest rather
                    // than guess; a resync would not parse it either.
                    break;
                };
                let len = m.header.length as usize;
                match m.payload {
                    NetlinkPayload::InnerMessage(inner) => {
                        count += 1;
                        f(inner)
                    }
                    NetlinkPayload::Overrun(_) => return Ok(Recv::Overrun),
                    _ => {}
                }
                if len == 0 {
                    break;
                }
                off += (len + 3) & !3;
            }
        }
    }

    /// Throws away what is queued (before a resync: the dump that follows
    /// is newer).
    pub fn drain(&mut self) -> io::Result<()> {
        loop {
            match self.sock.recv(&mut &mut self.buf[..], 0) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}
