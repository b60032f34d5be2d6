// Included by `agent/build.rs` and `bin/build.rs`: what links against libtorch finds it by itself
// (rpath), and really links `libtorch_cuda` when the torch build has it (linkers drop it under
// `--as-needed`, which silently disables CUDA). With `metaworld`, what embeds Python finds the
// libpython pyo3 builds against (rpath), so the loader cannot pick another of the same version.
// Link arguments apply to the package's own linked targets, never to crates depending on it.
fn link_libtorch_and_libpython() {
    println!("cargo:rerun-if-changed=../scripts/link_libtorch.rs");
    #[cfg(feature = "metaworld")]
    pyo3_build_config::add_libpython_rpath_link_args();
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
    for name in ["torch_cuda", "torch_cpu", "torch"] {
        if std::path::Path::new(&lib).join(format!("lib{name}.so")).exists() {
            println!("cargo:rustc-link-arg=-l{name}");
        }
    }
    println!("cargo:rustc-link-arg=-Wl,--as-needed");
}
