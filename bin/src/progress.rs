//! One progress line per seed on stderr: redrawn in place on a terminal, printed after each
//! evaluation otherwise (logs, CI), nothing with `--quiet`.
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq)]
pub struct SeedStatus {
    pub seed: u64,
    pub step: u64,
    pub steps: u64,
    /// Vector steps per second in this session.
    pub steps_per_s: f64,
    pub last_success: Option<f64>,
    pub state: &'static str,
}

impl SeedStatus {
    fn line(&self) -> String {
        let eta = if self.steps_per_s > 0.0 && self.step < self.steps {
            format_duration(Duration::from_secs_f64((self.steps - self.step) as f64 / self.steps_per_s))
        } else {
            "-".into()
        };
        let success = self.last_success.map_or("-".into(), |s| format!("{s:.2}"));
        format!(
            "seed {:<4} {:>9}/{:<9} {:>8.1} steps/s  ETA {:>8}  eval success {success}  {}",
            self.seed, self.step, self.steps, self.steps_per_s, eta, self.state
        )
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Quiet,
    /// Redraw every line in place.
    Terminal,
    /// A line per event.
    Log,
}

pub struct Progress {
    mode: Mode,
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
        Self { mode, state: Mutex::new(Board { lines: vec![None; slots], drawn: 0, last_draw: None }) }
    }

    /// Updates a seed's line; `event` (an evaluation, the end) always shows, steps are throttled.
    pub fn update(&self, slot: usize, status: SeedStatus, event: bool) {
        let mut board = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let line = status.line();
        board.lines[slot] = Some(status);
        match self.mode {
            Mode::Quiet => {}
            Mode::Log if event => eprintln!("{line}"),
            Mode::Log => {}
            Mode::Terminal => {
                if event || board.last_draw.is_none_or(|t| t.elapsed() >= REDRAW) {
                    board.redraw();
                }
            }
        }
    }
}

impl Board {
    fn redraw(&mut self) {
        let mut err = std::io::stderr().lock();
        let mut text = String::new();
        if self.drawn > 0 {
            text.push_str(&format!("\x1b[{}A", self.drawn));
        }
        let lines: Vec<String> = self.lines.iter().flatten().map(SeedStatus::line).collect();
        for line in &lines {
            text.push_str(&format!("\x1b[2K{line}\n"));
        }
        let _ = err.write_all(text.as_bytes());
        self.drawn = lines.len();
        self.last_draw = Some(Instant::now());
    }
}
