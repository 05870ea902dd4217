//! `kill -9` at seeded random points: of a local to S3 multipart upload,
//! and of an incremental table sync. After each kill, a rerun must end
//! `succeeded` with source and destination equal and nothing partial left
//! visible (no partial object or file name, no open multipart upload).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{S3Server, TestDatabase, Workspace, json_lines, run_of, stderr};

/// xorshift64*: a few lines instead of a crate, and the same kill points
/// on every run of the test (the seed is in the failure messages).
struct Prng(u64);

impl Prng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

const SEED: u64 = 0x5eed_cafe_f00d;
const MIB: usize = 1024 * 1024;

/// File contents that differ per file and per round, so an object holding
/// bytes of another file or round cannot pass for the right one.
fn contents(round: u64, file: usize, size: usize) -> Vec<u8> {
    let step = (round * 7 + file as u64 * 13 + 1) % 251;
    (0..size)
        .map(|i| ((i as u64 * step + round) % 251) as u8)
        .collect()
}

fn kill_9(child: &mut std::process::Child) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    // A child that already ended is a zombie until reaped: the signal
    // still succeeds.
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).expect("kill -9");
    child.wait().expect("reap");
}

/// The status of the run of `task` that was killed (the oldest of the
/// round's two runs), once a rerun has looked at the state.
fn killed_run_status(workspace: &Workspace, task: &str) -> String {
    let history = json_lines(&workspace.run(&["history", "--json", task, "--limit", "2"]));
    history
        .last()
        .and_then(|run| run["status"].as_str())
        .unwrap_or_default()
        .to_string()
}

#[test]
fn kill_9_at_random_points_of_an_s3_multipart_upload_then_a_rerun_converges() {
    const ROUNDS: u64 = 3;
    let mut random = Prng(SEED);
    let server = S3Server::start();
    server.create_bucket("bkt");
    let mut interrupted = 0;
    for round in 0..ROUNDS {
        let workspace = Workspace::new();
        let sizes = [12 * MIB, 12 * MIB + 1, 5 * MIB - 3, 1];
        let mut expected = Vec::new();
        for (index, size) in sizes.iter().enumerate() {
            let name = format!("file{index}.bin");
            let bytes = contents(round, index, *size);
            workspace.file(&format!("in/{name}"), &bytes);
            expected.push((format!("r{round}/{name}"), bytes));
        }
        let options = server.options();
        let config = |extra: &str| {
            format!(
                "[[tasks]]\nid = \"up\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"s3://bkt/r{round}/\"\ntransfers = 2\n{extra}\n\
                 [tasks.properties.sync_config]\ndestination_config = {options}\n"
            )
        };
        workspace.write_config(&config("bwlimit = \"8MiB\""));
        let mut child = workspace
            .command(&["run", "--json", "up"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start syncdeck");
        common::wait_for_bytes_in_flight(&workspace, "up");
        let delay = random.below(2000);
        std::thread::sleep(Duration::from_millis(delay));
        kill_9(&mut child);
        let context = format!("seed {SEED:#x}, round {round}, killed {delay} ms into the upload");

        // Whatever the killed run left visible is whole.
        for (key, size) in server.list("bkt", &format!("r{round}")) {
            let (_, bytes) = expected
                .iter()
                .find(|(name, _)| *name == key)
                .unwrap_or_else(|| panic!("{context}: unexpected object {key}"));
            assert_eq!(size as usize, bytes.len(), "{context}: {key} is partial");
        }

        workspace.write_config(&config(""));
        let (output, runs) = workspace.run_json(&["up"]);
        assert!(output.status.success(), "{context}: {}", stderr(&output));
        assert_eq!(run_of(&runs, "up")["status"], "succeeded", "{context}");
        let listed: Vec<String> = server
            .list("bkt", &format!("r{round}"))
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        let mut names: Vec<String> = expected.iter().map(|(name, _)| name.clone()).collect();
        names.sort();
        assert_eq!(listed, names, "{context}: exactly the source's files");
        for (key, bytes) in &expected {
            assert!(
                server.get("bkt", key) == *bytes,
                "{context}: {key} differs from its file"
            );
        }
        assert_eq!(
            server.pending_uploads("bkt"),
            0,
            "{context}: open multipart uploads"
        );
        if killed_run_status(&workspace, "up") == "interrupted" {
            interrupted += 1;
        }
    }
    assert!(
        interrupted > 0,
        "no kill landed while a run was going: the campaign tested nothing"
    );
}

fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn kill_9_at_random_points_of_an_incremental_table_sync_then_a_rerun_converges() {
    const ROUNDS: u64 = 3;
    const ROWS: u64 = 8000;
    let mut random = Prng(SEED ^ 0x7ab1e);
    let database = TestDatabase::create("kill_campaign");
    database.execute(&format!(
        "CREATE SCHEMA src; CREATE SCHEMA dst;
         CREATE TABLE src.events (id bigint PRIMARY KEY, body text, updated_at timestamptz NOT NULL);
         INSERT INTO src.events SELECT g, 'event ' || g, timestamptz '2026-01-01 00:00:00+00' + g * interval '1 ms'
           FROM generate_series(1, {ROWS}) g;
         CREATE TABLE dst.events (LIKE src.events INCLUDING ALL);
         CREATE FUNCTION dst.slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.05); RETURN NULL; END $$;
         CREATE TRIGGER slow AFTER INSERT ON dst.events FOR EACH STATEMENT EXECUTE FUNCTION dst.slow();"
    ));
    let workspace = Workspace::new();
    workspace.write_config(&format!(
        "[[tasks]]\nid = \"t\"\ntype = \"table_sync\"\n[tasks.properties]\nsource = \"{url}\"\ntarget = \"{url}\"\n\
         source_table = \"src.events\"\ntarget_table = \"dst.events\"\nprimary_key = [\"id\"]\n\
         mode = \"incremental\"\nwatermark_column = \"updated_at\"\nbatch_size = 200\n",
        url = database.url
    ));
    let mut interrupted = 0;
    for round in 0..ROUNDS {
        if round > 0 {
            // New work for this round: changed rows stamped later than
            // anything loaded, and new rows.
            let first = random.below(ROWS / 2) + 1;
            database.execute(&format!(
                "UPDATE src.events SET body = 'round {round} ' || id,
                   updated_at = timestamptz '2026-01-01 00:00:00+00' + {round} * interval '1 day' + id * interval '1 ms'
                 WHERE id >= {first};
                 INSERT INTO src.events SELECT g, 'new ' || g, timestamptz '2026-01-01 00:00:00+00' + {round} * interval '1 day' + g * interval '1 ms'
                   FROM generate_series({ROWS} * {round} + 1, {ROWS} * {round} + 500) g;"
            ));
        }
        let before = database.count("SELECT count(*) FROM dst.events");
        let mut child = workspace
            .command(&["run"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start syncdeck");
        wait_until("the first batch to load", || {
            database.count("SELECT count(*) FROM dst.events") > before
                || database.count(&format!(
                    "SELECT count(*) FROM dst.events WHERE body LIKE 'round {round} %'"
                )) > 0
        });
        let delay = random.below(1500);
        std::thread::sleep(Duration::from_millis(delay));
        kill_9(&mut child);
        let context = format!(
            "seed {:#x}, round {round}, killed {delay} ms after the first batch",
            SEED ^ 0x7ab1e
        );

        let (output, runs) = workspace.run_json(&[]);
        assert!(output.status.success(), "{context}: {}", stderr(&output));
        assert_eq!(run_of(&runs, "t")["status"], "succeeded", "{context}");
        let missing = database.count(
            "SELECT count(*) FROM (SELECT * FROM src.events EXCEPT SELECT * FROM dst.events) x",
        );
        let extra = database.count(
            "SELECT count(*) FROM (SELECT * FROM dst.events EXCEPT SELECT * FROM src.events) x",
        );
        assert_eq!(
            (missing, extra),
            (0, 0),
            "{context}: source and target differ"
        );
        if killed_run_status(&workspace, "t") == "interrupted" {
            interrupted += 1;
        }
    }
    assert!(
        interrupted > 0,
        "no kill landed while a run was going: the campaign tested nothing"
    );
}
