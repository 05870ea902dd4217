//! Progress from bytes in flight: a throttled copy of one large file moves
//! its byte count while the file streams (not only when it lands), names
//! the file in flight with its own progress, and the rate estimator the
//! CLI and the console share gives an ETA close to the time really left.
//! Everything is measured on the run's own events and their timestamps.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use syncdeck::config::{self, Resolve};
use syncdeck::engine::{Engine, RunOptions};
use syncdeck::run::event::EngineEvent;
use syncdeck::run::rate::RateEstimator;
use syncdeck::run::{FileInFlight, RunCounters, RunStatus, Trigger};

const MIB: u64 = 1024 * 1024;

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

struct Snapshot {
    at: DateTime<Utc>,
    counters: RunCounters,
    in_flight: Vec<FileInFlight>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_large_file_shows_bytes_in_flight_and_a_steady_eta() {
    throttled_upload_moves_steadily("out/", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_to_ftp_shows_bytes_in_flight_and_a_steady_eta() {
    let server = common::FtpServer::start();
    let destination = format!("ftp://127.0.0.1:{}/out/", server.port);
    let credentials = format!("ftp_password = \"{}\"\n", common::FTP_PASSWORD);
    throttled_upload_moves_steadily(&destination, Some((server.options(), credentials))).await;
    let landed = std::fs::metadata(server.root.path().join("out/big.bin")).expect("landed");
    assert_eq!(landed.len(), 10 * MIB);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_to_sftp_shows_bytes_in_flight_and_a_steady_eta() {
    let server = common::SftpServer::start();
    let destination = format!("sftp://127.0.0.1:{}/out/", server.port);
    let credentials = format!("sftp_password = \"{}\"\n", common::SFTP_PASSWORD);
    throttled_upload_moves_steadily(&destination, Some((server.options(), credentials))).await;
    let landed = std::fs::metadata(server.root.path().join("out/big.bin")).expect("landed");
    assert_eq!(landed.len(), 10 * MIB);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multipart_upload_to_s3_shows_bytes_in_flight_and_a_steady_eta() {
    let server = common::S3Server::start();
    server.create_bucket("landing");
    throttled_upload_moves_steadily("s3://landing/out/", Some((server.options(), String::new())))
        .await;
    let landed = server
        .store("landing")
        .head(&object_store::path::Path::from("out/big.bin"))
        .await
        .expect("landed");
    assert_eq!(landed.size, 10 * MIB);
}

/// Copies one 10 MiB file at 1 MiB/s to `destination` (with its
/// `sync_config` side and the lines of a credentials file, for a server)
/// and checks, on the run's events, that bytes done rise at least once a
/// second and the ETA stays within 25% of the time really left.
async fn throttled_upload_moves_steadily(destination: &str, server: Option<(String, String)>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let size = 10 * MIB;
    std::fs::create_dir_all(dir.path().join("in")).expect("mkdir");
    let file = std::fs::File::create(dir.path().join("in/big.bin")).expect("create");
    file.set_len(size).expect("size the file");
    let (credentials, options) = match server {
        None => (String::new(), String::new()),
        Some((options, lines)) => {
            let path = dir.path().join("creds.toml");
            std::fs::write(&path, lines).expect("credentials file");
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .expect("chmod");
            (
                "[credentials]\nfile = \"creds.toml\"\n\n".to_string(),
                format!("[tasks.properties.sync_config]\ndestination_config = {options}\n"),
            )
        }
    };
    let engine = engine_for(
        dir.path(),
        &format!(
            "{credentials}[[tasks]]\nid = \"slow\"\ntype = \"sync\"\n[tasks.properties]\n\
             source_path = \"in/\"\ndestination_path = \"{destination}\"\nbwlimit = \"1MiB\"\n{options}"
        ),
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
    let mut snapshots = Vec::new();
    loop {
        match events.recv().await.expect("the engine's events") {
            EngineEvent::RunProgress {
                counters,
                in_flight,
                at,
                ..
            } => snapshots.push(Snapshot {
                at,
                counters: *counters,
                in_flight,
            }),
            EngineEvent::RunFinished { .. } => break,
            _ => {}
        }
    }
    let record = runner.await.expect("join").expect("run");
    assert_eq!(record.status, RunStatus::Succeeded, "{:?}", record.error);
    assert_eq!(record.counters.bytes_done, size);

    // The file is in flight from its first byte until its last.
    let first = snapshots
        .iter()
        .position(|snapshot| snapshot.counters.bytes_done > 0)
        .expect("bytes moved before the file landed");
    // The last byte lands by the time the run is recorded complete (the
    // last snapshot may come before it).
    let last = snapshots.len() - 1;
    let end = record.completed_at.expect("a finished run has an end");
    let start = snapshots[first].at;
    let seconds = (end - start).num_milliseconds() as f64 / 1000.0;
    assert!(
        seconds > 6.0,
        "10 MiB at 1 MiB/s should take about ten seconds, took {seconds}s"
    );

    // Bytes done rise at least once a second while the file streams,
    // and the file is named in flight with its own count.
    let mut last_rise = start;
    let mut before = 0;
    for snapshot in &snapshots[first..=last] {
        let done = snapshot.counters.bytes_done;
        if done > before {
            let gap = snapshot.at - last_rise;
            assert!(
                gap.num_milliseconds() <= 1000,
                "bytes done stood at {before} for {gap} while the file was in flight"
            );
            last_rise = snapshot.at;
            before = done;
        }
        if done < size {
            assert_eq!(
                snapshot.in_flight,
                vec![FileInFlight {
                    path: "big.bin".into(),
                    bytes_done: done,
                    bytes_total: size,
                }],
                "the file in flight, with its own bytes done"
            );
        }
    }

    // From the second quarter on, the ETA is within 25% of the time that
    // was really left (up to the last second, where a tenth of a second
    // between snapshots is already more than a quarter of what is left).
    let mut estimator = RateEstimator::new();
    let mut checked = 0;
    for snapshot in &snapshots[..=last] {
        estimator.observe_counters(snapshot.at, &snapshot.counters);
        let elapsed = (snapshot.at - start).num_milliseconds() as f64 / 1000.0;
        let left = (end - snapshot.at).num_milliseconds() as f64 / 1000.0;
        if elapsed < seconds / 4.0 || left < 1.0 {
            continue;
        }
        let eta = estimator
            .eta_for(&snapshot.counters)
            .expect("an ETA once the rate is measured")
            .num_milliseconds() as f64
            / 1000.0;
        assert!(
            (eta - left).abs() <= left * 0.25,
            "{elapsed:.1}s in, the ETA said {eta:.1}s but {left:.1}s were left"
        );
        checked += 1;
    }
    assert!(
        checked >= 20,
        "only {checked} snapshots were checked; progress should arrive about ten times a second"
    );
}

/// Small files under a slow limit: bytes done rise several times a second
/// inside each file, not in one jump when a file lands, and the rate seen
/// never passes the limit by more than a piece's worth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_files_under_a_slow_limit_count_in_pieces() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("in")).expect("mkdir");
    for index in 0..3 {
        std::fs::write(
            dir.path().join(format!("in/f{index}.csv")),
            vec![b'x'; 4000],
        )
        .expect("write");
    }
    let engine = engine_for(
        dir.path(),
        "[[tasks]]\nid = \"slow\"\ntype = \"sync\"\n[tasks.properties]\n\
         source_path = \"in/\"\ndestination_path = \"out/\"\nbwlimit = \"2KiB\"\ntransfers = 1\n",
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
    let mut seen: Vec<(DateTime<Utc>, u64)> = Vec::new();
    loop {
        match events.recv().await.expect("the engine's events") {
            EngineEvent::RunProgress { counters, at, .. } => seen.push((at, counters.bytes_done)),
            EngineEvent::RunFinished { .. } => break,
            _ => {}
        }
    }
    let record = runner.await.expect("join").expect("run");
    assert_eq!(record.status, RunStatus::Succeeded, "{:?}", record.error);
    assert_eq!(record.counters.bytes_done, 12_000);
    // Values of bytes done that are not a whole number of files: counted
    // while a file was in flight.
    let inside: Vec<u64> = seen
        .iter()
        .map(|(_, done)| *done)
        .filter(|done| done % 4000 != 0)
        .collect();
    assert!(
        inside.len() >= 6,
        "bytes moved inside the files only {} times: {seen:?}",
        inside.len()
    );
    let (first, last) = (seen[0], seen[seen.len() - 1]);
    let seconds = (last.0 - first.0).num_milliseconds() as f64 / 1000.0;
    assert!(
        seconds > 3.0,
        "12,000 bytes at 2 KiB/s take about six seconds, took {seconds}s"
    );
}
