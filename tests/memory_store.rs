//! The engine used as a library, on `memory://` stores: server-side copies
//! within one memory store, streamed copies to local disk, and the events a
//! console would see.

use std::path::Path;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;
use syncdeck::config::{self, Resolve};
use syncdeck::run::event::{EngineEvent, SkipReason};
use syncdeck::run::{RunStatus, Trigger};
use syncdeck::engine::{Engine, RunOptions};

async fn engine_for(dir: &Path, tasks: &str) -> Arc<Engine> {
    let text = format!("[engine]\nstate = \"sqlite:state.db\"\nlog_dir = \"logs\"\n\n{tasks}");
    let config = config::parse(&dir.join("syncdeck.toml"), &text, Resolve::Everything)
        .expect("valid config");
    let state = syncdeck::state::open(&config.engine.state, &config.base_dir)
        .await
        .expect("state store");
    Engine::new(Arc::new(config), state, syncdeck::kinds::all()).await.expect("engine")
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
