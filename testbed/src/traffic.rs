//! Traffic helpers. They open ordinary sockets, so call them on a thread
//! inside the endpoint's namespace ([`crate::in_ns`]).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// The Internet checksum (RFC 1071): the dataplane's, re-exported so that
/// the testbed's frames (here and in [`crate::pktgen`]) use one
/// implementation.
pub use xgate_dataplane::packet::checksum::checksum;
use xgate_dataplane::packet::checksum::{finish, pseudo_v4, sum};

/// A raw IPv4 socket of `proto` with a receive timeout.
fn raw_socket(proto: i32) -> i32 {
    // SAFETY: plain socket calls on a fresh descriptor.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_RAW, proto);
        assert!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 200_000,
        };
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &tv as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as u32,
        );
        fd
    }
}

fn sockaddr(ip: Ipv4Addr) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as u16,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    }
}

/// Receives one IPv4 packet (with header) from a raw socket, or None.
fn recv_raw(fd: i32, buf: &mut [u8]) -> Option<usize> {
    // SAFETY: receives into `buf`.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
    (n > 0).then_some(n as usize)
}

/// Sends `count` ICMP echo requests to `dst`, one at a time, and returns
/// how many were answered (each waits up to `timeout`).
pub fn ping(dst: Ipv4Addr, count: u16, timeout: Duration) -> u16 {
    let fd = raw_socket(libc::IPPROTO_ICMP);
    let ident = std::process::id() as u16;
    let mut ok = 0;
    for seq in 0..count {
        let mut p = vec![8u8, 0, 0, 0];
        p.extend_from_slice(&ident.to_be_bytes());
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(b"xgate testbed ping payload");
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
        let sa = sockaddr(dst);
        // SAFETY: sends `p` to `sa`.
        unsafe {
            libc::sendto(
                fd,
                p.as_ptr() as *const libc::c_void,
                p.len(),
                0,
                &sa as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_in>() as u32,
            )
        };
        let until = Instant::now() + timeout;
        let mut buf = [0u8; 2048];
        while Instant::now() < until {
            let Some(n) = recv_raw(fd, &mut buf) else {
                continue;
            };
            let ihl = (buf[0] & 0xf) as usize * 4;
            let src = Ipv4Addr::new(buf[12], buf[13], buf[14], buf[15]);
            if n >= ihl + 8
                && src == dst
                && buf[ihl] == 0
                && buf[ihl + 4..ihl + 6] == ident.to_be_bytes()
                && buf[ihl + 6..ihl + 8] == seq.to_be_bytes()
            {
                ok += 1;
                break;
            }
        }
    }
    // SAFETY: closes our descriptor.
    unsafe { libc::close(fd) };
    ok
}

/// Sends a UDP datagram with TTL 1 to `dst:port` and waits for an ICMP
/// time exceeded; returns its source address.
pub fn ttl_probe(dst: Ipv4Addr, port: u16, timeout: Duration) -> Option<Ipv4Addr> {
    let fd = raw_socket(libc::IPPROTO_ICMP);
    let udp = UdpSocket::bind("0.0.0.0:0").unwrap();
    udp.set_ttl(1).unwrap();
    let until = Instant::now() + timeout;
    let mut buf = [0u8; 2048];
    let mut found = None;
    'outer: while Instant::now() < until {
        udp.send_to(b"traceroute probe", (dst, port)).unwrap();
        let round = Instant::now() + Duration::from_millis(500);
        while Instant::now() < round {
            let Some(n) = recv_raw(fd, &mut buf) else {
                continue;
            };
            let ihl = (buf[0] & 0xf) as usize * 4;
            // Type 11 (time exceeded), quoting our datagram to `dst`.
            if n >= ihl + 8 + 20 && buf[ihl] == 11 {
                let q = ihl + 8;
                if buf[q + 16..q + 20] == dst.octets() {
                    found = Some(Ipv4Addr::new(buf[12], buf[13], buf[14], buf[15]));
                    break 'outer;
                }
            }
        }
    }
    // SAFETY: closes our descriptor.
    unsafe { libc::close(fd) };
    found
}

/// Deterministic bytes for a transfer.
pub fn pattern(len: usize) -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// FNV-1a over the bytes: the transfer's checksum.
pub fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// A TCP sink: accepts one connection on `listener`, reads to EOF, returns
/// (bytes, checksum, peer address).
pub fn tcp_sink(listener: TcpListener) -> (usize, u64, SocketAddr) {
    let (mut s, peer) = listener.accept().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut data = Vec::new();
    s.read_to_end(&mut data).unwrap();
    (data.len(), fnv(&data), peer)
}

/// Connects to `to` and sends `data`; returns the local address used.
pub fn tcp_send(to: SocketAddr, data: &[u8]) -> std::io::Result<SocketAddr> {
    let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(5))?;
    s.set_write_timeout(Some(Duration::from_secs(20)))?;
    s.write_all(data)?;
    s.shutdown(std::net::Shutdown::Write)?;
    // Wait for the peer's close so every byte was acknowledged.
    let mut rest = Vec::new();
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let _ = s.read_to_end(&mut rest);
    s.local_addr()
}

/// A UDP echo server on `sock` answering `count` datagrams (or until a
/// 10 s silence).
pub fn udp_echo(sock: UdpSocket, count: usize) {
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 2048];
    for _ in 0..count {
        let Ok((n, from)) = sock.recv_from(&mut buf) else {
            return;
        };
        let _ = sock.send_to(&buf[..n], from);
    }
}

/// Sends `payload` to `to` and waits for the same bytes back (3 tries).
pub fn udp_request(to: SocketAddr, payload: &[u8]) -> bool {
    let any = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
    let s = UdpSocket::bind(any).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    let mut buf = [0u8; 2048];
    for _ in 0..3 {
        s.send_to(payload, to).unwrap();
        if let Ok((n, _)) = s.recv_from(&mut buf)
            && &buf[..n] == payload
        {
            return true;
        }
    }
    false
}

/// An Ethernet frame carrying a UDP datagram, 802.1Q-tagged with `vlan`
/// when given, with correct IPv4 and UDP checksums.
#[allow(clippy::too_many_arguments)]
pub fn udp_frame(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    vlan: Option<u16>,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    if let Some(v) = vlan {
        f.extend_from_slice(&[0x81, 0x00]);
        f.extend_from_slice(&v.to_be_bytes());
    }
    f.extend_from_slice(&[0x08, 0x00]);
    let udp_len = 8 + payload.len() as u16;
    let mut ip = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 17, 0, 0];
    ip[2..4].copy_from_slice(&(20 + udp_len).to_be_bytes());
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut udp = Vec::new();
    udp.extend_from_slice(&sport.to_be_bytes());
    udp.extend_from_slice(&dport.to_be_bytes());
    udp.extend_from_slice(&udp_len.to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    let pseudo = pseudo_v4(src.octets(), dst.octets(), 17, udp_len);
    let c = match finish(sum(&udp, pseudo)) {
        0 => 0xffff,
        c => c,
    };
    udp[6..8].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&udp);
    f
}

/// A raw AF_PACKET socket bound to `dev` (all protocols).
pub struct RawSocket(i32);

impl RawSocket {
    pub fn open(dev: &str) -> RawSocket {
        let name = std::ffi::CString::new(dev).unwrap();
        // SAFETY: plain socket calls; `sll` is a valid sockaddr_ll.
        unsafe {
            let proto = (libc::ETH_P_ALL as u16).to_be();
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, proto as i32);
            assert!(fd >= 0, "AF_PACKET: {}", std::io::Error::last_os_error());
            let ifindex = libc::if_nametoindex(name.as_ptr());
            assert!(ifindex > 0, "no device {dev}");
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = proto;
            sll.sll_ifindex = ifindex as i32;
            let rc = libc::bind(
                fd,
                &sll as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            );
            assert_eq!(rc, 0, "bind AF_PACKET: {}", std::io::Error::last_os_error());
            RawSocket(fd)
        }
    }

    /// Sends one frame; false when the kernel refused it (a full queue).
    pub fn try_send(&self, frame: &[u8]) -> bool {
        // SAFETY: sends `frame` on the bound device.
        let n = unsafe {
            libc::send(
                self.0,
                frame.as_ptr() as *const libc::c_void,
                frame.len(),
                0,
            )
        };
        n == frame.len() as isize
    }

    /// Sends one frame exactly as given (tags included).
    pub fn send(&self, frame: &[u8]) {
        // SAFETY: sends `frame` on the bound device.
        let n = unsafe {
            libc::send(
                self.0,
                frame.as_ptr() as *const libc::c_void,
                frame.len(),
                0,
            )
        };
        assert_eq!(
            n,
            frame.len() as isize,
            "{}",
            std::io::Error::last_os_error()
        );
    }
}

impl RawSocket {
    /// The next frame the device sends or receives, within `timeout`
    /// (None: nothing came).
    pub fn recv(&self, timeout: Duration) -> Option<Vec<u8>> {
        let mut pfd = libc::pollfd {
            fd: self.0,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as i32) };
        if ready <= 0 {
            return None;
        }
        let mut buf = vec![0u8; 65536];
        // SAFETY: receives into `buf`, of its length.
        let n = unsafe {
            libc::recv(
                self.0,
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            return None;
        }
        buf.truncate(n as usize);
        Some(buf)
    }
}

impl Drop for RawSocket {
    fn drop(&mut self) {
        // SAFETY: closes our descriptor.
        unsafe { libc::close(self.0) };
    }
}
