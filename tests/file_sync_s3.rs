//! File sync against a real S3-compatible server (moto) on loopback:
//! local to S3, S3 to local, S3 to S3 within a bucket (server-side copy)
//! and across buckets.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{S3Server, Workspace, counter, run_of, stderr};

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
fn an_object_name_that_escapes_the_destination_stops_the_listing_loudly() {
    let server = S3Server::start();
    server.create_bucket("odd");
    server.put("odd", "data/fine.csv", b"ok");
    // object_store refuses to parse such a key, so write it with a raw request.
    {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
        write!(
            stream,
            "PUT /odd/data/a/../../escape.csv HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi",
            server.port
        )
        .expect("send");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }
    let workspace = Workspace::new();
    workspace.write_config(&task(
        "t",
        "s3://odd/data/",
        "out/",
        "recursive = true",
        &server,
    ));
    let (output, runs) = workspace.run_json(&[]);
    assert_eq!(output.status.code(), Some(1));
    let run = run_of(&runs, "t");
    assert_eq!(run["status"], "failed");
    let error = run["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("data/a/../../escape.csv") && error.contains("rename or remove"),
        "{error}"
    );
    assert!(
        workspace
            .tree("")
            .iter()
            .all(|path| !path.contains("escape")),
        "nothing escaped the destination"
    );
}
