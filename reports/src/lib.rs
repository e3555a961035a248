//! Report readers: a Playwright JSON report or a JUnit XML file becomes a stream of
//! results. Pure functions, shared by the server (which stores them) and the `qa-hub`
//! client (which counts a file's tests before it uploads, to check the server's receipt).
//!
//! Both formats are read as streams ([`read`], [`read_from`]): JUnit with quick-xml's
//! reader, Playwright through serde visitors that walk the suites and hand each test over
//! as soon as its object ends. Nothing but the result being read is held, so memory stays
//! the size of one result (plus the input, when the caller holds it), whatever the number
//! of tests: every title is cut to [`TITLE_MAX`] and every message to [`MESSAGE_MAX`]
//! *while* reading, and a suite's name is cut once before any test's title is built from
//! it (a 32 MiB suite name shared by 10 000 tests costs 10 000 short titles, not 320 GiB).
//! A report with more than the allowed number of results stops being read at the first
//! one past it.

use std::{io::BufRead, ops::ControlFlow};

use serde::{
    de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor},
    Deserialize,
};

/// Longest test title kept, in characters.
pub const TITLE_MAX: usize = 500;
/// Longest failure message kept, in characters.
pub const MESSAGE_MAX: usize = 10_000;

/// Why a report was not read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReportError {
    /// Not a report of the format, or malformed: what is wrong.
    Invalid(String),
    /// It holds more results than allowed (the limit).
    TooManyResults(usize),
    /// Whoever took the results asked to stop.
    Stopped,
}

impl std::fmt::Display for ReportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReportError::Invalid(why) => f.write_str(why),
            ReportError::TooManyResults(max) => write!(f, "the report holds more than {max} test results"),
            ReportError::Stopped => f.write_str("reading was stopped"),
        }
    }
}

impl From<String> for ReportError {
    fn from(why: String) -> Self {
        ReportError::Invalid(why)
    }
}

/// The first `max` characters of `s` (all of it when shorter), without copying the rest.
fn cut(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((at, _)) => &s[..at],
        None => s,
    }
}

/// `s` as an owned string of at most `max` characters.
fn cut_owned(mut s: String, max: usize) -> String {
    if let Some((at, _)) = s.char_indices().nth(max) {
        s.truncate(at);
    }
    s
}

/// What a test's result was. JUnit's `<error>` (the test could not run as written) stays
/// distinct from `<failure>` (an assertion failed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResultStatus {
    Passed,
    Failed,
    Skipped,
    Error,
}

/// How many results of each outcome a report holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub total: u64,
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
    pub error: u64,
}

impl Tally {
    pub fn of(results: &[Imported]) -> Self {
        let mut t = Tally::default();
        for r in results {
            t.add(r.status);
        }
        t
    }

    fn add(&mut self, status: ResultStatus) {
        self.total += 1;
        match status {
            ResultStatus::Passed => self.passed += 1,
            ResultStatus::Failed => self.failed += 1,
            ResultStatus::Skipped => self.skipped += 1,
            ResultStatus::Error => self.error += 1,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Imported {
    pub title: String,
    pub status: ResultStatus,
    pub duration_ms: Option<u64>,
    pub message: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Playwright,
    Junit,
}

impl Format {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "playwright" => Some(Format::Playwright),
            "junit" => Some(Format::Junit),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Playwright => "playwright",
            Format::Junit => "junit",
        }
    }
}

/// Every result of a report, in a list (the tests and the fuzz targets; the server and
/// the client use [`read`] and [`read_from`], which hold none).
pub fn parse(format: Format, bytes: &[u8]) -> Result<Vec<Imported>, String> {
    parse_at_most(format, bytes, usize::MAX).map_err(|e| e.to_string())
}

/// [`parse`], refusing a report with more than `max` results as soon as it reads one more.
pub fn parse_at_most(format: Format, bytes: &[u8], max: usize) -> Result<Vec<Imported>, ReportError> {
    let mut results = Vec::new();
    read(format, bytes, max, |r| {
        results.push(r);
        ControlFlow::Continue(())
    })?;
    Ok(results)
}

/// Reads a report held in memory, handing each result to `each` as soon as it is read
/// (its title cleaned, see [`clean_title`]); answers how many of each outcome it held.
/// More than `max` results is [`ReportError::TooManyResults`] at the first one past it;
/// `each` answering `Break` stops the reading with [`ReportError::Stopped`].
pub fn read(
    format: Format,
    bytes: &[u8],
    max: usize,
    each: impl FnMut(Imported) -> ControlFlow<()>,
) -> Result<Tally, ReportError> {
    counted(max, each, |emit| match format {
        Format::Playwright => playwright(serde_json::Deserializer::from_slice(bytes), emit),
        Format::Junit => junit(bytes, emit),
    })
}

/// [`read`] from a stream (a file), holding only the result being read.
pub fn read_from(
    format: Format,
    input: impl BufRead,
    max: usize,
    each: impl FnMut(Imported) -> ControlFlow<()>,
) -> Result<Tally, ReportError> {
    counted(max, each, |emit| match format {
        Format::Playwright => playwright(serde_json::Deserializer::from_reader(input), emit),
        Format::Junit => junit(input, emit),
    })
}

/// Where a reader hands each result it has read.
type Emit<'e> = dyn FnMut(Imported) -> Result<(), ReportError> + 'e;

/// Runs a reader, counting, numbering and cleaning what it emits before `each` gets it.
fn counted(
    max: usize,
    mut each: impl FnMut(Imported) -> ControlFlow<()>,
    reader: impl FnOnce(&mut Emit<'_>) -> Result<(), ReportError>,
) -> Result<Tally, ReportError> {
    let mut tally = Tally::default();
    let mut emit = |mut r: Imported| {
        if tally.total >= max as u64 {
            return Err(ReportError::TooManyResults(max));
        }
        tally.add(r.status);
        r.title = clean_title(&r.title, tally.total as usize);
        match each(r) {
            ControlFlow::Continue(()) => Ok(()),
            ControlFlow::Break(()) => Err(ReportError::Stopped),
        }
    };
    reader(&mut emit)?;
    if tally.total == 0 {
        return Err(ReportError::Invalid("the report holds no test results".into()));
    }
    Ok(tally)
}

/// A title every test can be stored under: control characters (new lines in a test
/// name) become spaces, the length is capped, and a test with no name at all is named
/// after its place in the report — one odd test never refuses the whole report.
/// (Found by the `import_*` fuzz targets.)
fn clean_title(raw: &str, position: usize) -> String {
    let spaced: String = raw.chars().map(|c| if c.is_control() && c != '\t' { ' ' } else { c }).collect();
    let title: String = spaced.trim().chars().take(TITLE_MAX).collect();
    let title = title.trim_end();
    if title.is_empty() {
        format!("untitled test {position}")
    } else {
        title.to_string()
    }
}

// ---- Playwright JSON reporter ----------------------------------------------------
//
// A report is `{"suites": [suite]}`; a suite `{"title", "specs": [spec], "suites": [suite]}`;
// a spec `{"title", "tests": [test]}`; a test `{"projectName", "status", "results": [result]}`.
// A test's title is its suites' titles, its spec's and its project's, joined. Each level
// hands its results up as soon as they are read, its own title put in front; a level
// whose title comes after its children (keys in another order, as `jq -S` writes them)
// holds its children's results until its object ends.

/// The error a visitor returns when the taker stopped the reading; the real error waits
/// in the [`playwright`] call.
const STOPPED: &str = "\u{0}stopped";

fn playwright<'de, R: serde_json::de::Read<'de>>(
    mut de: serde_json::Deserializer<R>,
    emit: &mut Emit<'_>,
) -> Result<(), ReportError> {
    let mut stopped = None;
    let mut up = |r: Imported| {
        emit(r).map_err(|e| {
            stopped = Some(e);
        })
    };
    let read = ReportSeed(&mut up).deserialize(&mut de).and_then(|()| de.end());
    match (read, stopped) {
        (_, Some(e)) => Err(e),
        (Err(e), None) => Err(ReportError::Invalid(format!("not a Playwright JSON report: {e}"))),
        (Ok(()), None) => Ok(()),
    }
}

/// Where a level hands the results below it; `Err` means stop.
type Up<'u> = dyn FnMut(Imported) -> Result<(), ()> + 'u;

fn stopped<E: de::Error>(_: ()) -> E {
    E::custom(STOPPED)
}

/// A result's title with `part` (a suite's title, already cut) in front.
fn under(part: &str, mut r: Imported) -> Imported {
    if !part.is_empty() {
        r.title = cut_owned(format!("{part} › {}", r.title), TITLE_MAX);
    }
    r
}

/// The keys the reader looks at, at any level; everything else is skipped unread.
enum Key {
    Suites,
    Specs,
    Title,
    Tests,
    ProjectName,
    Status,
    Results,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Key;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(match v {
                    "suites" => Key::Suites,
                    "specs" => Key::Specs,
                    "title" => Key::Title,
                    "tests" => Key::Tests,
                    "projectName" => Key::ProjectName,
                    "status" => Key::Status,
                    "results" => Key::Results,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_identifier(V)
    }
}

/// A string cut to `max` characters as it is read (only the cut part is kept).
struct Cut(usize);

impl<'de> DeserializeSeed<'de> for Cut {
    type Value = String;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for Cut {
    type Value = String;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(cut(v, self.0).to_owned())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(cut_owned(v, self.0))
    }
}

/// The report: its `suites`.
struct ReportSeed<'s, 'u>(&'s mut Up<'u>);

impl<'de> DeserializeSeed<'de> for ReportSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ReportSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a Playwright JSON report object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut suites = false;
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Suites => {
                    suites = true;
                    map.next_value_seed(Each(SuiteSeed, &mut *self.0))?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !suites {
            return Err(de::Error::missing_field("suites"));
        }
        Ok(())
    }
}

/// A level whose objects hand results up: a suite or a spec.
trait Level: Copy {
    fn read<'de, A: MapAccess<'de>>(self, map: A, up: &mut Up<'_>) -> Result<(), A::Error>;
}

/// An array of `L`, each element handing its results to the same place.
struct Each<'s, 'u, L>(L, &'s mut Up<'u>);

impl<'de, L: Level> DeserializeSeed<'de> for Each<'_, '_, L> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, L: Level> Visitor<'de> for Each<'_, '_, L> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(One(self.0, &mut *self.1))?.is_some() {}
        Ok(())
    }
}

/// One object of level `L`.
struct One<'s, 'u, L>(L, &'s mut Up<'u>);

impl<'de, L: Level> DeserializeSeed<'de> for One<'_, '_, L> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, L: Level> Visitor<'de> for One<'_, '_, L> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        self.0.read(map, self.1)
    }
}

/// The most a suite or spec whose title comes after its tests may hold of them (their
/// titles and messages) until its title is read: past it the report is refused, so a
/// title-last report costs at most this much memory a level, not a copy of a long title
/// for each of millions of three-byte tests.
pub const HOLD_MAX_BYTES: usize = 16 << 20;

/// Results held by a level until its title is read, with what they cost.
#[derive(Default)]
struct Held {
    results: Vec<Imported>,
    bytes: usize,
    /// Holding one more would pass [`HOLD_MAX_BYTES`]: the reading stops.
    full: bool,
}

impl Held {
    fn hold(&mut self, r: Imported) -> Result<(), ()> {
        self.bytes += r.title.len() + r.message.as_ref().map_or(0, String::len) + std::mem::size_of::<Imported>();
        if self.bytes > HOLD_MAX_BYTES {
            self.full = true;
            return Err(());
        }
        self.results.push(r);
        Ok(())
    }

    /// The error for a level that held too much, if it did; else `read` as it was.
    fn checked<E: de::Error>(&self, level: &str, read: Result<(), E>) -> Result<(), E> {
        if self.full {
            return Err(E::custom(format!(
                "a {level}'s \"title\" comes after more than {} MiB of its tests; write each {level}'s title before its tests",
                HOLD_MAX_BYTES >> 20
            )));
        }
        read
    }
}

/// Hands `r` up under `title` once the title is known, or holds it until then.
fn up_or_hold(title: &Option<String>, held: &mut Held, up: &mut Up<'_>, r: Imported) -> Result<(), ()> {
    match title {
        Some(title) => up(under(title, r)),
        None => held.hold(r),
    }
}

#[derive(Clone, Copy)]
struct SuiteSeed;

impl Level for SuiteSeed {
    fn read<'de, A: MapAccess<'de>>(self, mut map: A, up: &mut Up<'_>) -> Result<(), A::Error> {
        let mut title: Option<String> = None;
        let mut held = Held::default();
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Title => title = Some(map.next_value_seed(Cut(TITLE_MAX))?),
                Key::Specs | Key::Suites => {
                    let mut below = |r: Imported| up_or_hold(&title, &mut held, up, r);
                    let read = if matches!(key, Key::Specs) {
                        map.next_value_seed(Each(SpecSeed, &mut below))
                    } else {
                        map.next_value_seed(Each(SuiteSeed, &mut below))
                    };
                    held.checked("suite", read)?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let title = title.unwrap_or_default();
        for r in held.results {
            up(under(&title, r)).map_err(stopped)?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy)]
struct SpecSeed;

impl Level for SpecSeed {
    fn read<'de, A: MapAccess<'de>>(self, mut map: A, up: &mut Up<'_>) -> Result<(), A::Error> {
        let mut title: Option<String> = None;
        let mut held = Held::default();
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Title => title = Some(map.next_value_seed(Cut(TITLE_MAX))?),
                Key::Tests => {
                    let mut below = |mut r: Imported| match &title {
                        Some(title) => {
                            r.title = spec_title(title, &r.title);
                            up(r)
                        }
                        None => held.hold(r),
                    };
                    let read = map.next_value_seed(Tests(&mut below));
                    held.checked("spec", read)?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let title = title.ok_or_else(|| de::Error::missing_field("title"))?;
        for mut r in held.results {
            r.title = spec_title(&title, &r.title);
            up(r).map_err(stopped)?;
        }
        Ok(())
    }
}

/// A test's title below its suites: the spec's title, then its project's name, if any.
fn spec_title(spec: &str, project: &str) -> String {
    if project.is_empty() {
        spec.to_owned()
    } else {
        cut_owned(format!("{spec} [{project}]"), TITLE_MAX)
    }
}

/// A spec's `tests`: each hands up a result whose title is, for now, its project's name
/// (the spec puts its own title in front).
struct Tests<'s, 'u>(&'s mut Up<'u>);

impl<'de> DeserializeSeed<'de> for Tests<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Tests<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of tests")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(test) = seq.next_element_seed(TestSeed)? {
            (self.0)(test).map_err(stopped)?;
        }
        Ok(())
    }
}

struct TestSeed;

#[derive(Deserialize)]
struct PwResult {
    #[serde(default)]
    status: String,
    #[serde(default)]
    duration: f64,
    #[serde(default)]
    error: Option<PwError>,
}

#[derive(Deserialize)]
struct PwError {
    #[serde(default)]
    message: Option<String>,
}

/// A test's `results`, one attempt at a time: the sum of their durations and the last
/// one (never a list of them: a test of a million empty attempts costs one).
struct Attempts;

impl<'de> DeserializeSeed<'de> for Attempts {
    type Value = (f64, Option<PwResult>);
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Attempts {
    type Value = (f64, Option<PwResult>);
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of results")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let (mut duration, mut last) = (0.0_f64, None);
        while let Some(attempt) = seq.next_element::<PwResult>()? {
            duration += attempt.duration.max(0.0);
            last = Some(attempt);
        }
        Ok((duration, last))
    }
}

impl<'de> DeserializeSeed<'de> for TestSeed {
    type Value = Imported;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Imported, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TestSeed {
    type Value = Imported;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a test object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Imported, A::Error> {
        let (mut project, mut status) = (String::new(), String::new());
        let mut last: Option<PwResult> = None;
        let mut duration = 0.0_f64;
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::ProjectName => project = map.next_value_seed(Cut(TITLE_MAX))?,
                Key::Status => status = map.next_value()?,
                Key::Results => {
                    // The attempts (a test and its retries), read one at a time: their
                    // durations add up, the last one decides.
                    let (total, final_attempt) = map.next_value_seed(Attempts)?;
                    duration += total;
                    if final_attempt.is_some() {
                        last = final_attempt;
                    }
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        // The last attempt decides (retries may pass a flaky test).
        let status = match (last.as_ref().map(|r| r.status.as_str()), status.as_str()) {
            (_, "skipped") | (Some("skipped"), _) => ResultStatus::Skipped,
            (Some("passed"), _) => ResultStatus::Passed,
            (Some("failed") | Some("timedOut"), _) => ResultStatus::Failed,
            (Some("interrupted"), _) => ResultStatus::Error,
            (None, "expected") => ResultStatus::Passed,
            (None, _) => ResultStatus::Skipped,
            _ => ResultStatus::Error,
        };
        let message = last.and_then(|r| r.error).and_then(|e| e.message).map(|m| cut_owned(m, MESSAGE_MAX));
        Ok(Imported { title: project, status, duration_ms: Some(duration.round() as u64), message })
    }
}

// ---- JUnit XML -------------------------------------------------------------------

fn junit(input: impl BufRead, emit: &mut Emit<'_>) -> Result<(), ReportError> {
    use quick_xml::events::Event;

    let mut reader = quick_xml::Reader::from_reader(input);
    reader.config_mut().trim_text(true);
    let mut buf = Vec::new();
    let mut suites: Vec<String> = Vec::new();
    let mut current: Option<Imported> = None;
    let mut in_message = false;
    let mut saw_root = false;
    loop {
        let event = reader.read_event_into(&mut buf).map_err(|e| {
            ReportError::Invalid(format!("not well-formed XML at byte {}: {e}", reader.error_position()))
        })?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                let name = e.name();
                let attr = |key: &[u8]| -> Result<Option<String>, String> {
                    for a in e.attributes() {
                        let a = a.map_err(|e| format!("bad attribute: {e}"))?;
                        if a.key.as_ref() == key {
                            let v = a.unescape_value().map_err(|e| format!("bad attribute value: {e}"))?;
                            return Ok(Some(v.into_owned()));
                        }
                    }
                    Ok(None)
                };
                match name.as_ref() {
                    b"testsuites" => saw_root = true,
                    b"testsuite" => {
                        saw_root = true;
                        if !empty {
                            suites.push(cut_owned(attr(b"name")?.unwrap_or_default(), TITLE_MAX));
                        }
                    }
                    b"testcase" => {
                        let name =
                            cut_owned(attr(b"name")?.ok_or_else(|| "a <testcase> has no name".to_string())?, TITLE_MAX);
                        let class = attr(b"classname")?.filter(|c| !c.is_empty()).map(|c| cut_owned(c, TITLE_MAX));
                        let title = match class {
                            Some(class) => format!("{class} › {name}"),
                            None => match suites.last().filter(|s| !s.is_empty()) {
                                Some(suite) => format!("{suite} › {name}"),
                                None => name,
                            },
                        };
                        let title = cut_owned(title, TITLE_MAX);
                        let duration_ms = match attr(b"time")? {
                            Some(t) => Some(
                                (t.trim().parse::<f64>().map_err(|_| format!("testcase time {t:?} is not a number"))?
                                    * 1000.0)
                                    .round()
                                    .max(0.0) as u64,
                            ),
                            None => None,
                        };
                        let case = Imported { title, status: ResultStatus::Passed, duration_ms, message: None };
                        if empty {
                            emit(case)?;
                        } else {
                            current = Some(case);
                        }
                    }
                    b"failure" | b"error" | b"skipped" => {
                        if let Some(case) = current.as_mut() {
                            case.status = match name.as_ref() {
                                b"failure" => ResultStatus::Failed,
                                b"error" => ResultStatus::Error,
                                _ => ResultStatus::Skipped,
                            };
                            case.message = attr(b"message")?.map(|m| cut_owned(m, MESSAGE_MAX)).or(case.message.take());
                            in_message = !empty;
                        }
                    }
                    _ => {}
                }
            }
            Event::Text(t) if in_message => {
                if let Some(case) = current.as_mut() {
                    if case.message.is_none() {
                        let text = t.decode().map_err(|e| format!("bad text: {e}"))?;
                        case.message = Some(cut(&text, MESSAGE_MAX).to_owned());
                    }
                }
            }
            Event::CData(t) if in_message => {
                if let Some(case) = current.as_mut() {
                    if case.message.is_none() {
                        case.message = Some(cut(&String::from_utf8_lossy(&t), MESSAGE_MAX).to_owned());
                    }
                }
            }
            Event::End(e) => match e.name().as_ref() {
                b"testsuite" => {
                    suites.pop();
                }
                b"testcase" => {
                    if let Some(case) = current.take() {
                        emit(case)?;
                    }
                }
                b"failure" | b"error" | b"skipped" => in_message = false,
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !saw_root {
        return Err(ReportError::Invalid("not a JUnit report: no <testsuites> or <testsuite> element".into()));
    }
    Ok(())
}

/// Peak heap use of a closure on this thread: a counting allocator for the tests.
#[cfg(test)]
mod peak {
    use std::{
        alloc::{GlobalAlloc, Layout, System},
        cell::Cell,
    };

    thread_local! {
        static LIVE: Cell<usize> = const { Cell::new(0) };
        static PEAK: Cell<usize> = const { Cell::new(0) };
    }

    struct Counting;

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let p = unsafe { System.alloc(layout) };
            if !p.is_null() {
                let _ = LIVE.try_with(|live| {
                    live.set(live.get() + layout.size());
                    let _ = PEAK.try_with(|peak| peak.set(peak.get().max(live.get())));
                });
            }
            p
        }
        unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
            unsafe { System.dealloc(p, layout) };
            let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(layout.size())));
        }
    }

    #[global_allocator]
    static COUNTING: Counting = Counting;

    /// `f`'s result and how far the heap rose above where it stood before it ran.
    pub fn rise<T>(f: impl FnOnce() -> T) -> (T, usize) {
        let base = LIVE.with(Cell::get);
        PEAK.with(|p| p.set(base));
        let out = f();
        (out, PEAK.with(Cell::get) - base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junit_nested_suites_statuses_and_durations() {
        let xml = br#"<?xml version="1.0"?>
<testsuites>
  <testsuite name="outer">
    <testsuite name="inner">
      <testcase name="adds" classname="math" time="0.25"/>
      <testcase name="divides" classname="math" time="1.5"><failure message="expected 2, got 3">trace</failure></testcase>
      <testcase name="boots" time="0"><error message="panic"/></testcase>
      <testcase name="later"><skipped/></testcase>
    </testsuite>
  </testsuite>
</testsuites>"#;
        let r = parse(Format::Junit, xml).unwrap();
        assert_eq!(r.len(), 4);
        assert_eq!(
            (r[0].title.as_str(), r[0].status, r[0].duration_ms),
            ("math › adds", ResultStatus::Passed, Some(250))
        );
        assert_eq!((r[1].status, r[1].message.as_deref()), (ResultStatus::Failed, Some("expected 2, got 3")));
        assert_eq!((r[2].title.as_str(), r[2].status), ("inner › boots", ResultStatus::Error));
        assert_eq!((r[3].status, r[3].duration_ms), (ResultStatus::Skipped, None));
    }

    #[test]
    fn malformed_reports_say_what_failed() {
        let err = parse(Format::Junit, b"<testsuite><testcase name=\"a\" time=\"soon\"/></testsuite>").unwrap_err();
        assert!(err.contains("not a number"), "{err}");
        let err = parse(Format::Junit, b"<html><body/></html>").unwrap_err();
        assert!(err.contains("not a JUnit report"), "{err}");
        let err = parse(Format::Junit, b"<testsuite><testcase name=\"a\"></testsuite>").unwrap_err();
        assert!(err.contains("XML"), "{err}");
        let err = parse(Format::Playwright, b"{\"nope\": 1}").unwrap_err();
        assert!(err.contains("Playwright"), "{err}");
        let err = parse(Format::Playwright, b"{\"suites\": []}").unwrap_err();
        assert!(err.contains("no test results"), "{err}");
    }

    #[test]
    fn odd_titles_are_cleaned_not_refused() {
        // Inputs the fuzz targets found: an empty spec title, an empty testcase name,
        // and a name with new lines.
        let pw = br#"{"suites":[{"title":"","specs":[{"title":"","tests":[{"projectName":"","results":[{"status":"passed","duration":1}]}]}],"suites":[]}]}"#;
        assert_eq!(parse(Format::Playwright, pw).unwrap()[0].title, "untitled test 1");
        let junit =
            b"<testsuites><testsuite name=\"\"><testcase name=\"\"/><testcase name=\"a\nb\"/></testsuite></testsuites>";
        let titles: Vec<_> = parse(Format::Junit, junit).unwrap().into_iter().map(|r| r.title).collect();
        assert_eq!(titles, ["untitled test 1", "a b"]);
        let long = format!("<testsuite><testcase name=\"{}\"/></testsuite>", "x".repeat(2000));
        let r = parse(Format::Junit, long.as_bytes()).unwrap();
        assert_eq!(r[0].title.chars().count(), TITLE_MAX);
        for r in parse(Format::Junit, junit).unwrap() {
            assert!(!r.title.trim().is_empty() && !r.title.chars().any(|c| c.is_control() && c != '\t'));
        }
    }

    /// A suite's name is cut once, not copied into every test whole: 2 000 tests under a
    /// 256 KiB suite name raise the heap by a few MiB (titles of at most TITLE_MAX
    /// characters), not by 2 000 × 256 KiB = 500 MiB; a message is cut while it is read.
    #[test]
    fn long_shared_names_cost_no_copy_per_test() {
        let huge = "s".repeat(256 * 1024);
        let cases: String = (0..2000).map(|n| format!("<testcase name=\"t{n}\"/>")).collect();
        let xml = format!(
            "<testsuites><testsuite name=\"{huge}\">{cases}<testcase name=\"f\" classname=\"{huge}\"><failure>{huge}</failure></testcase></testsuite></testsuites>"
        );
        let (r, rise) = peak::rise(|| parse(Format::Junit, xml.as_bytes()).unwrap());
        assert_eq!(r.len(), 2001);
        assert!(r[0].title.starts_with("sss") && r[0].title.chars().count() == TITLE_MAX);
        assert_eq!(r[2000].message.as_deref().map(|m| m.chars().count()), Some(MESSAGE_MAX));
        assert!(rise < 4 * xml.len() + (8 << 20), "JUnit: the heap rose {rise} B for a {} B report", xml.len());

        let failing = |n: usize| {
            format!(
                r#"{{"title":"t{n}","tests":[{{"projectName":"p","results":[{{"status":"failed","duration":1,"error":{{"message":"{huge}"}}}}]}}]}}"#
            )
        };
        let passing =
            |n: usize| format!(r#"{{"title":"t{n}","tests":[{{"results":[{{"status":"passed","duration":1}}]}}]}}"#);
        let specs: Vec<String> = (0..2000).map(|n| if n < 3 { failing(n) } else { passing(n) }).collect();
        let json = format!(
            r#"{{"suites":[{{"title":"{huge}","specs":[],"suites":[{{"title":"{huge}","specs":[{}]}}]}}]}}"#,
            specs.join(",")
        );
        let (r, rise) = peak::rise(|| parse(Format::Playwright, json.as_bytes()).unwrap());
        assert_eq!(r.len(), 2000);
        assert!(r.iter().all(|i| i.title.chars().count() <= TITLE_MAX));
        assert_eq!(r[0].message.as_deref().map(|m| m.chars().count()), Some(MESSAGE_MAX));
        assert!(rise < 4 * json.len() + (8 << 20), "Playwright: the heap rose {rise} B for a {} B report", json.len());
    }

    #[test]
    fn reading_stops_at_the_first_result_past_the_limit() {
        let cases: String = (0..11).map(|n| format!("<testcase name=\"t{n}\"/>")).collect();
        let xml = format!("<testsuite>{cases}</testsuite>");
        assert_eq!(parse_at_most(Format::Junit, xml.as_bytes(), 11).unwrap().len(), 11);
        assert_eq!(parse_at_most(Format::Junit, xml.as_bytes(), 10), Err(ReportError::TooManyResults(10)));
        let specs: Vec<String> =
            (0..11).map(|n| format!(r#"{{"title":"t{n}","tests":[{{"results":[{{"status":"passed"}}]}}]}}"#)).collect();
        let json = format!(r#"{{"suites":[{{"title":"a","specs":[{}]}}]}}"#, specs.join(","));
        assert_eq!(parse_at_most(Format::Playwright, json.as_bytes(), 11).unwrap().len(), 11);
        assert_eq!(parse_at_most(Format::Playwright, json.as_bytes(), 10), Err(ReportError::TooManyResults(10)));
    }

    /// Reading holds the result being read, never the report's results: 50 000 tests
    /// stream through with the heap a few KiB above where it started (a list of them
    /// would take several MiB), from memory and from a stream alike.
    #[test]
    fn a_title_last_suite_holds_a_bounded_amount() {
        // Each `{}` is a test that would hold a copy of the spec's 2 000-byte title until
        // the suite's title, last, is read: 1.5 MiB of tests would hold 1 GiB.
        let long = "\u{1F600}".repeat(TITLE_MAX);
        let tests = vec!["{}"; 500_000].join(",");
        let json = format!(r#"{{"suites":[{{"specs":[{{"title":"{long}","tests":[{tests}]}}],"title":"s"}}]}}"#);
        let (read, rise) =
            peak::rise(|| read(Format::Playwright, json.as_bytes(), usize::MAX, |_| ControlFlow::Continue(())));
        let err = read.unwrap_err().to_string();
        assert!(err.contains("comes after more than 16 MiB"), "{err}");
        assert!(rise < HOLD_MAX_BYTES + 4 * json.len(), "the heap rose {} MiB", rise >> 20);
        // Title-last suites of ordinary size still read (as `jq -S` writes them).
        let small = format!(r#"{{"suites":[{{"specs":[{{"tests":[{{}},{{}}],"title":"{long}"}}],"title":"s"}}]}}"#);
        assert_eq!(parse(Format::Playwright, small.as_bytes()).unwrap().len(), 2);
    }

    #[test]
    fn a_million_attempts_cost_one() {
        let attempts = vec![r#"{"status":"failed","duration":1}"#; 200_000].join(",");
        let json = format!(
            r#"{{"suites":[{{"title":"s","specs":[{{"title":"t","tests":[{{"results":[{attempts},{{"status":"passed","duration":2}}]}}]}}]}}]}}"#
        );
        let (r, rise) = peak::rise(|| parse(Format::Playwright, json.as_bytes()).unwrap());
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].status, r[0].duration_ms), (ResultStatus::Passed, Some(200_002)), "the last attempt decides");
        assert!(rise < 1 << 20, "200 000 attempts raised the heap by {rise} B");
    }

    #[test]
    fn reading_holds_one_result_at_a_time() {
        let cases: String = (0..50_000)
            .map(|n| {
                format!("<testcase name=\"t{n}\" classname=\"c\" time=\"0.1\"><failure message=\"m{n}\"/></testcase>")
            })
            .collect();
        let xml = format!("<testsuites><testsuite name=\"s\">{cases}</testsuite></testsuites>");
        let specs: Vec<String> = (0..50_000)
            .map(|n| format!(r#"{{"title":"t{n}","tests":[{{"projectName":"p","results":[{{"status":"failed","duration":1,"error":{{"message":"m{n}"}}}}]}}]}}"#))
            .collect();
        let json = format!(r#"{{"suites":[{{"title":"a","specs":[{}]}}]}}"#, specs.join(","));
        for (format, bytes) in [(Format::Junit, xml.as_bytes()), (Format::Playwright, json.as_bytes())] {
            let mut last = None;
            let (tally, rise) = peak::rise(|| {
                read(format, bytes, usize::MAX, |r| {
                    last = Some(r);
                    ControlFlow::Continue(())
                })
            });
            assert_eq!(tally.unwrap().failed, 50_000, "{format:?}");
            assert_eq!(last.unwrap().message.as_deref(), Some("m49999"));
            assert!(rise < 256 << 10, "{format:?}: reading from memory raised the heap by {rise} B");
            let (tally, rise) = peak::rise(|| {
                read_from(format, std::io::BufReader::new(bytes), usize::MAX, |_| ControlFlow::Continue(()))
            });
            assert_eq!(tally.unwrap().total, 50_000);
            assert!(rise < 256 << 10, "{format:?}: reading a stream raised the heap by {rise} B");
        }
    }

    /// Keys in any order (as `jq -S` sorts them: `specs` and `suites` before `title`,
    /// `tests` before `title`) give the same titles.
    #[test]
    fn playwright_keys_in_any_order() {
        let ordered = br#"{"suites":[{"title":"a.spec.ts","specs":[{"title":"works","tests":[{"projectName":"chromium","results":[{"status":"passed","duration":2}],"status":"expected"}]}],"suites":[{"title":"group","specs":[{"title":"nested","tests":[{"projectName":"","results":[{"duration":1,"status":"failed"}],"status":"unexpected"}]}]}]}]}"#;
        let sorted = br#"{"suites":[{"specs":[{"tests":[{"projectName":"chromium","results":[{"duration":2,"status":"passed"}],"status":"expected"}],"title":"works"}],"suites":[{"specs":[{"tests":[{"projectName":"","results":[{"duration":1,"status":"failed"}],"status":"unexpected"}],"title":"nested"}],"title":"group"}],"title":"a.spec.ts"}]}"#;
        let a = parse(Format::Playwright, ordered).unwrap();
        let titles: Vec<_> = a.iter().map(|r| r.title.as_str()).collect();
        assert_eq!(titles, ["a.spec.ts › works [chromium]", "a.spec.ts › group › nested"]);
        assert_eq!(parse(Format::Playwright, sorted).unwrap(), a);
        let err = parse(Format::Playwright, br#"{"suites":[{"specs":[{"tests":[]}]}]}"#).unwrap_err();
        assert!(err.contains("title"), "{err}");
    }

    /// Reading from memory (the server) and from a stream in 7-byte reads (the client, a
    /// file) agree on every fuzz seed and on the real reports of the server's tests:
    /// the same results, or both a refusal.
    #[test]
    fn memory_and_stream_read_alike() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let mut files = vec![
            (Format::Junit, format!("{root}/server/tests/fixtures/pytest-junit.xml")),
            (Format::Playwright, format!("{root}/server/tests/fixtures/playwright-report.json")),
        ];
        for (format, dir) in [(Format::Junit, "import_junit"), (Format::Playwright, "import_playwright")] {
            for entry in std::fs::read_dir(format!("{root}/fuzz/corpus/{dir}")).unwrap() {
                files.push((format, entry.unwrap().path().display().to_string()));
            }
        }
        assert!(files.len() > 20, "the seeds are missing");
        let mut read_ok = 0;
        for (format, file) in &files {
            let bytes = std::fs::read(file).unwrap();
            let mut streamed = Vec::new();
            let from_stream = read_from(*format, std::io::BufReader::with_capacity(7, &bytes[..]), usize::MAX, |r| {
                streamed.push(r);
                ControlFlow::Continue(())
            });
            match parse(*format, &bytes) {
                Ok(results) => {
                    read_ok += 1;
                    assert_eq!(from_stream.map(|t| t.total), Ok(results.len() as u64), "{file}");
                    assert_eq!(streamed, results, "{file}");
                }
                Err(_) => assert!(from_stream.is_err(), "{file}"),
            }
        }
        assert!(read_ok >= 2, "the real reports read");
    }

    #[test]
    fn a_taker_can_stop_the_reading() {
        let xml = b"<testsuite><testcase name=\"a\"/><testcase name=\"b\"/></testsuite>";
        let json = br#"{"suites":[{"title":"s","specs":[{"title":"a","tests":[{}]},{"title":"b","tests":[{}]}]}]}"#;
        for (format, bytes) in [(Format::Junit, &xml[..]), (Format::Playwright, &json[..])] {
            let mut seen = 0;
            let read = read(format, bytes, usize::MAX, |_| {
                seen += 1;
                ControlFlow::Break(())
            });
            assert_eq!((read, seen), (Err(ReportError::Stopped), 1), "{format:?}");
        }
    }

    #[test]
    fn playwright_titles_statuses_and_retries() {
        let json = br#"{"config":{},"suites":[{"title":"a.spec.ts","file":"a.spec.ts","specs":[
            {"title":"works","tests":[{"projectName":"chromium","status":"expected","results":[{"status":"passed","duration":12.4}]}]},
            {"title":"flaky","tests":[{"projectName":"chromium","status":"flaky","results":[{"status":"failed","duration":5,"error":{"message":"boom"}},{"status":"passed","duration":7}]}]},
            {"title":"broken","tests":[{"projectName":"chromium","status":"unexpected","results":[{"status":"timedOut","duration":30000,"error":{"message":"Test timeout"}}]}]},
            {"title":"todo","tests":[{"projectName":"chromium","status":"skipped","results":[{"status":"skipped","duration":0}]}]}
          ],"suites":[{"title":"group","specs":[{"title":"nested","tests":[{"projectName":"","status":"expected","results":[{"status":"passed","duration":1}]}]}]}]}]}"#;
        let r = parse(Format::Playwright, json).unwrap();
        let got: Vec<_> = r.iter().map(|i| (i.title.as_str(), i.status, i.duration_ms)).collect();
        assert_eq!(
            got,
            [
                ("a.spec.ts › works [chromium]", ResultStatus::Passed, Some(12)),
                ("a.spec.ts › flaky [chromium]", ResultStatus::Passed, Some(12)),
                ("a.spec.ts › broken [chromium]", ResultStatus::Failed, Some(30000)),
                ("a.spec.ts › todo [chromium]", ResultStatus::Skipped, Some(0)),
                ("a.spec.ts › group › nested", ResultStatus::Passed, Some(1)),
            ]
        );
        assert_eq!(r[2].message.as_deref(), Some("Test timeout"));
    }
}
