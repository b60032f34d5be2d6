//! Steps a multi-task env on its own thread, so that env stepping overlaps learning.
//!
//! The learner acts on the observations it has, hands the actions over, runs its update while
//! the env steps, then collects the step: env step `t + 1` runs during update `t`, with exactly
//! one update per vector step, and the acting policy is the one before that update.
//!
//! ```no_run
//! # fn policy(obs: &[f32]) -> Vec<f32> { vec![0.0; obs.len() / 6 * 2] }
//! # fn update() {}
//! use envs::{EnvConfig, ToyConfig, Worker};
//! let (worker, mut obs) = Worker::spawn(EnvConfig::Toy(ToyConfig::default()), 0)?;
//! for _ in 0..1000 {
//!     let actions = policy(&obs);
//!     worker.send_actions(actions.clone())?; // the env steps ...
//!     update(); // ... while the learner updates
//!     let step = worker.recv_step()?;
//!     // store (obs, actions, step.rewards, step.next_obs, step.terminated) ...
//!     obs = step.obs;
//! }
//! # Ok::<(), envs::EnvError>(())
//! ```
//!
//! The env is built, used and dropped on the worker thread, so Python objects never cross
//! threads, and the learner thread never waits for the interpreter. Several workers (one per
//! seed) can run side by side; their Python calls take turns on the interpreter.
//!
//! Shutdown: dropping the worker (normal exit, or unwinding after an error) ends the thread
//! after the step in flight and drops the env there (closing MetaWorld's envs and ending `async`
//! worker processes); a worker that does not finish within [`SHUTDOWN_TIMEOUT`] is left behind
//! with a message rather than hanging the process. An error in the env ends the thread and comes
//! back from [`Worker::recv_step`]. Ctrl-C: the embedded interpreter installs no signal
//! handlers, so SIGINT keeps its default (the process ends; `async` env processes ignore it); a
//! binary that catches it to stop its loop gets the clean path by dropping the worker.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};

use crate::{build_env, EnvConfig, EnvError, EnvSpec, MultiTaskEnv, VecStep};

pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Worker {
    spec: EnvSpec,
    actions: Option<Sender<Vec<f32>>>,
    steps: Option<Receiver<Result<VecStep, EnvError>>>,
    /// Disconnects when the thread ends (its sender is dropped, also when unwinding).
    finished: Receiver<()>,
    thread: Option<JoinHandle<()>>,
    instability_resets: Arc<AtomicU64>,
}

impl Worker {
    /// Builds the env from its config on a new thread, seeded, and resets it. Returns once the
    /// env is ready, with the first observations; a build error (e.g. a broken Python set-up)
    /// comes back here.
    pub fn spawn(config: EnvConfig, seed: u64) -> Result<(Self, Vec<f32>), EnvError> {
        Self::spawn_with(move || build_env(&config, seed))
    }

    /// Like [`Worker::spawn`], with the env made by `make_env` on the worker thread.
    pub fn spawn_with<F>(make_env: F) -> Result<(Self, Vec<f32>), EnvError>
    where
        F: FnOnce() -> Result<Box<dyn MultiTaskEnv>, EnvError> + Send + 'static,
    {
        let (ready_tx, ready_rx) = bounded(1);
        let (actions_tx, actions_rx) = bounded::<Vec<f32>>(1);
        let (steps_tx, steps_rx) = bounded(1);
        let (finished_tx, finished_rx) = bounded::<()>(0);
        let instability_resets = Arc::new(AtomicU64::new(0));
        let resets = Arc::clone(&instability_resets);
        let thread = std::thread::Builder::new()
            .name("mt10-env".into())
            .spawn(move || {
                let _finished = finished_tx;
                let mut env = match make_env().and_then(|mut env| Ok((env.reset()?, env))) {
                    Ok((obs, env)) => {
                        let _ = ready_tx.send(Ok((env.spec().clone(), obs)));
                        env
                    }
                    Err(err) => {
                        let _ = ready_tx.send(Err(err));
                        return;
                    }
                };
                for actions in actions_rx {
                    let step = env.step(&actions);
                    resets.store(env.instability_resets(), Ordering::Relaxed);
                    let failed = step.is_err();
                    if steps_tx.send(step).is_err() || failed {
                        break;
                    }
                }
            })
            .map_err(|err| {
                EnvError::WorkerStopped(format!("could not start the env thread: {err}"))
            })?;
        let ready = ready_rx
            .recv()
            .unwrap_or_else(|_| Err(stopped("while building the env")));
        let (spec, obs) = match ready {
            Ok(ready) => ready,
            Err(err) => {
                // The thread has nothing left to do: it sent the error or unwound.
                let _ = thread.join();
                return Err(err);
            }
        };
        let worker = Self {
            spec,
            actions: Some(actions_tx),
            steps: Some(steps_rx),
            finished: finished_rx,
            thread: Some(thread),
            instability_resets,
        };
        Ok((worker, obs))
    }

    pub fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    /// Starts the next vector step (`K * action_dim` actions); collect it with
    /// [`Worker::recv_step`] before sending the next actions.
    pub fn send_actions(&self, actions: Vec<f32>) -> Result<(), EnvError> {
        let sender = self.actions.as_ref().expect("the sender lives until drop");
        sender
            .send(actions)
            .map_err(|_| stopped("before taking the actions"))
    }

    /// Waits for the step started by the last [`Worker::send_actions`].
    pub fn recv_step(&self) -> Result<VecStep, EnvError> {
        let receiver = self.steps.as_ref().expect("the receiver lives until drop");
        receiver
            .recv()
            .map_err(|_| stopped("before returning the step"))?
    }

    /// See [`MultiTaskEnv::instability_resets`]; as of the last step.
    pub fn instability_resets(&self) -> u64 {
        self.instability_resets.load(Ordering::Relaxed)
    }
}

fn stopped(when: &str) -> EnvError {
    EnvError::WorkerStopped(format!(
        "the env thread ended {when} (it panicked or failed earlier)"
    ))
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.actions.take();
        self.steps.take();
        match self.finished.recv_timeout(SHUTDOWN_TIMEOUT) {
            Err(RecvTimeoutError::Timeout) => {
                eprintln!("mt10: the env thread did not stop within {SHUTDOWN_TIMEOUT:?}; leaving it behind");
            }
            _ => {
                if let Some(thread) = self.thread.take() {
                    let _ = thread.join();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ToyConfig, ToyEnv};

    fn toy() -> EnvConfig {
        EnvConfig::Toy(ToyConfig::default())
    }

    /// A toy env that reports where it was dropped, or panics on its second step.
    struct Probe {
        env: ToyEnv,
        dropped_on: Arc<std::sync::Mutex<Option<String>>>,
        panic_on_second_step: bool,
        steps: usize,
    }

    impl MultiTaskEnv for Probe {
        fn spec(&self) -> &EnvSpec {
            self.env.spec()
        }
        fn reset(&mut self) -> Result<Vec<f32>, EnvError> {
            self.env.reset()
        }
        fn step(&mut self, actions: &[f32]) -> Result<VecStep, EnvError> {
            self.steps += 1;
            assert!(
                !(self.panic_on_second_step && self.steps == 2),
                "the env broke"
            );
            self.env.step(actions)
        }
    }

    impl Drop for Probe {
        fn drop(&mut self) {
            *self.dropped_on.lock().unwrap() = std::thread::current().name().map(String::from);
        }
    }

    fn probe(panic_on_second_step: bool) -> (Worker, Arc<std::sync::Mutex<Option<String>>>) {
        let dropped_on = Arc::new(std::sync::Mutex::new(None));
        let report = Arc::clone(&dropped_on);
        let (worker, _) = Worker::spawn_with(move || {
            let env = ToyEnv::new(ToyConfig::default(), 0)?;
            Ok(Box::new(Probe {
                env,
                dropped_on: report,
                panic_on_second_step,
                steps: 0,
            }) as Box<dyn MultiTaskEnv>)
        })
        .unwrap();
        (worker, dropped_on)
    }

    #[test]
    fn a_worker_steps_exactly_like_the_env_itself() {
        let (worker, obs) = Worker::spawn(toy(), 11).unwrap();
        let mut env = ToyEnv::new(ToyConfig::default(), 11).unwrap();
        assert_eq!(obs, env.reset().unwrap());
        assert_eq!(worker.spec(), env.spec());
        for t in 0..60 {
            let actions: Vec<f32> = (0..8).map(|i| ((t * 8 + i) as f32 * 0.37).sin()).collect();
            worker.send_actions(actions.clone()).unwrap();
            assert_eq!(worker.recv_step().unwrap(), env.step(&actions).unwrap());
        }
        assert_eq!(worker.instability_resets(), 0);
    }

    #[test]
    fn dropping_mid_episode_joins_the_thread_and_drops_the_env_there() {
        let (worker, dropped_on) = probe(false);
        worker.send_actions(vec![0.5; 8]).unwrap();
        drop(worker);
        assert_eq!(dropped_on.lock().unwrap().as_deref(), Some("mt10-env"));
    }

    #[test]
    fn an_env_error_surfaces_on_the_learner_side_and_stops_the_worker() {
        let (worker, _) = Worker::spawn(toy(), 0).unwrap();
        worker.send_actions(vec![0.0; 3]).unwrap();
        assert!(matches!(
            worker.recv_step(),
            Err(EnvError::ActionShape { got: 3, .. })
        ));
        let after = worker
            .send_actions(vec![0.0; 8])
            .and_then(|()| worker.recv_step());
        assert!(
            matches!(after, Err(EnvError::WorkerStopped(_))),
            "{after:?}"
        );
    }

    #[test]
    fn a_panicking_env_is_an_error_not_a_hang() {
        let (worker, dropped_on) = probe(true);
        worker.send_actions(vec![0.0; 8]).unwrap();
        worker.recv_step().unwrap();
        worker.send_actions(vec![0.0; 8]).unwrap();
        assert!(matches!(
            worker.recv_step(),
            Err(EnvError::WorkerStopped(_))
        ));
        drop(worker);
        assert_eq!(
            dropped_on.lock().unwrap().as_deref(),
            Some("mt10-env"),
            "unwinding dropped the env"
        );
    }

    #[test]
    fn a_build_error_comes_back_from_spawn() {
        let config = EnvConfig::Toy(ToyConfig {
            num_tasks: 0,
            ..ToyConfig::default()
        });
        assert!(matches!(
            Worker::spawn(config, 0),
            Err(EnvError::InvalidConfig(_))
        ));
    }
}
