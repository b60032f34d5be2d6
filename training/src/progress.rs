//! One progress line per seed on stderr: redrawn in place on a terminal, printed after each
//! evaluation otherwise (logs, CI), nothing with `--quiet`. A seed trained in a child process
//! reports its status as JSON lines on stdout instead ([`Progress::for_parent`]), which the
//! parent reads back ([`SeedStatus::from_report`]) and draws.
//!
//! The time left ([`Pace`]) comes from the phase that dominates, the updates: none during the
//! random actions (no update timed yet); an estimate marked `~... (est.)` from the mean update
//! time during the initial updates and the first [`SETTLED_S`] seconds of one update per step;
//! then the measured pace of that phase. With several seeds each line also gives the whole run's
//! time left (the seeds still to start taking as long as those running, `jobs` at a time). On a
//! CPU, a seed estimated at over [`CPU_WARNING_S`] gets one line naming the presets sized for it.
use serde::{Deserialize, Serialize};
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedStatus {
    pub seed: u64,
    pub step: u64,
    pub steps: u64,
    /// Vector steps per second in the phase under way (0 during the initial updates).
    pub steps_per_s: f64,
    /// `None` until an update has been timed.
    pub eta: Option<Eta>,
    pub last_success: Option<f64>,
    pub state: SeedState,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Eta {
    /// Seconds left for this seed.
    pub left_s: f64,
    /// A whole seed at this pace: what each seed still to start will take.
    pub seed_s: f64,
    /// From the mean update time, not yet from the measured pace of the update phase.
    pub estimated: bool,
}

/// How long the phase of one update per step runs before its pace is taken as measured.
pub const SETTLED_S: f64 = 30.0;
/// Updates timed before their mean is used for an estimate (the first ones warm up).
const TIMED_UPDATES: u64 = 5;
/// A seed on a CPU estimated longer than this gets one line naming the presets for a CPU.
pub const CPU_WARNING_S: f64 = 24.0 * 3600.0;

/// A seed's pace, phase by phase: the random actions, the initial updates, one update per step
/// (see the module docs). Times are seconds into this session, so that tests can give them.
pub struct Pace {
    steps: u64,
    random_steps: u64,
    initial_updates: u64,
    updates_per_step: u64,
    timed_updates: u64,
    update_s_total: f64,
    /// Where the phase under way started: seconds, step, and whether it is one update per step.
    phase: (f64, u64, bool),
}

impl Pace {
    /// A seed of `steps` vector steps, the first `random_steps` with random actions, then
    /// `initial_updates` at once, then `updates_per_step` per step; [`Pace::enter`] its first
    /// phase.
    pub fn new(steps: u64, random_steps: u64, initial_updates: u64, updates_per_step: u64) -> Self {
        Self { steps, random_steps, initial_updates, updates_per_step, timed_updates: 0, update_s_total: 0.0, phase: (0.0, 0, false) }
    }

    /// A phase starts at `now_s` and `step`; `learning`: one update per step.
    pub fn enter(&mut self, now_s: f64, step: u64, learning: bool) {
        self.phase = (now_s, step, learning);
    }

    pub fn update_timed(&mut self, ms: f64) {
        self.timed_updates += 1;
        self.update_s_total += ms * 1e-3;
    }

    /// Steps per second in the phase under way, and the time left at `step` with
    /// `initial_updates_left` initial updates still to do.
    pub fn status(&self, now_s: f64, step: u64, initial_updates_left: u64) -> (f64, Option<Eta>) {
        let (since, from_step, learning) = self.phase;
        let (seconds, stepped) = (now_s - since, step.saturating_sub(from_step));
        let steps_per_s = if seconds > 0.0 { stepped as f64 / seconds } else { 0.0 };
        if self.timed_updates < TIMED_UPDATES {
            return (steps_per_s, None);
        }
        let update_s = self.update_s_total / self.timed_updates as f64;
        let settled = learning && seconds >= SETTLED_S && stepped >= 10;
        let step_s = if settled { seconds / stepped as f64 } else { update_s * self.updates_per_step as f64 };
        let learning_steps_left = self.steps.saturating_sub(step.max(self.random_steps));
        let eta = Eta {
            left_s: initial_updates_left as f64 * update_s + learning_steps_left as f64 * step_s,
            seed_s: self.initial_updates as f64 * update_s + self.steps.saturating_sub(self.random_steps) as f64 * step_s,
            estimated: !settled,
        };
        (steps_per_s, Some(eta))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeedState {
    /// Uniform random actions, no updates (`run.random_steps`).
    RandomActions,
    /// One update per step.
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
            Self::RandomActions => "random actions",
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

    /// The seed's line, named `label` where one is given (a sweep's `fairgrad seed 3`), ending
    /// with `run` (the whole run's time left) where given.
    fn line(&self, label: Option<&String>, run: Option<&str>) -> String {
        let eta = match self.eta {
            _ if self.step >= self.steps => "-".into(),
            Some(eta) => eta_text(eta.left_s, eta.estimated),
            None => "-".into(),
        };
        let success = self.last_success.map_or("-".into(), |s| format!("{s:.2}"));
        let name = label.map_or_else(|| format!("seed {:<4}", self.seed), |label| format!("{label:<14}"));
        let run = run.map_or(String::new(), |run| format!("  {run}"));
        format!("{name} {:>9}/{:<9} {:>8.1} steps/s  ETA {:>8}  eval success {success}  {}{run}", self.step, self.steps, self.steps_per_s, eta, self.state)
    }
}

/// `3h23m`, or `~3h23m (est.)` for an estimate.
fn eta_text(seconds: f64, estimated: bool) -> String {
    let duration = format_duration(Duration::from_secs_f64(seconds.max(0.0)));
    if estimated {
        format!("~{duration} (est.)")
    } else {
        duration
    }
}

/// The whole run's time left: each running seed's, then the seeds not yet started (`None`
/// lines), `jobs` at a time, each as long as a whole seed of those started. `None` while a
/// running seed has no estimate, or nothing is left; the flag says whether any part is an
/// estimate.
fn run_left(lines: &[Option<SeedStatus>], jobs: usize) -> Option<(f64, bool)> {
    let (mut slots, mut seed_s, mut estimated, mut queued) = (Vec::new(), Vec::new(), false, 0);
    for line in lines {
        let Some(status) = line else {
            queued += 1;
            continue;
        };
        let ended = matches!(status.state, SeedState::Done | SeedState::Failed | SeedState::Interrupted);
        match status.eta {
            None if ended => {}
            None => return None,
            Some(eta) => {
                if !ended {
                    slots.push(eta.left_s);
                }
                seed_s.push(eta.seed_s);
                estimated |= eta.estimated;
            }
        }
    }
    if slots.is_empty() && queued == 0 || queued > 0 && seed_s.is_empty() {
        return None;
    }
    let whole_seed = seed_s.iter().sum::<f64>() / seed_s.len() as f64;
    slots.resize(jobs.max(slots.len()), 0.0);
    for _ in 0..queued {
        let first_free = slots.iter_mut().min_by(|a, b| a.total_cmp(b)).expect("at least one slot");
        *first_free += whole_seed;
    }
    Some((slots.iter().copied().fold(0.0, f64::max), estimated))
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
    /// Seeds trained at once (for the whole run's time left).
    jobs: usize,
    /// What a slot is: `seeds` of a run, `runs` of a sweep.
    slots_are: &'static str,
    /// Whether the seeds train on a CPU (for the warning about configs too big for one).
    on_cpu: bool,
    state: Mutex<Board>,
}

struct Board {
    lines: Vec<Option<SeedStatus>>,
    drawn: usize,
    last_draw: Option<Instant>,
    cpu_warned: bool,
}

const REDRAW: Duration = Duration::from_millis(250);

impl Progress {
    /// `slots` seeds, `jobs` at a time, on a CPU or not.
    pub fn new(slots: usize, jobs: usize, on_cpu: bool, quiet: bool) -> Self {
        let mode = match (quiet, std::io::stderr().is_terminal()) {
            (true, _) => Mode::Quiet,
            (false, true) => Mode::Terminal,
            (false, false) => Mode::Log,
        };
        Self { jobs, on_cpu, ..Self::with_mode(slots, mode) }
    }

    /// One line per slot named by its label (a sweep's runs share seed numbers).
    pub fn labelled(labels: Vec<String>, jobs: usize, on_cpu: bool, quiet: bool) -> Self {
        let slots = labels.len();
        Self { labels, slots_are: "runs", ..Self::new(slots, jobs, on_cpu, quiet) }
    }

    /// One seed trained in a child process: reports go to the parent on stdout.
    pub fn for_parent() -> Self {
        Self::with_mode(1, Mode::Parent)
    }

    fn with_mode(slots: usize, mode: Mode) -> Self {
        let board = Board { lines: vec![None; slots], drawn: 0, last_draw: None, cpu_warned: false };
        Self { mode, labels: Vec::new(), jobs: 1, slots_are: "seeds", on_cpu: false, state: Mutex::new(board) }
    }

    /// The whole run's time left, where there are several seeds.
    fn run_text(&self, board: &Board) -> Option<String> {
        if board.lines.len() < 2 {
            return None;
        }
        let text = run_left(&board.lines, self.jobs).map_or("-".into(), |(seconds, estimated)| eta_text(seconds, estimated));
        Some(format!("run ETA {text} ({} {}, {} at a time)", board.lines.len(), self.slots_are, self.jobs))
    }

    /// The one line for a seed on a CPU estimated at over a day.
    fn cpu_warning(&self, board: &mut Board, status: &SeedStatus) -> Option<String> {
        let eta = status.eta?;
        if !self.on_cpu || board.cpu_warned || eta.seed_s <= CPU_WARNING_S {
            return None;
        }
        board.cpu_warned = true;
        Some(format!(
            "mt10: by its first updates this config takes about {} a seed on this CPU; presets that fit a CPU: --preset mt10-cpu (the papers' protocol, sized for a CPU), toy, smoke (training goes on)",
            format_duration(Duration::from_secs_f64(eta.seed_s))
        ))
    }

    /// Updates a seed's line; `event` (an evaluation, the end) always shows, steps are throttled.
    pub fn update(&self, slot: usize, status: SeedStatus, event: bool) {
        let mut board = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let due = event || board.last_draw.is_none_or(|t| t.elapsed() >= REDRAW);
        if self.mode == Mode::Parent {
            if due {
                let report = serde_json::to_string(&Report { status, event }).expect("a status serialises");
                // A parent that went away is noticed by the child's own stop path (Ctrl-C or
                // being killed); the report itself is not worth failing the seed for.
                let _ = writeln!(std::io::stdout().lock(), "{REPORT_PREFIX}{report}");
                board.last_draw = Some(Instant::now());
            }
            return;
        }
        let warning = self.cpu_warning(&mut board, &status);
        board.lines[slot] = Some(status);
        let run = self.run_text(&board);
        match self.mode {
            Mode::Terminal => {
                if let Some(warning) = &warning {
                    board.print_above(warning);
                }
                if due || warning.is_some() {
                    board.redraw(&self.labels, run.as_deref());
                }
            }
            _ => {
                if let Some(warning) = warning {
                    eprintln!("{warning}");
                }
                if self.mode == Mode::Log && event {
                    let line = board.lines[slot].as_ref().expect("just set").line(self.labels.get(slot), run.as_deref());
                    eprintln!("{line}");
                }
            }
        }
    }
}

impl Board {
    /// `line` above the seeds' lines, which are drawn again below it.
    fn print_above(&mut self, line: &str) {
        let up = if self.drawn > 0 { format!("\x1b[{}A", self.drawn) } else { String::new() };
        let _ = write!(std::io::stderr().lock(), "{up}\x1b[J{line}\n");
        self.drawn = 0;
    }

    fn redraw(&mut self, labels: &[String], run: Option<&str>) {
        let mut err = std::io::stderr().lock();
        let mut text = String::new();
        if self.drawn > 0 {
            text.push_str(&format!("\x1b[{}A", self.drawn));
        }
        let lines: Vec<String> = self.lines.iter().enumerate().filter_map(|(slot, status)| Some(status.as_ref()?.line(labels.get(slot), run))).collect();
        for line in &lines {
            text.push_str(&format!("\x1b[2K{line}\n"));
        }
        let _ = err.write_all(text.as_bytes());
        self.drawn = lines.len();
        self.last_draw = Some(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MT10's shape: 2M steps, 1,500 random ones, then 1,500 updates at once.
    fn mt10_pace() -> Pace {
        let mut pace = Pace::new(2_000_000, 1_500, 1_500, 1);
        pace.enter(0.0, 0, false);
        pace
    }

    fn assert_close(a: f64, b: f64) {
        assert!((a - b).abs() <= 1e-9 * b.abs(), "{a} vs {b}");
    }

    fn status(step: u64, (steps_per_s, eta): (f64, Option<Eta>), state: SeedState) -> SeedStatus {
        SeedStatus { seed: 1, step, steps: 2_000_000, steps_per_s, eta, last_success: None, state }
    }

    #[test]
    fn the_random_phase_gives_its_rate_and_no_time_left() {
        let pace = mt10_pace();
        let (rate, eta) = pace.status(6.0, 1_000, 1_500);
        assert_eq!((rate, eta), (1_000.0 / 6.0, None));
        let line = status(1_000, (rate, eta), SeedState::RandomActions).line(None, None);
        assert!(line.contains("166.7 steps/s  ETA        -") && line.ends_with("random actions"), "{line}");
    }

    #[test]
    fn timed_updates_give_an_estimate_marked_as_one() {
        let mut pace = mt10_pace();
        pace.enter(9.0, 1_500, false);
        for _ in 0..4 {
            pace.update_timed(250.0);
        }
        assert_eq!(pace.status(10.0, 1_500, 1_496).1, None, "fewer than 5 timed updates");
        pace.update_timed(250.0);
        let (rate, eta) = pace.status(10.25, 1_500, 1_495);
        let eta = eta.unwrap();
        assert_eq!(rate, 0.0, "no steps during the initial updates");
        assert!(eta.estimated);
        assert_close(eta.left_s, (1_495.0 + 1_998_500.0) * 0.25);
        assert_close(eta.seed_s, (1_500.0 + 1_998_500.0) * 0.25);
        let line = status(1_500, (rate, Some(eta)), SeedState::InitialUpdates).line(None, None);
        assert!(line.contains("ETA ~138h53m (est.)"), "{line}");
    }

    #[test]
    fn the_update_phase_gives_the_measured_time_left_once_it_has_run_a_while() {
        let mut pace = mt10_pace();
        for _ in 0..10 {
            pace.update_timed(100.0);
        }
        pace.enter(400.0, 1_501, true);
        // 20 s in: still the estimate from 100 ms an update.
        let (_, eta) = pace.status(420.0, 1_601, 0);
        assert!(eta.unwrap().estimated);
        assert_close(eta.unwrap().left_s, (2_000_000.0 - 1_601.0) * 0.1);
        // 40 s in at 4 steps a second (the env is slower than the updates): measured.
        let (rate, eta) = pace.status(440.0, 1_661, 0);
        let eta = eta.unwrap();
        assert_eq!(rate, 4.0);
        assert!(!eta.estimated);
        assert_close(eta.left_s, (2_000_000.0 - 1_661.0) / 4.0);
        let line = status(1_661, (rate, Some(eta)), SeedState::Running).line(None, None);
        assert!(line.contains("4.0 steps/s  ETA  138h46m  eval"), "{line}");
    }

    fn running(left_s: f64, seed_s: f64, estimated: bool) -> Option<SeedStatus> {
        Some(status(10, (1.0, Some(Eta { left_s, seed_s, estimated })), SeedState::Running))
    }

    #[test]
    fn the_run_time_left_takes_the_seeds_still_to_start_jobs_at_a_time() {
        let done = Some(status(2_000_000, (1.0, None), SeedState::Done));
        // Two running (100 s and 50 s left, 200 s a seed), two to start, two at a time: the
        // third starts at 50 s, the fourth at 100 s.
        let lines = [done.clone(), running(100.0, 200.0, false), running(50.0, 200.0, false), None, None];
        assert_eq!(run_left(&lines, 2), Some((300.0, false)));
        assert_eq!(run_left(&lines, 4), Some((200.0, false)), "idle slots start the rest at once");
        let lines = [running(100.0, 200.0, false), running(50.0, 200.0, true), None];
        assert_eq!(run_left(&lines, 2), Some((250.0, true)), "an estimate in, an estimate out");
        let unknown = [running(100.0, 200.0, false), Some(status(10, (1.0, None), SeedState::RandomActions)), None];
        assert_eq!(run_left(&unknown, 2), None, "a seed without an estimate");
        assert_eq!(run_left(&[done.clone(), None], 2), None, "none running, no seed's length known");
        let timed_done = Some(SeedStatus { state: SeedState::Done, ..running(0.0, 200.0, false).unwrap() });
        assert_eq!(run_left(&[timed_done.clone(), None, None], 1), Some((400.0, false)), "the finished seeds' length");
        assert_eq!(run_left(&[timed_done, done], 2), None, "nothing left");

        let progress = Progress::new(3, 2, false, true);
        let board = Board { lines: lines.to_vec(), drawn: 0, last_draw: None, cpu_warned: false };
        let run = progress.run_text(&board).unwrap();
        assert_eq!(run, "run ETA ~4m10s (est.) (3 seeds, 2 at a time)");
        let line = lines[0].as_ref().unwrap().line(None, Some(&run));
        assert!(line.ends_with("running  run ETA ~4m10s (est.) (3 seeds, 2 at a time)"), "{line}");
        let single = Board { lines: vec![lines[0].clone()], ..board };
        assert_eq!(progress.run_text(&single), None, "one seed: its own line says it");
    }

    #[test]
    fn a_seed_over_a_day_on_a_cpu_is_told_once_about_the_cpu_presets() {
        let slow = running(100.0, 30.0 * 3600.0, true).unwrap();
        let fast = running(100.0, 20.0 * 3600.0, true).unwrap();
        let mut board = Board { lines: vec![None; 2], drawn: 0, last_draw: None, cpu_warned: false };
        let cpu = Progress::new(2, 2, true, true);
        assert_eq!(cpu.cpu_warning(&mut board, &fast), None);
        let warning = cpu.cpu_warning(&mut board, &slow).unwrap();
        assert!(warning.contains("about 30h00m a seed on this CPU") && warning.contains("mt10-cpu") && warning.contains("toy, smoke"), "{warning}");
        assert_eq!(cpu.cpu_warning(&mut board, &slow), None, "once");
        let mut board = Board { lines: vec![None; 2], drawn: 0, last_draw: None, cpu_warned: false };
        assert_eq!(Progress::new(2, 2, false, true).cpu_warning(&mut board, &slow), None, "a GPU");
    }
}
