//! Retries with exponential backoff and full jitter, bounded in attempts and in total
//! time, honouring `Retry-After`. Retried: network errors, 408, 429 and 5xx — safe for
//! imports because each carries an idempotency key. Any other answer is final.

use std::time::{Duration, Instant};

use rand::RngExt;
use reqwest::{blocking::Response, StatusCode};

pub struct Retry {
    /// Attempts after the first.
    pub retries: u32,
    /// No retry starts later than this after the first attempt.
    pub max_time: Duration,
}

pub enum GaveUp {
    Network(reqwest::Error),
}

const BASE: Duration = Duration::from_millis(500);
const CAP: Duration = Duration::from_secs(30);

fn retryable(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT || status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// `Retry-After` in seconds (the form QA Hub sends; an HTTP date falls back to backoff).
fn retry_after(res: &Response) -> Option<Duration> {
    let value = res.headers().get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

impl Retry {
    /// Runs `attempt` until it gets a final answer or the budget is spent; the last
    /// answer (or network error) is returned either way.
    pub fn run(&self, what: &str, mut attempt: impl FnMut() -> reqwest::Result<Response>) -> Result<Response, GaveUp> {
        let start = Instant::now();
        let mut n = 0u32;
        loop {
            let outcome = attempt();
            let (reason, wait_at_least) = match &outcome {
                Ok(res) if retryable(res.status()) => (res.status().to_string(), retry_after(res)),
                Ok(_) => return outcome.map_err(GaveUp::Network),
                Err(e) => (e.without_url_ref(), None),
            };
            let backoff = {
                let ceiling = BASE.saturating_mul(1u32 << n.min(16)).min(CAP);
                Duration::from_millis(rand::rng().random_range(0..=ceiling.as_millis() as u64))
            };
            let wait = wait_at_least.map_or(backoff, |at_least| at_least.max(backoff.min(BASE)));
            if n >= self.retries || start.elapsed() + wait > self.max_time {
                return outcome.map_err(GaveUp::Network);
            }
            n += 1;
            eprintln!(
                "qa-hub: {what}: attempt {n} of {} failed ({reason}); retrying in {:.1} s",
                self.retries + 1,
                wait.as_secs_f64()
            );
            std::thread::sleep(wait);
        }
    }
}

trait WithoutUrlRef {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrlRef for reqwest::Error {
    /// The error's text without its URL (which never holds the token, but may be long).
    fn without_url_ref(&self) -> String {
        let mut text = self.to_string();
        if let Some(url) = self.url() {
            text = text.replace(&format!(" for url ({url})"), "");
        }
        text
    }
}
