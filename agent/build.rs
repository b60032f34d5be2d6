//! Makes this crate's tests and benches find libtorch by themselves (rpath), and really link
//! `libtorch_cuda` when the torch build has it: linkers drop it under `--as-needed`, which
//! silently disables CUDA. Link arguments apply only to targets that link (tests, benches,
//! examples), never to crates depending on this library. With `metaworld`, the tests also find
//! the libpython they embed (rpath to the interpreter pyo3 builds against).
use std::path::Path;

fn main() {
    #[cfg(feature = "metaworld")]
    pyo3_build_config::add_libpython_rpath_link_args();
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
    for name in ["torch_cuda", "torch_cpu", "torch"] {
        if Path::new(&lib).join(format!("lib{name}.so")).exists() {
            println!("cargo:rustc-link-arg=-l{name}");
        }
    }
    println!("cargo:rustc-link-arg=-Wl,--as-needed");
}
