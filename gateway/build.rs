//! Records `models/lib` (where `scripts/fetch-models.sh` puts the
//! CTranslate2 library echo-speech links) as an rpath of the gateway's
//! binaries, so `target/*/echo-gateway` runs without `LD_LIBRARY_PATH`.

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let lib = manifest
        .parent()
        .expect("gateway/ is inside the workspace")
        .join("models")
        .join("lib");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
}
