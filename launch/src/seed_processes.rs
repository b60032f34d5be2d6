//! Seeds trained as child processes of this binary, `jobs` at a time: each runs
//! `mt10 train --resume DIR --only-seed S --child`, with its own embedded Python (one GIL per
//! process: seeds stepped as threads of one interpreter take turns on it) and its own libtorch
//! threads. A child reports its progress as status lines on stdout, drawn here; its stderr goes
//! to `seed-<s>/stderr.log`.
//!
//! Ctrl-C: the children run in their own process groups, so a terminal's SIGINT reaches only
//! this process, which forwards it ([`interrupt_children`]) and starts no further seed; each
//! child checkpoints and exits with 130. SIGTERM likewise, with 143. Children die with this
//! process (`PR_SET_PDEATHSIG`), so a killed or twice-interrupted parent leaves none behind
//! still writing to the run.
use crate::stop_signals::StopSignal;
use anyhow::Context;
use rundir::run_files::seed_dir;
use std::io::{BufRead, BufReader};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Mutex;
use training::progress::{Progress, SeedState, SeedStatus};

/// Where each child's stderr goes, in its seed directory.
pub const STDERR_LOG: &str = "stderr.log";

/// The process ids of the running children; locked while one is started, so that a stop
/// either prevents the start or reaches the new child.
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// How a child ended.
pub enum SeedEnd {
    Finished,
    Interrupted,
    /// Why: its exit status and the last line it wrote to stderr, or why it could not start.
    Failed(String),
}

/// One seed of a run directory (`mt10 train` trains one run's seeds, `mt10 sweep` many runs').
pub struct SeedRun {
    pub run_dir: PathBuf,
    pub seed: u64,
    /// How messages name it: `seed 3`, or `fairgrad seed 3` in a sweep.
    pub label: String,
}

pub struct SeedProcesses<'a> {
    pub runs: &'a [SeedRun],
    pub jobs: usize,
    pub stop: &'static AtomicBool,
    pub progress: &'a Progress,
}

impl SeedProcesses<'_> {
    /// Trains the seeds (slot `i` is `runs[i]`) and returns how each one that was started
    /// ended, by slot; after a stop no further seed is started. A failed seed is reported on
    /// stderr when it ends; the others go on.
    pub fn run(&self) -> anyhow::Result<Vec<(usize, SeedEnd)>> {
        let exe = std::env::current_exe().context("cannot find the mt10 executable to start the seeds")?;
        let (ended_tx, ended_rx) = mpsc::channel();
        Ok(std::thread::scope(|scope| {
            let (mut next, mut running, mut ends) = (0, 0, Vec::new());
            loop {
                while running < self.jobs && next < self.runs.len() {
                    let mut children = CHILDREN.lock().unwrap_or_else(|p| p.into_inner());
                    if self.stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let (slot, run) = (next, &self.runs[next]);
                    next += 1;
                    let child = match self.spawn(&exe, run) {
                        Ok(child) => child,
                        Err(error) => {
                            eprintln!("mt10: {} failed: cannot start its process: {error:#}", run.label);
                            ends.push((slot, SeedEnd::Failed(format!("{error:#}"))));
                            continue;
                        }
                    };
                    children.push(child.id());
                    drop(children);
                    let ended = ended_tx.clone();
                    let log = seed_dir(&run.run_dir, run.seed).join(STDERR_LOG);
                    scope.spawn(move || {
                        let end = follow(child, slot, self.progress, &log);
                        let _ = ended.send((slot, end));
                    });
                    running += 1;
                }
                if running == 0 {
                    return ends;
                }
                let (slot, end) = ended_rx.recv().expect("a child's thread sends how it ended");
                running -= 1;
                if let SeedEnd::Failed(why) = &end {
                    eprintln!("mt10: {} failed: {why}", self.runs[slot].label);
                }
                ends.push((slot, end));
            }
        }))
    }

    fn spawn(&self, exe: &Path, run: &SeedRun) -> anyhow::Result<Child> {
        let dir = seed_dir(&run.run_dir, run.seed);
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join(STDERR_LOG))?;
        let mut command = Command::new(exe);
        command
            .args(["train", "--child", "--resume"])
            .arg(&run.run_dir)
            .args(["--only-seed", &run.seed.to_string(), "--jobs", &self.jobs.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .process_group(0);
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Ok(command.spawn()?)
    }
}

/// Draws the child's status reports until its stdout closes, then waits for it.
fn follow(mut child: Child, slot: usize, progress: &Progress, log: &Path) -> SeedEnd {
    let mut last = None;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some((status, event)) = SeedStatus::from_report(&line) {
                progress.update(slot, status.clone(), event);
                last = Some(status);
            }
        }
    }
    // Forgotten before it is reaped, after which its pid could belong to another process.
    CHILDREN.lock().unwrap_or_else(|p| p.into_inner()).retain(|&pid| pid != child.id());
    let status = child.wait();
    let end = match status {
        Ok(status) => classify(status, log),
        Err(error) => SeedEnd::Failed(format!("cannot wait for its process: {error}")),
    };
    if let (SeedEnd::Failed(_), Some(status)) = (&end, last) {
        progress.update(slot, SeedStatus { state: SeedState::Failed, ..status }, true);
    }
    end
}

fn classify(status: ExitStatus, log: &Path) -> SeedEnd {
    match (status.code(), status.signal()) {
        (Some(0), _) => SeedEnd::Finished,
        // A SIGINT or SIGTERM before the child's own handler was installed ends it without a
        // checkpoint; it then resumes from its last one, as after any stop.
        (Some(130 | 143), _) | (_, Some(libc::SIGINT | libc::SIGTERM)) => SeedEnd::Interrupted,
        _ => {
            let how = status.code().map_or_else(|| format!("killed by signal {}", status.signal().unwrap_or(0)), |c| format!("exit status {c}"));
            let last_line = last_line(log).unwrap_or_else(|| "no error message".into());
            SeedEnd::Failed(format!("{how}: {last_line} (full log: {})", log.display()))
        }
    }
}

fn last_line(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().rev().find(|l| !l.trim().is_empty()).map(|l| l.trim().to_string())
}

/// Forwards a stop signal to every running child (each then checkpoints and exits with 128 +
/// the signal).
pub fn interrupt_children(signal: StopSignal) {
    for &pid in CHILDREN.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        // SAFETY: kill has no memory effects; listed children are not reaped yet, so their
        // pids are still theirs.
        unsafe {
            libc::kill(pid as libc::pid_t, signal.number());
        }
    }
}
