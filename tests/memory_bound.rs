//! A 1 GiB file moves from local disk to S3 with syncdeck's peak memory
//! under 150 MiB: the upload streams in parts instead of loading the file.
//! (Its own test binary, so the children measured are only this one run.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{S3Server, Workspace, counter, run_of, sparse_file, stderr};
use nix::sys::resource::{UsageWho, getrusage};

const GIB: u64 = 1024 * 1024 * 1024;
const PEAK_RSS_LIMIT_KIB: i64 = 150 * 1024;

#[test]
fn a_one_gib_upload_stays_under_150_mib_of_memory() {
    let server = S3Server::start();
    server.create_bucket("bulk");
    let workspace = Workspace::new();
    sparse_file(&workspace.path().join("in/huge.bin"), GIB);
    workspace.write_config(&format!(
        "[[tasks]]\nid = \"huge\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"s3://bulk/in/\"\n\
         [tasks.properties.sync_config]\ndestination_config = {}\n",
        server.options()
    ));

    let (output, runs) = workspace.run_json(&["huge"]);
    // The syncdeck process has been waited for; the S3 server is still running.
    let peak_kib = getrusage(UsageWho::RUSAGE_CHILDREN)
        .expect("getrusage")
        .max_rss();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(counter(run_of(&runs, "huge"), "bytes_done"), GIB);
    assert_eq!(
        server.list("bulk", "in"),
        vec![("in/huge.bin".to_string(), GIB)]
    );
    assert!(
        peak_kib < PEAK_RSS_LIMIT_KIB,
        "syncdeck peaked at {} MiB of memory moving 1 GiB (limit 150 MiB)",
        peak_kib / 1024
    );
    println!("peak RSS moving 1 GiB to S3: {} MiB", peak_kib / 1024);
}
