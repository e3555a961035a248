//! The Playwright importer: any bytes give results or a message, never a panic; every result
//! has a title the service stores as it is.
#![no_main]

use reports::{parse, Format};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse(Format::Playwright, data) {
        // Every title is one the service stores as it is.
        Ok(results) => assert!(results.iter().all(|r| app::testing::normalize_title(&r.title).as_ref() == Ok(&r.title))),
        Err(message) => assert!(!message.is_empty()),
    }
});
