//! SIGINT (Ctrl-C) and SIGTERM (what `scancel`, Slurm before a time limit or on preemption, and
//! container runtimes send) both ask training to stop cleanly: checkpoint the running seeds,
//! start no pending seed, and exit with 128 + the signal (130 or 143), so a caller can tell
//! which one stopped the run.
//!
//! The handler only records the first signal and wakes a watcher thread through a pipe (the
//! only things a signal handler may safely do); the watcher forwards the same signal to the
//! child processes and says what is happening. The ctrlc crate's `termination` feature would
//! catch SIGTERM too, but reports neither signal by name.
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    Interrupt,
    Terminate,
}

impl StopSignal {
    pub fn number(self) -> libc::c_int {
        match self {
            Self::Interrupt => libc::SIGINT,
            Self::Terminate => libc::SIGTERM,
        }
    }

    fn from_number(number: libc::c_int) -> Option<Self> {
        [Self::Interrupt, Self::Terminate].into_iter().find(|s| s.number() == number)
    }

    /// The shell's convention for a process ended by the signal.
    pub fn exit_status(self) -> u8 {
        128 + self.number() as u8
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Interrupt => "SIGINT",
            Self::Terminate => "SIGTERM",
        }
    }
}

/// The first stop signal received (0: none yet).
static RECEIVED: AtomicI32 = AtomicI32::new(0);
static STOP: AtomicBool = AtomicBool::new(false);
/// The write end of the watcher's pipe.
static WAKE: AtomicI32 = AtomicI32::new(-1);
/// Whether a second stop signal ends the process at once.
static REPEAT_QUITS: AtomicBool = AtomicBool::new(true);

/// The first stop signal this process received, if any.
pub fn received() -> Option<StopSignal> {
    StopSignal::from_number(RECEIVED.load(Ordering::SeqCst))
}

extern "C" fn on_signal(number: libc::c_int) {
    match RECEIVED.compare_exchange(0, number, Ordering::SeqCst, Ordering::SeqCst) {
        Ok(_) => {
            STOP.store(true, Ordering::SeqCst);
            let byte = 1u8;
            // SAFETY: write is async-signal-safe; the pipe stays open for the process's life.
            unsafe {
                libc::write(WAKE.load(Ordering::SeqCst), (&raw const byte).cast(), 1);
            }
        }
        Err(first) if REPEAT_QUITS.load(Ordering::SeqCst) => {
            // SAFETY: _exit is async-signal-safe. Children die with this process (PDEATHSIG).
            unsafe { libc::_exit(128 + first) }
        }
        Err(_) => {}
    }
}

/// Installs the handlers; the returned flag is set by the first SIGINT or SIGTERM, after which
/// `on_stop` runs once on a thread of its own. With `repeat_quits` a second signal ends the
/// process at once; a child process ignores it instead, since a signal sent to every process of
/// a Slurm job or a cgroup reaches it twice (directly and forwarded by its parent), and its
/// parent's quitting ends it anyway.
pub fn install(repeat_quits: bool, on_stop: fn(StopSignal)) -> anyhow::Result<&'static AtomicBool> {
    REPEAT_QUITS.store(repeat_quits, Ordering::SeqCst);
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array it is given.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } == -1 {
        anyhow::bail!("cannot install the signal handlers: {}", std::io::Error::last_os_error());
    }
    let [read_end, write_end] = fds;
    WAKE.store(write_end, Ordering::SeqCst);
    std::thread::Builder::new().name("stop-signals".into()).spawn(move || {
        let mut byte = 0u8;
        // SAFETY: reads one byte into a local from a descriptor this thread owns.
        while unsafe { libc::read(read_end, (&raw mut byte).cast(), 1) } == -1 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {}
        if let Some(signal) = received() {
            on_stop(signal);
        }
    })?;
    for signal in [StopSignal::Interrupt, StopSignal::Terminate] {
        // SAFETY: the action is fully initialised; the handler only touches atomics and calls
        // async-signal-safe functions.
        let installed = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal.number(), &action, std::ptr::null_mut())
        };
        if installed == -1 {
            anyhow::bail!("cannot install the {} handler: {}", signal.name(), std::io::Error::last_os_error());
        }
    }
    Ok(&STOP)
}

/// Training stopped on SIGINT or SIGTERM after writing checkpoints: exit status 130 or 143.
#[derive(Debug, thiserror::Error)]
#[error("interrupted by {}", .0.name())]
pub struct Interrupted(pub StopSignal);

impl Interrupted {
    /// By the signal this process received (SIGINT where only a child was stopped, directly).
    pub fn by_received_signal() -> Self {
        Self(received().unwrap_or(StopSignal::Interrupt))
    }
}
