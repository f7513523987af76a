//! Relinks kwait when its linker (link/rust-lld, .cargo/config.toml) or
//! the hot-function list it places first changes: cargo does not track
//! the linker's own inputs.

fn main() {
    for file in ["link/hot.txt", "link/order.py", "link/rust-lld"] {
        println!("cargo:rerun-if-changed={file}");
    }
}
