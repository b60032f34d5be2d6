//! A TensorBoard event file (`events.out.tfevents.<time>.<host>.<pid>.0`), written
//! here rather than with tensorboard-rs's `SummaryWriter`: that one writes from a thread of its
//! own and panics on a write error (a full disk), where a run must stop with one line naming the
//! file. The records and their encoding are still tensorboard-rs's.
use anyhow::Context;
use protobuf::Message;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};
use tensorboard_proto::event::Event;
use tensorboard_proto::summary::Summary;
use tensorboard_rs::record_writer::RecordWriter;

pub struct EventFile {
    path: PathBuf,
    records: RecordWriter<BufWriter<File>>,
    /// The first write error, reported by the next [`EventFile::flush`]; later events are dropped.
    error: Option<std::io::Error>,
}

impl EventFile {
    pub fn create(dir: &Path) -> anyhow::Result<Self> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let name = format!("events.out.tfevents.{:010}.{}.{}.0", now.as_secs(), hostname(), std::process::id());
        let path = dir.join(name);
        let file = File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut events = Self { path, records: RecordWriter::new(BufWriter::new(file)), error: None };
        let mut version = Event::new();
        version.set_wall_time(now.as_secs_f64());
        version.set_file_version("brain.Event:2".into());
        events.write(&version);
        events.flush()?;
        Ok(events)
    }

    pub fn scalar(&mut self, tag: &str, value: f32, step: u64) {
        self.summary(tensorboard_rs::summary::scalar(tag, value), step);
    }

    pub fn summary(&mut self, summary: Summary, step: u64) {
        let mut event = Event::new();
        event.set_wall_time(SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64());
        event.set_step(step as i64);
        event.set_summary(summary);
        self.write(&event);
    }

    fn write(&mut self, event: &Event) {
        if self.error.is_none() {
            let bytes = event.write_to_bytes().expect("an event encodes");
            self.error = self.records.write(&bytes).err();
        }
    }

    /// Hands the buffered events to the file; the first error since the last flush, if any.
    pub fn flush(&mut self) -> anyhow::Result<()> {
        let flushed = match self.error.take() {
            Some(error) => Err(error),
            None => self.records.flush(),
        };
        flushed.with_context(|| format!("cannot write {}", self.path.display()))
    }
}

fn hostname() -> String {
    let mut name = [0u8; 256];
    // SAFETY: gethostname writes at most `len` bytes into the buffer.
    if unsafe { libc::gethostname(name.as_mut_ptr().cast(), name.len()) } != 0 {
        return "localhost".into();
    }
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    String::from_utf8_lossy(&name[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `/dev/full` fails every write with ENOSPC, as a full disk does.
    fn full_disk() -> EventFile {
        let file = File::options().write(true).open("/dev/full").unwrap();
        EventFile { path: PathBuf::from("/dev/full"), records: RecordWriter::new(BufWriter::new(file)), error: None }
    }

    #[test]
    fn a_write_error_is_reported_by_the_next_flush_naming_the_file() {
        let mut events = full_disk();
        events.scalar("loss/critic", 1.0, 10);
        let error = events.flush().unwrap_err();
        assert_eq!(format!("{error:#}"), "cannot write /dev/full: No space left on device (os error 28)");

        // Events beyond the buffer meet the error while being added; the flush reports it.
        let mut events = full_disk();
        for step in 0..1000 {
            events.scalar("loss/critic", 1.0, step);
        }
        assert!(events.error.is_some());
        assert!(format!("{:#}", events.flush().unwrap_err()).ends_with("No space left on device (os error 28)"));
    }

    #[test]
    fn events_read_back_as_tensorboard_records() {
        let dir = std::env::temp_dir().join(format!("mt10-event-file-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut events = EventFile::create(&dir).unwrap();
        events.scalar("eval/success", 0.5, 7);
        events.flush().unwrap();
        let bytes = std::fs::read(&events.path).unwrap();
        let mut rest = &bytes[..];
        let mut decoded = Vec::new();
        while !rest.is_empty() {
            let length = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
            decoded.push(<Event as Message>::parse_from_bytes(&rest[12..12 + length]).unwrap());
            rest = &rest[12 + length + 4..];
        }
        assert_eq!(decoded[0].get_file_version(), "brain.Event:2");
        let value = &decoded[1].get_summary().get_value()[0];
        assert_eq!((decoded[1].get_step(), value.get_tag(), value.get_simple_value()), (7, "eval/success", 0.5));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
