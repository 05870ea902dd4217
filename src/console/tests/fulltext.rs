//! Long text read in full: `enter` on a log line, a failed item or a run
//! opens it wrapped and scrollable; `esc` goes back; text cut at a pane's
//! edge says so with an ellipsis.

use super::snapshots::{screen, snapshot_views};
use super::*;

const LONG_ERROR: &str = "s3://vendor/2026/11/prices.csv: 403 Forbidden: \
    <Error><Code>AccessDenied</Code><Message>Access Denied</Message>\
    <RequestId>4442587FB7D0A2F9</RequestId><HostId>vendor-bucket-eu-west-1/\
    aGVsbG8gd29ybGQgdGhpcyBpcyBhIGxvbmcgaG9zdCBpZA==</HostId></Error> \
    (the credentials of connection `vendor` lack s3:GetObject on this prefix; \
    grant it or point the task at a prefix it can read)";

fn with_long_error() -> App {
    let mut app = fixture();
    app.update(Msg::FailedItemsLoaded(vec![failed_item(
        7,
        "vendor_feed",
        "2026/11/prices.csv",
        LONG_ERROR,
    )]));
    app
}

#[test]
fn enter_on_a_log_line_opens_it_whole_and_esc_closes_it() {
    let mut app = fixture();
    press(&mut app, "4");
    let cut = screen(&app, 80, 24);
    assert!(
        cut.contains("attempt=2 e…"),
        "a line cut at the edge ends with an ellipsis: {cut}"
    );
    app.update(key(KeyCode::Enter));
    let text = screen(&app, 80, 24);
    assert!(
        text.contains("error=connection reset by peer"),
        "the newest line, whole: {text}"
    );
    assert!(text.contains("orders_to_s3#46"), "{text}");
    app.update(key(KeyCode::Esc));
    assert_eq!(app.overlay, None);
    assert_eq!(app.view, View::Logs);
}

#[test]
fn enter_on_a_search_match_opens_that_line() {
    let mut app = fixture();
    press(&mut app, "4/");
    press(&mut app, "archive_logs");
    app.update(key(KeyCode::Enter));
    app.update(key(KeyCode::Enter));
    let Some(Overlay::FullText(open)) = &app.overlay else {
        panic!("enter on the match opens it: {:?}", app.overlay);
    };
    assert_eq!(
        open.text,
        "run finished status=failed error=connection refused"
    );
}

#[test]
fn enter_on_a_failed_item_opens_its_whole_error_and_scrolls() {
    let mut app = with_long_error();
    press(&mut app, "2");
    app.update(key(KeyCode::Enter));
    let text = screen(&app, 80, 24);
    assert!(
        text.contains("point the task at a prefix it can read"),
        "the end of a long error is readable: {text}"
    );
    for _ in 0..50 {
        press(&mut app, "j");
    }
    let Some(Overlay::FullText(open)) = &app.overlay else {
        panic!("still open");
    };
    let bottom = open.scroll;
    assert!(bottom < 10, "scrolling stops at the end: {bottom}");
    press(&mut app, "k");
    let Some(Overlay::FullText(after)) = &app.overlay else {
        panic!("still open");
    };
    assert_eq!(after.scroll, bottom - 1, "and comes back at once");
}

#[test]
fn enter_in_a_runs_detail_opens_its_error_and_failed_items() {
    let mut app = fixture();
    select(&mut app, "vendor_feed");
    app.update(key(KeyCode::Enter));
    app.update(key(KeyCode::Enter));
    let Some(Overlay::FullText(open)) = &app.overlay else {
        panic!("the run's text: {:?}", app.overlay);
    };
    assert!(open.title.contains("run 44"), "{}", open.title);
    assert!(open.text.contains("2 of 37 files failed"), "{}", open.text);
}

#[test]
fn snapshot_a_log_line_in_full() {
    let mut app = fixture();
    snapshot_views(
        "fulltext_log_line",
        &mut app,
        &[char_key('4'), key(KeyCode::Enter)],
    );
}

#[test]
fn snapshot_a_failed_items_error_in_full() {
    snapshot_views(
        "fulltext_failed_item",
        &mut with_long_error(),
        &[char_key('2'), key(KeyCode::Enter)],
    );
}

/// A failed batch's key is its recorded bounds (JSON); the errors view
/// and the full text show them as the log names the batch.
#[test]
fn a_failed_batch_is_shown_by_its_bounds_in_words() {
    let mut app = fixture();
    app.update(Msg::FailedItemsLoaded(vec![failed_item(
        9,
        "vendor_feed",
        r#"{"after":["12000"],"through":["12200"],"watermark_above":null}"#,
        "P0001: order 12042 is locked",
    )]));
    press(&mut app, "2");
    let list = screen(&app, 160, 48);
    assert!(list.contains("(12000..12200]"), "{list}");
    assert!(!list.contains("\"through\""), "{list}");
    app.update(key(KeyCode::Enter));
    let text = screen(&app, 160, 48);
    assert!(text.contains("(12000..12200]"), "{text}");
}

/// The retry and abandon dialogs name a batch by its bounds in words too
/// (they showed its JSON), cut to the screen so their answer line stays
/// in view at 80x24.
#[test]
fn the_retry_and_abandon_dialogs_show_a_batch_by_its_bounds_in_words() {
    let mut app = fixture();
    app.update(Msg::FailedItemsLoaded(vec![failed_item(
        51,
        "vendor_feed",
        r#"{"after":["2026-12-07 19:12:35.248788+00","europe-west","1196"],"through":["2026-12-07 19:14:02.000001+00","europe-west","8080"],"watermark_above":null}"#,
        "23514: new row violates check constraint \"amount_cap\"",
    )]));
    press(&mut app, "2");
    for (dialog_key, answer) in [('a', "y abandon"), ('r', "y retry these")] {
        app.update(char_key(dialog_key));
        let text = screen(&app, 80, 24);
        assert!(text.contains("#51 ((2026-12-07 19:12:35"), "{text}");
        assert!(!text.contains("\"through\""), "{text}");
        assert!(text.contains(answer), "{text}");
        app.update(char_key('n'));
    }
}
