//! What a training seed records: TensorBoard scalars (tags from the spec's metrics section) and
//! filmed evaluations (`video/<task>`, animated GIFs in image summaries, which TensorBoard's
//! image dashboard plays), `metrics.csv` (one row per evaluation) and `weights.csv`.
use crate::run_files::{metrics_header, metrics_line, read_metrics, read_weights, weights_header, weights_line, MetricsRow, WeightsRow, METRICS, WEIGHTS};
use anyhow::Context;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use protobuf::RepeatedField;
use tensorboard_proto::summary::{Summary, Summary_Image, Summary_Value};
use tensorboard_rs::summary::scalar;
use tensorboard_rs::summary_writer::FileWriter;

pub struct Logbook {
    tasks: Vec<String>,
    board: FileWriter,
    metrics: File,
    weights: File,
    /// Every evaluation so far, resumed ones included.
    pub evaluations: Vec<MetricsRow>,
}

impl Logbook {
    /// Opens the seed's logs; when resuming from step `resume_step`, rows written after it (by a
    /// run that went on past its last checkpoint) are dropped.
    pub fn open(seed_dir: &Path, tasks: &[String], resume_step: u64) -> anyhow::Result<Self> {
        std::fs::create_dir_all(seed_dir).with_context(|| format!("cannot create {}", seed_dir.display()))?;
        let metrics_path = seed_dir.join(METRICS);
        let weights_path = seed_dir.join(WEIGHTS);
        let (evaluations, weights) = if resume_step > 0 && metrics_path.exists() {
            let (_, rows) = read_metrics(&metrics_path)?;
            let weights = if weights_path.exists() { read_weights(&weights_path)? } else { Vec::new() };
            (rows.into_iter().filter(|r| r.step <= resume_step).collect(), weights.into_iter().filter(|r| r.step <= resume_step).collect())
        } else {
            (Vec::new(), Vec::new())
        };
        let metrics_text = metrics_header(tasks) + &evaluations.iter().map(metrics_line).collect::<String>();
        let weights_text = weights_header(tasks) + &weights.iter().map(weights_line).collect::<String>();
        Ok(Self {
            tasks: tasks.to_vec(),
            board: FileWriter::new(seed_dir),
            metrics: rewrite(&metrics_path, &metrics_text)?,
            weights: rewrite(&weights_path, &weights_text)?,
            evaluations,
        })
    }

    pub fn scalar(&mut self, tag: &str, value: f64, step: u64) {
        self.board.add_summary(scalar(tag, value as f32), step as usize);
    }

    /// An animated GIF of `size` x `size` frames as an image summary (tensorboard-rs itself
    /// writes only PNGs).
    pub fn gif(&mut self, tag: &str, gif: Vec<u8>, size: usize, step: u64) {
        let mut image = Summary_Image::new();
        image.set_height(size as i32);
        image.set_width(size as i32);
        image.set_colorspace(3);
        image.set_encoded_image_string(gif);
        let mut value = Summary_Value::new();
        value.set_tag(tag.to_string());
        value.set_image(image);
        let mut summary = Summary::new();
        summary.set_value(RepeatedField::from(vec![value]));
        self.board.add_summary(summary, step as usize);
    }

    /// One value per task under `prefix/<task>`.
    pub fn task_scalars(&mut self, prefix: &str, values: &[f64], step: u64) {
        for (task, &value) in self.tasks.clone().iter().zip(values) {
            self.scalar(&format!("{prefix}/{task}"), value, step);
        }
    }

    pub fn evaluation(&mut self, row: MetricsRow) -> anyhow::Result<()> {
        self.scalar("eval/success", row.mean_success(), row.step);
        self.task_scalars("eval/success", &row.success, row.step);
        self.task_scalars("eval/episode_reward", &row.returns, row.step);
        self.metrics.write_all(metrics_line(&row).as_bytes())?;
        self.evaluations.push(row);
        self.flush()
    }

    pub fn weights(&mut self, row: &WeightsRow) -> anyhow::Result<()> {
        self.task_scalars(&format!("weights/{}", row.component), &row.weights, row.step);
        Ok(self.weights.write_all(weights_line(row).as_bytes())?)
    }

    pub fn flush(&mut self) -> anyhow::Result<()> {
        self.board.flush();
        self.metrics.flush()?;
        Ok(self.weights.flush()?)
    }
}

/// Replaces the file with `text` (atomically) and opens it for appending.
fn rewrite(path: &Path, text: &str) -> anyhow::Result<File> {
    crate::run_files::write_atomically(path, text.as_bytes())?;
    OpenOptions::new().append(true).open(path).with_context(|| format!("cannot open {}", path.display()))
}
