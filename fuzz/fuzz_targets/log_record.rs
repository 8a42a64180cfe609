//! The log's record parser and its resynchronising scan: any bytes never panic, every
//! accepted record re-encodes to exactly its bytes, and the scan always moves forward.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    session_vault_guest::testing::fuzzing::scan(data);
});
