//! With the `metaworld` feature: records the project's venv (the site-packages of the
//! interpreter pyo3 builds against, `PYO3_PYTHON`) so the embedded interpreter finds MetaWorld
//! without the user exporting anything, and gives this crate's test binaries an rpath to that
//! interpreter's libpython (a link argument only reaches the package that emits it; the `mt10`
//! binary gets its own in `bin/build.rs`).

fn main() {
    #[cfg(feature = "metaworld")]
    record_python();
}

#[cfg(feature = "metaworld")]
fn record_python() {
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    let executable = pyo3_build_config::get()
        .executable()
        .unwrap_or("python3")
        .to_string();
    let site_packages = std::process::Command::new(&executable)
        .args(["-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .unwrap_or_else(|| {
            println!("cargo:warning=could not ask {executable} for its site-packages; MetaWorld will report a missing venv");
            String::new()
        });
    println!("cargo:rustc-env=MT10_BUILD_SITE_PACKAGES={site_packages}");
    pyo3_build_config::add_libpython_rpath_link_args();
}
