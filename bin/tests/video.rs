//! Videos end to end on MetaWorld (`smoke` preset shrunk to seconds, 10-step episodes): `mt10
//! eval --render`, `run.video_every` during training (files, TensorBoard read back by its own
//! reader, metrics unchanged), and the one-line error where MuJoCo cannot render. Rendering
//! needs OSMesa (Debian's `libosmesa6`, which `scripts/test` installs as root) or another GL
//! backend; without one the tests that render are skipped, saying so.
#![cfg(feature = "metaworld")]
mod common;

use common::{mt10, renderer_missing, scratch, skipped};
use std::path::Path;
use std::process::{Command, Output};

const EPISODE: usize = 10;

fn ok(command: &mut Command) -> String {
    let out = command.output().expect("mt10 runs");
    assert!(out.status.success(), "{command:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Two MetaWorld tasks (reach, push), tiny networks, 10-step episodes, evaluations every 30
/// steps, two evaluation episodes per task.
fn smoke(out: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["train", "--preset", "smoke", "--quiet", "--steps", "60", "--batch-size", "32", "--out"].map(String::from).to_vec();
    args.push(out.to_str().unwrap().to_string());
    for set in [
        "agent.hidden=[16,16]",
        "agent.device=cpu",
        "run.random_steps=20",
        "run.initial_updates=5",
        "run.eval_every=30",
        "run.eval_episodes=2",
        "run.checkpoint_every=30",
        "run.log_every=10",
        "env.max_episode_steps=10",
    ]
    .iter()
    .chain(extra)
    {
        args.extend(["--set".to_string(), set.to_string()]);
    }
    args
}

fn train(out: &Path, extra: &[&str]) {
    let args = smoke(out, extra);
    ok(&mut mt10(&args.iter().map(String::as_str).collect::<Vec<_>>()));
}

/// The frames of a GIF, as RGB.
fn gif_frames(path: &Path) -> (usize, Vec<Vec<u8>>) {
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::RGBA);
    let mut decoder = options.read_info(std::fs::File::open(path).unwrap()).unwrap();
    let size = decoder.width() as usize;
    assert_eq!(decoder.height() as usize, size, "{}", path.display());
    let mut frames = Vec::new();
    while let Some(frame) = decoder.read_next_frame().unwrap() {
        assert_eq!((frame.width as usize, frame.height as usize), (size, size), "full frames");
        frames.push(frame.buffer.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect());
    }
    (size, frames)
}

/// The share of the table's brown wood in rows `rows` of an RGB frame.
fn wood(frame: &[u8], size: usize, rows: std::ops::Range<usize>) -> f64 {
    let pixels = &frame[rows.start * size * 3..rows.end * size * 3];
    let brown = pixels.chunks_exact(3).filter(|p| {
        let [r, g, b] = [p[0], p[1], p[2]].map(i32::from);
        r - b > 25 && g - b > 5 && r < 200 && r - g < 60
    });
    brown.count() as f64 / (rows.len() * size) as f64
}

/// Not blank, and upright: the table's wood below the middle, none above it (the text bands at
/// the top and bottom left out).
fn assert_scene_upright(frame: &[u8], size: usize, what: &str) {
    let mean = frame.iter().map(|&v| f64::from(v)).sum::<f64>() / frame.len() as f64;
    let spread = frame.iter().map(|&v| (f64::from(v) - mean).abs()).sum::<f64>() / frame.len() as f64;
    assert!(spread > 10.0, "{what}: a blank frame (mean {mean:.1}, spread {spread:.1})");
    let band = size / 6;
    let (top, bottom) = (wood(frame, size, band..size / 2), wood(frame, size, size / 2..size - band));
    assert!(bottom > 0.2 && top < 0.05, "{what}: wood above the middle {top:.3}, below {bottom:.3}");
}

#[test]
fn eval_render_films_each_task_and_episode_and_writes_a_contact_sheet() {
    if skipped("eval_render_films_each_task_and_episode_and_writes_a_contact_sheet", renderer_missing()) {
        return;
    }
    let run = scratch("eval-render");
    train(&run, &[]);
    let out = run.join("videos");
    let stdout = ok(&mut mt10(&["eval", run.to_str().unwrap(), "--render", "--episodes", "2", "--size", "96", "--out", out.to_str().unwrap()]));
    assert!(stdout.contains("at step 60, seed 1, 2 episode(s) per task") && stdout.contains("| push |"), "{stdout}");
    assert!(stdout.contains("4 videos and contact-sheet.png in"), "{stdout}");
    for task in ["reach", "push"] {
        for episode in [1, 2] {
            let path = out.join(format!("{task}-{episode}.gif"));
            let (size, frames) = gif_frames(&path);
            assert_eq!((size, frames.len()), (96, EPISODE + 1), "{}: one frame per step and the outcome", path.display());
            assert_scene_upright(&frames[0], size, &format!("{} frame 0", path.display()));
            assert_ne!(frames[0], frames[EPISODE - 1], "{}: the robot moves", path.display());
        }
    }
    let sheet = image::open(out.join("contact-sheet.png")).unwrap().to_rgb8();
    assert!(sheet.width() > 2 * 96 && sheet.height() > 96, "{}x{}", sheet.width(), sheet.height());

    // --tasks films only those; an unknown camera or task is the user's error.
    let one = run.join("one");
    let stdout = ok(&mut mt10(&["eval", run.to_str().unwrap(), "--render", "--tasks", "push", "--size", "64", "--out", one.to_str().unwrap()]));
    assert!(stdout.contains("| push |") && !stdout.contains("| reach |"), "{stdout}");
    let files: Vec<String> = std::fs::read_dir(&one).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(files.contains(&"push-1.gif".to_string()) && files.contains(&"push-2.gif".to_string()), "{files:?}");
    for (args, message) in [
        (vec!["--camera", "nope"], "unknown camera `nope` (the scene has topview, corner"),
        (vec!["--tasks", "door-open"], "--tasks: `door-open` is not a task of this run (reach, push)"),
    ] {
        let mut command = mt10(&["eval", run.to_str().unwrap(), "--render", "--size", "64", "--out", one.to_str().unwrap()]);
        let out = command.args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message) && stderr.trim().lines().count() == 1, "{args:?}: {stderr}");
    }
    std::fs::remove_dir_all(&run).unwrap();
}

/// The success and return columns of `metrics.csv` (wall times differ between runs).
fn metrics(seed_dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(seed_dir.join("metrics.csv")).unwrap();
    text.lines().map(|line| line.split(',').enumerate().filter(|(i, _)| *i != 1).map(|(_, v)| v).collect::<Vec<_>>().join(",")).collect()
}

/// `[tag, step, width, height, first bytes]` of every image summary, as TensorBoard reads them.
fn tensorboard_images(dir: &Path) -> Vec<serde_json::Value> {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    let script = "import json, sys\n\
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator\n\
acc = EventAccumulator(sys.argv[1], size_guidance={'images': 0}); acc.Reload()\n\
print(json.dumps([[t, e.step, e.width, e.height, e.encoded_image_string[:6].decode('latin-1')] for t in sorted(acc.Tags()['images']) for e in acc.Images(t)]))";
    let out = Command::new(python).args(["-c", script, dir.to_str().unwrap()]).output().expect("the venv's python runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn filming_during_training_changes_no_metric_and_reaches_tensorboard() {
    if skipped("filming_during_training_changes_no_metric_and_reaches_tensorboard", renderer_missing()) {
        return;
    }
    let (plain, filmed) = (scratch("plain"), scratch("filmed"));
    train(&plain, &[]);
    train(&filmed, &["run.video_every=30"]);
    let (plain_seed, filmed_seed) = (plain.join("seed-1"), filmed.join("seed-1"));
    let rows = metrics(&filmed_seed);
    assert_eq!(rows.len(), 4, "header and evaluations at 0, 30, 60: {rows:?}");
    assert_eq!(metrics(&plain_seed), rows, "the same seed with and without videos");
    assert!(!plain_seed.join("videos").exists());

    for step in [30, 60] {
        for task in ["reach", "push"] {
            let path = filmed_seed.join(format!("videos/step-{step}/{task}-1.gif"));
            let (size, frames) = gif_frames(&path);
            assert_eq!((size, frames.len()), (240, EPISODE + 1), "{}: the first of two evaluation episodes", path.display());
            assert_scene_upright(&frames[EPISODE / 2], size, &path.display().to_string());
        }
        assert!(!filmed_seed.join(format!("videos/step-{step}/reach-2.gif")).exists());
    }
    assert!(!filmed_seed.join("videos/step-0").exists(), "the untrained policy is not filmed");
    let images = tensorboard_images(&filmed_seed);
    let expected: Vec<serde_json::Value> = ["push", "reach"]
        .iter()
        .flat_map(|task| [30, 60].map(|step| serde_json::json!([format!("video/{task}"), step, 240, 240, "GIF89a"])))
        .collect();
    assert_eq!(images, expected);
    for dir in [plain, filmed] {
        std::fs::remove_dir_all(dir).unwrap();
    }
}

fn without_renderer(command: &mut Command) -> Output {
    // GLFW needs a display: with none, MuJoCo has no GL context to render with.
    command.env("MUJOCO_GL", "glfw").env_remove("DISPLAY").env_remove("WAYLAND_DISPLAY").output().unwrap()
}

fn assert_names_the_fix(out: &Output, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{what}: {stderr}");
    assert!(stderr.contains("cannot render MuJoCo frames with MUJOCO_GL=glfw") && stderr.contains("libosmesa6") && stderr.contains("MUJOCO_GL=egl"), "{what}: {stderr}");
}

#[test]
fn without_a_renderer_render_and_video_every_fail_at_once_naming_the_fix() {
    let run = scratch("no-renderer");
    let args = smoke(&run, &["run.video_every=30"]);
    let out = without_renderer(&mut mt10(&args.iter().map(String::as_str).collect::<Vec<_>>()));
    assert_names_the_fix(&out, "train");
    assert!(!run.exists(), "nothing is created");

    train(&run, &[]);
    let videos = run.join("videos");
    let out = without_renderer(&mut mt10(&["eval", run.to_str().unwrap(), "--render", "--out", videos.to_str().unwrap()]));
    assert_names_the_fix(&out, "eval --render");
    assert!(!videos.exists(), "nothing is written");
    std::fs::remove_dir_all(&run).unwrap();
}
