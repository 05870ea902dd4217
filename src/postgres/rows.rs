//! A batch of rows as text values (NULL as `None`) kept in one buffer: a
//! batch of 1,000 rows costs a few allocations, not one per value.

use std::fmt::Write as _;

/// Marks a NULL cell.
const NULL: (usize, usize) = (usize::MAX, 0);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Rows {
    width: usize,
    text: String,
    /// Per value, row after row: its start and end in `text`, or `NULL`.
    cells: Vec<(usize, usize)>,
}

impl Rows {
    pub(crate) fn with_capacity(width: usize, rows: usize) -> Self {
        Self {
            width,
            text: String::with_capacity(rows * width * 8),
            cells: Vec::with_capacity(rows * width),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.cells.len().checked_div(self.width).unwrap_or(0)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    pub(crate) fn width(&self) -> usize {
        self.width
    }

    /// The first half of the rows (rounded down) and the rest.
    pub(crate) fn halves(&self) -> (Rows, Rows) {
        let middle = self.len() / 2;
        let part = |range: std::ops::Range<usize>| {
            let mut part = Rows::with_capacity(self.width, range.len());
            for row in range {
                part.push_row(self.row(row));
            }
            part
        };
        (part(0..middle), part(middle..self.len()))
    }

    /// Memory held, for bounding what is kept.
    pub(crate) fn bytes(&self) -> usize {
        self.text.capacity() + self.cells.capacity() * std::mem::size_of::<(usize, usize)>()
    }

    /// The value in `row` at `column`.
    pub(crate) fn get(&self, row: usize, column: usize) -> Option<&str> {
        let (start, end) = *self.cells.get(row * self.width + column)?;
        if start == usize::MAX {
            return None;
        }
        self.text.get(start..end)
    }

    /// The values of one row, in column order.
    pub(crate) fn row(&self, row: usize) -> impl Iterator<Item = Option<&str>> + '_ {
        (0..self.width).map(move |column| self.get(row, column))
    }

    /// Appends one value; a row is complete after `width` of them.
    pub(crate) fn push(&mut self, value: Option<&str>) {
        match value {
            None => self.cells.push(NULL),
            Some(text) => {
                let start = self.text.len();
                self.text.push_str(text);
                self.cells.push((start, self.text.len()));
            }
        }
    }

    /// Appends an integer value, written as PostgreSQL writes it.
    pub(crate) fn push_integer(&mut self, value: Option<i64>) {
        match value {
            None => self.cells.push(NULL),
            Some(number) => {
                let start = self.text.len();
                let _ = write!(self.text, "{number}");
                self.cells.push((start, self.text.len()));
            }
        }
    }

    /// Appends a value written by `write` straight into the batch's buffer
    /// (nothing is appended if it fails).
    pub(crate) fn push_with<E>(
        &mut self,
        write: impl FnOnce(&mut String) -> Result<(), E>,
    ) -> Result<(), E> {
        let start = self.text.len();
        if let Err(error) = write(&mut self.text) {
            self.text.truncate(start);
            return Err(error);
        }
        self.cells.push((start, self.text.len()));
        Ok(())
    }

    /// Appends a row of `width` values.
    pub(crate) fn push_row<'a>(&mut self, values: impl IntoIterator<Item = Option<&'a str>>) {
        for value in values {
            self.push(value);
        }
        debug_assert_eq!(
            self.cells.len() % self.width.max(1),
            0,
            "a row of the wrong width"
        );
    }

    /// Column `column` of every row, for array parameters.
    pub(crate) fn column(&self, column: usize) -> Vec<Option<&str>> {
        (0..self.len()).map(|row| self.get(row, column)).collect()
    }

    /// Encodes every row for `COPY … FROM STDIN` (text format): values
    /// separated by tabs, `\N` for NULL, backslash escapes.
    pub(crate) fn copy_text(&self) -> String {
        let mut out = String::with_capacity(self.text.len() + self.cells.len() * 2);
        for row in 0..self.len() {
            for (index, value) in self.row(row).enumerate() {
                if index > 0 {
                    out.push('\t');
                }
                match value {
                    None => out.push_str("\\N"),
                    Some(text) if !text.bytes().any(needs_escape) => out.push_str(text),
                    Some(text) => {
                        for c in text.chars() {
                            match c {
                                '\\' => out.push_str("\\\\"),
                                '\t' => out.push_str("\\t"),
                                '\n' => out.push_str("\\n"),
                                '\r' => out.push_str("\\r"),
                                other => {
                                    let _ = out.write_char(other);
                                }
                            }
                        }
                    }
                }
            }
            out.push('\n');
        }
        out
    }
}

fn needs_escape(byte: u8) -> bool {
    matches!(byte, b'\\' | b'\t' | b'\n' | b'\r')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_nulls_come_back_by_row_and_column() {
        let mut rows = Rows::with_capacity(2, 0);
        rows.push_row([Some("1"), None]);
        rows.push_row([Some(""), Some("two words")]);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows.get(0, 0), Some("1"));
        assert_eq!(rows.get(0, 1), None);
        assert_eq!(rows.get(1, 0), Some(""), "an empty string is not NULL");
        assert_eq!(
            rows.row(1).collect::<Vec<_>>(),
            vec![Some(""), Some("two words")]
        );
        assert_eq!(rows.column(1), vec![None, Some("two words")]);
        assert_eq!(rows.get(2, 0), None, "past the end");
        let mut numbers = Rows::with_capacity(2, 1);
        numbers.push_integer(Some(-42));
        numbers.push_integer(None);
        assert_eq!(numbers.row(0).collect::<Vec<_>>(), vec![Some("-42"), None]);
    }

    #[test]
    fn copy_text_escapes_and_marks_nulls() {
        let mut rows = Rows::with_capacity(3, 1);
        rows.push_row([Some("a\tb"), None, Some("line\nbreak \\ back")]);
        rows.push_row([Some("plain"), Some("\r"), Some("")]);
        assert_eq!(
            rows.copy_text(),
            "a\\tb\t\\N\tline\\nbreak \\\\ back\nplain\t\\r\t\n"
        );
    }
}
