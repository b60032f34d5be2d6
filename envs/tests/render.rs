//! Headless MuJoCo frames of real Meta-World scenes (OSMesa on CPU machines: Debian's
//! `libosmesa6`, which `scripts/test` installs as root; without it each test is skipped, saying
//! so). Its own test binary, so the process asks for rendering before its first env, as `mt10`
//! does.
#![cfg(feature = "metaworld")]
use envs::metaworld::{ensure_renderer, missing_renderer_package, MetaWorldEnv};
use envs::{EnvError, Frames, MetaWorldConfig, MultiTaskEnv, Preset, RewardNormalization};
use std::io::Write;

const SIZE: usize = 64;

/// Whether `test` cannot render on this machine; if so it says so in one `SKIPPED` line, written
/// past the test harness's capture so that it shows (and `scripts/test` counts it).
fn skipped(test: &str) -> bool {
    let Some(package) = missing_renderer_package() else { return false };
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: cannot render MuJoCo frames: Debian's {package} is not installed");
    true
}

fn two_tasks() -> MetaWorldEnv {
    ensure_renderer().unwrap();
    let config = MetaWorldConfig {
        tasks: vec!["reach".into(), "door-open".into()],
        max_episode_steps: 5,
        reward_normalization: RewardNormalization::None,
        ..Preset::Mtrl.config()
    };
    MetaWorldEnv::new(&config, 1).unwrap()
}

/// The share of a frame region's pixels that look like the table's wooden top (brown: red over
/// green over blue by clear margins).
fn wood(frame: &[u8], rows: std::ops::Range<usize>, columns: std::ops::Range<usize>) -> f64 {
    region(frame, rows, columns, |[r, g, b]| r - b > 25 && g - b > 5 && r < 200 && r - g < 60)
}

/// The share of the robot's red (Sawyer's links): strong red, little green or blue.
fn robot(frame: &[u8], rows: std::ops::Range<usize>, columns: std::ops::Range<usize>) -> f64 {
    region(frame, rows, columns, |[r, g, b]| r > 100 && g < 60 && b < 60)
}

fn region(frame: &[u8], rows: std::ops::Range<usize>, columns: std::ops::Range<usize>, test: impl Fn([i32; 3]) -> bool) -> f64 {
    let mut count = 0;
    for row in rows.clone() {
        for column in columns.clone() {
            let p = &frame[(row * SIZE + column) * 3..][..3];
            count += usize::from(test([p[0], p[1], p[2]].map(i32::from)));
        }
    }
    count as f64 / (rows.len() * columns.len()) as f64
}

/// From the `corner` camera, upright and not mirrored: the table in the lower half, background
/// above it, the robot standing at the right.
fn assert_upright(frames: &Frames, task: usize) {
    let frame = frames.task(task);
    let (half, all) = (SIZE / 2, 0..SIZE);
    let (top, bottom) = (wood(frame, 0..half, all.clone()), wood(frame, half..SIZE, all.clone()));
    assert!(bottom > 0.2 && top < 0.05, "task {task}: wood in the top half {top:.3}, bottom half {bottom:.3}");
    let (left, right) = (robot(frame, all.clone(), 0..half), robot(frame, all, half..SIZE));
    assert!(right > 2.0 * left && right > 0.05, "task {task}: robot red left {left:.3}, right {right:.3}");
}

#[test]
fn corner_frames_show_each_task_the_right_way_up() {
    if skipped("corner_frames_show_each_task_the_right_way_up") {
        return;
    }
    let mut env = two_tasks();
    env.reset().unwrap();
    let frames = env.render(SIZE, "corner", &[0, 1]).unwrap();
    assert_eq!((frames.size, frames.pixels.len()), (SIZE, 2 * SIZE * SIZE * 3));
    assert_upright(&frames, 0);
    assert_upright(&frames, 1);
    // Different scenes (door-open has a door), each rendered by its own renderer.
    assert_ne!(frames.task(0), frames.task(1));
    // The robot moves between frames.
    env.step(&[1.0, 0.0, 0.0, 0.0].repeat(2)).unwrap();
    let moved = env.render(SIZE, "corner", &[0]).unwrap();
    assert_eq!((moved.tasks.as_slice(), moved.pixels.len()), (&[0][..], SIZE * SIZE * 3));
    assert_ne!(moved.task(0), frames.task(0));
}

#[test]
fn rendering_changes_nothing_in_the_simulation() {
    if skipped("rendering_changes_nothing_in_the_simulation") {
        return;
    }
    let (mut watched, mut plain) = (two_tasks(), two_tasks());
    assert_eq!(watched.reset().unwrap(), plain.reset().unwrap());
    for t in 0..12 {
        watched.render(SIZE, "corner", &[0, 1]).unwrap();
        let action = [(t as f32 * 0.7).sin(), (t as f32 * 0.3).cos(), 0.5, -0.2].repeat(2);
        assert_eq!(watched.step(&action).unwrap(), plain.step(&action).unwrap(), "step {t}");
    }
}

#[test]
fn an_unknown_camera_is_refused_naming_the_known_ones() {
    if skipped("an_unknown_camera_is_refused_naming_the_known_ones") {
        return;
    }
    let mut env = two_tasks();
    env.reset().unwrap();
    let error = env.render(SIZE, "nope", &[0]).unwrap_err();
    assert!(matches!(&error, EnvError::UnknownCamera { known, .. } if known.iter().any(|c| c == "corner")), "{error}");
    assert!(error.to_string().starts_with("unknown camera `nope` (the scene has topview, corner"), "{error}");
}
