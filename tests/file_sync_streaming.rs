//! Local file syncs stream: the first file is copied while the listing
//! goes on (seen in the run's own events), and a folder with more names
//! than the listing holds at once is sorted in parts on disk, synced in
//! full, and leaves no temporary file behind.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{Workspace, counter, json_lines, run_of, stderr};
use syncdeck::config::{self, Resolve};
use syncdeck::engine::{Engine, RunOptions};
use syncdeck::run::event::EngineEvent;
use syncdeck::run::{RunStatus, Trigger};
use tokio::sync::broadcast::error::RecvError;

async fn engine_for(dir: &Path, tasks: &str) -> Arc<Engine> {
    let text = format!("[engine]\nstate = \"sqlite:state.db\"\nlog_dir = \"logs\"\n\n{tasks}");
    let config = config::parse(&dir.join("syncdeck.toml"), &text, Resolve::Everything)
        .expect("valid config");
    let state = syncdeck::state::open(&config.engine.state, &config.base_dir)
        .await
        .expect("state store");
    Engine::new(Arc::new(config), state, syncdeck::kinds::all())
        .await
        .expect("engine")
}

/// What came first in a run's events.
#[derive(Debug, PartialEq)]
enum First {
    /// A file was copied.
    Copied(String),
    /// The last file listed was decided (it is skipped).
    LastDecided,
    /// The progress said the listing had ended.
    ListingEnded,
}

#[tokio::test]
async fn the_first_local_file_is_copied_before_the_listing_ends() {
    const FOLDERS: usize = 20;
    const FILES_PER_FOLDER: usize = 500;
    let dir = tempfile::tempdir().expect("temp dir");
    let trees = tempfile::tempdir_in("/dev/shm").expect("temp dir in /dev/shm");
    let source = trees.path().join("in");
    for folder in 0..FOLDERS {
        let folder = source.join(format!("d{folder:02}"));
        std::fs::create_dir_all(&folder).expect("mkdir");
        for file in 0..FILES_PER_FOLDER {
            std::fs::write(folder.join(format!("f{file:03}.csv")), b"x").expect("write");
        }
    }
    // The file listed last is already at the destination, unchanged.
    let last = format!("d{:02}/f{:03}.csv", FOLDERS - 1, FILES_PER_FOLDER - 1);
    let destination = trees.path().join("out");
    std::fs::create_dir_all(destination.join(&last).parent().expect("parent")).expect("mkdir");
    std::fs::copy(source.join(&last), destination.join(&last)).expect("copy");
    let engine = engine_for(
        dir.path(),
        &format!(
            "[[tasks]]\nid = \"wide\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"{}/\"\n\
             destination_path = \"{}/\"\nrecursive = true\n",
            source.display(),
            destination.display()
        ),
    )
    .await;

    let mut events = engine.subscribe();
    let watcher = tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(EngineEvent::ItemSynced { path, .. }) => return Some(First::Copied(path)),
                Ok(EngineEvent::ItemSkipped { path, .. }) if path == last => {
                    return Some(First::LastDecided);
                }
                Ok(EngineEvent::RunProgress { counters, .. }) if counters.totals_known => {
                    return Some(First::ListingEnded);
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_) | RecvError::Closed) => return None,
            }
        }
    });
    let record = engine
        .run_task("wide", Trigger::Manual, RunOptions::default())
        .await
        .expect("run");
    assert_eq!(record.status, RunStatus::Succeeded, "{:?}", record.error);
    let files = (FOLDERS * FILES_PER_FOLDER) as u64;
    assert_eq!(record.counters.files_listed, files);
    assert_eq!(record.counters.files_synced, files - 1);
    assert_eq!(record.counters.files_skipped_unchanged, 1);
    let first = watcher.await.expect("watcher");
    assert!(
        matches!(&first, Some(First::Copied(path)) if path.starts_with("d00/")),
        "a file of the first folder is copied before the listing reaches the last one; first came {first:?}"
    );
}

#[test]
fn a_folder_past_the_listing_cutoff_syncs_in_full_and_leaves_no_temporary_file() {
    const FILES: usize = 3_000;
    let workspace = Workspace::new();
    for file in 0..FILES {
        // Created out of order, with names whose order by path is not
        // their order by name (`a-1` < `a/…`).
        let index = (file * 7919) % FILES;
        workspace.file(&format!("in/f{index:04}.csv"), index.to_string().as_bytes());
    }
    workspace.file("in/a-1", b"dash");
    workspace.file("in/a/inner.csv", b"inner");
    workspace.file("in/a.csv", b"dot");
    workspace.write_config(
        "[[tasks]]\nid = \"flat\"\ntype = \"sync\"\n[tasks.properties]\n\
         source_path = \"in/\"\ndestination_path = \"out/\"\nrecursive = true\n",
    );
    let temporary = tempfile::tempdir().expect("temp dir");
    let run = || {
        let output = workspace
            .command(&["run", "--json", "flat"])
            .env("SYNCDECK_LIST_CUTOFF", "500")
            .env("TMPDIR", temporary.path())
            .output()
            .expect("run syncdeck");
        assert!(output.status.success(), "{}", stderr(&output));
        let left: Vec<_> = std::fs::read_dir(temporary.path())
            .expect("read temporary folder")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        assert!(left.is_empty(), "temporary files left behind: {left:?}");
        json_lines(&output)
    };

    let runs = run();
    let first = run_of(&runs, "flat");
    let total = (FILES + 3) as u64;
    assert_eq!(counter(first, "files_listed"), total);
    assert_eq!(counter(first, "files_synced"), total);
    assert_eq!(workspace.tree("out"), workspace.tree("in"));
    assert_eq!(
        std::fs::read(workspace.path().join("out/f0042.csv")).expect("copied"),
        b"42"
    );
    assert!(
        workspace
            .logs()
            .contains("a folder too large to hold is sorted on disk in parts"),
        "the run says it sorted the folder on disk"
    );

    // The rerun lists both sides in parts and finds nothing to do.
    let runs = run();
    let rerun = run_of(&runs, "flat");
    assert_eq!(counter(rerun, "files_skipped_unchanged"), total);
    assert_eq!(counter(rerun, "files_synced"), 0);
}
