//! What clicks and the wheel do (mouse support is off unless
//! `[console] mouse = true` or `--mouse`): a click on a task selects it, a
//! click on the logs panel focuses it, the wheel scrolls what is under the
//! pointer. Positions are mapped with the same layout the views draw with.

use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::{Position, Rect};

use super::app::{App, Command, Focus, View};
use super::views::{screen_layout, tasks_layout};

/// Lines the wheel moves per notch.
const WHEEL_LINES: i64 = 3;

impl App {
    pub(super) fn on_mouse(&mut self, event: MouseEvent) -> Vec<Command> {
        if self.overlay.is_some() || self.input.is_some() {
            return Vec::new();
        }
        let at = Position::new(event.column, event.row);
        let (width, height) = self.screen;
        let [_, body, _] = screen_layout(Rect::new(0, 0, width, height));
        let panels = (self.view == View::Tasks).then(|| tasks_layout(body));
        match event.kind {
            MouseEventKind::Down(MouseButton::Left) => {
                if let Some([list, _, logs]) = panels {
                    if list.contains(at) {
                        self.focus = Focus::Tasks;
                        self.select_row_at(list, at.y);
                    } else if logs.contains(at) {
                        self.focus = Focus::Logs;
                    }
                }
            }
            MouseEventKind::ScrollDown | MouseEventKind::ScrollUp => {
                let delta = if event.kind == MouseEventKind::ScrollDown {
                    WHEEL_LINES
                } else {
                    -WHEEL_LINES
                };
                match panels {
                    // The wheel scrolls the panel under the pointer and
                    // leaves the focus where it is.
                    Some([_, _, logs]) if logs.contains(at) => self.scroll_logs(delta),
                    Some(_) => {
                        let focus = self.focus;
                        self.focus = Focus::Tasks;
                        self.move_by(delta);
                        self.focus = focus;
                    }
                    None => self.move_by(delta),
                }
            }
            _ => {}
        }
        Vec::new()
    }

    /// Selects the task drawn on screen row `y` of the task list.
    fn select_row_at(&mut self, list: Rect, y: u16) {
        let rows = usize::from(list.height.saturating_sub(2));
        let Some(row) = y.checked_sub(list.y + 1).map(usize::from) else {
            return;
        };
        if row >= rows {
            return;
        }
        // The first row shown, as the task list last drew it.
        let first = self.task_scroll.get();
        let index = first + row;
        if index < self.visible_tasks().len() {
            self.selected = index;
        }
    }

    /// Scrolls the logs up (negative) or down, as the keys do.
    fn scroll_logs(&mut self, delta: i64) {
        let offset = self.log_view.offset as i64 - delta;
        self.log_view.offset = offset.max(0) as usize;
        self.log_view.follow = self.log_view.offset == 0;
    }
}
