//! Rules for cases, runs and results. Every call first asks `Actor::permit` for reading
//! or writing test data (every door: `/api/v1`, the pages, the CLI), then resolves the
//! project through `projects::server::service::get`, so project tokens and other tenants
//! get the same 404 as for a missing project.

use std::ops::ControlFlow;

use axum::body::Bytes;
use reports::Format;

use super::{
    postgres_batches::PostgresBatches,
    sqlite_batches::{Batch, Landed, SqliteBatches},
    store::{self, NewResultRow, RunRow},
};
use crate::{
    actor::Actor,
    db::{new_id, now, row_id, timestamp},
    error::AppError,
    policy::Action,
    projects::{server::service as projects, Project},
    state::AppState,
    testing::{
        clip_message, normalize_title, valid_key, Case, CiContext, Counts, NewCase, NewResult, Receipt, ResultStatus,
        Run, RunStatus, TestResult, UpdateCase, UpdateRun, BATCH_MAX,
    },
};

pub const PAGE_MAX: i64 = 200;

pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

fn limit(limit: Option<i64>) -> Result<i64, AppError> {
    let limit = limit.unwrap_or(50);
    if (1..=PAGE_MAX).contains(&limit) {
        Ok(limit)
    } else {
        Err(AppError::invalid(format!("limit must be between 1 and {PAGE_MAX}.")))
    }
}

fn keyset(cursor: Option<&str>) -> Result<Option<(i64, String)>, AppError> {
    cursor
        .map(|c| {
            c.split_once('.')
                .and_then(|(at, id)| Some((at.parse().ok()?, id.to_string())))
                .ok_or_else(|| AppError::invalid("The cursor is not one this server gave out."))
        })
        .transpose()
}

async fn project(state: &AppState, actor: &Actor, key: &str) -> Result<Project, AppError> {
    projects::get(state, actor, key).await
}

// ---- cases -------------------------------------------------------------------------

pub async fn list_cases(
    state: &AppState,
    actor: &Actor,
    key: &str,
    cursor: Option<&str>,
    limit_: Option<i64>,
) -> Result<Page<Case>, AppError> {
    let p = project(state, actor, key).await?;
    let limit = limit(limit_)?;
    let data = store::list_cases(&state.db, &p.id, &p.key, keyset(cursor)?, limit).await?;
    let next_cursor = (data.len() as i64 == limit)
        .then(|| data.last().map(|c| format!("{}.{}", c.created_at.unix_timestamp(), c.id)))
        .flatten();
    Ok(Page { data, next_cursor })
}

pub async fn create_case(state: &AppState, actor: &Actor, key: &str, req: NewCase) -> Result<Case, AppError> {
    actor.permit(Action::WriteTestData)?;
    let p = project(state, actor, key).await?;
    let now = timestamp(now());
    let case = Case {
        id: row_id(),
        project: p.key.clone(),
        title: normalize_title(&req.title)?,
        description: clip_message(Some(req.description)).unwrap_or_default(),
        created_at: now,
        updated_at: now,
    };
    store::insert_case(&state.db, &p.id, &case).await?;
    Ok(case)
}

pub async fn get_case(state: &AppState, actor: &Actor, key: &str, id: &str) -> Result<Case, AppError> {
    let p = project(state, actor, key).await?;
    store::find_case(&state.db, &p.id, &p.key, id).await?.ok_or_else(|| AppError::not_found("Case"))
}

pub async fn update_case(
    state: &AppState,
    actor: &Actor,
    key: &str,
    id: &str,
    req: UpdateCase,
) -> Result<Case, AppError> {
    actor.permit(Action::WriteTestData)?;
    let mut case = get_case(state, actor, key, id).await?;
    if let Some(title) = req.title {
        case.title = normalize_title(&title)?;
    }
    if let Some(description) = req.description {
        case.description = clip_message(Some(description)).unwrap_or_default();
    }
    case.updated_at = timestamp(now());
    store::update_case(&state.db, &case).await?;
    Ok(case)
}

pub async fn delete_case(state: &AppState, actor: &Actor, key: &str, id: &str) -> Result<(), AppError> {
    actor.permit(Action::WriteTestData)?;
    let case = get_case(state, actor, key, id).await?;
    store::delete_case(&state.db, &case.id).await
}

// ---- runs --------------------------------------------------------------------------

pub async fn list_runs(
    state: &AppState,
    actor: &Actor,
    key: &str,
    status: Option<RunStatus>,
    run_key: Option<&str>,
    cursor: Option<&str>,
    limit_: Option<i64>,
) -> Result<Page<Run>, AppError> {
    let p = project(state, actor, key).await?;
    let limit = limit(limit_)?;
    let rows = store::list_runs(&state.db, &p.id, status, run_key, keyset(cursor)?, limit).await?;
    let next_cursor =
        (rows.len() as i64 == limit).then(|| rows.last().map(|r| format!("{}.{}", r.created_at, r.id))).flatten();
    Ok(Page { data: rows.into_iter().map(|row| store::run_from(row, &p.key)).collect(), next_cursor })
}

fn normalize_run_name(name: &str) -> Result<String, AppError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(AppError::invalid("A run name has 1 to 200 printable characters."));
    }
    Ok(name.to_string())
}

pub async fn create_run(state: &AppState, actor: &Actor, key: &str, name: &str) -> Result<Run, AppError> {
    actor.permit(Action::WriteTestData)?;
    let p = project(state, actor, key).await?;
    let now = now();
    let row = RunRow {
        id: row_id(),
        name: normalize_run_name(name)?,
        status: RunStatus::Open,
        source: None,
        created_at: now,
        updated_at: now,
        run_key: None,
        shards: 0,
        uploaded_by: Some(uploader(actor)),
        ci: CiContext::default(),
        importing: 0,
        counts: Default::default(),
        duration_ms: 0,
    };
    let mut tx = state.db.begin().await?;
    store::insert_run(&mut tx, &p.id, &row).await?;
    tx.commit().await?;
    Ok(store::run_from(row, &p.key))
}

async fn run_row(state: &AppState, actor: &Actor, key: &str, id: &str) -> Result<(Project, RunRow), AppError> {
    let p = project(state, actor, key).await?;
    let row = store::find_run(&state.db, &p.id, id).await?.ok_or_else(|| AppError::not_found("Run"))?;
    Ok((p, row))
}

pub async fn get_run(state: &AppState, actor: &Actor, key: &str, id: &str) -> Result<Run, AppError> {
    let (p, row) = run_row(state, actor, key, id).await?;
    Ok(store::run_from(row, &p.key))
}

pub async fn update_run(state: &AppState, actor: &Actor, key: &str, id: &str, req: UpdateRun) -> Result<Run, AppError> {
    actor.permit(Action::WriteTestData)?;
    let (_, mut row) = run_row(state, actor, key, id).await?;
    if let Some(name) = req.name {
        row.name = normalize_run_name(&name)?;
    }
    if let Some(status) = req.status {
        if status == RunStatus::Importing {
            return Err(AppError::invalid(
                "A run is importing only while an import writes it: set open, passed or failed.",
            ));
        }
        row.status = status;
    }
    row.updated_at = now();
    store::update_run(&state.db, &row).await?;
    get_run(state, actor, key, id).await
}

pub async fn delete_run(state: &AppState, actor: &Actor, key: &str, id: &str) -> Result<(), AppError> {
    actor.permit(Action::WriteTestData)?;
    let (_, row) = run_row(state, actor, key, id).await?;
    store::delete_run(&state.db, &row.id).await
}

// ---- results -----------------------------------------------------------------------

/// Results shown on a page of the run page.
pub const RESULTS_PER_PAGE: i64 = 50;

/// Counted up to this many when a title search matches many cases ("1000+ matching").
pub const MATCHING_CAP: i64 = 1000;

/// The run page's view of a run: one page of its results and how to go on.
pub struct RunPage {
    pub run: Run,
    pub results: Vec<TestResult>,
    /// How many results match the filter (at least this many when `matching_at_least`).
    pub matching: i64,
    pub matching_at_least: bool,
    /// Cursors for the pages after and before this one, when there are any.
    pub next: Option<String>,
    pub previous: Option<String>,
}

fn cursor_of(place: store::Place) -> String {
    format!("{}.{}", place.rank, place.seq)
}

fn parse_cursor(cursor: &str) -> Result<store::Place, AppError> {
    let bad = || AppError::invalid("The cursor is not one this server gave out.");
    let (rank, seq) = cursor.split_once('.').ok_or_else(bad)?;
    let rank: usize = rank.parse().map_err(|_| bad())?;
    let seq: i64 = seq.parse().map_err(|_| bad())?;
    if rank >= store::PAGE_ORDER.len() {
        return Err(bad());
    }
    Ok(store::Place { rank, seq })
}

/// A page of rows already in page order, from a cursor either way.
fn slice<T>(mut all: Vec<(store::Place, T)>, toward: store::Toward, per: usize) -> (Vec<(store::Place, T)>, bool) {
    match toward {
        store::Toward::Later(from) => {
            let start = from.map_or(0, |p| all.partition_point(|(q, _)| *q <= p));
            let end = (start + per).min(all.len());
            let more = all.len() > end;
            all.truncate(end);
            (all.split_off(start), more)
        }
        store::Toward::Earlier(p) => {
            let end = all.partition_point(|(q, _)| *q < p);
            let start = end.saturating_sub(per);
            all.truncate(end);
            (all.split_off(start), start > 0)
        }
    }
}

/// The run and one page of its results, failed first (the run page), after the cursor
/// `after` or before `before` (neither: the first page).
#[allow(clippy::too_many_arguments)]
pub async fn run_with_results(
    state: &AppState,
    actor: &Actor,
    key: &str,
    id: &str,
    status: Option<ResultStatus>,
    search: Option<&str>,
    after: Option<&str>,
    before: Option<&str>,
) -> Result<RunPage, AppError> {
    let (p, row) = run_row(state, actor, key, id).await?;
    let run = store::run_from(row, &p.key);
    let search = search.map(str::trim).filter(|s| !s.is_empty());
    if search.is_some_and(|s| s.chars().count() > 200) {
        return Err(AppError::invalid("Search for at most 200 characters."));
    }
    let toward = match (after.filter(|c| !c.is_empty()), before.filter(|c| !c.is_empty())) {
        (None, None) => store::Toward::Later(None),
        (Some(after), None) => store::Toward::Later(Some(parse_cursor(after)?)),
        (None, Some(before)) => store::Toward::Earlier(parse_cursor(before)?),
        (Some(_), Some(_)) => return Err(AppError::invalid("Give one cursor: after or before.")),
    };
    let per = RESULTS_PER_PAGE;
    let (rows, more, matching, matching_at_least) = match search {
        None => {
            let page = store::results_page(&state.db, &run.id, status, None, toward, per).await?;
            let c = run.counts;
            let matching = match status {
                None => c.total,
                Some(ResultStatus::Passed) => c.passed,
                Some(ResultStatus::Failed) => c.failed,
                Some(ResultStatus::Skipped) => c.skipped,
                Some(ResultStatus::Error) => c.error,
            };
            (page.rows, page.more, matching as i64, false)
        }
        Some(search) => {
            let cases = store::cases_matching(&state.db, &p.id, search, state.settings.search_scan_cases).await?;
            let few = if cases.len() <= store::FEW_CASES {
                store::results_of_cases(&state.db, &run.id, &cases, status).await?
            } else {
                None
            };
            if let Some(all) = few {
                let matching = all.len() as i64;
                let (rows, more) = slice(all, toward, per as usize);
                (rows, more, matching, false)
            } else {
                let page = store::results_page(&state.db, &run.id, status, Some(search), toward, per).await?;
                let matching = store::count_matching(&state.db, &run.id, status, search, MATCHING_CAP).await?;
                (page.rows, page.more, matching, matching >= MATCHING_CAP)
            }
        }
    };
    let (has_previous, has_next) = match toward {
        store::Toward::Later(None) => (false, more),
        store::Toward::Later(Some(_)) => (true, more),
        store::Toward::Earlier(_) => (more, true),
    };
    let next = has_next.then(|| rows.last().map(|(place, _)| cursor_of(*place))).flatten();
    let previous = has_previous.then(|| rows.first().map(|(place, _)| cursor_of(*place))).flatten();
    let results = rows.into_iter().map(|(_, r)| r).collect();
    Ok(RunPage { run, results, matching, matching_at_least, next, previous })
}

pub async fn list_results(
    state: &AppState,
    actor: &Actor,
    key: &str,
    run_id: &str,
    cursor: Option<&str>,
    limit_: Option<i64>,
) -> Result<Page<TestResult>, AppError> {
    let (_, row) = run_row(state, actor, key, run_id).await?;
    let limit = limit(limit_)?;
    let after = cursor
        .map(|c| c.parse::<i64>().map_err(|_| AppError::invalid("The cursor is not one this server gave out.")))
        .transpose()?
        .unwrap_or(0);
    let rows = store::list_results(&state.db, &row.id, after, limit).await?;
    let next_cursor = (rows.len() as i64 == limit).then(|| rows.last().map(|(seq, _)| seq.to_string())).flatten();
    Ok(Page { data: rows.into_iter().map(|(_, r)| r).collect(), next_cursor })
}

/// Adds a batch of results to a run, all or nothing.
pub async fn add_results(
    state: &AppState,
    actor: &Actor,
    key: &str,
    run_id: &str,
    batch: Vec<NewResult>,
) -> Result<Run, AppError> {
    actor.permit(Action::WriteTestData)?;
    if batch.is_empty() || batch.len() > BATCH_MAX {
        return Err(AppError::invalid(format!("Send between 1 and {BATCH_MAX} results at a time.")));
    }
    let (p, row) = run_row(state, actor, key, run_id).await?;
    let now = now();
    let mut tx = state.db.begin().await?;
    // Written first: on SQLite a transaction that reads and then writes fails at once when
    // another connection committed in between (its snapshot is stale); one that writes
    // first queues for the lock instead.
    let tally = store::Tally::of(batch.iter().map(|r| (r.status, r.duration_ms)));
    let mut seq = store::begin_batch(&mut tx, &row.id, tally, now).await?;
    for (i, r) in batch.into_iter().enumerate() {
        let case_id = match (r.case_id, r.title) {
            (Some(id), _) => {
                if !store::case_exists(&mut tx, &p.id, &id).await? {
                    return Err(AppError::invalid(format!("results[{i}]: there is no case {id} in {}.", p.key)));
                }
                id
            }
            (None, Some(title)) => store::case_by_title(&mut tx, &p.id, &normalize_title(&title)?, now).await?,
            (None, None) => return Err(AppError::invalid(format!("results[{i}]: give a case_id or a title."))),
        };
        let message = clip_message(r.message);
        let new = NewResultRow {
            case_id: &case_id,
            status: r.status,
            duration_ms: r.duration_ms,
            message: message.as_deref(),
        };
        store::insert_result(&mut tx, &row.id, seq, &new, now).await?;
        seq += 1;
    }
    tx.commit().await?;
    get_run(state, actor, key, run_id).await
}

/// What an import asks for besides the report itself.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions<'a> {
    pub name: Option<&'a str>,
    /// Imports sharing a run key add to one run until it is completed.
    pub run_key: Option<&'a str>,
    /// A repeat with this key (within a day, same request) answers the first run.
    pub idempotency_key: Option<&'a str>,
    /// The CI build it came from (kept from the first shard of a keyed run).
    pub ci: CiContext,
}

/// How a run names who uploaded it: a token's name and masked prefix, or a person.
fn uploader(actor: &Actor) -> String {
    match actor {
        Actor::User(u) => u.email.clone(),
        Actor::Token(t) => format!("{} ({})", t.name, t.prefix.masked()),
        Actor::TrustedCi { policy_name, .. } => format!("Trusted CI: {policy_name}"),
        Actor::System => "qahub CLI".into(),
        Actor::Server => "QA Hub".into(),
    }
}

/// An import's outcome: the run, this import's receipt, and whether it was a replay.
pub struct Imported {
    pub run: Run,
    pub receipt: Receipt,
    pub replayed: bool,
}

/// The request an idempotency key stands for: project, format, options and body.
fn fingerprint(project_id: &str, format: Format, name: Option<&str>, run_key: Option<&str>, bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [project_id, format.as_str(), name.unwrap_or(""), run_key.unwrap_or("")] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.update(Sha256::digest(bytes));
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Results written per transaction. Each batch holds SQLite's write lock for a few
/// milliseconds; between batches the import lets the writers in flight go first, so a
/// revocation in another workspace waits one batch at most, never a whole import.
pub const IMPORT_BATCH: usize = 500;

/// How often a repeat waits to see whether the import holding its key has landed.
const KEY_POLL: std::time::Duration = std::time::Duration::from_millis(100);
/// On SQLite, how long an import waits between two batches for the writers in flight to
/// finish before it takes the lock again.
const WRITERS_FIRST: std::time::Duration = std::time::Duration::from_millis(100);

/// A run from a report: cases matched (or created) by title, one result each. The
/// report is read twice as a stream, never held as a list of results: first to check and
/// count it (titles and messages cut while reading, at most `import_max_results`
/// results); then one short transaction claims the idempotency key and makes the run
/// (shown as `importing`); then a task of its own reads the report again and lands it in
/// transactions of [`IMPORT_BATCH`], so a dropped connection never leaves an import
/// half-done; the last one settles the key and the run's status. The server holds the
/// body and at most three batches. A malformed report is a 422 that says what is wrong;
/// too big a one a 413 naming the limit. With a run key the results join the key's open
/// run (409 once it is completed). With an idempotency key a repeat answers the first
/// import (waiting for it to land if it is still landing), and a repeat after a crash
/// takes back what the abandoned import wrote and lands the report once.
pub async fn import(
    state: &AppState,
    actor: &Actor,
    key: &str,
    format: Format,
    opts: ImportOptions<'_>,
    body: Bytes,
) -> Result<Imported, AppError> {
    actor.permit(Action::WriteTestData)?;
    for (what, value) in [("run_key", opts.run_key), ("Idempotency-Key", opts.idempotency_key)] {
        if value.is_some_and(|v| !valid_key(v)) {
            return Err(AppError::invalid(format!("{what} has 1 to 128 printable ASCII characters.")));
        }
    }
    let p = project(state, actor, key).await?;
    let max = state.settings.import_max_results;
    // Read once to check and count it, holding none of its results: nothing is written
    // unless the whole report is readable and within the limits.
    // The key's fingerprint hashes the body on the same thread (64 MiB is a few hundred
    // milliseconds of SHA-256: never on the async threads).
    let (tally, print) = {
        let body = body.clone();
        let (project_id, name, run_key) = (p.id.clone(), opts.name.map(str::to_owned), opts.run_key.map(str::to_owned));
        let keyed = opts.idempotency_key.is_some();
        tokio::task::spawn_blocking(move || {
            let tally = read_report(format, &body, max, |_| ControlFlow::Continue(()))?;
            let print = keyed.then(|| fingerprint(&project_id, format, name.as_deref(), run_key.as_deref(), &body));
            Ok::<_, AppError>((tally, print))
        })
        .await
        .map_err(|_| AppError::internal())??
    };
    let receipt = Receipt {
        tests_read: tally.total,
        accepted: Counts {
            total: tally.total,
            passed: tally.passed,
            failed: tally.failed,
            skipped: tally.skipped,
            error: tally.error,
        },
    };
    let tenant_id = actor.tenant_id().ok_or_else(|| AppError::forbidden("This needs a workspace."))?.to_string();
    let default_name = format!("{} import {}", format.as_str(), timestamp(now()).date());
    let name = normalize_run_name(opts.name.unwrap_or(&default_name))?;
    let ci = opts.ci.clone().checked()?;
    let import_id = new_id();
    let holder = store::Holder { import_id: &import_id, instance: &state.instance_id };
    // Live in this process from before its claim commits: a sweep (or a retry on this
    // instance) never takes it for abandoned.
    let live = Live::new(state, &import_id);
    // An abandoned import this one takes the key over from, to take back once claimed.
    let mut abandoned_import = None;

    // 1. One short transaction: the key, and the run (importing).
    let started = std::time::Instant::now();
    let row = loop {
        let now = now();
        let mut tx = state.db.begin().await?;
        if let (Some(idem), Some(print)) = (opts.idempotency_key, &print) {
            if let Some(earlier) = store::claim_key(&mut tx, &tenant_id, &p.id, idem, print, &holder, now).await? {
                if earlier.fingerprint != *print {
                    tx.rollback().await?;
                    return Err(AppError::conflict(
                        "This Idempotency-Key was used for another import into this project in the last 24 hours; send a new key.",
                    ));
                }
                if !earlier.receipt.is_empty() {
                    tx.rollback().await?;
                    let run_id = earlier.run_id.ok_or_else(AppError::internal)?;
                    let receipt = serde_json::from_str(&earlier.receipt).unwrap_or_default();
                    return Ok(Imported { run: get_run(state, actor, key, &run_id).await?, receipt, replayed: true });
                }
                if !abandoned(state, &earlier, now) {
                    // Still landing: wait for it, then answer it (a client's retry after
                    // a dropped connection gets the run, not an error).
                    tx.rollback().await?;
                    wait_for_the_first(state, started).await?;
                    continue;
                }
                // Abandoned (its server died mid-way): take the key over and mark the
                // abandoned import taken back (its batches stop), land the report again,
                // and once this claim commits, take back what the abandoned one wrote a
                // chunk at a time (never one long transaction).
                if !store::take_over_key(&mut tx, &tenant_id, &p.id, idem, earlier.import_id.as_deref(), &holder, now)
                    .await?
                {
                    tx.rollback().await?;
                    tokio::time::sleep(KEY_POLL).await;
                    continue;
                }
                if let (Some(run_id), Some(earlier_import)) = (&earlier.run_id, &earlier.import_id) {
                    // Another instance's import only if its own sign of life (each batch,
                    // and its process's heartbeat) is still old: the key's may lag.
                    let quiet = (earlier.instance.as_deref() != Some(state.instance_id.as_str()))
                        .then(|| now - state.settings.import_abandoned_after.as_secs() as i64);
                    if store::mark_taken_back(&mut *tx, earlier_import, &state.instance_id, quiet, now).await? {
                        abandoned_import = Some((run_id.clone(), earlier_import.clone()));
                    } else if store::import_landing(&mut tx, earlier_import).await? {
                        // It lives after all: wait for it as above.
                        tx.rollback().await?;
                        wait_for_the_first(state, started).await?;
                        continue;
                    }
                }
            }
        }
        let failed = tally.failed + tally.error > 0;
        let mut row = RunRow {
            id: row_id(),
            name: name.clone(),
            status: match (opts.run_key, failed) {
                (Some(_), _) => RunStatus::Open,
                (None, true) => RunStatus::Failed,
                (None, false) => RunStatus::Passed,
            },
            source: Some(format.as_str().to_string()),
            created_at: now,
            updated_at: now,
            run_key: opts.run_key.map(str::to_owned),
            shards: if opts.run_key.is_some() { 0 } else { 1 },
            uploaded_by: Some(uploader(actor)),
            ci: ci.clone(),
            importing: if opts.run_key.is_some() { 0 } else { 1 },
            // Its batches add their results' counts as they land.
            counts: Default::default(),
            duration_ms: 0,
        };
        store::insert_run(&mut tx, &p.id, &row).await?;
        if let Some(run_key) = opts.run_key {
            row = store::add_shard(&mut tx, &p.id, run_key, now).await?.ok_or_else(|| {
                AppError::conflict(format!("The run with run key {run_key:?} is completed; use a new run key."))
            })?;
        }
        store::begin_import(&mut tx, &import_id, &row.id, &state.instance_id, now).await?;
        if let Some(idem) = opts.idempotency_key {
            store::hold_key(&mut tx, &tenant_id, &p.id, idem, &import_id, &row.id, now).await?;
        }
        tx.commit().await?;
        break row;
    };

    // 2. The results, batch by batch, in a task of its own (the abandoned import whose key
    // it took over is taken back first).
    let landing = LandingJob {
        state: state.clone(),
        tenant_id,
        project_id: p.id.clone(),
        run_id: row.id.clone(),
        import_id,
        idempotency_key: opts.idempotency_key.map(str::to_owned),
        receipt: serde_json::to_string(&receipt).unwrap_or_default(),
        _live: live,
    };
    let done = tokio::spawn(async move {
        if let Some((run_id, import_id)) = abandoned_import {
            let _taking_back = Live::new(&landing.state, &import_id);
            if let Err(e) = take_back(&landing.state, &run_id, &import_id).await {
                tracing::warn!(error = %e, run = %run_id, "could not take back an abandoned import; a sweep will");
            }
        }
        landing.run(format, body, tally.total, max).await
    })
    .await
    .map_err(|_| AppError::internal())?;
    done?;
    Ok(Imported { run: get_run(state, actor, key, &row.id).await?, receipt, replayed: false })
}

/// Reads a report as a stream, handing each result to `each` as it would be stored (its
/// title checked, its message cut); answers the tally. Too many results is a 413 naming
/// the limit; a malformed report a 422 saying what is wrong.
fn read_report(
    format: Format,
    bytes: &[u8],
    max: usize,
    mut each: impl FnMut(reports::Imported) -> ControlFlow<()>,
) -> Result<reports::Tally, AppError> {
    let mut refused = None;
    let read = reports::read(format, bytes, max, |mut r| {
        match normalize_title(&r.title) {
            Ok(title) => r.title = title,
            Err(e) => {
                refused = Some(e);
                return ControlFlow::Break(());
            }
        }
        r.message = clip_message(r.message.take());
        each(r)
    });
    match (read, refused) {
        (_, Some(e)) => Err(e),
        (Ok(tally), None) => Ok(tally),
        (Err(reports::ReportError::TooManyResults(max)), None) => Err(AppError::new(
            crate::error::ErrorCode::PayloadTooLarge,
            format!("The report holds more than {max} test results, the most one import takes here (QAHUB_MAX_IMPORT_RESULTS); split it into shards with a run key."),
        )),
        (Err(reports::ReportError::Invalid(why)), None) => {
            Err(AppError::invalid(format!("The {} report could not be read: {why}", format.as_str())))
        }
        (Err(reports::ReportError::Stopped), None) => Err(AppError::internal()),
    }
}

/// The report read a second time, in batches of [`IMPORT_BATCH`] for the landing job: at
/// most one batch waits in `batches` while the next is read and the last is written.
fn read_in_batches(
    format: Format,
    bytes: &[u8],
    max: usize,
    batches: tokio::sync::mpsc::Sender<Vec<reports::Imported>>,
) -> Result<(), AppError> {
    let mut batch = Vec::with_capacity(IMPORT_BATCH);
    read_report(format, bytes, max, |r| {
        batch.push(r);
        if batch.len() < IMPORT_BATCH {
            return ControlFlow::Continue(());
        }
        let full = std::mem::replace(&mut batch, Vec::with_capacity(IMPORT_BATCH));
        // The landing job stopped (it failed): stop reading too.
        match batches.blocking_send(full) {
            Ok(()) => ControlFlow::Continue(()),
            Err(_) => ControlFlow::Break(()),
        }
    })?;
    if !batch.is_empty() {
        batches.blocking_send(batch).map_err(|_| AppError::internal())?;
    }
    Ok(())
}

/// One poll's wait for the first import with the same key, still landing; 409 once the
/// retry has waited twice `import_abandoned_after` (it holds its body meanwhile).
async fn wait_for_the_first(state: &AppState, started: std::time::Instant) -> Result<(), AppError> {
    if started.elapsed() > state.settings.import_abandoned_after * 2 {
        return Err(AppError::conflict("The first import with this key is still landing; retry in a minute."));
    }
    tokio::time::sleep(KEY_POLL).await;
    Ok(())
}

/// Whether an unfinished import holding a key will never finish: this process does not
/// run it, or another instance ran it and has shown no sign of life for a while.
fn abandoned(state: &AppState, earlier: &store::KeyedImport, now: i64) -> bool {
    let Some(import_id) = &earlier.import_id else { return true };
    if earlier.instance.as_deref() == Some(state.instance_id.as_str()) {
        return !state.live_imports.lock().unwrap_or_else(|e| e.into_inner()).contains(import_id);
    }
    let quiet = now - earlier.heartbeat_at.unwrap_or(0);
    quiet >= state.settings.import_abandoned_after.as_secs() as i64
}

/// An import's second part: everything it needs, owned, so it outlives the request.
struct LandingJob {
    state: AppState,
    tenant_id: String,
    project_id: String,
    run_id: String,
    import_id: String,
    idempotency_key: Option<String>,
    receipt: String,
    _live: Live,
}

/// An import's own connection to its database, for its batches.
enum Writer {
    Sqlite(SqliteBatches),
    Postgres(PostgresBatches),
}

/// Marks an import as running in this process (landing, or being taken back) while it
/// lives: a sweep leaves it alone.
struct Live(AppState, String);

impl Live {
    fn new(state: &AppState, import_id: &str) -> Self {
        state.live_imports.lock().unwrap_or_else(|e| e.into_inner()).insert(import_id.to_string());
        Live(state.clone(), import_id.to_string())
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.live_imports.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.1);
    }
}

/// On SQLite (one writer), between two of a long job's transactions: writers in flight in
/// this process (a revocation, any request that writes) go next, so wait until they are
/// done. Others (another process, a write this process does not count) poll for the
/// lock, so it is left free for a quarter of the time it was held. The wait is at most
/// as long as the lock was `held` (and never more than WRITERS_FIRST), so a writer kept
/// in flight on purpose (a body sent slowly) halves the job's pace at worst, never
/// stalls it.
async fn let_writers_go_first(state: &AppState, held: std::time::Duration) {
    if state.writers.in_flight() > 0 {
        state.writers.until_none(held.min(WRITERS_FIRST)).await;
    }
    tokio::time::sleep((held / 4).max(std::time::Duration::from_millis(1))).await;
}

/// Takes back what an import that will never finish wrote, the caller having marked it
/// taken back (and keeping it live in this process, which shows its sign of life): its
/// results a chunk at a time (each a statement of its own, other writers first between
/// them on SQLite), then its run (deleted if it was the import's own; a
/// sharded run has one import fewer) and an unsettled key it held.
async fn take_back(state: &AppState, run_id: &str, import_id: &str) -> Result<(), AppError> {
    let sqlite = crate::db::backend_of(&state.db) == crate::db::Backend::Sqlite;
    let mut after = 0;
    loop {
        let started = std::time::Instant::now();
        match store::take_back_chunk(&state.db, run_id, import_id, after).await? {
            Some(last) => after = last,
            None => break,
        }
        if sqlite {
            let_writers_go_first(state, started.elapsed()).await;
        }
    }
    let mut tx = state.db.begin().await?;
    store::taken_back(&mut tx, import_id, run_id).await?;
    tx.commit().await?;
    Ok(())
}

/// Takes back every import that will never finish: one this process ran and no longer
/// does (it failed while taking itself back), or one with no sign of life for
/// `import_abandoned_after` (its server died or lost the database). Answers how many.
pub async fn sweep_abandoned_imports(state: &AppState) -> Result<usize, AppError> {
    let now = now();
    let quiet_since = now - state.settings.import_abandoned_after.as_secs() as i64;
    let mut swept = 0;
    let mut failed = None;
    for landing in store::landing_imports(&state.db, quiet_since, &state.instance_id).await? {
        let ours = landing.instance == state.instance_id;
        if ours && state.live_imports.lock().unwrap_or_else(|e| e.into_inner()).contains(&landing.import_id) {
            continue;
        }
        let _taking_back = Live::new(state, &landing.import_id);
        // Another instance's import only if it is still quiet (it may have just shown life).
        let quiet = (!ours).then_some(quiet_since);
        let swept_one = async {
            if !store::mark_taken_back(&state.db, &landing.import_id, &state.instance_id, quiet, now).await? {
                return Ok(false);
            }
            tracing::warn!(
                run = %landing.run_id,
                import = %landing.import_id,
                quiet_for_s = now - landing.heartbeat_at,
                "taking back an import that will never finish"
            );
            take_back(state, &landing.run_id, &landing.import_id).await?;
            Ok::<_, AppError>(true)
        };
        // One import that cannot be taken back now never keeps the sweep from the others.
        match swept_one.await {
            Ok(true) => swept += 1,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, import = %landing.import_id, "could not take back an import; will retry");
                failed = Some(e);
            }
        }
    }
    match failed {
        Some(e) if swept == 0 => Err(e),
        _ => Ok(swept),
    }
}

/// Sweeps abandoned imports at start and then every half `import_abandoned_after`
/// (1 to 60 s), for as long as the process runs; beside it, the imports this process
/// runs show a sign of life every quarter of it (their batches do too, but a batch, a
/// slow reader or a take-back may take longer than that).
pub fn spawn_import_sweeper(state: AppState) {
    let every = (state.settings.import_abandoned_after / 2)
        .clamp(std::time::Duration::from_secs(1), std::time::Duration::from_secs(60));
    let heartbeat = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every / 2);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let live: Vec<String> =
                heartbeat.live_imports.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect();
            if live.is_empty() {
                continue;
            }
            if let Err(e) = store::show_life(&heartbeat.db, &heartbeat.instance_id, &live, now()).await {
                tracing::warn!(error = %e, "could not show the imports running here are alive; will retry");
            }
        }
    });
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = sweep_abandoned_imports(&state).await {
                tracing::warn!(error = %e, "could not take back abandoned imports; will retry");
            }
        }
    });
}

impl LandingJob {
    /// Reads the report again on a thread of its own, batch by batch, while the batches
    /// land; exactly the `expected` results land, or none.
    async fn run(self, format: Format, body: Bytes, expected: u64, max: usize) -> Result<(), AppError> {
        let (batches, landing) = tokio::sync::mpsc::channel(1);
        let reader = tokio::task::spawn_blocking(move || read_in_batches(format, &body, max, batches));
        let landed = self.land(landing, expected).await;
        let read = reader.await.map_err(|_| AppError::internal()).and_then(|read| read);
        let result = landed.and(read);
        if result.is_err() {
            // Nothing half-done: take back what landed and give the key up, so a retry
            // starts afresh (unless another already took this import back). Should that
            // fail too, the sweep finds it: this process no longer runs it.
            let undo = async {
                if store::mark_taken_back(&self.state.db, &self.import_id, &self.state.instance_id, None, now()).await?
                {
                    take_back(&self.state, &self.run_id, &self.import_id).await?;
                }
                Ok::<_, AppError>(())
            };
            if let Err(e) = undo.await {
                tracing::warn!(error = %e, run = %self.run_id, "could not take back a failed import; a sweep will");
            }
        }
        result
    }

    async fn land(
        &self,
        mut batches: tokio::sync::mpsc::Receiver<Vec<reports::Imported>>,
        expected: u64,
    ) -> Result<(), AppError> {
        let sqlite = crate::db::backend_of(&self.state.db) == crate::db::Backend::Sqlite;
        // A connection of the import's own, native to its database (prepared statements on
        // SQLite, column arrays on PostgreSQL: no per-value conversion); an in-memory SQLite
        // uses the pool.
        let url = self.state.db.connect_options().database_url.to_string();
        let writer = match sqlite {
            // A file it cannot open as the pool did: the pool writes instead.
            true => crate::tokens::server::lookup::sqlite_file(&url)
                .and_then(|path| SqliteBatches::open(&path).ok())
                .map(Writer::Sqlite),
            false => self.state.import_writer().map(Writer::Postgres),
        };
        let mut landed = 0u64;
        while let Some(batch) = batches.recv().await {
            landed += batch.len() as u64;
            let rows = batch.len();
            let started = std::time::Instant::now();
            let now = now();
            match &writer {
                Some(writer) => {
                    let batch = Batch {
                        tenant_id: self.tenant_id.clone(),
                        project_id: self.project_id.clone(),
                        run_id: self.run_id.clone(),
                        import_id: self.import_id.clone(),
                        idempotency_key: self.idempotency_key.clone(),
                        rows: batch,
                        now,
                    };
                    let landed = match writer {
                        Writer::Sqlite(writer) => writer.land(batch).await?,
                        Writer::Postgres(writer) => writer.land(&batch).await?,
                    };
                    match landed {
                        Landed::Written => {}
                        Landed::KeyLost => return Err(key_lost()),
                        Landed::TakenBack => return Err(taken_back_error()),
                    }
                    tracing::debug!(rows, took = ?started.elapsed(), "an import batch landed");
                }
                None => self.land_through_the_pool(&batch, now, sqlite).await?,
            }
            if sqlite {
                let_writers_go_first(&self.state, started.elapsed()).await;
            }
        }
        if landed != expected {
            // The second reading ended early (or read more): never settle a partial run.
            tracing::warn!(landed, expected, run = %self.run_id, "an import read a different report the second time");
            return Err(AppError::internal());
        }
        let now = now();
        let mut tx = self.state.db.begin().await?;
        if !store::import_landed(&mut tx, &self.import_id, &self.run_id, now).await? {
            tx.rollback().await?;
            return Err(taken_back_error());
        }
        if let Some(idem) = &self.idempotency_key {
            if !store::settle_key(&mut tx, &self.tenant_id, &self.project_id, idem, &self.import_id, &self.receipt)
                .await?
            {
                tx.rollback().await?;
                return Err(key_lost());
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// One batch through the pool (sqlx's `Any` driver): an in-memory SQLite.
    async fn land_through_the_pool(&self, batch: &[reports::Imported], now: i64, sqlite: bool) -> Result<(), AppError> {
        let started = std::time::Instant::now();
        let mut tx = self.state.db.begin().await?;
        if !sqlite {
            // Plan each statement with its values and the table as it is now: a plan
            // cached while `cases` was small would scan it whole once it is not.
            sqlx::query("SET LOCAL plan_cache_mode = force_custom_plan").execute(&mut *tx).await?;
            // Every statement of a batch has an index to go by; statistics taken while the
            // project had a thousand cases would pick a scan of the whole table once it has
            // hundreds of thousands (autovacuum analyses it only later).
            sqlx::query("SET LOCAL enable_seqscan = off").execute(&mut *tx).await?;
            // With scans priced out every statement passes `jit_above_cost`: compiling it
            // would cost far more than running it.
            sqlx::query("SET LOCAL jit = off").execute(&mut *tx).await?;
            // Nor a bitmap scan of every case of the project (a stale generic plan's choice).
            sqlx::query("SET LOCAL enable_bitmapscan = off").execute(&mut *tx).await?;
            // A batch's commit need not wait for the disk: the import counts as landed only
            // at its last transaction, which does wait, and flushes every batch before it
            // (a crash before that leaves an unfinished import, taken back on retry).
            sqlx::query("SET LOCAL synchronous_commit = off").execute(&mut *tx).await?;
        }
        let tally = store::Tally::of(batch.iter().map(|r| (r.status.into(), r.duration_ms)));
        let seq = store::begin_batch(&mut tx, &self.run_id, tally, now).await?;
        if !store::import_alive(&mut tx, &self.import_id, now).await? {
            return Err(taken_back_error());
        }
        if let Some(idem) = &self.idempotency_key {
            let ours =
                store::hold_key(&mut tx, &self.tenant_id, &self.project_id, idem, &self.import_id, &self.run_id, now)
                    .await?;
            if !ours {
                return Err(key_lost());
            }
        }
        let titles: Vec<&str> = batch.iter().map(|r| r.title.as_str()).collect();
        let locked = started.elapsed();
        let cases = store::cases_for_titles(&mut tx, &self.project_id, &titles, now).await?;
        let cased = started.elapsed();
        let new: Vec<NewResultRow<'_>> = batch
            .iter()
            .map(|r| {
                Ok(NewResultRow {
                    case_id: cases.get(&r.title).ok_or_else(AppError::internal)?,
                    status: r.status.into(),
                    duration_ms: r.duration_ms,
                    message: r.message.as_deref(),
                })
            })
            .collect::<Result<_, AppError>>()?;
        store::insert_results(&mut tx, &self.run_id, &self.import_id, seq, &new, now).await?;
        let inserted = started.elapsed();
        tx.commit().await?;
        tracing::debug!(
            rows = batch.len(),
            ?locked,
            cases = ?(cased - locked),
            results = ?(inserted - cased),
            commit = ?(started.elapsed() - inserted),
            "an import batch landed"
        );
        Ok(())
    }
}

fn key_lost() -> AppError {
    AppError::conflict("Another import took this Idempotency-Key over; this one stopped.")
}

fn taken_back_error() -> AppError {
    AppError::conflict(
        "This import was taken back before it landed (its run was deleted, or it showed no sign of life for too long); send it again.",
    )
}

/// Closes a run that shards were adding to: no import joins it afterwards. Completing a
/// completed run answers it as it is, so a retried `complete` is harmless.
pub async fn complete_run(state: &AppState, actor: &Actor, key: &str, id: &str) -> Result<Run, AppError> {
    actor.permit(Action::WriteTestData)?;
    let (_, row) = run_row(state, actor, key, id).await?;
    if !store::complete_run(&state.db, &row.id, now()).await? {
        return Err(AppError::conflict("Imports are still landing in this run; complete it once they are done."));
    }
    get_run(state, actor, key, id).await
}
