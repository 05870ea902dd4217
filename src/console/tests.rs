//! Model and rendering tests.
