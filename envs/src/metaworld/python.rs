//! Starting the embedded interpreter on the project's venv, once per process, and checking that
//! it can run MetaWorld, so a broken set-up is one clear error at start-up rather than a failure
//! deep inside the first step.
//!
//! The interpreter is started with pyo3's `Python::initialize`, which installs no Python signal
//! handlers: Ctrl-C stays with the Rust process.
//!
//! Rendering: MuJoCo picks its GL backend from `MUJOCO_GL` when `mujoco` is first imported, so a
//! process that renders says so ([`ensure_renderer`]) before its first env; the interpreter then
//! starts with `MUJOCO_GL` set (the user's own value, else `egl` where an NVIDIA driver is loaded
//! and `osmesa` elsewhere) and one frame is rendered at once, so a missing GL library is one
//! clear error before any work. Processes that do not render leave `MUJOCO_GL` alone.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::{EnvError, PythonSetupFailure};

/// The venv's site-packages, recorded by `build.rs` from the interpreter pyo3 was built against.
const BUILD_SITE_PACKAGES: &str = env!("MT10_BUILD_SITE_PACKAGES");
/// Points the embedded interpreter at another site-packages folder than the recorded one.
pub const SITE_PACKAGES_VAR: &str = "MT10_SITE_PACKAGES";

/// Chooses MuJoCo's GL backend.
const GL_VAR: &str = "MUJOCO_GL";

#[derive(Debug, Clone)]
enum StartupError {
    Setup(PythonSetupFailure, String),
    Renderer { backend: String, detail: String },
}

impl From<StartupError> for EnvError {
    fn from(error: StartupError) -> Self {
        match error {
            StartupError::Setup(failure, detail) => EnvError::PythonSetup { failure, detail },
            StartupError::Renderer { backend, detail } => {
                EnvError::RendererUnavailable { backend, detail }
            }
        }
    }
}

type Startup = Result<(), StartupError>;
static STARTUP: OnceLock<Startup> = OnceLock::new();
/// Set by [`ensure_renderer`] before the interpreter starts.
static RENDERING: AtomicBool = AtomicBool::new(false);

/// Starts Python (first call only) and checks the interpreter version, the venv and
/// `import metaworld`; later calls return the first answer.
pub fn ensure_python() -> Result<(), EnvError> {
    STARTUP.get_or_init(start).clone().map_err(EnvError::from)
}

/// Makes this process able to render (see the module docs): call it before the first MetaWorld
/// env. Fails with [`EnvError::RendererUnavailable`] where MuJoCo cannot render.
pub fn ensure_renderer() -> Result<(), EnvError> {
    static CHECK: OnceLock<Startup> = OnceLock::new();
    if let Some(package) = missing_renderer_package() {
        // PyOpenGL would fail later with an AttributeError on a `None` library.
        return Err(EnvError::RendererUnavailable {
            backend: gl_backend(),
            detail: format!("no libOSMesa.so: {package} is not installed"),
        });
    }
    RENDERING.store(true, Ordering::SeqCst);
    ensure_python()?;
    CHECK
        .get_or_init(|| {
            Python::attach(|py| {
                super::bridge_module(py)?
                    .getattr("check_renderer")?
                    .call0()
                    .map(drop)
            })
            .map_err(|err| renderer_error(&err))
        })
        .clone()
        .map_err(EnvError::from)
}

/// The backend in use and the exception's first line.
fn renderer_error(err: &PyErr) -> StartupError {
    let backend = std::env::var(GL_VAR).unwrap_or_else(|_| "(unset)".to_string());
    let detail = err.to_string();
    let detail = detail.lines().next().unwrap_or_default().trim().to_string();
    StartupError::Renderer { backend, detail }
}

/// The GL backend MuJoCo renders with here: the user's `MUJOCO_GL`, else EGL where an NVIDIA
/// driver is loaded, else OSMesa.
fn gl_backend() -> String {
    std::env::var(GL_VAR).unwrap_or_else(|_| {
        let nvidia = Path::new("/dev/nvidiactl").exists();
        (if nvidia { "egl" } else { "osmesa" }).to_string()
    })
}

/// The Debian package that rendering needs on this machine and lacks: `libosmesa6` where the
/// backend is OSMesa and no `libOSMesa.so` loads (under the names PyOpenGL tries). `None` where
/// rendering can be tried. Tests that render skip on `Some`, naming the package.
pub fn missing_renderer_package() -> Option<&'static str> {
    if gl_backend() != "osmesa" {
        return None;
    }
    let names = std::iter::once("libOSMesa.so".to_string()).chain((0..10).rev().map(|v| format!("libOSMesa.so.{v}")));
    let loads = |name: String| {
        let name = std::ffi::CString::new(name).expect("no NUL in a library name");
        // SAFETY: dlopen with a valid C string; the handle is closed at once.
        unsafe {
            let handle = libc::dlopen(name.as_ptr(), libc::RTLD_LAZY | libc::RTLD_LOCAL);
            !handle.is_null() && libc::dlclose(handle) == 0
        }
    };
    match names.into_iter().any(loads) {
        true => None,
        false => Some("libosmesa6"),
    }
}

/// Sets `MUJOCO_GL` unless the user did, then imports `mujoco` (which reads it).
fn choose_gl_backend(py: Python<'_>) -> PyResult<()> {
    py.import("os")?
        .getattr("environ")?
        .call_method1("setdefault", (GL_VAR, gl_backend()))?;
    py.import("mujoco").map(drop)
}

fn start() -> Startup {
    let site_packages =
        std::env::var(SITE_PACKAGES_VAR).unwrap_or_else(|_| BUILD_SITE_PACKAGES.to_string());
    if site_packages.is_empty() || !Path::new(&site_packages).is_dir() {
        return Err(StartupError::Setup(
            PythonSetupFailure::Venv,
            format!("no site-packages folder at {site_packages:?}"),
        ));
    }
    Python::initialize();
    Python::attach(|py| {
        let fail = |failure| move |err: PyErr| StartupError::Setup(failure, err.to_string());
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
            return Err(StartupError::Setup(
                PythonSetupFailure::Interpreter,
                format!("the embedded interpreter is {running}, but the venv at {site_packages} is for {venv_python}"),
            ));
        }
        add_site_packages_first(py, &site_packages).map_err(fail(PythonSetupFailure::Venv))?;
        use_venv_python_for_workers(py, &site_packages).map_err(fail(PythonSetupFailure::Venv))?;
        if RENDERING.load(Ordering::SeqCst) {
            choose_gl_backend(py).map_err(|err| renderer_error(&err))?;
        }
        py.import("metaworld").map_err(|err| {
            StartupError::Setup(
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
