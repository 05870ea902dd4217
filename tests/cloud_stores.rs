//! `az://` against Azurite and `gs://` against fake-gcs-server, each
//! reached through the `sync_config` options an operator writes
//! (`use_emulator`/`endpoint`, `sas_token`, `endpoint`): a tree up and
//! down (down only for GCS: the emulator takes no XML-API uploads),
//! reruns that skip everything, a single file, and credentials that never
//! show.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::cloud::{self, AzuriteServer, GcsServer};
use common::{Workspace, counter, run_of, stderr, stdout};
use object_store::ObjectStore;

fn task(id: &str, source: &str, destination: &str, extra: &str, options: &str) -> String {
    format!(
        "[[tasks]]\nid = \"{id}\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"{source}\"\ndestination_path = \"{destination}\"\n{extra}\n\
         [tasks.properties.sync_config]\nsource_config = {options}\ndestination_config = {options}\n\n"
    )
}

/// Local → cloud (recursive, with a pattern), cloud → local, reruns that
/// skip every file, and a single file each way, against `bucket` (`az://c`
/// or `gs://b`), checked through `store`.
fn tree_and_single_file_both_ways(bucket: &str, options: &str, store: &Arc<dyn ObjectStore>) {
    let workspace = Workspace::new();
    workspace.file("in/a.csv", b"a,1\n");
    workspace.file("in/b.json", b"{}");
    workspace.file("in/skip.txt", b"not selected");
    workspace.file("in/empty.csv", b"");
    workspace.file("in/nested/deeper/c d.csv", b"c,3\n");
    let large: Vec<u8> = (0..9 * 1024 * 1024 + 5).map(|i| (i % 251) as u8).collect();
    workspace.file("in/large.csv", &large);
    workspace.file("one/report.csv", b"report\n");
    let config = task(
        "up",
        "in/",
        &format!("{bucket}/daily/"),
        "pattern = \"*.{csv,json}\"\nrecursive = true",
        options,
    ) + &task(
        "down",
        &format!("{bucket}/daily/"),
        "back/",
        "recursive = true",
        options,
    ) + &task(
        "one_up",
        "one/report.csv",
        &format!("{bucket}/single/"),
        "",
        options,
    ) + &task(
        "one_down",
        &format!("{bucket}/single/report.csv"),
        "got/copy.csv",
        "",
        options,
    );
    workspace.write_config(&config);

    let (output, runs) = workspace.run_json(&["up"]);
    assert!(
        output.status.success(),
        "{}",
        stdout(&output) + &stderr(&output)
    );
    assert_eq!(counter(run_of(&runs, "up"), "files_synced"), 5);
    assert_eq!(
        cloud::list(store),
        vec![
            ("daily/a.csv".to_string(), 4),
            ("daily/b.json".to_string(), 2),
            ("daily/empty.csv".to_string(), 0),
            ("daily/large.csv".to_string(), large.len() as u64),
            ("daily/nested/deeper/c d.csv".to_string(), 4),
        ]
    );
    assert_eq!(
        cloud::get(store, "daily/large.csv"),
        large,
        "a file sent in parts lands byte-exact"
    );

    let (output, runs) = workspace.run_json(&["up"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let rerun = run_of(&runs, "up");
    assert_eq!(counter(rerun, "files_synced"), 0, "{rerun}");
    assert_eq!(counter(rerun, "files_skipped_unchanged"), 5, "{rerun}");

    let (output, runs) = workspace.run_json(&["down"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(counter(run_of(&runs, "down"), "files_synced"), 5);
    assert_eq!(
        workspace.tree("back"),
        vec![
            "a.csv",
            "b.json",
            "empty.csv",
            "large.csv",
            "nested/deeper/c d.csv"
        ]
    );
    assert_eq!(
        std::fs::read(workspace.path().join("back/large.csv")).unwrap(),
        large
    );
    let (_, runs) = workspace.run_json(&["down"]);
    let rerun = run_of(&runs, "down");
    assert_eq!(counter(rerun, "files_synced"), 0, "{rerun}");
    assert_eq!(counter(rerun, "files_skipped_unchanged"), 5, "{rerun}");

    let (output, runs) = workspace.run_json(&["one_up"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(counter(run_of(&runs, "one_up"), "files_synced"), 1);
    assert_eq!(cloud::get(store, "single/report.csv"), b"report\n");
    let (output, runs) = workspace.run_json(&["one_down"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(counter(run_of(&runs, "one_down"), "files_synced"), 1);
    assert_eq!(
        std::fs::read(workspace.path().join("got/copy.csv")).unwrap(),
        b"report\n"
    );
    let (_, runs) = workspace.run_json(&["one_up", "one_down"]);
    for id in ["one_up", "one_down"] {
        let rerun = run_of(&runs, id);
        assert_eq!(counter(rerun, "files_skipped_unchanged"), 1, "{rerun}");
    }
}

#[test]
fn azure_blob_through_azurite_both_ways_with_reruns_skipping_and_a_single_file() {
    let server = AzuriteServer::start();
    server.create_container("landing");
    tree_and_single_file_both_ways("az://landing", &server.options(), &server.store("landing"));
}

/// fake-gcs-server answers object_store's XML-API upload (`PUT
/// /bucket/key`) with `invalid uploadType`, so only the reading side is
/// run against it: objects put there through its JSON API, then listed
/// (recursive, with a pattern), downloaded, skipped on a rerun, and a
/// single object fetched by name.
#[test]
fn gcs_through_its_emulator_down_with_reruns_skipping_and_a_single_file() {
    let server = GcsServer::start();
    server.create_bucket("landing");
    let large: Vec<u8> = (0..9 * 1024 * 1024 + 5).map(|i| (i % 251) as u8).collect();
    server.upload("landing", "daily/a.csv", b"a,1\n");
    server.upload("landing", "daily/skip.txt", b"not selected");
    server.upload("landing", "daily/nested/deeper/c d.csv", b"c,3\n");
    server.upload("landing", "daily/large.csv", &large);
    server.upload("landing", "single/report.csv", b"report\n");
    let options = server.options();
    let workspace = Workspace::new();
    workspace.write_config(
        &(task(
            "down",
            "gs://landing/daily/",
            "back/",
            "pattern = \"*.csv\"\nrecursive = true",
            &options,
        ) + &task(
            "one_down",
            "gs://landing/single/report.csv",
            "got/copy.csv",
            "",
            &options,
        )),
    );
    let (output, runs) = workspace.run_json(&["down", "one_down"]);
    assert!(
        output.status.success(),
        "{}",
        stdout(&output) + &stderr(&output)
    );
    assert_eq!(counter(run_of(&runs, "down"), "files_synced"), 3);
    assert_eq!(counter(run_of(&runs, "one_down"), "files_synced"), 1);
    assert_eq!(
        workspace.tree("back"),
        vec!["a.csv", "large.csv", "nested/deeper/c d.csv"]
    );
    assert_eq!(
        std::fs::read(workspace.path().join("back/large.csv")).unwrap(),
        large
    );
    assert_eq!(
        std::fs::read(workspace.path().join("got/copy.csv")).unwrap(),
        b"report\n"
    );
    let (_, runs) = workspace.run_json(&["down", "one_down"]);
    for (id, files) in [("down", 3), ("one_down", 1)] {
        let rerun = run_of(&runs, id);
        assert_eq!(counter(rerun, "files_synced"), 0, "{rerun}");
        assert_eq!(counter(rerun, "files_skipped_unchanged"), files, "{rerun}");
    }
}

#[test]
fn an_azure_sas_token_from_a_credential_reaches_the_container_and_never_shows() {
    let server = AzuriteServer::start();
    server.create_container("drop");
    let sas = server.account_sas();
    let signature = sas
        .split('&')
        .find_map(|pair| pair.strip_prefix("sig="))
        .expect("a signature")
        .to_string();
    let workspace = Workspace::new();
    workspace.file("in/a.csv", b"a\n");
    let options = format!(
        "{{ account_name = \"{}\", sas_token = \"${{credential:AZ_SAS}}\", endpoint = \"{}/{}\" }}",
        cloud::AZURITE_ACCOUNT,
        server.endpoint,
        cloud::AZURITE_ACCOUNT
    );
    workspace.write_config(
        &(task("up", "in/", "az://drop/", "", &options)
            + &task("missing", "in/", "az://no-such-container/", "", &options)),
    );
    let output = workspace
        .command(&["run", "--json", "up"])
        .env("SYNCDECK_CREDENTIAL_AZ_SAS", &sas)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        stdout(&output) + &stderr(&output)
    );
    assert_eq!(
        cloud::list(&server.store("drop")),
        vec![("a.csv".to_string(), 2)]
    );

    let output = workspace
        .command(&["run", "missing"])
        .env("SYNCDECK_CREDENTIAL_AZ_SAS", &sas)
        .output()
        .unwrap();
    let shown = stdout(&output) + &stderr(&output);
    assert!(
        !output.status.success(),
        "a missing container fails: {shown}"
    );
    assert!(shown.contains("az://no-such-container"), "{shown}");
    let everything = shown + &workspace.logs();
    for secret in [sas.as_str(), signature.as_str()] {
        assert!(
            !everything.contains(secret),
            "the SAS token shows: {everything}"
        );
    }
}

#[test]
fn a_wrong_azure_access_key_fails_the_run_naming_the_container_not_the_key() {
    let server = AzuriteServer::start();
    server.create_container("drop");
    let workspace = Workspace::new();
    workspace.file("in/a.csv", b"a\n");
    // A well-formed key (base64) that is not the account's.
    let wrong = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXkxMjM0NTY3ODkw";
    let options = format!(
        "{{ use_emulator = true, endpoint = \"{}\", access_key = \"${{credential:AZ_KEY}}\" }}",
        server.endpoint
    );
    workspace.write_config(&task("up", "in/", "az://drop/", "", &options));
    let output = workspace
        .command(&["run", "up"])
        .env("SYNCDECK_CREDENTIAL_AZ_KEY", wrong)
        .output()
        .unwrap();
    let shown = stdout(&output) + &stderr(&output);
    assert!(!output.status.success(), "a wrong key fails: {shown}");
    assert!(shown.contains("az://drop"), "{shown}");
    assert!(
        !(shown + &workspace.logs()).contains(wrong),
        "the access key shows"
    );
    assert!(cloud::list(&server.store("drop")).is_empty());
}
