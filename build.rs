//! Link options of the `segql` executable.
//!
//! On Linux the executable is linked at a fixed address (`-no-pie`). A position-independent
//! executable of this size has about 230,000 pointers the loader rewrites at every start,
//! copying 4 MB of pointer tables: 1.5 ms of the 20 ms a small segment takes (see
//! BENCHMARKS.md, "Footers that prove filters, start-up, a smaller first key array").
//! Shared libraries, the stack and the heap are still placed at random. Set
//! `SEGQL_LINK_PIE=1` when building to keep a position-independent executable.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SEGQL_LINK_PIE");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    if linux && std::env::var_os("SEGQL_LINK_PIE").is_none() {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
