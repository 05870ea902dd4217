//! Follows the rolling log files in `log_dir` for lines other processes
//! wrote (a daemon, a headless `syncdeck run`), so the console's log view
//! shows one log for everything sharing the folder.
//!
//! Why the files and not the state store: every process already writes
//! every line it logs to the daily file in `log_dir`, in both formats and
//! with both stores, so reading them needs no new writes on the run's hot
//! path and no new table. Each file line carries the `pid` of the process
//! that wrote it, which is how the console leaves out its own lines (it
//! has them already). Processes on other hosts, with their own log
//! folders, are not seen.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::LogLine;

/// How much of the newest file is read when the console opens: its recent
/// lines, not the whole day.
const BACKLOG_BYTES: u64 = 256 * 1024;
/// The most read in one call, so a burst never holds the reader long.
const READ_AT_MOST: u64 = 1024 * 1024;
/// Names of the daily files (`syncdeck.log.YYYY-MM-DD`).
const FILE_PREFIX: &str = "syncdeck.log";

/// Where reading stopped in the newest log file.
pub struct LogTail {
    dir: PathBuf,
    own_pid: u32,
    /// The file being followed and the offset read up to (always at the
    /// start of a line).
    file: Option<(PathBuf, u64)>,
}

impl LogTail {
    pub fn new(dir: &Path, own_pid: u32) -> Self {
        Self {
            dir: dir.to_path_buf(),
            own_pid,
            file: None,
        }
    }

    /// Lines other processes appended since the last call; on the first
    /// call, the recent lines of the newest file. Files that cannot be
    /// read give nothing (the folder may not exist yet).
    pub fn read_new(&mut self) -> Vec<LogLine> {
        let Some(newest) = newest_file(&self.dir) else {
            return Vec::new();
        };
        let mut lines = Vec::new();
        let first = self.file.is_none();
        let offset = match self.file.take() {
            Some((path, offset)) if path == newest => offset,
            Some((path, offset)) => {
                // The day rolled over: finish the old file first.
                let (text, _) = read_from(&path, offset);
                lines.extend(self.parse(&text));
                0
            }
            None => std::fs::metadata(&newest)
                .map(|metadata| metadata.len().saturating_sub(BACKLOG_BYTES))
                .unwrap_or(0),
        };
        let starts_mid_line = first && offset > 0;
        let (text, read_to) = read_from(&newest, offset);
        let text = if starts_mid_line {
            // A backlog read starts inside a line: drop that part line.
            text.split_once('\n').map_or("", |(_, rest)| rest)
        } else {
            &text
        };
        lines.extend(self.parse(text));
        self.file = Some((newest, read_to));
        lines
    }

    fn parse(&self, text: &str) -> Vec<LogLine> {
        text.lines()
            .filter_map(parse_line)
            .filter(|line| line.origin != Some(self.own_pid))
            .collect()
    }
}

/// The newest `syncdeck.log.*` file: the dates in the names sort by day.
fn newest_file(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(FILE_PREFIX))
        .map(|entry| entry.path())
        .max()
}

/// The whole lines of `path` from `offset` (up to [`READ_AT_MOST`] bytes),
/// and the offset after the last whole line.
fn read_from(path: &Path, offset: u64) -> (String, u64) {
    let Ok(mut file) = std::fs::File::open(path) else {
        return (String::new(), offset);
    };
    let length = file.metadata().map(|metadata| metadata.len()).unwrap_or(0);
    // A file cut short (rotated by hand, truncated) is read from its start.
    let offset = if length < offset { 0 } else { offset };
    if file.seek(SeekFrom::Start(offset)).is_err() {
        return (String::new(), offset);
    }
    let mut bytes = Vec::new();
    if file.take(READ_AT_MOST).read_to_end(&mut bytes).is_err() {
        return (String::new(), offset);
    }
    // A line still being written is left for the next read.
    let whole = bytes
        .iter()
        .rposition(|byte| *byte == b'\n')
        .map_or(0, |at| at + 1);
    bytes.truncate(whole);
    (
        String::from_utf8_lossy(&bytes).into_owned(),
        offset + whole as u64,
    )
}

/// One line of a log file, in either format; `None` for what is not a log
/// line (a blank line, a line of another program).
pub fn parse_line(text: &str) -> Option<LogLine> {
    if text.starts_with('{') {
        parse_json(text)
    } else {
        parse_text(text)
    }
}

fn parse_json(text: &str) -> Option<LogLine> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let time = chrono::DateTime::parse_from_rfc3339(value["timestamp"].as_str()?)
        .ok()?
        .with_timezone(&chrono::Utc);
    let level = value["level"].as_str()?.parse().ok()?;
    let mut message = value["message"].as_str().unwrap_or("").to_string();
    if let Some(fields) = value["fields"].as_object() {
        for (name, field) in fields {
            match field {
                serde_json::Value::String(text) => message.push_str(&format!(" {name}={text}")),
                other => message.push_str(&format!(" {name}={other}")),
            }
        }
    }
    Some(LogLine {
        time,
        level,
        task_id: value["task_id"].as_str().map(str::to_string),
        run_id: value["run_id"].as_i64(),
        message,
        origin: value["pid"]
            .as_u64()
            .and_then(|pid| u32::try_from(pid).ok()),
    })
}

/// `2024-05-01T12:00:00.123456Z  INFO run{task_id=a run_id=3}: target: message k=v pid=12`
fn parse_text(text: &str) -> Option<LogLine> {
    let (time, rest) = text.split_once(' ')?;
    let time = chrono::DateTime::parse_from_rfc3339(time)
        .ok()?
        .with_timezone(&chrono::Utc);
    let rest = rest.trim_start();
    let (level, mut rest) = rest.split_once(' ')?;
    let level = level.parse().ok()?;
    let (mut task_id, mut run_id) = (None, None);
    // Spans: `name{fields}:`, one after another.
    while let Some(open) = rest.find('{') {
        let name = &rest[..open];
        if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
            break;
        }
        let Some(close) = rest[open..].find("}:").map(|at| open + at) else {
            break;
        };
        for field in rest[open + 1..close].split_whitespace() {
            match field.split_once('=') {
                Some(("task_id", value)) => task_id = Some(value.trim_matches('"').to_string()),
                Some(("run_id", value)) => run_id = value.parse().ok(),
                _ => {}
            }
        }
        rest = &rest[close + 2..];
    }
    let rest = rest.trim_start();
    // The target (`syncdeck::engine:`), when there is one.
    let rest = match rest.split_once(": ") {
        Some((target, message))
            if !target.is_empty()
                && target
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == ':') =>
        {
            message
        }
        _ => rest,
    };
    let (message, origin) = match rest.rsplit_once(" pid=") {
        Some((message, pid)) if pid.parse::<u32>().is_ok() => (message, pid.parse().ok()),
        _ => (rest, None),
    };
    Some(LogLine {
        time,
        level,
        task_id,
        run_id,
        message: message.to_string(),
        origin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_line_gives_its_time_level_run_and_message_and_its_process() {
        let line = parse_line(
            "2024-05-01T12:00:00.123456Z  WARN run{task_id=mirror_slowly run_id=4}: syncdeck::files: file failed path=a.csv pid=4242",
        )
        .expect("a log line");
        assert_eq!(line.level, tracing::Level::WARN);
        assert_eq!(line.task_id.as_deref(), Some("mirror_slowly"));
        assert_eq!(line.run_id, Some(4));
        assert_eq!(line.message, "file failed path=a.csv");
        assert_eq!(line.origin, Some(4242));
        assert_eq!(line.time.to_rfc3339(), "2024-05-01T12:00:00.123456+00:00");
    }

    #[test]
    fn a_text_line_outside_a_run_has_no_task() {
        let line = parse_line(
            "2024-05-01T12:00:00.123456Z  INFO syncdeck::engine::scheduler: scheduled run taken by another worker task_id=tick pid=7",
        )
        .expect("a log line");
        assert_eq!(line.task_id, None);
        assert_eq!(
            line.message,
            "scheduled run taken by another worker task_id=tick"
        );
        assert_eq!(line.origin, Some(7));
    }

    #[test]
    fn a_json_line_gives_the_same_line() {
        let line = parse_line(
            r#"{"timestamp":"2024-05-01T12:00:00.123456Z","level":"ERROR","target":"syncdeck","task_id":"copy","run_id":9,"message":"run failed","fields":{"status":"failed"},"pid":31}"#,
        )
        .expect("a log line");
        assert_eq!(line.level, tracing::Level::ERROR);
        assert_eq!(line.task_id.as_deref(), Some("copy"));
        assert_eq!(line.run_id, Some(9));
        assert_eq!(line.message, "run failed status=failed");
        assert_eq!(line.origin, Some(31));
    }

    #[test]
    fn what_is_not_a_log_line_is_left_out() {
        assert_eq!(parse_line(""), None);
        assert_eq!(parse_line("thread 'main' panicked at src/main.rs"), None);
    }

    #[test]
    fn the_tail_follows_new_lines_of_other_processes_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("syncdeck.log.2024-05-01");
        let other = "2024-05-01T12:00:00.000001Z  INFO syncdeck: daemon line pid=1\n";
        let own = "2024-05-01T12:00:00.000002Z  INFO syncdeck: console line pid=2\n";
        std::fs::write(&file, format!("{other}{own}")).expect("write");
        let mut tail = LogTail::new(dir.path(), 2);
        let first: Vec<String> = tail.read_new().into_iter().map(|l| l.message).collect();
        assert_eq!(first, ["daemon line"]);
        assert!(tail.read_new().is_empty(), "nothing new, nothing again");

        // A line being written shows once it is whole.
        let mut appended = std::fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .expect("open");
        std::io::Write::write_all(
            &mut appended,
            b"2024-05-01T12:00:01.000000Z ERROR syncdeck: run failed",
        )
        .expect("append");
        assert!(tail.read_new().is_empty());
        std::io::Write::write_all(&mut appended, b" pid=1\n").expect("append");
        let next: Vec<String> = tail.read_new().into_iter().map(|l| l.message).collect();
        assert_eq!(next, ["run failed"]);

        // The next day's file is followed from its start.
        std::fs::write(
            dir.path().join("syncdeck.log.2024-05-02"),
            "2024-05-02T00:00:00.000000Z  INFO syncdeck: new day pid=1\n",
        )
        .expect("write");
        let next: Vec<String> = tail.read_new().into_iter().map(|l| l.message).collect();
        assert_eq!(next, ["new day"]);
    }
}
