//! The conformance cases, each generic over the front end. `suite!` instantiates every
//! one of them for a front, so a case cannot be forgotten for one front.
//!
//! This file holds the helpers the cases share and `suite!`; the cases are in one file per
//! concern under `cases/`, re-exported here with the case modules beside it, so that
//! `suite!` names every case `cases::<case>`.

mod arbitrary_json;
mod damage;
mod expiry;
mod fixtures;
mod free_form;
mod input;
mod layout;
mod migrate;
mod opening;
mod operations;

use serde_json::{Value, json};

use crate::front::{Front, Setup, T0};

pub const MINUTE: u64 = 60_000;

/// A session document shaped like the original's, with extra members at every level.
pub fn doc(id: &str, user: &str, expires_at: u64) -> Value {
    json!({
        "sessionId": id,
        "sessionToken": format!("tok-{id}-Hsd_b0HbaDQ7w1bEvRyf"),
        "userContext": {
            "userId": user, "email": format!("{user}@example.org"), "name": "Zoë Ünïcødé",
            "tenantId": "tenant-1", "roles": ["reader", "admin"], "locale": "de-CH"
        },
        "tokenMetadata": {
            "accessToken": format!("access-{id}-e+pZgs+Yck/1Al1Kp425yazSznVF5Vtp"),
            "refreshToken": "refresh-NpMeLHtbwawcAUDdS/N6sBifB8Q",
            "expiresAt": T0 + 60 * MINUTE, "scopes": ["openid", "profile"],
            "issuer": {"url": "https://idp.example.org", "kid": 7}
        },
        "security": {
            "ipAddress": "203.0.113.9", "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Test/1.0",
            "createdAt": T0, "lastAccessedAt": T0, "accessCount": 1,
            "fingerprint": "0962a891121323490d86c2114b2d83d3", "risk": [0.25, null, true]
        },
        "expiresAt": expires_at,
        "createdAt": T0,
        "deviceName": "laptop-ünï", "flags": {"beta": true, "nested": {"deep": [1, {"x": "y"}]}}
    })
}

pub fn open<F: Front>(setup: &Setup) -> F {
    F::open(setup).unwrap_or_else(|kind| panic!("open failed with {kind}"))
}

fn reopen<F: Front>(front: F, setup: &Setup) -> F {
    drop(front);
    open(setup)
}

/// Runs `f` with the store closed (dropped), then reopens it.
pub fn while_closed<F: Front>(front: F, setup: &Setup, f: impl FnOnce()) -> F {
    drop(front);
    f();
    open(setup)
}

pub fn ids(sessions: &[Value]) -> Vec<&str> {
    sessions
        .iter()
        .map(|s| s["sessionId"].as_str().expect("sessionId is a string"))
        .collect()
}

/// Instantiates the suite for one front and one backend: `files` runs every case, `log`
/// the cases that do not look at the `files` layout (the log's own damage and recovery
/// cases are in `guest/src/backend/log/`).
#[macro_export]
macro_rules! suite {
    ($module:ident, $front:ty, files) => {
        mod $module {
            $crate::suite!(@common $front, Files);
            // These also look at the `files` layout itself (names, bytes of `<id>.svs`).
            $crate::suite!(@cases $front, Files;
                a_cached_session_changed_on_disk_is_refused_not_served,
                a_damaged_file_can_be_deleted,
                a_file_renamed_to_another_id_fails_to_decrypt,
                a_flipped_byte_is_quarantined_and_the_rest_survives,
                a_session_damaged_while_open_is_reported_as_corrupted_once,
                a_backup_under_a_retired_key_is_kept_then_refused_as_an_older_copy,
                an_older_copy_put_back_while_open_is_corrupted,
                files_hold_no_plaintext,
                foreign_entries_are_left_alone,
                no_temporary_files_are_left_and_leftovers_are_removed,
                touch_writes_a_stamp_that_survives_reopen_and_is_void_when_torn,
                truncated_and_empty_files_are_quarantined,
            );
        }
    };
    ($module:ident, $front:ty, log) => {
        mod $module {
            $crate::suite!(@common $front, Log);
            $crate::suite!(@cases $front, Log;
                log_a_damaged_record_is_quarantined_and_the_rest_survives,
                log_a_record_that_fails_to_decrypt_is_quarantined_once,
                log_a_torn_append_is_cut_off_and_nothing_acknowledged_is_lost,
                log_segments_hold_no_plaintext_and_foreign_entries_are_left_alone,
                log_huge_sparse_segments_are_scanned_not_loaded,
            );
        }
    };
    // The shared store in a real Redis: every case that does not look at a directory.
    ($module:ident, $front:ty, redis) => {
        mod $module {
            $crate::suite!(@cases $front, Redis;
                create_then_get_returns_the_document_with_extra_fields,
                get_of_an_absent_session_is_none,
                update_merges_nested_objects_field_by_field,
                update_cannot_change_the_session_id,
                changing_the_user_moves_the_session,
                user_sessions_are_ordered_by_creation,
                create_refuses_a_live_id,
                delete_is_idempotent,
                a_wrong_secret_fails_at_open_and_loses_nothing,
                passphrase_stores_reopen_and_reject_short_or_wrong_phrases,
                malformed_documents_and_patches_are_invalid_input,
                oversized_sessions_are_too_large,
                model_random_operations_with_reopen,
                model_random_operations_relaxed,
                touch_records_an_access,
                a_store_rotated_twice_rekeyed_and_retired_keeps_every_session,
                legacy_import_brings_every_live_session_over_unchanged,
                legacy_import_run_again_imports_nothing_twice,
                legacy_import_reports_damaged_and_mismatched_files,
                legacy_import_with_a_wrong_secret_writes_nothing,
                clear_and_revoke_user_remove_what_they_say,
                expiry_applies_on_every_path,
                idle_timeout_expires_on_every_path_and_touch_extends_it,
                invalid_ids_are_refused_on_every_operation,
            );
            $crate::suite!(@free_form $front, Redis);
        }
    };
    // The cases every backend runs.
    (@common $front:ty, $backend:ident) => {
        $crate::suite!(@cases $front, $backend;
            create_then_get_returns_the_document_with_extra_fields,
            get_of_an_absent_session_is_none,
            update_merges_nested_objects_field_by_field,
            update_cannot_change_the_session_id,
            changing_the_user_moves_the_session,
            user_sessions_are_ordered_by_creation,
            create_refuses_a_live_id,
            delete_is_idempotent,
            a_wrong_secret_fails_at_open_and_loses_nothing,
            passphrase_stores_reopen_and_reject_short_or_wrong_phrases,
            malformed_documents_and_patches_are_invalid_input,
            oversized_sessions_are_too_large,
            a_second_opener_is_locked_out,
            the_store_directory_is_private,
            model_random_operations_with_reopen,
            model_random_operations_relaxed,
            touch_records_an_access,
            a_store_rotated_twice_rekeyed_and_retired_keeps_every_session,
            legacy_import_brings_every_live_session_over_unchanged,
            legacy_import_run_again_imports_nothing_twice,
            legacy_import_reports_damaged_and_mismatched_files,
            migrate_moves_every_session_there_and_back,
            clear_and_revoke_user_remove_what_they_say,
            expiry_applies_on_every_path,
            idle_timeout_expires_on_every_path_and_touch_extends_it,
            invalid_ids_are_refused_on_every_operation,
            legacy_import_with_a_wrong_secret_writes_nothing,
            missing_metadata_beside_sessions_is_refused,
            after_rekey_and_retire_no_record_opens_under_the_retired_key,
            retire_refuses_while_quarantine_holds_files,
            removed_sessions_leave_no_record_after_compact,
            immediate_erase_leaves_no_record_of_removed_sessions,
            files_are_0600_and_directories_0700,
            every_edited_metadata_field_is_refused_and_nothing_changes,
            version_1_metadata_is_upgraded_and_every_session_kept,
            version_2_stores_are_upgraded_and_every_record_rewritten,
            an_older_copy_put_back_is_refused_not_served,
            a_removed_session_put_back_is_refused_not_served,
            a_record_of_another_store_under_the_same_key_is_refused,
            a_missing_or_edited_ledger_refuses_to_open_and_changes_nothing,
            migrate_moves_a_store_into_redis_and_back,
        );
        $crate::suite!(@free_form $front, $backend);
    };
    // Any framework's session (issue 29): every backend, the shared store included.
    (@free_form $front:ty, $backend:ident) => {
        $crate::suite!(@cases $front, $backend;
                free_form_sessions_read_back_exactly,
                set_creates_or_replaces_whole,
                set_if_unchanged_stores_only_over_what_was_read,
                update_merges_into_free_form_sessions,
                stores_written_by_0_1_read_exactly_as_before,
                list_pages_through_every_live_session_once,
                touch_rolls_the_expiry_on_every_path,
                touch_bringing_the_expiry_forward_rewrites_the_session,
                a_removed_session_is_not_brought_back_by_set,
                a_maximum_lifetime_caps_every_path,
                arbitrary_json_objects_round_trip_exactly,
                stores_written_by_0_1_take_a_maximum_lifetime,
                writes_under_a_hold_are_kept_once_flushed,
        );
    };
    (@cases $front:ty, $backend:ident; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::front::with_backend(session_vault::BackendKind::$backend, || {
                    $crate::cases::$case::<$front>()
                });
            }
        )*
    };
}

pub use arbitrary_json::*;
pub use damage::*;
pub use expiry::*;
pub use fixtures::*;
pub use free_form::*;
pub use input::*;
pub use layout::*;
pub use migrate::*;
pub use opening::*;
pub use operations::*;

pub use crate::erasure::*;
pub use crate::keys::*;
pub use crate::legacy::*;
pub use crate::log_cases::*;
pub use crate::metadata::*;
pub use crate::migrate_redis::*;
pub use crate::model::{model_random_operations_relaxed, model_random_operations_with_reopen};
pub use crate::rollback::*;
