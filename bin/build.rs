//! Makes the `mt10` binary find libtorch by itself (rpath), and really link `libtorch_cuda` when
//! the torch build has it: linkers drop it under `--as-needed`, which silently disables CUDA.
use std::path::Path;

fn main() {
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
