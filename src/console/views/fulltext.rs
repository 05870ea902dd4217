//! A text opened in full (a log line, an error): wrapped to the screen's
//! width, scrolled by the model, with top and bottom rules only so a
//! terminal selection copies just the text.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget};

use crate::console::fulltext::{FullText, wrap};
use crate::console::theme::Theme;

pub struct FullTextView<'a> {
    pub open: &'a FullText,
    pub theme: Theme,
}

impl Widget for FullTextView<'_> {
    fn render(self, area: Rect, buffer: &mut Buffer) {
        let (open, theme) = (self.open, self.theme);
        Clear.render(area, buffer);
        buffer.set_style(area, theme.base());
        let lines = wrap(&open.text, area.width as usize);
        let height = area.height.saturating_sub(2) as usize;
        let last_page = lines.len().saturating_sub(height);
        let first = open.scroll.min(last_page);
        let shown_to = (first + height).min(lines.len());
        let position = if lines.len() <= height {
            "all".to_string()
        } else {
            format!("lines {}-{shown_to} of {}", first + 1, lines.len())
        };
        let block = Block::default()
            .borders(Borders::TOP | Borders::BOTTOM)
            .border_style(theme.title())
            .title(format!(" {} ", open.title))
            .title_bottom(format!(" {position} "));
        let inner = block.inner(area);
        block.render(area, buffer);
        let text: Vec<Line> = lines[first..shown_to]
            .iter()
            .map(|line| Line::raw(line.clone()))
            .collect();
        Paragraph::new(text).render(inner, buffer);
    }
}
