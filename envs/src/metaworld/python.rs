//! Starting the embedded interpreter on the project's venv, once per process, and checking that
//! it can run MetaWorld, so a broken set-up is one clear error at start-up rather than a failure
//! deep inside the first step.
//!
//! The interpreter is started with pyo3's `Python::initialize`, which installs no Python signal
//! handlers: Ctrl-C stays with the Rust process.

use std::path::Path;
use std::sync::OnceLock;

use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::{EnvError, PythonSetupFailure};

/// The venv's site-packages, recorded by `build.rs` from the interpreter pyo3 was built against.
const BUILD_SITE_PACKAGES: &str = env!("MT10_BUILD_SITE_PACKAGES");
/// Points the embedded interpreter at another site-packages folder than the recorded one.
pub const SITE_PACKAGES_VAR: &str = "MT10_SITE_PACKAGES";

type Startup = Result<(), (PythonSetupFailure, String)>;
static STARTUP: OnceLock<Startup> = OnceLock::new();

/// Starts Python (first call only) and checks the interpreter version, the venv and
/// `import metaworld`; later calls return the first answer.
pub fn ensure_python() -> Result<(), EnvError> {
    STARTUP
        .get_or_init(start)
        .clone()
        .map_err(|(failure, detail)| EnvError::PythonSetup { failure, detail })
}

fn start() -> Startup {
    let site_packages =
        std::env::var(SITE_PACKAGES_VAR).unwrap_or_else(|_| BUILD_SITE_PACKAGES.to_string());
    if site_packages.is_empty() || !Path::new(&site_packages).is_dir() {
        return Err((
            PythonSetupFailure::Venv,
            format!("no site-packages folder at {site_packages:?}"),
        ));
    }
    Python::initialize();
    Python::attach(|py| {
        let fail = |failure| move |err: PyErr| (failure, err.to_string());
        let (major, minor, ..): (u32, u32, u32, String, u32) = py
            .import("sys")
            .and_then(|sys| sys.getattr("version_info")?.extract())
            .map_err(fail(PythonSetupFailure::Interpreter))?;
        // A venv keeps its packages in `lib/pythonX.Y/site-packages`: compiled ones (numpy,
        // mujoco) only load in that Python version.
        let running = format!("python{major}.{minor}");
        let venv_python = Path::new(&site_packages)
            .parent()
            .and_then(Path::file_name)
            .and_then(|n| n.to_str());
        if let Some(venv_python) = venv_python.filter(|n| n.starts_with("python") && *n != running)
        {
            return Err((
                PythonSetupFailure::Interpreter,
                format!("the embedded interpreter is {running}, but the venv at {site_packages} is for {venv_python}"),
            ));
        }
        add_site_packages_first(py, &site_packages).map_err(fail(PythonSetupFailure::Venv))?;
        use_venv_python_for_workers(py, &site_packages).map_err(fail(PythonSetupFailure::Venv))?;
        py.import("metaworld").map_err(|err| {
            (
                PythonSetupFailure::MetaWorldImport,
                format!("{} (site-packages: {site_packages})", err),
            )
        })?;
        Ok(())
    })
}

/// The `async` strategy's worker processes are started by running a Python (see `bridge.py`):
/// embedded, `sys.executable` is this binary, so name the venv's.
fn use_venv_python_for_workers(py: Python<'_>, site_packages: &str) -> PyResult<()> {
    // <venv>/lib/pythonX.Y/site-packages
    let python = Path::new(site_packages).ancestors().nth(3).map(|venv| venv.join("bin/python"));
    match python.filter(|p| p.is_file()) {
        Some(python) => py.import("multiprocessing")?.call_method1("set_executable", (python,)).map(drop),
        None => Ok(()),
    }
}

/// Starts multiprocessing's fork server, which forks the `async` envs' workers (`bridge.py`), with
/// SIGINT ignored, as it and its workers then keep it: a terminal's Ctrl-C reaches the whole
/// process group, and it is the trainer's to act on (checkpoint, then close the envs), not the
/// workers' (who would die mid-step). Later calls find it running.
pub(super) fn start_fork_server(py: Python<'_>) -> PyResult<()> {
    let forkserver = py.import("multiprocessing.forkserver")?;
    // SAFETY: zeroed `sigaction`s are valid; the previous action (e.g. a Ctrl-C handler) is put
    // back as it was. A Ctrl-C in between is lost, and a second one still acts.
    unsafe {
        let mut ignore: libc::sigaction = std::mem::zeroed();
        ignore.sa_sigaction = libc::SIG_IGN;
        let mut previous: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGINT, &ignore, &mut previous);
        let started = forkserver.call_method0("ensure_running");
        libc::sigaction(libc::SIGINT, &previous, std::ptr::null_mut());
        started.map(drop)
    }
}

/// `site.addsitedir` (which also runs the folder's `.pth` files), with the new entries moved in
/// front of the base interpreter's own site-packages so the venv's versions win.
fn add_site_packages_first(py: Python<'_>, site_packages: &str) -> PyResult<()> {
    let sys_path = py.import("sys")?.getattr("path")?;
    let before: Vec<String> = sys_path.extract()?;
    py.import("site")?
        .call_method1("addsitedir", PyTuple::new(py, [site_packages])?)?;
    let after: Vec<String> = sys_path.extract()?;
    let (added, kept): (Vec<String>, Vec<String>) =
        after.into_iter().partition(|p| !before.contains(p));
    sys_path.call_method1("clear", ())?;
    sys_path.call_method1(
        "extend",
        (added.into_iter().chain(kept).collect::<Vec<_>>(),),
    )?;
    Ok(())
}
