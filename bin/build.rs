//! Makes the `mt10` binary find libtorch by itself (rpath), and really link `libtorch_cuda` when
//! the torch build has it: linkers drop it under `--as-needed`, which silently disables CUDA.
//! With `metaworld`, it also finds the libpython it embeds by itself (rpath to the interpreter
//! pyo3 builds against, so the loader cannot pick another libpython of the same version).
use std::path::Path;

fn main() {
    #[cfg(feature = "metaworld")]
    pyo3_build_config::add_libpython_rpath_link_args();
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    println!("cargo:rustc-link-arg-bins=-Wl,-rpath,{lib}");
    println!("cargo:rustc-link-arg-bins=-Wl,--no-as-needed");
    for name in ["torch_cuda", "torch_cpu", "torch"] {
        if Path::new(&lib).join(format!("lib{name}.so")).exists() {
            println!("cargo:rustc-link-arg-bins=-l{name}");
        }
    }
    println!("cargo:rustc-link-arg-bins=-Wl,--as-needed");
}
