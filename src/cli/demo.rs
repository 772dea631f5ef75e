//! `xgate demo`: wiring only; the topology and its traffic live in
//! xgate_testbed::demo.

use super::{STOP, on_signal};
use std::process::ExitCode;
use std::time::Duration;

pub fn main(duration: Option<u64>) -> ExitCode {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: installs a handler that only stores to an atomic.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
    let Ok(exe) = std::env::current_exe() else {
        eprintln!("xgate demo: cannot find its own executable");
        return ExitCode::FAILURE;
    };
    let exe = exe.display().to_string();
    let mut out = std::io::stdout();
    match xgate_testbed::demo::run(&exe, duration.map(Duration::from_secs), &STOP, &mut out) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xgate demo: {e}");
            ExitCode::FAILURE
        }
    }
}
