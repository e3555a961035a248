//! bcrypt, off the async threads. The non-truncating API refuses input over 72 bytes
//! instead of silently ignoring the rest.

use rand::distr::{Alphanumeric, SampleString};

use tokio::sync::Semaphore;

use crate::error::AppError;

pub async fn hash(password: String, cost: u32) -> Result<String, AppError> {
    tokio::task::spawn_blocking(move || bcrypt::non_truncating_hash(password, cost))
        .await
        .map_err(|_| AppError::internal())?
        .map_err(|e| {
            tracing::error!(error = %e, "bcrypt hash failed");
            AppError::internal()
        })
}

/// True only when the password matches; a malformed hash counts as no match.
pub async fn verify(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || bcrypt::non_truncating_verify(password, &hash).unwrap_or(false))
        .await
        .unwrap_or(false)
}

pub fn random_password() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 32)
}

/// `verify`, with at most as many checks at once as `permits` allows (the server gives as
/// many as the machine has cores, `AppState::bcrypt_permits`), so a flood of wrong secrets
/// queues here instead of taking every blocking thread.
pub async fn verify_bounded(permits: &Semaphore, secret: String, hash: String) -> Result<bool, AppError> {
    let waiting = metrics::gauge!("qahub_bcrypt_waiting");
    waiting.increment(1.0);
    let permit = permits.acquire().await;
    waiting.decrement(1.0);
    let _permit = permit.map_err(|_| AppError::internal())?;
    let started = std::time::Instant::now();
    let matches = verify(secret, hash).await;
    metrics::histogram!("qahub_bcrypt_seconds").record(started.elapsed().as_secs_f64());
    Ok(matches)
}
