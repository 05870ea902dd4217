//! File sync against a real S3-compatible server (moto) on loopback:
//! local to S3, S3 to local, S3 to S3 within a bucket (server-side copy)
//! and across buckets; objects with names syncdeck cannot use, folder
//! markers, files rewritten while they upload, and multipart uploads left
//! open by a killed run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{S3Server, Workspace, counter, json_lines, run_of, stderr};

/// Sends one raw HTTP request to moto (which accepts unsigned requests),
/// for keys object_store refuses to write; returns the response.
fn raw_request(server: &S3Server, head: &str, body: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    write!(
        stream,
        "{head} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        server.port,
        body.len()
    )
    .expect("send");
    stream.write_all(body).expect("send body");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    response
}

fn raw_put(server: &S3Server, bucket: &str, encoded_key: &str, body: &[u8]) {
    let response = raw_request(server, &format!("PUT /{bucket}/{encoded_key}"), body);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

fn task(id: &str, source: &str, destination: &str, extra: &str, server: &S3Server) -> String {
    let options = server.options();
    format!(
        "[[tasks]]\nid = \"{id}\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"{source}\"\ndestination_path = \"{destination}\"\n{extra}\n\
         [tasks.properties.sync_config]\nsource_config = {options}\ndestination_config = {options}\n\n"
    )
}

#[test]
fn local_to_s3_to_local_round_trip_with_patterns_and_skips() {
    let server = S3Server::start();
    server.create_bucket("landing");
    let workspace = Workspace::new();
    workspace.file("in/a.csv", b"a,1\n");
    workspace.file("in/b.json", b"{}");
    workspace.file("in/skip.txt", b"no");
    workspace.file("in/empty.csv", b"");
    workspace.file("in/nested/deeper/c.csv", b"c,3\n");
    workspace.file("in/with space/ünï cödé.csv", b"u\n");
    let mut large = vec![0u8; 20 * 1024 * 1024 + 17];
    large
        .iter_mut()
        .enumerate()
        .for_each(|(i, byte)| *byte = (i % 251) as u8);
    workspace.file("in/large.csv", &large);

    let config = task(
        "up",
        "in/",
        "s3://landing/daily/",
        "pattern = \"*.{csv,json}\"\nrecursive = true",
        &server,
    ) + &task(
        "down",
        "s3://landing/daily/",
        "back/",
        "recursive = true",
        &server,
    ) + &task(
        "down_one_level",
        "s3://landing/daily/",
        "top/",
        "pattern = \"*.csv\"",
        &server,
    );
    workspace.write_config(&config);

    let (output, runs) = workspace.run_json(&["up"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(counter(run_of(&runs, "up"), "files_synced"), 6);
    let keys: Vec<String> = server
        .list("landing", "daily")
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    assert_eq!(
        keys,
        vec![
            "daily/a.csv",
            "daily/b.json",
            "daily/empty.csv",
            "daily/large.csv",
            "daily/nested/deeper/c.csv",
            "daily/with space/ünï cödé.csv"
        ]
    );
    assert_eq!(
        server.get("landing", "daily/large.csv"),
        large,
        "the multipart upload is byte-exact"
    );

    let (_, runs) = workspace.run_json(&["up"]);
    let rerun = run_of(&runs, "up");
    assert_eq!(counter(rerun, "files_synced"), 0);
    assert_eq!(counter(rerun, "files_skipped_unchanged"), 6);

    let (output, runs) = workspace.run_json(&["down", "down_one_level"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(counter(run_of(&runs, "down"), "files_synced"), 6);
    assert_eq!(
        workspace.tree("back"),
        vec![
            "a.csv",
            "b.json",
            "empty.csv",
            "large.csv",
            "nested/deeper/c.csv",
            "with space/ünï cödé.csv"
        ]
    );
    assert_eq!(
        workspace.tree("top"),
        vec!["a.csv", "empty.csv", "large.csv"]
    );
    assert_eq!(
        std::fs::read(workspace.path().join("back/large.csv")).expect("read"),
        large
    );
    assert_eq!(
        std::fs::read(workspace.path().join("back/with space/ünï cödé.csv")).expect("read"),
        b"u\n"
    );

    let (_, runs) = workspace.run_json(&["down"]);
    assert_eq!(
        counter(run_of(&runs, "down"), "files_skipped_unchanged"),
        6,
        "S3 to local rerun skips all"
    );
}

#[test]
fn s3_to_s3_copies_server_side_within_a_bucket_and_streams_across_buckets() {
    let server = S3Server::start();
    server.create_bucket("primary");
    server.create_bucket("replica");
    for (key, body) in [
        ("data/x.csv", &b"x"[..]),
        ("data/y.csv", b"yy"),
        ("data/sub/z.json", b"{}"),
        ("data/skip.bin", b"0"),
    ] {
        server.put("primary", key, body);
    }
    let workspace = Workspace::new();
    workspace.write_config(
        &(task(
            "same_bucket",
            "s3://primary/data/",
            "s3://primary/backup/",
            "pattern = \"*.{csv,json}\"\nrecursive = true",
            &server,
        ) + &task(
            "other_bucket",
            "s3://primary/data/",
            "s3://replica/data/",
            "recursive = true\noverwrite = false",
            &server,
        ) + &task(
            "single",
            "s3://primary/data/x.csv",
            "s3://replica/single/",
            "",
            &server,
        )),
    );
    let (output, runs) = workspace.run_json(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(counter(run_of(&runs, "same_bucket"), "files_synced"), 3);
    assert_eq!(
        server.list("primary", "backup"),
        vec![
            ("backup/sub/z.json".into(), 2),
            ("backup/x.csv".into(), 1),
            ("backup/y.csv".into(), 2)
        ]
    );
    assert_eq!(server.get("replica", "data/sub/z.json"), b"{}");
    assert_eq!(
        server.list("replica", "single"),
        vec![("single/x.csv".into(), 1)]
    );

    assert_eq!(
        counter(run_of(&runs, "same_bucket"), "files_server_side"),
        3,
        "within a bucket, copies are server-side"
    );
    assert_eq!(
        counter(run_of(&runs, "other_bucket"), "files_server_side"),
        0,
        "across buckets, bytes are streamed"
    );

    server.put("primary", "data/y.csv", b"changed!");
    let (_, runs) = workspace.run_json(&[]);
    assert_eq!(
        counter(run_of(&runs, "same_bucket"), "files_synced"),
        1,
        "only the changed object is copied again"
    );
    assert_eq!(
        counter(run_of(&runs, "other_bucket"), "files_skipped_exists"),
        4,
        "overwrite = false skips existing objects"
    );
    assert_eq!(server.get("primary", "backup/y.csv"), b"changed!");
}

#[test]
fn a_wrong_endpoint_fails_the_run_with_the_store_named() {
    let workspace = Workspace::new();
    let port = common::free_port();
    workspace.write_config(&format!(
        "[[tasks]]\nid = \"t\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"s3://nowhere/x/\"\ndestination_path = \"out/\"\n\
         [tasks.properties.sync_config.source_config]\nendpoint = \"http://127.0.0.1:{port}\"\naws_access_key_id = \"k\"\naws_secret_access_key = \"s\"\n"
    ));
    let (output, runs) = workspace.run_json(&[]);
    assert_eq!(output.status.code(), Some(1));
    let run = run_of(&runs, "t");
    assert_eq!(run["status"], "failed");
    assert!(
        run["error"]
            .as_str()
            .is_some_and(|error| error.contains("s3://nowhere")),
        "{run}"
    );
}

#[test]
fn objects_with_unusable_names_are_refused_one_by_one_and_the_rest_is_synced() {
    let server = S3Server::start();
    server.create_bucket("odd");
    server.put("odd", "data/fine.csv", b"ok");
    server.put("odd", "data/sub/also.csv", b"also");
    raw_put(&server, "odd", "data/a/../../escape.csv", b"hi");
    raw_put(&server, "odd", "data/bad%01name.csv", b"ctl");
    let workspace = Workspace::new();
    workspace.write_config(&task(
        "t",
        "s3://odd/data/",
        "out/",
        "recursive = true",
        &server,
    ));

    let plan = json_lines(&workspace.run(&["plan", "--json", "t"]));
    let refused = plan[0]["refused"].as_array().expect("refused list").clone();
    assert_eq!(refused.len(), 2, "{plan:?}");

    let (output, runs) = workspace.run_json(&[]);
    assert_eq!(output.status.code(), Some(1), "a partial run exits 1");
    let run = run_of(&runs, "t");
    assert_eq!(run["status"], "partial");
    assert_eq!(counter(run, "files_synced"), 2);
    assert_eq!(counter(run, "files_failed"), 2);
    assert_eq!(workspace.tree("out"), vec!["fine.csv", "sub/also.csv"]);
    assert!(
        workspace
            .tree("")
            .iter()
            .all(|path| !path.contains("escape")),
        "nothing escaped the destination"
    );

    let errors = json_lines(&workspace.run(&["errors", "--json"]));
    let error_of = |key: &str| -> String {
        errors
            .iter()
            .find(|item| item["key"] == key)
            .and_then(|item| item["error"].as_str())
            .unwrap_or_else(|| panic!("no failed item {key:?} in {errors:?}"))
            .to_string()
    };
    let escape = error_of("a/../../escape.csv");
    assert!(
        escape.contains("`..`") && escape.contains("rename or remove"),
        "{escape}"
    );
    let control = error_of("bad\u{1}name.csv");
    assert!(
        control.contains("control character (U+0001)") && !control.contains(".."),
        "{control}"
    );
}

#[test]
fn folder_markers_are_folders_not_failed_files() {
    let server = S3Server::start();
    server.create_bucket("fmb");
    // What the AWS console's "Create folder", Hadoop and s3fs leave.
    raw_put(&server, "fmb", "fm/dir/", b"");
    raw_put(&server, "fmb", "fm/empty/", b"");
    server.put("fmb", "fm/dir/a.csv", b"a");
    server.put("fmb", "fm/top.csv", b"top");
    let workspace = Workspace::new();
    workspace.write_config(
        &(task("all", "s3://fmb/fm/", "out/", "recursive = true", &server)
            + &task("one_folder", "s3://fmb/fm/dir/", "one/", "", &server)),
    );

    let (output, runs) = workspace.run_json(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let all = run_of(&runs, "all");
    assert_eq!(all["status"], "succeeded", "{all}");
    assert_eq!(counter(all, "files_synced"), 2);
    assert_eq!(counter(all, "files_failed"), 0);
    assert_eq!(workspace.tree("out"), vec!["dir/a.csv", "top.csv"]);
    assert_eq!(run_of(&runs, "one_folder")["status"], "succeeded");
    assert_eq!(workspace.tree("one"), vec!["a.csv"]);
    assert!(json_lines(&workspace.run(&["errors", "--json"])).is_empty());

    let (output, runs) = workspace.run_json(&["all"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(counter(run_of(&runs, "all"), "files_skipped_unchanged"), 2);
}

/// The `mtime` user metadata (`x-amz-meta-mtime`) of an object.
fn recorded_mtime(server: &S3Server, bucket: &str, key: &str) -> Option<String> {
    use object_store::{Attribute, GetOptions};
    let store = server.store(bucket);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let options = GetOptions {
        head: true,
        ..Default::default()
    };
    let result = runtime
        .block_on(store.get_opts(&key.into(), options))
        .expect("head object");
    result
        .attributes
        .get(&Attribute::Metadata("mtime".into()))
        .map(|value| value.to_string())
}

#[test]
fn an_object_holding_another_version_of_the_source_is_copied_again_though_newer() {
    let server = S3Server::start();
    server.create_bucket("bkt");
    let workspace = Workspace::new();
    let source = workspace.path().join("in/report.csv");
    common::write_aged(&source, b"version 1", Duration::from_secs(7200));
    workspace.write_config(&task("up", "in/", "s3://bkt/up/", "", &server));
    let (output, runs) = workspace.run_json(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(counter(run_of(&runs, "up"), "files_synced"), 1);
    assert!(
        recorded_mtime(&server, "bkt", "up/report.csv").is_some(),
        "the upload keeps the source's time as metadata"
    );

    // Another version of the same size whose time is still older than the
    // upload: what a file rewritten during its upload looks like.
    common::write_aged(&source, b"version 2", Duration::from_secs(3600));
    let (output, runs) = workspace.run_json(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let run = run_of(&runs, "up");
    assert_eq!(counter(run, "files_synced"), 1, "{run}");
    assert_eq!(server.get("bkt", "up/report.csv"), b"version 2");

    let (_, runs) = workspace.run_json(&[]);
    assert_eq!(
        counter(run_of(&runs, "up"), "files_skipped_unchanged"),
        1,
        "the same version is not copied again"
    );
}

#[test]
fn a_file_rewritten_while_it_uploads_lands_whole_not_torn() {
    const SIZE: usize = 24 * 1024 * 1024;
    let server = S3Server::start();
    server.create_bucket("bkt");
    let workspace = Workspace::new();
    let source = workspace.file("in/big.bin", &vec![b'o'; SIZE]);
    // The limit keeps the upload going long enough to rewrite the file.
    workspace.write_config(&task(
        "up",
        "in/",
        "s3://bkt/up/",
        "bwlimit = \"4MiB\"",
        &server,
    ));
    let child = workspace
        .command(&["run", "--json", "up"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start syncdeck");
    common::wait_for_bytes_in_flight(&workspace, "up");
    let new = vec![b'n'; SIZE];
    std::fs::write(&source, &new).expect("rewrite in place");
    let output = child.wait_with_output().expect("wait");

    let run = &json_lines(&output)[0];
    assert_eq!(run["status"], "succeeded", "{}", stderr(&output));
    assert!(
        server.get("bkt", "up/big.bin") == new,
        "the object is the new version, not a mix of old and new"
    );
    assert!(
        stderr(&output).contains("the source changed while it was read"),
        "the first attempt failed: {}",
        stderr(&output)
    );
}

#[test]
fn a_run_killed_mid_upload_leaves_no_open_multipart_upload_after_the_next_run() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let server = S3Server::start();
    server.create_bucket("bkt");
    let workspace = Workspace::new();
    let contents: Vec<u8> = (0..40 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    workspace.file("in/big.bin", &contents);
    workspace.file("in/small.csv", b"s");
    let config = task("up", "in/", "s3://bkt/up/", "bwlimit = \"4MiB\"", &server);
    workspace.write_config(&config);
    let mut child = workspace
        .command(&["run", "--json", "up"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start syncdeck");
    common::wait_for_bytes_in_flight(&workspace, "up");
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).expect("kill -9");
    child.wait().expect("reap");
    assert!(
        server.pending_uploads("bkt") > 0,
        "the killed run left its multipart upload open"
    );

    workspace.write_config(&config.replace("bwlimit = \"4MiB\"", ""));
    let (output, runs) = workspace.run_json(&["up"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(run_of(&runs, "up")["status"], "succeeded");
    assert_eq!(server.pending_uploads("bkt"), 0, "open multipart uploads");
    assert!(
        server.get("bkt", "up/big.bin") == contents,
        "the object equals the file"
    );
    assert_eq!(server.get("bkt", "up/small.csv"), b"s");
}

#[test]
fn a_prefix_with_nothing_under_it_is_empty_not_missing() {
    let server = S3Server::start();
    server.create_bucket("landing");
    let workspace = Workspace::new();
    workspace.write_config(&task(
        "t",
        "s3://landing/nothing-here/",
        "out/",
        "",
        &server,
    ));
    let (output, runs) = workspace.run_json(&[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let run = run_of(&runs, "t");
    assert_eq!(run["status"], "succeeded");
    assert_eq!(
        run["warning"],
        "0 files found in s3://landing/nothing-here/"
    );
}
