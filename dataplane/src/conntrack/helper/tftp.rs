//! The TFTP helper (RFC 1350): a read or write request from the client
//! makes the server answer from a new port, to the client's port. The
//! expectation is that answer: from the server's address, any source port,
//! to the client's (translated) address and port, as Linux's
//! `nf_conntrack_tftp` sets it up.

/// RFC 1350 opcodes that start a transfer.
const RRQ: u16 = 1;
const WRQ: u16 = 2;

/// Whether a datagram's payload is a read or write request.
pub fn starts_transfer(payload: &[u8]) -> bool {
    match payload {
        [a, b, ..] => matches!(u16::from_be_bytes([*a, *b]), RRQ | WRQ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        assert!(starts_transfer(b"\x00\x01file\x00octet\x00"));
        assert!(starts_transfer(b"\x00\x02f\x00netascii\x00"));
        assert!(!starts_transfer(b"\x00\x03\x00\x01data"));
        assert!(!starts_transfer(b"\x00"));
        assert!(!starts_transfer(b""));
    }
}
