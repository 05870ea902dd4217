//! 200,000 empty files sync local to local with syncdeck's peak memory
//! under 64 MiB, on the first copy and on the rerun that skips them all:
//! the plan streams, so memory holds a folder and the transfer queue, not
//! the tree. (Its own test binary, so the children measured are only
//! these runs.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Workspace, counter, run_of, stderr};
use nix::sys::resource::{UsageWho, getrusage};

const FOLDERS: usize = 400;
const FILES_PER_FOLDER: usize = 500;
const FILES: u64 = (FOLDERS * FILES_PER_FOLDER) as u64;
const PEAK_RSS_LIMIT_KIB: i64 = 64 * 1024;

/// The largest peak memory of the syncdeck processes run so far.
fn children_peak_kib() -> i64 {
    getrusage(UsageWho::RUSAGE_CHILDREN)
        .expect("getrusage")
        .max_rss()
}

#[test]
fn two_hundred_thousand_files_sync_and_resync_under_64_mib() {
    // tmpfs: the trees cost no disk, and their pages are not syncdeck's.
    let trees = tempfile::tempdir_in("/dev/shm").expect("temp dir in /dev/shm");
    let source = trees.path().join("in");
    for folder in 0..FOLDERS {
        let folder = source.join(format!("part-{folder:03}"));
        std::fs::create_dir_all(&folder).expect("mkdir");
        for file in 0..FILES_PER_FOLDER {
            std::fs::File::create(folder.join(format!("f{file:04}.json"))).expect("create");
        }
    }
    let workspace = Workspace::new();
    workspace.write_config(&format!(
        "[[tasks]]\nid = \"many\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"{}/\"\n\
         destination_path = \"{}/\"\nrecursive = true\n",
        source.display(),
        trees.path().join("out").display()
    ));

    let (output, runs) = workspace.run_json(&["many"]);
    let first_peak = children_peak_kib();
    assert!(output.status.success(), "{}", stderr(&output));
    let first = run_of(&runs, "many");
    assert_eq!(counter(first, "files_listed"), FILES);
    assert_eq!(counter(first, "files_synced"), FILES);
    let copied = walk_count(&trees.path().join("out"));
    assert_eq!(copied, FILES, "every file is at the destination");
    assert!(
        first_peak < PEAK_RSS_LIMIT_KIB,
        "syncdeck peaked at {} MiB copying {FILES} files (limit 64 MiB)",
        first_peak / 1024
    );

    let (output, runs) = workspace.run_json(&["many"]);
    // The larger of both runs' peaks.
    let rerun_peak = children_peak_kib();
    assert!(output.status.success(), "{}", stderr(&output));
    let rerun = run_of(&runs, "many");
    assert_eq!(counter(rerun, "files_skipped_unchanged"), FILES);
    assert_eq!(counter(rerun, "files_synced"), 0);
    assert!(
        rerun_peak < PEAK_RSS_LIMIT_KIB,
        "syncdeck peaked at {} MiB re-checking {FILES} unchanged files (limit 64 MiB)",
        rerun_peak / 1024
    );
    println!(
        "peak RSS: first copy {} MiB, rerun {} MiB",
        first_peak / 1024,
        rerun_peak / 1024
    );
    drop(trees);
}

fn walk_count(root: &std::path::Path) -> u64 {
    let mut count = 0;
    for folder in std::fs::read_dir(root).expect("read out") {
        let folder = folder.expect("entry").path();
        count += std::fs::read_dir(folder).expect("read folder").count() as u64;
    }
    count
}
