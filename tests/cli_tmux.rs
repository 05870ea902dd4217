//! `syncdeck run` in a real 80-column terminal (tmux): its progress line
//! fits the width instead of wrapping, with speed and time left, and
//! Ctrl-C leaves no bar behind.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::Workspace;
use common::tmux::Tmux;

/// The screen, after checking that no line wrapped past the width: a
/// wrapped line shows as two, unless tmux joins wrapped lines.
fn assert_no_line_wrapped(tmux: &Tmux) -> String {
    let lines = tmux.tmux(&["capture-pane", "-p", "-t", "main"]);
    let joined = tmux.tmux(&["capture-pane", "-p", "-J", "-t", "main"]);
    assert_eq!(
        lines.lines().count(),
        joined.lines().count(),
        "a line wrapped past 80 columns:\n{lines}"
    );
    lines
}

#[test]
fn the_progress_bar_fits_80_columns_and_ctrl_c_clears_it() {
    let workspace = Workspace::new();
    common::sparse_file(&workspace.path().join("in/big.bin"), 64 * 1024 * 1024);
    workspace.write_config(
        "[[tasks]]\nid = \"slow_copy_of_a_big_file\"\ntype = \"sync\"\n[tasks.properties]\n\
         source_path = \"in/\"\ndestination_path = \"out/\"\nbwlimit = \"2MiB\"\n",
    );
    let tmux = Tmux::start(workspace.path(), 80, 24);
    tmux.wait_for("shell$", "the shell prompt");
    tmux.type_line(&format!(
        "{} -c syncdeck.toml run",
        env!("CARGO_BIN_EXE_syncdeck")
    ));
    // The bar, once the total is known, with its counts after it.
    let screen = tmux.wait_for("% ", "the progress bar");
    let bar = screen
        .lines()
        .find(|line| line.contains("slow_copy_of_a_") && line.contains("% "))
        .unwrap_or_else(|| panic!("no bar line in:\n{screen}"))
        .to_string();
    assert_no_line_wrapped(&tmux);

    tmux.keys(&["C-c"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let screen = loop {
        let screen = tmux.screen();
        if screen.matches("shell$").count() >= 2 {
            break screen;
        }
        assert!(
            Instant::now() < deadline,
            "no shell after ctrl-c:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let after_prompt = screen.rsplit("-c syncdeck.toml run").next().unwrap_or("");
    assert!(
        !after_prompt.contains("% "),
        "the bar `{bar}` stayed on screen after ctrl-c:\n{screen}"
    );
}

#[test]
fn a_table_runs_progress_fits_80_columns_with_its_speed_and_time_left() {
    let database = common::TestDatabase::create("cli_tmux");
    database.execute(
        "CREATE SCHEMA src; CREATE SCHEMA dst;
         CREATE TABLE src.numbers (id int PRIMARY KEY, label text);
         INSERT INTO src.numbers SELECT g, CASE WHEN g % 997 = 0 THEN 'bad' ELSE 'number ' || g END FROM generate_series(1, 40000) g;
         CREATE TABLE dst.numbers (LIKE src.numbers INCLUDING ALL, CHECK (label <> 'bad'));
         CREATE FUNCTION dst.slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.1); RETURN NULL; END $$;
         CREATE TRIGGER slow AFTER INSERT ON dst.numbers FOR EACH STATEMENT EXECUTE FUNCTION dst.slow();",
    );
    let workspace = Workspace::new();
    workspace.write_config(&format!(
        "[[tasks]]\nid = \"orders_to_the_warehouse\"\ntype = \"table_sync\"\n[tasks.properties]\n\
         source = \"{url}\"\ntarget = \"{url}\"\nsource_table = \"src.numbers\"\ntarget_table = \"dst.numbers\"\n\
         primary_key = [\"id\"]\nbatch_size = 200\n",
        url = database.url
    ));
    let tmux = Tmux::start(workspace.path(), 80, 24);
    tmux.wait_for("shell$", "the shell prompt");
    tmux.type_line(&format!(
        "{} -c syncdeck.toml run",
        env!("CARGO_BIN_EXE_syncdeck")
    ));
    tmux.wait_for("violates", "a rejected row told");
    let screen = tmux.wait_for("rows/s", "the progress line with its speed");
    let line = screen
        .lines()
        .find(|line| line.contains("rows/s"))
        .unwrap_or_default();
    assert!(
        line.contains("% ") && line.contains("/40,000 rows"),
        "{screen}"
    );
    assert!(line.contains("ETA"), "the time left shows: {screen}");
    let lines = assert_no_line_wrapped(&tmux);
    // Rejected rows are told between words, with no piece of a bar after.
    let told: Vec<&str> = lines
        .lines()
        .filter(|line| line.contains("violates"))
        .collect();
    assert!(!told.is_empty(), "{lines}");
    for line in told {
        assert!(
            line.trim_end().ends_with("numbers_label_check\""),
            "{lines}"
        );
    }
    tmux.keys(&["C-c"]);
}
