//! The Playwright importer: any bytes give results or a message, never a panic; every result
//! has a title the service stores as it is; reading from memory and from a stream agree.
#![no_main]

use reports::{parse, read_from, Format};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut streamed = Vec::new();
    let from_stream = read_from(Format::Playwright, std::io::BufReader::with_capacity(7, data), usize::MAX, |r| {
        streamed.push(r);
        std::ops::ControlFlow::Continue(())
    });
    let parsed = parse(Format::Playwright, data);
    match &parsed {
        Ok(results) => assert_eq!((from_stream.is_ok(), &streamed), (true, results)),
        Err(_) => assert!(from_stream.is_err()),
    }
    match parsed {
        // Every title is one the service stores as it is.
        Ok(results) => assert!(results.iter().all(|r| app::testing::normalize_title(&r.title).as_ref() == Ok(&r.title))),
        Err(message) => assert!(!message.is_empty()),
    }
});
