//! What a training seed records: TensorBoard scalars (tags from the spec's metrics section), the
//! device each session trained on (a text summary, `run/device`), filmed evaluations (`video/<task>`, animated GIFs in image summaries, which TensorBoard's
//! image dashboard plays), `metrics.csv` (one row per evaluation), `weights.csv` and
//! `conflicts.csv` (one row per log interval and component). A write that
//! fails (a full disk) is an error naming the file, and a row that could not be written whole is
//! cut off again, so the files hold whole rows only and a resumed run can read them.
use crate::event_file::EventFile;
use crate::run_files::{
    conflict_columns, metrics_header, metrics_line, read_metrics, read_weights, weights_header, weights_line, MetricsRow, WeightsRow, CONFLICTS,
    METRICS, WEIGHTS,
};
use anyhow::Context;
use std::fs::{File, OpenOptions};
use std::io::Write;
use protobuf::RepeatedField;
use std::path::{Path, PathBuf};
use tensorboard_proto::summary::{Summary, SummaryMetadata, SummaryMetadata_PluginData, Summary_Image, Summary_Value};
use tensorboard_proto::tensor::TensorProto;
use tensorboard_proto::tensor_shape::TensorShapeProto;
use tensorboard_proto::types::DataType;

pub struct Logbook {
    tasks: Vec<String>,
    board: EventFile,
    metrics: Rows,
    weights: Rows,
    conflicts: Rows,
    /// Every evaluation so far, resumed ones included.
    pub evaluations: Vec<MetricsRow>,
}

impl Logbook {
    /// Opens the seed's logs; when resuming from step `resume_step`, rows written after it (by a
    /// run that went on past its last checkpoint) are dropped.
    pub fn open(seed_dir: &Path, tasks: &[String], resume_step: u64) -> anyhow::Result<Self> {
        std::fs::create_dir_all(seed_dir).with_context(|| format!("cannot create {}", seed_dir.display()))?;
        let metrics_path = seed_dir.join(METRICS);
        let resuming = resume_step > 0 && metrics_path.exists();
        let evaluations = if resuming { read_metrics(&metrics_path)?.1.into_iter().filter(|r| r.step <= resume_step).collect() } else { Vec::new() };
        let metrics_text = metrics_header(tasks) + &evaluations.iter().map(metrics_line).collect::<String>();
        // weights.csv and conflicts.csv: the rows up to the resumed step.
        let component_rows = |name: &str, columns: &[String]| -> anyhow::Result<Rows> {
            let path = seed_dir.join(name);
            let kept = if resuming && path.exists() { read_weights(&path)?.into_iter().filter(|r| r.step <= resume_step).collect() } else { Vec::new() };
            Rows::rewrite(path, &(weights_header(columns) + &kept.iter().map(weights_line).collect::<String>()))
        };
        Ok(Self {
            tasks: tasks.to_vec(),
            board: EventFile::create(seed_dir)?,
            metrics: Rows::rewrite(metrics_path, &metrics_text)?,
            weights: component_rows(WEIGHTS, tasks)?,
            conflicts: component_rows(CONFLICTS, &conflict_columns(tasks))?,
            evaluations,
        })
    }

    pub fn scalar(&mut self, tag: &str, value: f64, step: u64) {
        self.board.scalar(tag, value as f32, step);
    }

    /// A text summary (TensorBoard's text dashboard): a scalar string tensor tagged for the
    /// `text` plugin.
    pub fn text(&mut self, tag: &str, text: &str, step: u64) {
        let mut tensor = TensorProto::new();
        tensor.set_dtype(DataType::DT_STRING);
        tensor.set_tensor_shape(TensorShapeProto::new());
        tensor.set_string_val(RepeatedField::from(vec![text.as_bytes().to_vec()]));
        let mut plugin = SummaryMetadata_PluginData::new();
        plugin.set_plugin_name("text".into());
        let mut metadata = SummaryMetadata::new();
        metadata.set_plugin_data(plugin);
        let mut value = Summary_Value::new();
        value.set_tag(tag.to_string());
        value.set_metadata(metadata);
        value.set_tensor(tensor);
        self.summary(value, step);
    }

    /// An animated GIF of `size` x `size` frames as an image summary (tensorboard-rs itself
    /// writes only PNGs).
    pub fn gif(&mut self, tag: &str, gif: Vec<u8>, size: usize, step: u64) {
        self.encoded_image(tag, gif, size as i32, step);
    }

    /// A square PNG (its bytes and side in pixels) as an image summary.
    pub fn image(&mut self, tag: &str, (png, side): &(Vec<u8>, u32), step: u64) {
        self.encoded_image(tag, png.clone(), *side as i32, step);
    }

    fn encoded_image(&mut self, tag: &str, encoded: Vec<u8>, side: i32, step: u64) {
        let mut image = Summary_Image::new();
        image.set_height(side);
        image.set_width(side);
        image.set_colorspace(3);
        image.set_encoded_image_string(encoded);
        let mut value = Summary_Value::new();
        value.set_tag(tag.to_string());
        value.set_image(image);
        self.summary(value, step);
    }

    fn summary(&mut self, value: Summary_Value, step: u64) {
        let mut summary = Summary::new();
        summary.set_value(RepeatedField::from(vec![value]));
        self.board.summary(summary, step);
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
        self.metrics.append(&metrics_line(&row))?;
        self.evaluations.push(row);
        self.flush()
    }

    pub fn weights(&mut self, row: &WeightsRow) -> anyhow::Result<()> {
        self.task_scalars(&format!("weights/{}", row.component), &row.weights, row.step);
        self.weights.append(&weights_line(row))
    }

    /// A row of `conflicts.csv`: the conflict share, mean and least cosine, and each pair's cosine.
    pub fn conflicts(&mut self, row: &WeightsRow) -> anyhow::Result<()> {
        self.conflicts.append(&weights_line(row))
    }

    /// The CSV rows are written as they come; this hands TensorBoard its buffered events.
    pub fn flush(&mut self) -> anyhow::Result<()> {
        self.board.flush()
    }
}

/// A CSV file appended to a whole row at a time.
struct Rows {
    path: PathBuf,
    file: File,
}

impl Rows {
    /// Replaces the file with `text` (atomically) and opens it for appending.
    fn rewrite(path: PathBuf, text: &str) -> anyhow::Result<Self> {
        crate::run_files::write_atomically(&path, text.as_bytes())?;
        let file = OpenOptions::new().append(true).open(&path).with_context(|| format!("cannot open {}", path.display()))?;
        Ok(Self { path, file })
    }

    fn append(&mut self, row: &str) -> anyhow::Result<()> {
        let written = self.file.metadata().and_then(|m| {
            let before = m.len();
            self.file.write_all(row.as_bytes()).inspect_err(|_| {
                // What part of the row went in is cut off again; if even that fails, a resumed
                // run reports the torn row.
                let _ = self.file.set_len(before);
            })
        });
        written.with_context(|| format!("cannot write {}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_that_cannot_be_written_is_an_error_naming_the_file() {
        // `/dev/full` fails every write with ENOSPC, as a full disk does.
        let file = OpenOptions::new().append(true).open("/dev/full").unwrap();
        let mut rows = Rows { path: PathBuf::from("/dev/full"), file };
        let error = rows.append("100,reach,0.5\n").unwrap_err();
        assert_eq!(format!("{error:#}"), "cannot write /dev/full: No space left on device (os error 28)");
    }
}
