//! The Junit importer: any bytes give results or a message, never a panic; every result
//! has a title.
#![no_main]

use app::testing::server::import::{parse, Format};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse(Format::Junit, data) {
        Ok(results) => assert!(results.iter().all(|r| !r.title.is_empty())),
        Err(message) => assert!(!message.is_empty()),
    }
});
