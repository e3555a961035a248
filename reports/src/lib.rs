//! Report readers: a Playwright JSON report or a JUnit XML file becomes a list of
//! results. Pure functions, shared by the server (which stores them) and the `qa-hub`
//! client (which counts a file's tests before it uploads, to check the server's receipt).
//! JUnit is read as a stream (quick-xml), Playwright into a typed tree that skips
//! everything it does not need.
//!
//! Memory stays proportional to the report, never to its size times its number of tests:
//! every title is cut to [`TITLE_MAX`] and every message to [`MESSAGE_MAX`] *while*
//! reading, and a suite's name is cut once, before any test's title is built from it (a
//! 32 MiB suite name shared by 10 000 tests costs 10 000 short titles, not 320 GiB). A
//! report with more than the allowed number of results stops being read at the first one
//! past it ([`parse_at_most`]).

use serde::Deserialize;

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
}

impl std::fmt::Display for ReportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReportError::Invalid(why) => f.write_str(why),
            ReportError::TooManyResults(max) => write!(f, "the report holds more than {max} test results"),
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
            t.total += 1;
            match r.status {
                ResultStatus::Passed => t.passed += 1,
                ResultStatus::Failed => t.failed += 1,
                ResultStatus::Skipped => t.skipped += 1,
                ResultStatus::Error => t.error += 1,
            }
        }
        t
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

pub fn parse(format: Format, bytes: &[u8]) -> Result<Vec<Imported>, String> {
    parse_at_most(format, bytes, usize::MAX).map_err(|e| e.to_string())
}

/// [`parse`], refusing a report with more than `max` results as soon as it reads one more.
pub fn parse_at_most(format: Format, bytes: &[u8], max: usize) -> Result<Vec<Imported>, ReportError> {
    let mut results = match format {
        Format::Playwright => playwright(bytes, max)?,
        Format::Junit => junit(bytes, max)?,
    };
    if results.is_empty() {
        return Err(ReportError::Invalid("the report holds no test results".into()));
    }
    for (n, result) in results.iter_mut().enumerate() {
        result.title = clean_title(&result.title, n + 1);
    }
    Ok(results)
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

#[derive(Deserialize)]
struct PwReport {
    suites: Vec<PwSuite>,
}

#[derive(Deserialize)]
struct PwSuite {
    #[serde(default)]
    title: String,
    #[serde(default)]
    specs: Vec<PwSpec>,
    #[serde(default)]
    suites: Vec<PwSuite>,
}

#[derive(Deserialize)]
struct PwSpec {
    title: String,
    #[serde(default)]
    tests: Vec<PwTest>,
}

#[derive(Deserialize)]
struct PwTest {
    #[serde(default, rename = "projectName")]
    project_name: String,
    #[serde(default)]
    results: Vec<PwResult>,
    #[serde(default)]
    status: String,
}

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

fn playwright(bytes: &[u8], max: usize) -> Result<Vec<Imported>, ReportError> {
    let report: PwReport = serde_json::from_slice(bytes).map_err(|e| format!("not a Playwright JSON report: {e}"))?;
    let mut out = Vec::new();
    for suite in &report.suites {
        walk(suite, "", &mut out, max)?;
    }
    Ok(out)
}

/// `prefix`: the enclosing suites' titles, already cut to [`TITLE_MAX`].
fn walk(suite: &PwSuite, prefix: &str, out: &mut Vec<Imported>, max: usize) -> Result<(), ReportError> {
    let joined;
    let prefix = match (prefix.is_empty(), suite.title.is_empty()) {
        (_, true) => prefix,
        (true, false) => cut(&suite.title, TITLE_MAX),
        (false, false) => {
            joined = format!("{prefix} › {}", cut(&suite.title, TITLE_MAX));
            cut(&joined, TITLE_MAX)
        }
    };
    for spec in &suite.specs {
        for test in &spec.tests {
            if out.len() >= max {
                return Err(ReportError::TooManyResults(max));
            }
            let mut title = String::with_capacity(prefix.len() + 64);
            title.push_str(prefix);
            if !title.is_empty() {
                title.push_str(" › ");
            }
            title.push_str(cut(&spec.title, TITLE_MAX));
            if !test.project_name.is_empty() {
                title.push_str(&format!(" [{}]", cut(&test.project_name, TITLE_MAX)));
            }
            let title = cut_owned(title, TITLE_MAX);
            // The last attempt decides (retries may pass a flaky test).
            let last = test.results.last();
            let status = match (last.map(|r| r.status.as_str()), test.status.as_str()) {
                (_, "skipped") | (Some("skipped"), _) => ResultStatus::Skipped,
                (Some("passed"), _) => ResultStatus::Passed,
                (Some("failed") | Some("timedOut"), _) => ResultStatus::Failed,
                (Some("interrupted"), _) => ResultStatus::Error,
                (None, "expected") => ResultStatus::Passed,
                (None, _) => ResultStatus::Skipped,
                _ => ResultStatus::Error,
            };
            let duration_ms = Some(test.results.iter().map(|r| r.duration.max(0.0)).sum::<f64>().round() as u64);
            let message = last
                .and_then(|r| r.error.as_ref())
                .and_then(|e| e.message.as_deref())
                .map(|m| cut(m, MESSAGE_MAX).to_owned());
            out.push(Imported { title, status, duration_ms, message });
        }
    }
    for child in &suite.suites {
        walk(child, prefix, out, max)?;
    }
    Ok(())
}

// ---- JUnit XML -------------------------------------------------------------------

fn junit(bytes: &[u8], max: usize) -> Result<Vec<Imported>, ReportError> {
    use quick_xml::events::Event;

    let mut reader = quick_xml::Reader::from_reader(bytes);
    reader.config_mut().trim_text(true);
    let mut buf = Vec::new();
    let mut out = Vec::new();
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
                        if out.len() >= max {
                            return Err(ReportError::TooManyResults(max));
                        }
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
                            out.push(case);
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
                b"testcase" => out.extend(current.take()),
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
    Ok(out)
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
