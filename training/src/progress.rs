//! One progress line per seed on stderr: redrawn in place on a terminal, printed after each
//! evaluation otherwise (logs, CI), nothing with `--quiet`. A seed trained in a child process
//! reports its status as JSON lines on stdout instead ([`Progress::for_parent`]), which the
//! parent reads back ([`SeedStatus::from_report`]) and draws.
use serde::{Deserialize, Serialize};
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedStatus {
    pub seed: u64,
    pub step: u64,
    pub steps: u64,
    /// Vector steps per second in this session.
    pub steps_per_s: f64,
    pub last_success: Option<f64>,
    pub state: SeedState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeedState {
    Running,
    /// The `run.initial_updates` done at once after the random steps (minutes at MT10 scale).
    InitialUpdates,
    Interrupted,
    Done,
    /// The seed's process ended with an error.
    Failed,
}

impl std::fmt::Display for SeedState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Running => "running",
            Self::InitialUpdates => "initial updates",
            Self::Interrupted => "interrupted",
            Self::Done => "done",
            Self::Failed => "FAILED",
        })
    }
}

/// What prefixes a status report on a child's stdout, so other output there cannot be mistaken
/// for one.
const REPORT_PREFIX: &str = "mt10-status ";

impl SeedStatus {
    /// The status and whether it is an event, from one line of a child's stdout.
    pub fn from_report(line: &str) -> Option<(Self, bool)> {
        serde_json::from_str::<Report>(line.strip_prefix(REPORT_PREFIX)?).ok().map(|r| (r.status, r.event))
    }

    /// The seed's line, named `label` where one is given (a sweep's `fairgrad seed 3`).
    fn line(&self, label: Option<&String>) -> String {
        let eta = if self.steps_per_s > 0.0 && self.step < self.steps {
            format_duration(Duration::from_secs_f64((self.steps - self.step) as f64 / self.steps_per_s))
        } else {
            "-".into()
        };
        let success = self.last_success.map_or("-".into(), |s| format!("{s:.2}"));
        let name = label.map_or_else(|| format!("seed {:<4}", self.seed), |label| format!("{label:<14}"));
        format!("{name} {:>9}/{:<9} {:>8.1} steps/s  ETA {:>8}  eval success {success}  {}", self.step, self.steps, self.steps_per_s, eta, self.state)
    }
}

pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

#[derive(Serialize, Deserialize)]
struct Report {
    status: SeedStatus,
    event: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Quiet,
    /// Redraw every line in place.
    Terminal,
    /// A line per event.
    Log,
    /// Status reports on stdout for the parent process, events and throttled steps.
    Parent,
}

pub struct Progress {
    mode: Mode,
    /// What names each slot's line; empty: its seed.
    labels: Vec<String>,
    state: Mutex<Board>,
}

struct Board {
    lines: Vec<Option<SeedStatus>>,
    drawn: usize,
    last_draw: Option<Instant>,
}

const REDRAW: Duration = Duration::from_millis(250);

impl Progress {
    pub fn new(slots: usize, quiet: bool) -> Self {
        let mode = match (quiet, std::io::stderr().is_terminal()) {
            (true, _) => Mode::Quiet,
            (false, true) => Mode::Terminal,
            (false, false) => Mode::Log,
        };
        Self::with_mode(slots, mode)
    }

    /// One line per slot named by its label (a sweep's runs share seed numbers).
    pub fn labelled(labels: Vec<String>, quiet: bool) -> Self {
        let slots = labels.len();
        Self { labels, ..Self::new(slots, quiet) }
    }

    /// One seed trained in a child process: reports go to the parent on stdout.
    pub fn for_parent() -> Self {
        Self::with_mode(1, Mode::Parent)
    }

    fn with_mode(slots: usize, mode: Mode) -> Self {
        Self { mode, labels: Vec::new(), state: Mutex::new(Board { lines: vec![None; slots], drawn: 0, last_draw: None }) }
    }

    /// Updates a seed's line; `event` (an evaluation, the end) always shows, steps are throttled.
    pub fn update(&self, slot: usize, status: SeedStatus, event: bool) {
        let mut board = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let due = event || board.last_draw.is_none_or(|t| t.elapsed() >= REDRAW);
        match self.mode {
            Mode::Quiet => {}
            Mode::Log if event => eprintln!("{}", status.line(self.labels.get(slot))),
            Mode::Log => {}
            Mode::Terminal => {
                board.lines[slot] = Some(status);
                if due {
                    board.redraw(&self.labels);
                }
            }
            Mode::Parent => {
                if due {
                    let report = serde_json::to_string(&Report { status, event }).expect("a status serialises");
                    // A parent that went away is noticed by the child's own stop path (Ctrl-C or
                    // being killed); the report itself is not worth failing the seed for.
                    let _ = writeln!(std::io::stdout().lock(), "{REPORT_PREFIX}{report}");
                    board.last_draw = Some(Instant::now());
                }
            }
        }
    }
}

impl Board {
    fn redraw(&mut self, labels: &[String]) {
        let mut err = std::io::stderr().lock();
        let mut text = String::new();
        if self.drawn > 0 {
            text.push_str(&format!("\x1b[{}A", self.drawn));
        }
        let lines: Vec<String> = self.lines.iter().enumerate().filter_map(|(slot, status)| Some(status.as_ref()?.line(labels.get(slot)))).collect();
        for line in &lines {
            text.push_str(&format!("\x1b[2K{line}\n"));
        }
        let _ = err.write_all(text.as_bytes());
        self.drawn = lines.len();
        self.last_draw = Some(Instant::now());
    }
}
