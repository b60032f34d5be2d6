//! Meta-World MT10 (or a subset of its tasks) through embedded CPython.
//!
//! One Python call per vector step (`bridge.py` does the `final_obs`/`final_info` merging in
//! numpy); Rust reads each returned array through a readonly numpy view and copies it once into
//! the `f32` buffers of [`VecStep`]. Python objects are only touched with the interpreter
//! attached; the learner thread never needs it.
//!
//! MuJoCo instability: MuJoCo resets an unstable simulation by itself and counts a warning. With
//! the `sync` strategy the bridge watches those counters (and non-finite observations) after
//! every step; an env that went unstable has its episode cut (truncated, reward 0, non-finite
//! values in its last observation zeroed), is reset, and is counted in
//! [`MultiTaskEnv::instability_resets`]. With `async` the envs live in other processes whose
//! MuJoCo state cannot be read cheaply, so only non-finite observations are caught there.
//!
//! Frames ([`MultiTaskEnv::render`], `sync` only) come from one MuJoCo renderer per env, made on
//! the first call and kept with the envs; see [`ensure_renderer`] for the GL set-up.
//!
//! `async` runs one worker process per env, forked from a fork server that runs the venv's
//! Python (`bridge.py`), never from this process, whose libtorch (or CUDA) threads a fork would
//! copy mid-flight.

mod bench;
mod python;

pub use bench::{bench_env, EnvBench, Stepper};
pub use python::{ensure_python, ensure_renderer, missing_renderer_package, SITE_PACKAGES_VAR};
use python::start_fork_server;

use numpy::{PyArray1, PyArray4, PyArrayDyn, PyArrayMethods};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyModule};

use crate::{
    EnvError, EnvSpec, Frames, MetaWorldConfig, MultiTaskEnv, RewardNormalization, RunningStdNormalizer,
    VecStep, VectorStrategy,
};

/// Meta-World's tasks are built with `np.random.seed(seed)`, which takes 32-bit seeds.
const MAX_SEED: u64 = u32::MAX as u64;

pub struct MetaWorldEnv {
    spec: EnvSpec,
    bridge: Py<PyAny>,
    normalizer: Option<RunningStdNormalizer>,
}

impl MetaWorldEnv {
    /// Checks the Python set-up (see [`ensure_python`]) and builds the envs, seeded.
    pub fn new(config: &MetaWorldConfig, seed: u64) -> Result<Self, EnvError> {
        config.validate()?;
        if seed > MAX_SEED {
            return Err(EnvError::InvalidConfig(format!(
                "MetaWorld seeds must be below 2^32, got {seed}"
            )));
        }
        ensure_python()?;
        let names = config.task_names()?;
        let (bridge, obs_dim, action_dim) = Python::attach(|py| -> PyResult<_> {
            let options = PyDict::new(py);
            options.set_item("use_one_hot", config.use_one_hot)?;
            options.set_item("num_goals", config.num_goals)?;
            options.set_item("max_episode_steps", config.max_episode_steps)?;
            options.set_item(
                "reward_function_version",
                config.reward_function_version.as_str(),
            )?;
            options.set_item("terminate_on_success", config.terminate_on_success)?;
            let subset = (!config.tasks.is_empty()).then_some(&names);
            let module = bridge_module(py)?;
            if config.vector_strategy == VectorStrategy::Async {
                start_fork_server(py)?;
            }
            let bridge = module.getattr("Bridge")?.call1((
                subset,
                seed,
                config.vector_strategy.as_str(),
                options,
            ))?;
            let obs_dim: usize = bridge.getattr("obs_dim")?.extract()?;
            let action_dim: usize = bridge.getattr("action_dim")?.extract()?;
            Ok((bridge.unbind(), obs_dim, action_dim))
        })
        .map_err(python_error)?;
        let normalizer = match config.reward_normalization {
            RewardNormalization::None => None,
            RewardNormalization::RunningStd { ema_rate } => {
                Some(RunningStdNormalizer::new(names.len(), ema_rate))
            }
        };
        let spec = EnvSpec {
            task_names: names.iter().map(|name| name.to_string()).collect(),
            obs_dim,
            action_dim,
            max_episode_steps: config.max_episode_steps,
        };
        Ok(Self {
            spec,
            bridge,
            normalizer,
        })
    }
}

impl MultiTaskEnv for MetaWorldEnv {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn reset(&mut self) -> Result<Vec<f32>, EnvError> {
        Python::attach(|py| read_f32(&self.bridge.bind(py).call_method0("reset")?))
            .map_err(python_error)
    }

    fn step(&mut self, actions: &[f32]) -> Result<VecStep, EnvError> {
        self.spec.check_actions(actions)?;
        let mut step = Python::attach(|py| -> PyResult<VecStep> {
            let actions = PyArray1::from_slice(py, actions)
                .reshape([self.spec.num_tasks(), self.spec.action_dim])?;
            let out = self
                .bridge
                .bind(py)
                .call_method1(pyo3::intern!(py, "step"), (actions,))?;
            let (obs, next_obs, rewards, terminated, truncated, success): Arrays6<'_> =
                out.extract()?;
            let obs_values = read_f32(&obs)?;
            Ok(VecStep {
                next_obs: if next_obs.is(&obs) {
                    obs_values.clone()
                } else {
                    read_f32(&next_obs)?
                },
                obs: obs_values,
                rewards: read_f32(&rewards)?,
                terminated: read_bool(&terminated)?,
                truncated: read_bool(&truncated)?,
                success: read_bool(&success)?,
            })
        })
        .map_err(python_error)?;
        if let Some(normalizer) = &mut self.normalizer {
            normalizer.normalize(&mut step.rewards);
        }
        Ok(step)
    }

    /// See the module docs for what counts.
    fn instability_resets(&self) -> u64 {
        Python::attach(|py| {
            self.bridge
                .bind(py)
                .getattr("instability_resets")?
                .extract()
        })
        .unwrap_or(0)
    }

    fn render(&mut self, size: usize, camera: &str, tasks: &[usize]) -> Result<Frames, EnvError> {
        ensure_renderer()?;
        Python::attach(|py| -> Result<Frames, EnvError> {
            let bridge = self.bridge.bind(py);
            let known: Vec<String> = bridge
                .call_method0("camera_names")
                .and_then(|names| names.extract())
                .map_err(python_error)?;
            if !known.iter().any(|name| name == camera) {
                return Err(EnvError::UnknownCamera {
                    camera: camera.to_string(),
                    known,
                });
            }
            let frames = bridge
                .call_method1("render", (size, camera, tasks.to_vec()))
                .map_err(python_error)?;
            let frames = frames.cast::<PyArray4<u8>>().map_err(|e| python_error(e.into()))?;
            let pixels = frames.readonly().as_slice().map_err(|e| python_error(e.into()))?.to_vec();
            Ok(Frames {
                size,
                tasks: tasks.to_vec(),
                pixels,
            })
        })
    }
}

impl Drop for MetaWorldEnv {
    /// Closes the envs: for `async` this ends the worker processes.
    fn drop(&mut self) {
        Python::attach(|py| {
            if let Err(err) = self.bridge.bind(py).call_method0("close") {
                eprintln!(
                    "mt10: closing the MetaWorld envs failed: {}",
                    python_error(err)
                );
            }
        });
    }
}

type Arrays6<'py> = (
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
);

/// `bridge.py`, compiled once per process.
fn bridge_module(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    static MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    MODULE
        .get_or_try_init(py, || {
            PyModule::from_code(
                py,
                pyo3::ffi::c_str!(include_str!("bridge.py")),
                c"mt10_bridge.py",
                c"mt10_bridge",
            )
            .map(Bound::unbind)
        })
        .map(|module| module.bind(py))
}

/// One copy from a contiguous float64 (Meta-World's observations and rewards) or float32 (the
/// one-hot observations) array, converting while copying.
fn read_f32(array: &Bound<'_, PyAny>) -> PyResult<Vec<f32>> {
    if let Ok(doubles) = array.cast::<PyArrayDyn<f64>>() {
        return Ok(doubles
            .readonly()
            .as_slice()?
            .iter()
            .map(|&x| x as f32)
            .collect());
    }
    Ok(array
        .cast::<PyArrayDyn<f32>>()?
        .readonly()
        .as_slice()?
        .to_vec())
}

fn read_bool(array: &Bound<'_, PyAny>) -> PyResult<Vec<bool>> {
    Ok(array
        .cast::<PyArrayDyn<bool>>()?
        .readonly()
        .as_slice()?
        .to_vec())
}

/// A Python exception as text, with its traceback (where the error happened in Meta-World).
fn python_error(err: PyErr) -> EnvError {
    Python::attach(|py| {
        let traceback = err
            .traceback(py)
            .and_then(|tb| tb.format().ok())
            .unwrap_or_default();
        EnvError::Python(format!("{err}\n{traceback}"))
    })
}

#[cfg(test)]
mod tests;
