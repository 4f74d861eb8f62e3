//! Links the CTranslate2 shared library that `scripts/fetch-models.sh` puts
//! in `models/lib` (ct2rs is built with its `system` feature), and records
//! that folder as an rpath of this crate's tests and examples so they run
//! without `LD_LIBRARY_PATH`. Other crates' binaries get the folder from
//! `.cargo/config.toml`'s `LD_LIBRARY_PATH` when run through cargo.

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let lib = manifest
        .parent()
        .expect("speech/ is inside the workspace")
        .join("models")
        .join("lib");
    println!("cargo:rerun-if-changed={}", lib.display());
    println!("cargo:rerun-if-changed=build.rs");
    if !lib.join("libctranslate2.so").exists() {
        panic!(
            "\n\necho-speech links CTranslate2 from {}, which has no libctranslate2.so.\n\
             Run scripts/fetch-models.sh from the repository root first \
             (it downloads the pinned wheels into models/).\n\n",
            lib.display()
        );
    }
    println!("cargo:rustc-link-search=native={}", lib.display());
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
}
