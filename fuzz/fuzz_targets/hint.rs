//! The hint decoder: any bytes never panic; an accepted hint re-encodes to its bytes and
//! every entry fits the segment length it declares.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    session_vault_guest::testing::fuzzing::hint(data);
});
