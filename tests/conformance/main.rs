//! The conformance suite: every case in `cases` runs against the Rust API (the component
//! in wasmtime), the CLI binary and the native core, each in a fresh temporary directory.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

mod bad_input;
mod cases;
mod concurrency;
mod crash;
mod crash_load;
mod erasure;
mod faults;
mod front;
mod keys;
mod legacy;
mod log_cases;
mod many_hosts;
mod metadata;
mod migrate_redis;
mod model;
mod power_cut;
mod rollback;

suite!(api, crate::front::Api, files);
suite!(cli, crate::front::Cli, files);
suite!(native, crate::front::Native, files);
suite!(api_log, crate::front::Api, log);
suite!(cli_log, crate::front::Cli, log);
suite!(native_log, crate::front::Native, log);
suite!(api_redis, crate::front::Api, redis);
suite!(cli_redis, crate::front::Cli, redis);
suite!(native_redis, crate::front::Native, redis);

/// The `redis` backend across hosts, with a real server (see `many_hosts`).
mod redis_hosts {
    #[test]
    fn many_hosts_lose_no_update() {
        crate::many_hosts::many_hosts_lose_no_update();
    }
    #[test]
    fn a_live_id_is_created_once_across_hosts() {
        crate::many_hosts::a_live_id_is_created_once_across_hosts();
    }
    #[test]
    fn a_server_killed_and_restarted_loses_nothing_acknowledged() {
        crate::many_hosts::a_server_killed_and_restarted_loses_nothing_acknowledged();
    }
    #[test]
    fn foreign_keys_and_tampered_values_are_refused() {
        crate::many_hosts::foreign_keys_and_tampered_values_are_refused();
    }
    #[test]
    fn a_moved_directory_opens_its_bucket_and_the_vault_serves_on() {
        crate::many_hosts::a_moved_directory_opens_its_bucket_and_the_vault_serves_on();
    }
    #[test]
    fn an_unreachable_server_is_unavailable_not_a_hang() {
        crate::many_hosts::an_unreachable_server_is_unavailable_not_a_hang();
    }
    #[test]
    fn a_store_past_one_scan_page_is_listed_whole() {
        crate::many_hosts::a_store_past_one_scan_page_is_listed_whole();
    }
    #[test]
    fn a_value_put_back_in_redis_is_refused_by_every_host() {
        crate::many_hosts::a_value_put_back_in_redis_is_refused_by_every_host();
    }
    #[test]
    fn a_prefix_is_written_as_redis_users_write_it() {
        crate::many_hosts::a_prefix_is_written_as_redis_users_write_it();
    }
}
