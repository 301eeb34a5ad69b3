//! Rebuilds the SDK when the WIT changes: the bindings macro reads `wit/`,
//! which cargo would not otherwise track.

fn main() {
    println!("cargo:rerun-if-changed=../../wit");
}
