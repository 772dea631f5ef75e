//! Compiles xgate's offload XDP program (src/io/afxdp/offload.bpf.c) with
//! clang for the BPF target; offload.rs embeds the object. libbpf's
//! headers come from libbpf-sys (the libbpf libxdp is built with), the
//! kernel's UAPI headers from the system (linux-libc-dev).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = "src/io/afxdp/offload.bpf.c";
    println!("cargo:rerun-if-changed={src}");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("offload.bpf.o");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap();
    let mut clang = Command::new(std::env::var("BPF_CLANG").unwrap_or_else(|_| "clang".into()));
    clang.args([
        "-O2", "-g", "-Wall", "-Werror", "-target", "bpf", "-c", src, "-o",
    ]);
    clang.arg(&out);
    if let Ok(inc) = std::env::var("DEP_BPF_INCLUDE") {
        clang.arg(format!("-I{inc}"));
    }
    clang.arg(format!("-I/usr/include/{arch}-linux-gnu"));
    let status = clang.status().unwrap_or_else(|e| {
        panic!("clang (BPF_CLANG) for {src}: {e}; scripts/setup-debian.sh installs it")
    });
    assert!(status.success(), "clang failed on {src}");
}
