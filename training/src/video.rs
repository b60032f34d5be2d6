//! Videos of evaluation episodes: each recorded episode of a task becomes an animated GIF with
//! the task, the step, the return so far and success written over the frames, closed by a frame
//! that holds the episode's outcome; and each task gets one tile for a contact sheet (see
//! `video_sheet.rs`): its first successful state, or the last frame of its first episode.
//!
//! Frames come from the env (MuJoCo, headless) inside an evaluation, one per step: the state the
//! policy acts on. Recording reads the simulation and changes nothing in it.
use crate::episodes::{Episode, EpisodeTracker};
use rundir::run_files::write_atomically;
use crate::video_sheet::{draw_label, Tile};
use envs::{Frames, VecStep};
use plotters::style::RGBColor;
use std::path::PathBuf;

/// Frame size and camera of the recorded videos.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoSettings {
    pub size: usize,
    pub camera: String,
}

impl Default for VideoSettings {
    fn default() -> Self {
        Self { size: 240, camera: "corner".to_string() }
    }
}

/// 25 frames a second (GIF delays are in hundredths of a second).
const FRAME_DELAY: u16 = 4;
/// The closing frame, with the episode's outcome, stays two seconds.
const OUTCOME_DELAY: u16 = 200;
/// NeuQuant's sampling factor (1 best, 30 fastest); 10 is the `gif` crate's compromise.
const QUANTIZER_SPEED: i32 = 10;
const SUCCESS_GREEN: RGBColor = RGBColor(90, 230, 90);
const FAILURE_RED: RGBColor = RGBColor(255, 120, 110);
const PLAIN: RGBColor = RGBColor(255, 255, 255);

/// A GIF written for one episode.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEpisode {
    pub task: usize,
    pub path: PathBuf,
    /// Frames in the file: one per step and the closing one.
    pub frames: usize,
}

/// Records the first `episodes` episodes of the selected tasks of one evaluation into
/// `dir/<task>-<episode>.gif`.
pub struct VideoRecorder {
    settings: VideoSettings,
    dir: PathBuf,
    tasks: Vec<String>,
    selected: Vec<bool>,
    episodes: usize,
    finished: Vec<usize>,
    current: Vec<Option<EpisodeVideo>>,
    tiles: Vec<Option<Tile>>,
    pub recorded: Vec<RecordedEpisode>,
}

struct EpisodeVideo {
    gif: gif::Encoder<Vec<u8>>,
    steps: usize,
    /// The last frame as rendered (no text), and the first successful state's.
    last: Vec<u8>,
    success: Option<(usize, Vec<u8>)>,
    /// The step whose success flag was first set: its state is the next frame.
    success_pending: Option<usize>,
}

impl VideoRecorder {
    pub fn new(settings: VideoSettings, dir: PathBuf, tasks: &[String], selected: Vec<bool>, episodes: usize) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dir).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        let k = tasks.len();
        Ok(Self {
            settings,
            dir,
            tasks: tasks.to_vec(),
            selected,
            episodes,
            finished: vec![0; k],
            current: (0..k).map(|_| None).collect(),
            tiles: vec![None; k],
            recorded: Vec::new(),
        })
    }

    pub fn settings(&self) -> &VideoSettings {
        &self.settings
    }

    fn recording(&self, task: usize) -> bool {
        self.selected[task] && self.finished[task] < self.episodes
    }

    /// Whether this step still needs frames.
    pub fn wants_frames(&self) -> bool {
        (0..self.tasks.len()).any(|task| self.recording(task))
    }

    /// The tasks whose frames this step needs.
    pub fn tasks_recording(&self) -> Vec<usize> {
        (0..self.tasks.len()).filter(|&task| self.recording(task)).collect()
    }

    /// Adds the frames of the states the policy is about to act on; `tracker` holds the
    /// episodes so far (return, success), written over each frame.
    pub fn add_frames(&mut self, frames: &Frames, tracker: &EpisodeTracker) -> anyhow::Result<()> {
        let size = frames.size;
        for task in self.tasks_recording() {
            let video = match &mut self.current[task] {
                Some(video) => video,
                empty => empty.insert(EpisodeVideo::new(size)?),
            };
            let raw = frames.task(task);
            if let Some(step) = video.success_pending.take() {
                video.success = Some((step, raw.to_vec()));
            }
            let (return_, succeeded) = tracker.running(task);
            let status = format!("step {}  return {return_:.1}", video.steps);
            let color = if succeeded { SUCCESS_GREEN } else { PLAIN };
            let status = if succeeded { format!("{status}  success") } else { status };
            let mut frame = raw.to_vec();
            draw_label(&mut frame, size, &self.tasks[task], &status, color)?;
            video.write(&frame, size, FRAME_DELAY)?;
            video.last = raw.to_vec();
            video.steps += 1;
        }
        Ok(())
    }

    /// Takes note of a step's success flags and closes the episodes it ended (`ended`, from the
    /// evaluation's tracker).
    pub fn after_step(&mut self, step: &VecStep, ended: &[Episode]) -> anyhow::Result<()> {
        for (task, video) in self.current.iter_mut().enumerate() {
            if let Some(video) = video.as_mut().filter(|v| step.success[task] && v.success.is_none() && v.success_pending.is_none()) {
                video.success_pending = Some(video.steps);
            }
        }
        for episode in ended {
            if let Some(video) = self.current[episode.task].take() {
                self.finish(video, episode)?;
            }
        }
        Ok(())
    }

    fn finish(&mut self, mut video: EpisodeVideo, episode: &Episode) -> anyhow::Result<()> {
        let task = episode.task;
        let size = self.settings.size;
        // Success on the last step: its state is not rendered (the env has reset), the last
        // frame stands in for it.
        if let Some(step) = video.success_pending.take() {
            video.success = Some((step, video.last.clone()));
        }
        let outcome = match &video.success {
            Some((step, _)) => format!("success at step {step}, return {:.1}", episode.return_),
            None => format!("no success, return {:.1}", episode.return_),
        };
        let color = if episode.success { SUCCESS_GREEN } else { FAILURE_RED };
        let mut closing = video.last.clone();
        draw_label(&mut closing, size, &self.tasks[task], &outcome, color)?;
        video.write(&closing, size, OUTCOME_DELAY)?;
        let frames = video.steps + 1;
        self.finished[task] += 1;
        let path = self.dir.join(format!("{}-{}.gif", self.tasks[task], self.finished[task]));
        write_atomically(&path, &video.gif.into_inner()?)?;
        self.recorded.push(RecordedEpisode { task, path, frames });
        let tile = match video.success {
            Some((step, frame)) => Tile { frame, caption: outcome, success: true, step },
            None => Tile { frame: video.last, caption: outcome, success: false, step: video.steps },
        };
        if self.tiles[task].as_ref().is_none_or(|old| !old.success && tile.success) {
            self.tiles[task] = Some(tile);
        }
        Ok(())
    }

    /// One tile per recorded task, with its name, in task order.
    pub fn tiles(&self) -> Vec<(&str, &Tile)> {
        self.tasks.iter().zip(&self.tiles).filter_map(|(task, tile)| Some((task.as_str(), tile.as_ref()?))).collect()
    }
}

impl EpisodeVideo {
    fn new(size: usize) -> anyhow::Result<Self> {
        let side = u16::try_from(size).map_err(|_| anyhow::anyhow!("frames of {size} pixels are too large for a GIF"))?;
        let mut gif = gif::Encoder::new(Vec::new(), side, side, &[])?;
        gif.set_repeat(gif::Repeat::Infinite)?;
        Ok(Self { gif, steps: 0, last: Vec::new(), success: None, success_pending: None })
    }

    fn write(&mut self, rgb: &[u8], size: usize, delay: u16) -> anyhow::Result<()> {
        let mut frame = gif::Frame::from_rgb_speed(size as u16, size as u16, rgb, QUANTIZER_SPEED);
        frame.delay = delay;
        Ok(self.gif.write_frame(&frame)?)
    }
}
