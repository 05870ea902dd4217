//! The engine used as a library, on `memory://` stores: server-side copies
//! within one memory store, streamed copies to local disk, and the events a
//! console would see.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;
use syncdeck::config::{self, Resolve};
use syncdeck::engine::{Engine, RunOptions};
use syncdeck::run::event::{EngineEvent, SkipReason};
use syncdeck::run::{RunStatus, Trigger};

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

#[tokio::test]
async fn memory_to_memory_and_memory_to_local() {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = syncdeck::files::memory_store("lake");
    for (key, body) in [
        ("raw/a.csv", "a"),
        ("raw/b.csv", "bb"),
        ("raw/deep/c.json", "{}"),
        ("raw/d.txt", "d"),
    ] {
        source
            .put(&ObjectPath::from(key), body.as_bytes().to_vec().into())
            .await
            .expect("seed");
    }
    let engine = engine_for(
        dir.path(),
        r#"
[[tasks]]
id = "within"
type = "sync"
[tasks.properties]
source_path = "memory://lake/raw/"
destination_path = "memory://lake/copy/"
pattern = "*.{csv,json}"
recursive = true

[[tasks]]
id = "to_disk"
type = "sync"
[tasks.properties]
source_path = "memory://lake/copy/"
destination_path = "disk/"
recursive = true
"#,
    )
    .await;
    let mut events = engine.subscribe();

    let within = engine
        .run_task("within", Trigger::Manual, RunOptions::default())
        .await
        .expect("run");
    assert_eq!(within.status, RunStatus::Succeeded);
    assert_eq!(within.counters.files_synced, 3);
    assert_eq!(
        within.counters.files_server_side, 3,
        "one memory store copies in place"
    );
    let copied = source
        .get(&ObjectPath::from("copy/deep/c.json"))
        .await
        .expect("copied")
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(&copied[..], b"{}");

    let to_disk = engine
        .run_task("to_disk", Trigger::Manual, RunOptions::default())
        .await
        .expect("run");
    assert_eq!(to_disk.counters.files_synced, 3);
    assert_eq!(to_disk.counters.files_server_side, 0);
    assert_eq!(
        std::fs::read(dir.path().join("disk/b.csv")).expect("read"),
        b"bb"
    );

    let again = engine
        .run_task("within", Trigger::Manual, RunOptions::default())
        .await
        .expect("run");
    assert_eq!(again.counters.files_skipped_unchanged, 3);

    // What a watcher saw, in order, for the first run.
    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        seen.push(event);
    }
    let first_run = within.run_id;
    assert!(
        matches!(seen.first(), Some(EngineEvent::RunStarted { run_id, .. }) if *run_id == first_run)
    );
    let synced = seen
        .iter()
        .filter(
            |event| matches!(event, EngineEvent::ItemSynced { run_id, .. } if *run_id == first_run),
        )
        .count();
    assert_eq!(synced, 3);
    assert!(seen.iter().any(|event| matches!(event,
        EngineEvent::ItemSkipped { run_id, reason: SkipReason::Unchanged, .. } if *run_id == again.run_id)));
    assert!(seen.iter().any(|event| matches!(event,
        EngineEvent::RunFinished { record } if record.run_id == first_run && record.status == RunStatus::Succeeded)));

    let history = engine.state().runs(None, 10).await.expect("history");
    assert_eq!(history.len(), 3);
    assert_eq!(history[0].run_id, again.run_id, "newest first");
}

#[tokio::test]
async fn cancelling_a_run_by_id_ends_it_cancelled() {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = syncdeck::files::memory_store("slow");
    source
        .put(
            &ObjectPath::from("in/a.bin"),
            vec![7u8; 4 * 1024 * 1024].into(),
        )
        .await
        .expect("seed");
    let engine = engine_for(
        dir.path(),
        r#"
[[tasks]]
id = "slow"
type = "sync"
[tasks.properties]
source_path = "memory://slow/in/"
destination_path = "out/"
bwlimit = "256KiB"
"#,
    )
    .await;
    let mut events = engine.subscribe();
    let runner = {
        let engine = Arc::clone(&engine);
        tokio::spawn(async move {
            engine
                .run_task("slow", Trigger::Manual, RunOptions::default())
                .await
        })
    };
    let run_id = loop {
        match events.recv().await.expect("event") {
            EngineEvent::RunProgress {
                run_id, counters, ..
            } if counters.bytes_done > 0 => break run_id,
            _ => continue,
        }
    };
    assert_eq!(engine.active_runs(), vec![(run_id, "slow".to_string())]);
    assert!(engine.cancel_run(run_id));
    let record = runner.await.expect("join").expect("run");
    assert_eq!(record.status, RunStatus::Cancelled);
    assert!(engine.active_runs().is_empty());
    assert!(
        !dir.path().join("out/a.bin").exists(),
        "no file under the real name"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("out"))
        .map(|dir| dir.flatten().collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "partial files left: {leftovers:?}");
}

/// This process's resident memory now and at its peak since the last
/// reset, in KiB, from /proc/self/status.
fn rss_and_peak_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/self/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Restarts the peak (VmHWM) from the current resident memory.
fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset peak RSS");
}

#[tokio::test]
async fn a_listing_of_200_000_keys_syncs_and_resyncs_within_64_mib_more_memory() {
    const KEYS: u64 = 200_000;
    let dir = tempfile::tempdir().expect("temp dir");
    let trees = tempfile::tempdir_in("/dev/shm").expect("temp dir in /dev/shm");
    let source = syncdeck::files::memory_store("wide");
    for key in 0..KEYS {
        source
            .put(
                &ObjectPath::from(format!("in/p{:03}/k{key:06}.json", key % 400)),
                Vec::new().into(),
            )
            .await
            .expect("seed");
    }
    let engine = engine_for(
        dir.path(),
        &format!(
            "[[tasks]]\nid = \"wide\"\ntype = \"sync\"\n[tasks.properties]\n\
             source_path = \"memory://wide/in/\"\ndestination_path = \"{}/\"\nrecursive = true\n",
            trees.path().join("out").display()
        ),
    )
    .await;

    // The seeded store is the test's, not the run's: only growth counts.
    // (Other tests of this binary run alongside; they are small.)
    let mut growth_mib = Vec::new();
    for _ in 0..2 {
        let (before, _) = rss_and_peak_kib();
        reset_peak();
        let record = engine
            .run_task("wide", Trigger::Manual, RunOptions::default())
            .await
            .expect("run");
        let (_, peak) = rss_and_peak_kib();
        assert_eq!(record.status, RunStatus::Succeeded, "{:?}", record.error);
        assert_eq!(record.counters.files_listed, KEYS);
        growth_mib.push(peak.saturating_sub(before) / 1024);
        if growth_mib.len() == 1 {
            assert_eq!(record.counters.files_synced, KEYS);
        } else {
            assert_eq!(record.counters.files_skipped_unchanged, KEYS);
            assert_eq!(record.counters.files_synced, 0);
        }
    }
    assert!(
        growth_mib.iter().all(|&growth| growth < 64),
        "syncing {KEYS} keys raised peak memory by {growth_mib:?} MiB (first copy, rerun; limit 64)"
    );
    println!("peak memory growth over {KEYS} keys: {growth_mib:?} MiB");
    drop(trees);
}

#[tokio::test]
async fn files_copy_while_the_listing_goes_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = syncdeck::files::memory_store("early");
    // More files than the listing may decide ahead of the copies (512).
    for key in 0..1500 {
        source
            .put(
                &ObjectPath::from(format!("in/f{key:04}.csv")),
                b"x".to_vec().into(),
            )
            .await
            .expect("seed");
    }
    // The file listed last is already at the destination, unchanged.
    std::fs::create_dir_all(dir.path().join("out")).expect("mkdir");
    std::fs::write(dir.path().join("out/f1499.csv"), b"x").expect("write");
    let engine = engine_for(
        dir.path(),
        "[[tasks]]\nid = \"early\"\ntype = \"sync\"\n[tasks.properties]\n\
         source_path = \"memory://early/in/\"\ndestination_path = \"out/\"\ntransfers = 2\n",
    )
    .await;
    let mut events = engine.subscribe();
    let record = engine
        .run_task("early", Trigger::Manual, RunOptions::default())
        .await
        .expect("run");
    assert_eq!(record.status, RunStatus::Succeeded, "{:?}", record.error);
    assert_eq!(record.counters.files_synced, 1499);
    assert_eq!(record.counters.files_skipped_unchanged, 1);

    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        seen.push(event);
    }
    let position =
        |wanted: &dyn Fn(&EngineEvent) -> bool| seen.iter().position(wanted).expect("event seen");
    let first_synced = position(&|event| matches!(event, EngineEvent::ItemSynced { .. }));
    let last_decided = position(
        &|event| matches!(event, EngineEvent::ItemSkipped { path, .. } if path == "f1499.csv"),
    );
    let totals_known = position(
        &|event| matches!(event, EngineEvent::RunProgress { counters, .. } if counters.totals_known),
    );
    assert!(
        first_synced < last_decided,
        "a file was copied before the last listed file was decided"
    );
    assert!(
        first_synced < totals_known,
        "a file was copied while the progress still said `counting…`"
    );
    let EngineEvent::RunProgress { counters, .. } = &seen[totals_known] else {
        unreachable!()
    };
    assert_eq!(
        (counters.files_listed, counters.files_to_copy),
        (1500, 1499),
        "the totals shown once known are the real ones"
    );
}

#[tokio::test]
async fn names_that_sort_differently_by_folder_and_by_path_resync_as_unchanged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = syncdeck::files::memory_store("order");
    // By path `a-b` < `a.csv` < `a/x`, though the folder `a` sorts first by name.
    let names = ["a-b", "a.csv", "a/x", "a/y-z", "a/y/w", "a0", "ab/c"];
    for name in names {
        source
            .put(
                &ObjectPath::from(format!("in/{name}")),
                b"1".to_vec().into(),
            )
            .await
            .expect("seed");
    }
    let engine = engine_for(
        dir.path(),
        r#"
[[tasks]]
id = "to_disk"
type = "sync"
[tasks.properties]
source_path = "memory://order/in/"
destination_path = "disk/"
recursive = true

[[tasks]]
id = "back"
type = "sync"
[tasks.properties]
source_path = "disk/"
destination_path = "memory://order/back/"
recursive = true
"#,
    )
    .await;
    for task in ["to_disk", "back"] {
        let first = engine
            .run_task(task, Trigger::Manual, RunOptions::default())
            .await
            .expect("run");
        assert_eq!(first.counters.files_synced, names.len() as u64, "{task}");
        let again = engine
            .run_task(task, Trigger::Manual, RunOptions::default())
            .await
            .expect("run");
        assert_eq!(
            (
                again.counters.files_skipped_unchanged,
                again.counters.files_synced
            ),
            (names.len() as u64, 0),
            "{task}: every file is found at the destination on a rerun"
        );
    }
}
