//! The client side of the control socket (`xgate ctl`).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use super::{Command, Request, Response};

/// Sends one command and waits for its answer. A reload of a large
/// routing table can take seconds: the wait is generous.
pub fn request(socket: &Path, command: Command) -> std::io::Result<Response> {
    let stream = UnixStream::connect(socket).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!(
                "cannot connect to {}: {e} (is xgate running?)",
                socket.display()
            ),
        )
    })?;
    stream.set_read_timeout(Some(Duration::from_secs(300)))?;
    let mut line = serde_json::to_string(&Request::new(command)).map_err(std::io::Error::other)?;
    line.push('\n');
    (&stream).write_all(line.as_bytes())?;
    let mut answer = String::new();
    BufReader::new(&stream).read_line(&mut answer)?;
    if answer.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the server closed the connection without an answer",
        ));
    }
    serde_json::from_str(&answer).map_err(|e| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, format!("bad answer: {e}"))
    })
}
