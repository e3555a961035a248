//! Requests per token per UTC day, by kind. Counted in memory on each request and
//! written in batches (every few seconds, before usage is read, and at shutdown): one
//! counter row per token and day, never a write per request. Instances sharing a
//! database each add their own counts to the same rows.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use super::store;
use crate::{
    db::Db,
    error::AppError,
    tokens::{Scope, UsageCounts, USAGE_DAYS},
};

/// How often pending counts are written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(10);

/// Days since 1970-01-01 (UTC) of a Unix time.
pub fn day_of(unix: i64) -> i64 {
    unix.div_euclid(86_400)
}

type Pending = HashMap<String, Vec<(i64, UsageCounts)>>;

/// The counts not yet written, per token and day.
pub struct Usage {
    pending: Mutex<Pending>,
    /// Held while a batch is written, so a reader's flush waits for one under way and
    /// then sees its counts.
    writing: tokio::sync::Mutex<()>,
    /// Least-privilege hints per token, recomputed at most every `HINT_TTL`.
    hints: moka::future::Cache<String, Option<Scope>>,
}

/// How long a token's least-privilege hint is reused before it is computed again.
pub const HINT_TTL: Duration = Duration::from_secs(600);

impl Default for Usage {
    fn default() -> Self {
        Usage {
            pending: Mutex::default(),
            writing: tokio::sync::Mutex::default(),
            hints: moka::future::Cache::builder().max_capacity(100_000).time_to_live(HINT_TTL).build(),
        }
    }
}

fn bump(counts: &mut UsageCounts, kind: Scope, n: u64) {
    match kind {
        Scope::Read => counts.read += n,
        Scope::Write => counts.write += n,
        Scope::Admin => counts.admin += n,
    }
}

fn merge(into: &mut Pending, token_id: &str, day: i64, counts: UsageCounts) {
    let days = match into.get_mut(token_id) {
        Some(days) => days,
        None => into.entry(token_id.to_owned()).or_default(),
    };
    match days.iter_mut().find(|(d, _)| *d == day) {
        Some((_, c)) => c.add(counts),
        None => days.push((day, counts)),
    }
}

impl Usage {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One request by `token_id` at `now` that needed `kind`.
    pub fn count(&self, token_id: &str, now: i64, kind: Scope) {
        let mut counts = UsageCounts::default();
        bump(&mut counts, kind, 1);
        merge(&mut self.lock(), token_id, day_of(now), counts);
    }

    /// The scope a token's last 30 days of use fit in, when lower than its top scope:
    /// what every answer to the token says (`QAHub-Token-Hint`) so CI logs show it. One
    /// query per token every `HINT_TTL`, none for tokens too young to judge.
    pub async fn hint(&self, db: &Db, token_id: &str, scopes: &[Scope], created_at: i64, now: i64) -> Option<Scope> {
        let at = |t: i64| time::OffsetDateTime::from_unix_timestamp(t).ok();
        let (Some(created), Some(today)) = (at(created_at), at(now)) else { return None };
        if now - created_at < USAGE_DAYS * 86_400 || crate::tokens::top_scope(scopes) == Some(Scope::Read) {
            return None;
        }
        let from_day = day_of(now) - (USAGE_DAYS - 1);
        self.hints
            .get_with_by_ref(token_id, async {
                let _steady = self.steady().await;
                let mut used = self.pending(token_id, from_day);
                match store::usage_totals(db, &[token_id], from_day).await {
                    Ok(rows) => rows.into_iter().for_each(|(_, c)| used.add(c)),
                    Err(_) => return None,
                }
                crate::tokens::least_privilege(scopes, created, today, used)
            })
            .await
    }

    /// Held while written and pending counts are read together: a batch being written
    /// has left `pending` but is not in the database yet, so a reader must not look then
    /// (it would see neither, and, say, a token's least-privilege hint would vanish).
    pub async fn steady(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.writing.lock().await
    }

    /// What this instance counted for `token_id` since `from_day` and has not written yet.
    pub fn pending(&self, token_id: &str, from_day: i64) -> UsageCounts {
        let mut total = UsageCounts::default();
        if let Some(days) = self.lock().get(token_id) {
            days.iter().filter(|(d, _)| *d >= from_day).for_each(|(_, c)| total.add(*c));
        }
        total
    }

    /// Writes every pending count in one transaction and drops rows older than the
    /// window. On failure the counts go back, to be written next time.
    pub async fn flush(&self, db: &Db, now: i64) -> Result<usize, AppError> {
        let _writing = self.writing.lock().await;
        let batch = std::mem::take(&mut *self.lock());
        if batch.is_empty() {
            return Ok(0);
        }
        let rows: Vec<(&str, i64, UsageCounts)> = batch
            .iter()
            .flat_map(|(token, days)| days.iter().map(move |(day, counts)| (token.as_str(), *day, *counts)))
            .collect();
        let oldest_kept = day_of(now) - USAGE_DAYS;
        match store::add_usage(db, &rows, oldest_kept).await {
            Ok(()) => {
                ::metrics::counter!("qahub_usage_rows_written_total").increment(rows.len() as u64);
                Ok(rows.len())
            }
            Err(e) => {
                let mut pending = self.lock();
                for (token, day, counts) in rows {
                    merge(&mut pending, token, day, counts);
                }
                Err(e)
            }
        }
    }

    /// Flushes every `FLUSH_EVERY` for as long as the process runs.
    pub fn spawn_flusher(self: std::sync::Arc<Self>, db: Db) {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(FLUSH_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = self.flush(&db, crate::db::now()).await {
                    tracing::warn!(error = %e, "could not write token usage; will retry");
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_gather_per_token_and_day() {
        let usage = Usage::default();
        let day = 20_000 * 86_400;
        usage.count("a", day + 5, Scope::Read);
        usage.count("a", day + 6, Scope::Read);
        usage.count("a", day + 7, Scope::Admin);
        usage.count("a", day - 1, Scope::Write);
        usage.count("b", day, Scope::Write);
        assert_eq!(usage.pending("a", 20_000), UsageCounts { read: 2, write: 0, admin: 1 });
        assert_eq!(usage.pending("a", 19_999), UsageCounts { read: 2, write: 1, admin: 1 });
        assert_eq!(usage.pending("b", 0).total(), 1);
        assert_eq!(usage.pending("c", 0).total(), 0);
        assert_eq!(usage.lock()["a"].len(), 2, "one entry per day");
    }
}
