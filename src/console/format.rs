//! Short human forms of sizes, durations, ages and rates for the views.

use chrono::TimeDelta;

pub fn size(bytes: u64) -> String {
    bytesize::ByteSize(bytes).display().iec_short().to_string()
}

pub fn rate(bytes_per_second: f64) -> String {
    format!("{}/s", size(bytes_per_second.max(0.0) as u64))
}

/// `0:42`, `12:05`, `1:02:03`.
pub fn clock(duration: TimeDelta) -> String {
    let seconds = duration.num_seconds().max(0);
    let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if hours > 0 {
        format!("{hours}:{minutes:02}:{seconds:02}")
    } else {
        format!("{minutes}:{seconds:02}")
    }
}

/// `just now`, `42s ago`, `5m ago`, `3h ago`, `2d ago`.
pub fn age(duration: TimeDelta) -> String {
    let seconds = duration.num_seconds();
    match seconds {
        ..5 => "just now".into(),
        5..60 => format!("{seconds}s ago"),
        60..3600 => format!("{}m ago", seconds / 60),
        3600..86400 => format!("{}h ago", seconds / 3600),
        _ => format!("{}d ago", seconds / 86400),
    }
}

/// `now`, `42s`, `5m`, `3h`, `2d`: for narrow columns.
pub fn short_age(duration: TimeDelta) -> String {
    let long = age(duration);
    if long == "just now" {
        "now".into()
    } else {
        long.trim_end_matches(" ago").to_string()
    }
}

/// Whole seconds from `now` until `at`, rounded up, for countdowns.
pub fn seconds_until(now: chrono::DateTime<chrono::Utc>, at: chrono::DateTime<chrono::Utc>) -> i64 {
    ((at - now).num_milliseconds().max(0) + 999) / 1000
}

/// `0.4s`, `12s`, `3m 05s`.
pub fn duration_ms(milliseconds: i64) -> String {
    if milliseconds < 10_000 {
        format!("{:.1}s", milliseconds as f64 / 1000.0)
    } else if milliseconds < 60_000 {
        format!("{}s", milliseconds / 1000)
    } else {
        format!(
            "{}m {:02}s",
            milliseconds / 60_000,
            milliseconds / 1000 % 60
        )
    }
}

/// Thousands separators: `1,204`.
pub fn count(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A run's speed and time left, as the console and the CLI's progress
/// bar both show them: `2.0K/s · ETA 0:12`, `1,200 rows/s · ETA 1:05`,
/// `measuring…` before a rate is known.
pub fn speed(counters: &crate::run::RunCounters, rate: &crate::run::rate::RateEstimator) -> String {
    let Some(speed) = rate_only(counters, rate) else {
        return "measuring…".into();
    };
    // No ETA while the run waits on something its rate says nothing
    // about: it would only grow.
    if let Some(waiting) = waiting(counters) {
        return format!("{speed} · {waiting}");
    }
    match rate.eta_for(counters) {
        Some(eta) => format!("{speed} · ETA {}", clock(eta)),
        None => speed,
    }
}

/// The rate alone (`1,200 rows/s`, `2.0K/s`); `None` before one is known.
pub fn rate_only(
    counters: &crate::run::RunCounters,
    rate: &crate::run::rate::RateEstimator,
) -> Option<String> {
    let per_second = rate.rate()?;
    Some(if counters.counts_rows() {
        format!("{} rows/s", count(per_second.max(0.0) as u64))
    } else {
        self::rate(per_second)
    })
}

/// What a run waits for instead of working, if anything (the most telling
/// of [`crate::run::RunCounters::waits`]).
pub fn waiting(counters: &crate::run::RunCounters) -> Option<String> {
    counters.waits().into_iter().next()
}

/// Cuts `text` to `width` characters, ending with `…` when cut.
pub fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else if width == 0 {
        String::new()
    } else {
        let mut cut: String = text.chars().take(width - 1).collect();
        cut.push('…');
        cut
    }
}

/// Where a task reads and writes, for the task list and the detail:
/// `in/orders/ → s3://bucket/orders/`, `orders → public.orders`. Passwords
/// written in a URL and registered secrets never show.
pub fn route(properties: &crate::config::TaskProperties) -> String {
    use crate::config::TaskProperties;
    let route = match properties {
        TaskProperties::Sync(sync) => format!(
            "{} → {}",
            without_userinfo(sync.source_path.get_ref()),
            without_userinfo(sync.destination_path.get_ref())
        ),
        TaskProperties::TableSync(table) => {
            let source = match &table.source_table {
                Some(name) => name.get_ref().clone(),
                None => "query".into(),
            };
            format!("{source} → {}", table.target_table.get_ref())
        }
        TaskProperties::HttpSync(http) => format!(
            "{}{} → {}",
            without_userinfo(&http.base_url),
            http.path,
            http.target_table
        ),
        TaskProperties::Airbyte(airbyte) => {
            format!("airbyte connection {}", airbyte.connection_id)
        }
    };
    crate::config::redact(&route).into_owned()
}

/// `sftp://user:secret@host/path` → `sftp://host/path`.
fn without_userinfo(location: &str) -> String {
    let Some((scheme, rest)) = location.split_once("://") else {
        return location.to_string();
    };
    let (authority, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, ""),
    };
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    format!("{scheme}://{host}{path}")
}

/// A schedule's interval as written: `every 5m`, `every 1h 30m`.
pub fn every(interval: std::time::Duration) -> String {
    let seconds = interval.as_secs();
    let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    let mut parts = Vec::new();
    if hours > 0 {
        parts.push(format!("{hours}h"));
    }
    if minutes > 0 {
        parts.push(format!("{minutes}m"));
    }
    if seconds > 0 || parts.is_empty() {
        parts.push(format!("{seconds}s"));
    }
    format!("every {}", parts.join(" "))
}

/// A failed item's key as people read it: a failed batch's recorded
/// bounds in words (as the log names the batch), any other key as it is.
pub fn item_key(key: &str) -> String {
    crate::table::readable_item_key(key).unwrap_or_else(|| key.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_a_location_is_not_shown() {
        assert_eq!(
            without_userinfo("sftp://deploy:hunter22@files.example.com/in/"),
            "sftp://files.example.com/in/"
        );
        assert_eq!(without_userinfo("in/orders/"), "in/orders/");
        assert_eq!(every(std::time::Duration::from_secs(5400)), "every 1h 30m");
    }

    #[test]
    fn forms() {
        assert_eq!(count(1_204_000), "1,204,000");
        assert_eq!(clock(TimeDelta::seconds(72)), "1:12");
        assert_eq!(age(TimeDelta::seconds(150)), "2m ago");
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(duration_ms(65_000), "1m 05s");
    }
}
