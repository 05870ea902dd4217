//! A run's rate and time left, as the CLI's progress bar and the console
//! both show them: one estimator, fed with (time, amount done) samples.
//!
//! The rate is an exponentially weighted moving average whose weights
//! decay with time (not with the number of samples), so it does not
//! depend on how often it is fed, and a short pause between two files
//! moves it a little instead of making the ETA jump.

use chrono::{DateTime, TimeDelta, Utc};

use super::RunCounters;

/// How quickly the rate follows a change: after this long at a new
/// speed, the estimate has moved about 63% of the way to it.
const TIME_CONSTANT_SECONDS: f64 = 5.0;
/// Samples closer together than this are merged with the next one:
/// bytes arrive in bursts (a chunk, a part), and a rate over a few
/// milliseconds says nothing.
const MIN_STEP_SECONDS: f64 = 0.5;

/// Units (bytes or rows) per second and the time left at that rate.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RateEstimator {
    /// The smoothed rate, once a step of [`MIN_STEP_SECONDS`] was seen.
    rate: Option<f64>,
    /// The sample the next step is measured from.
    last: Option<(DateTime<Utc>, u64)>,
}

impl RateEstimator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the amount done at `at`. An amount smaller than before (the
    /// bytes of a failed attempt no longer count) restarts the step
    /// without touching the rate.
    pub fn observe(&mut self, at: DateTime<Utc>, done: u64) {
        let Some((since, before)) = self.last else {
            self.last = Some((at, done));
            return;
        };
        if done < before {
            self.last = Some((at, done));
            return;
        }
        let seconds = (at - since).num_milliseconds() as f64 / 1000.0;
        if seconds < MIN_STEP_SECONDS {
            return;
        }
        let step = (done - before) as f64 / seconds;
        self.rate = Some(match self.rate {
            None => step,
            Some(rate) => {
                let weight = 1.0 - (-seconds / TIME_CONSTANT_SECONDS).exp();
                rate + weight * (step - rate)
            }
        });
        self.last = Some((at, done));
    }

    /// Units per second; `None` until half a second has been measured.
    pub fn rate(&self) -> Option<f64> {
        self.rate
    }

    /// Time to do `remaining` more units at the current rate.
    pub fn eta(&self, remaining: u64) -> Option<TimeDelta> {
        if remaining == 0 {
            return Some(TimeDelta::zero());
        }
        let rate = self.rate.filter(|rate| *rate > 0.0)?;
        Some(TimeDelta::milliseconds(
            (remaining as f64 / rate * 1000.0).min(i64::MAX as f64 / 2.0) as i64,
        ))
    }

    /// Feeds a run's counters: rows for table runs, bytes otherwise.
    pub fn observe_counters(&mut self, at: DateTime<Utc>, counters: &RunCounters) {
        self.observe(at, counters.done());
    }

    /// Time left for a run with these counters; `None` while the totals
    /// are being counted or no rate is known yet.
    pub fn eta_for(&self, counters: &RunCounters) -> Option<TimeDelta> {
        self.eta(counters.remaining()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(milliseconds: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + TimeDelta::milliseconds(milliseconds)
    }

    #[test]
    fn a_steady_stream_gives_its_rate_and_the_time_left() {
        let mut estimator = RateEstimator::new();
        assert_eq!(estimator.rate(), None, "nothing measured yet");
        for step in 0..=20 {
            estimator.observe(at(step * 100), step as u64 * 200);
        }
        let rate = estimator.rate().expect("a rate after two seconds");
        assert!((rate - 2000.0).abs() < 1.0, "2000 B/s, got {rate}");
        assert_eq!(estimator.eta(4000), Some(TimeDelta::seconds(2)));
        assert_eq!(estimator.eta(0), Some(TimeDelta::zero()));
    }

    #[test]
    fn a_pause_between_two_files_moves_the_eta_a_little_not_a_lot() {
        let mut estimator = RateEstimator::new();
        let mut done = 0;
        for second in 0..10 {
            estimator.observe(at(second * 1000), done);
            done += 2000;
        }
        let before = estimator.eta(20_000).expect("eta");
        // The next file takes a second to open: nothing moves.
        estimator.observe(at(10_000), done - 2000);
        let after = estimator.eta(20_000).expect("eta");
        let change = (after - before).num_milliseconds() as f64 / before.num_milliseconds() as f64;
        assert!(
            change < 0.25,
            "one quiet second moved the ETA from {before} to {after}"
        );
    }

    #[test]
    fn a_stalled_transfer_slows_the_rate_down() {
        let mut estimator = RateEstimator::new();
        estimator.observe(at(0), 0);
        estimator.observe(at(1000), 1000);
        for second in 2..30 {
            estimator.observe(at(second * 1000), 1000);
        }
        assert!(estimator.rate().expect("rate") < 10.0);
    }

    #[test]
    fn bytes_of_a_failed_attempt_taken_back_do_not_make_a_negative_rate() {
        let mut estimator = RateEstimator::new();
        estimator.observe(at(0), 0);
        estimator.observe(at(1000), 5000);
        estimator.observe(at(2000), 1000);
        estimator.observe(at(3000), 6000);
        assert_eq!(estimator.rate(), Some(5000.0));
    }
}
