//! Long text opened in full: a log line, a failed item's error, a run's
//! error. `enter` opens it over the current view, wrapped and scrollable;
//! `esc` goes back. The text is plain (no side borders), so a terminal
//! selection copies it as it is.

use crossterm::event::{KeyCode, KeyEvent};

use super::app::{App, Focus, View};
use crate::logging::LogLine;
use crate::run::RunRecord;
use crate::state::FailedItem;

/// A text shown in full, and how far it is scrolled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullText {
    pub title: String,
    pub text: String,
    /// First wrapped line shown; the view keeps the last page in reach.
    pub scroll: usize,
}

impl FullText {
    fn new(title: String, text: String) -> Self {
        Self {
            title,
            text,
            scroll: 0,
        }
    }

    fn log_line(line: &LogLine, utc_offset: chrono::FixedOffset) -> Self {
        let time = line
            .time
            .with_timezone(&utc_offset)
            .format("%Y-%m-%d %H:%M:%S");
        let source = match (&line.task_id, line.run_id) {
            (Some(task), Some(run)) => format!("{task}#{run}"),
            (Some(task), None) => task.clone(),
            (None, _) => "engine".into(),
        };
        Self::new(
            format!("Log line · {time} · {} · {source}", line.level),
            line.message.clone(),
        )
    }

    fn failed_item(item: &FailedItem) -> Self {
        Self::new(
            format!(
                "Failed item #{} · {} · run {} · {} attempt(s)",
                item.id, item.task_id, item.run_id, item.attempts
            ),
            format!("{}\n\n{}", super::format::item_key(&item.key), item.error),
        )
    }

    fn run(record: &RunRecord, items: &[&FailedItem]) -> Self {
        let mut text = String::new();
        if let Some(error) = &record.error {
            text.push_str(&format!("error: {error}\n"));
        }
        if let Some(warning) = &record.warning {
            text.push_str(&format!("note: {warning}\n"));
        }
        if !items.is_empty() {
            text.push_str(&format!("\n{} failed item(s) pending:\n", items.len()));
            for item in items {
                text.push_str(&format!(
                    "#{} {} ({} attempt(s)): {}\n",
                    item.id,
                    super::format::item_key(&item.key),
                    item.attempts,
                    item.error
                ));
            }
        }
        if text.is_empty() {
            text = "nothing went wrong in this run".into();
        }
        Self::new(
            format!(
                "{} · run {} · {}",
                record.task_id, record.run_id, record.status
            ),
            text.trim_end().to_string(),
        )
    }
}

impl App {
    /// The text `enter` opens where it opens one: the log line in view
    /// (the current match, else the newest line shown), the selected
    /// failed item, or the run the detail view shows.
    pub(super) fn full_text_here(&self) -> Option<FullText> {
        match self.view {
            View::Logs => self.log_line_in_view(),
            View::Tasks if self.focus == Focus::Logs => self.log_line_in_view(),
            View::Errors => self
                .visible_pending_items()
                .get(self.errors_selected)
                .map(|item| FullText::failed_item(item)),
            View::Detail => {
                let task = self.selected_task()?;
                let record = self
                    .opened_run
                    .as_ref()
                    .filter(|run| run.task_id == task.id)
                    .or(task.last.as_ref())?;
                let items: Vec<&FailedItem> = self
                    .pending_items()
                    .into_iter()
                    .filter(|item| item.run_id == record.run_id && item.task_id == task.id)
                    .collect();
                Some(FullText::run(record, &items))
            }
            _ => None,
        }
    }

    fn log_line_in_view(&self) -> Option<FullText> {
        let ring = self.logs.lock();
        let shown: Vec<&LogLine> = ring
            .lines
            .iter()
            .filter(|line| self.log_view.shows(line))
            .collect();
        let index = match self.log_view.current_match {
            Some(current) => current,
            None if self.log_view.follow => shown.len().checked_sub(1)?,
            None => shown
                .len()
                .checked_sub(1 + self.log_view.offset.min(shown.len().saturating_sub(1)))?,
        };
        shown
            .get(index)
            .map(|line| FullText::log_line(line, self.utc_offset))
    }

    /// Keys while a text is open: scroll it, or close it.
    pub(super) fn on_full_text_key(&mut self, mut open: FullText, key: KeyEvent) {
        match key.code {
            KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q') => {
                self.overlay = None;
                return;
            }
            KeyCode::Down | KeyCode::Char('j') => open.scroll += 1,
            KeyCode::Up | KeyCode::Char('k') => open.scroll = open.scroll.saturating_sub(1),
            KeyCode::PageDown | KeyCode::Char(' ') => open.scroll += 10,
            KeyCode::PageUp => open.scroll = open.scroll.saturating_sub(10),
            KeyCode::Home | KeyCode::Char('g') => open.scroll = 0,
            // The view stops at the last page.
            KeyCode::End | KeyCode::Char('G') => open.scroll = usize::MAX / 2,
            _ => {}
        }
        // Never past the last page on the narrowest screen, so scrolling
        // back answers at once.
        open.scroll = open
            .scroll
            .min(wrap(&open.text, NARROWEST).len().saturating_sub(1));
        self.overlay = Some(super::app::Overlay::FullText(open));
    }
}

/// Width the model assumes when it bounds scrolling (the narrowest
/// screen the console is laid out for); the view stops at the last page
/// of the real width.
const NARROWEST: usize = 80;

/// `text` broken into lines of at most `width` characters, at spaces
/// where it can, inside a word where it must; line breaks are kept.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    for paragraph in text.split('\n') {
        let mut line = String::new();
        let mut length = 0;
        for word in paragraph.split(' ') {
            let word_length = word.chars().count();
            if length > 0 && length + 1 + word_length > width {
                lines.push(std::mem::take(&mut line));
                length = 0;
            }
            if length > 0 {
                line.push(' ');
                length += 1;
            }
            for character in word.chars() {
                if length == width {
                    lines.push(std::mem::take(&mut line));
                    length = 0;
                }
                line.push(character);
                length += 1;
            }
        }
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wraps_at_spaces_and_cuts_words_longer_than_a_line() {
        assert_eq!(wrap("ab cd ef", 5), vec!["ab cd", "ef"]);
        assert_eq!(wrap("abcdefgh", 3), vec!["abc", "def", "gh"]);
        assert_eq!(wrap("a\n\nb", 10), vec!["a", "", "b"]);
    }
}
