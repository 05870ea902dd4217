//! A 1,000,000-row table sync keeps syncdeck's peak memory under 150 MiB:
//! batches stream through; nothing holds the table. (Its own test binary,
//! so the children measured are only this run.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{TestDatabase, Workspace, counter, run_of, stderr};
use nix::sys::resource::{UsageWho, getrusage};

#[test]
fn a_million_row_sync_stays_under_150_mib() {
    let database = TestDatabase::create("million");
    database.execute(
        "CREATE SCHEMA src; CREATE SCHEMA dst;
         CREATE TABLE src.accounts (id int PRIMARY KEY, branch int, balance bigint, filler char(84));
         INSERT INTO src.accounts SELECT g, g % 10, (g * 37) % 100000, '' FROM generate_series(1, 1000000) g;
         CREATE TABLE dst.accounts (LIKE src.accounts INCLUDING ALL);",
    );
    let workspace = Workspace::new();
    workspace.write_config(&format!(
        "[[tasks]]\nid = \"t\"\ntype = \"table_sync\"\n[tasks.properties]\nsource = \"{url}\"\ntarget = \"{url}\"\n\
         source_table = \"src.accounts\"\ntarget_table = \"dst.accounts\"\nprimary_key = [\"id\"]\n",
        url = database.url
    ));
    let (output, runs) = workspace.run_json(&[]);
    let peak_kib = getrusage(UsageWho::RUSAGE_CHILDREN)
        .expect("getrusage")
        .max_rss();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(counter(run_of(&runs, "t"), "rows_upserted"), 1_000_000);
    assert_eq!(
        database.count("SELECT count(*) FROM dst.accounts"),
        1_000_000
    );
    assert!(
        peak_kib < 150 * 1024,
        "syncdeck peaked at {} MiB syncing 1,000,000 rows (limit 150 MiB)",
        peak_kib / 1024
    );
    println!("peak RSS syncing 1,000,000 rows: {} MiB", peak_kib / 1024);
}
