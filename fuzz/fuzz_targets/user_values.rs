//! Fuzzes the validated values of the users resource directly: names,
//! addresses, ids and list cursors, each from arbitrary text.
//!
//! Each `parse` is checked against its documented contract, in both
//! directions: what it accepts has the promised shape, and what it refuses
//! breaks a stated rule. This target runs far faster than `user_input`,
//! which reaches the same functions through the router, so it is the one to
//! run long.

#![no_main]

use api::users::{Cursor, Email, UserId, UserName};
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

/// Free text for every parser, and a number for the cursor round trip.
#[derive(Arbitrary, Debug)]
struct Input<'a> {
    text: &'a str,
    id: i64,
}

fuzz_target!(|input: Input<'_>| {
    check_name(input.text);
    check_email(input.text);
    check_user_id(input.text);
    check_cursor(input.text, input.id);
});

/// A name is accepted exactly when, trimmed, it has 1 to 100 characters and
/// no control character; it is kept trimmed.
fn check_name(text: &str) {
    let trimmed = text.trim();
    let length = trimmed.chars().count();
    let acceptable =
        (1..=UserName::MAX_CHARS).contains(&length) && !trimmed.chars().any(char::is_control);

    match UserName::parse(text) {
        Ok(name) => {
            assert!(acceptable, "accepted the name {text:?}");
            assert_eq!(name.as_str(), trimmed);
        }
        Err(reason) => assert!(!acceptable, "refused the name {text:?}: {reason}"),
    }
}

/// An accepted address is the trimmed text, ASCII, at most 254 bytes, with
/// an `@`; its key is its lower case, and both parse back to the same key.
fn check_email(text: &str) {
    let Ok(email) = Email::parse(text) else {
        return;
    };

    let address = email.as_str();
    assert_eq!(address, text.trim());
    assert!(address.is_ascii(), "{address:?}");
    assert!(address.len() <= Email::MAX_LEN, "{address:?}");
    assert!(address.contains('@'), "{address:?}");
    assert_eq!(email.key(), address.to_ascii_lowercase());
    for spelling in [address, email.key()] {
        let again = Email::parse(spelling).expect("an accepted address parses again");
        assert_eq!(again.key(), email.key());
    }
}

/// An id is accepted exactly when it is ASCII digits naming a positive
/// `i64`; leading zeros are allowed and dropped.
fn check_user_id(text: &str) {
    let acceptable = !text.is_empty()
        && text.bytes().all(|byte| byte.is_ascii_digit())
        && text.parse::<i64>().is_ok_and(|id| id > 0);

    match text.parse::<UserId>() {
        Ok(id) => {
            assert!(acceptable, "accepted the id {text:?}");
            assert_eq!(id.to_string(), text.trim_start_matches('0'));
        }
        Err(reason) => assert!(!acceptable, "refused the id {text:?}: {reason}"),
    }
}

/// Every cursor on a positive id survives encoding, in URL-safe characters,
/// and any token that decodes names a positive id and re-encodes to a
/// token that decodes the same.
fn check_cursor(text: &str, id: i64) {
    if id > 0 {
        let cursor = Cursor {
            after: UserId::from_stored(id),
        };
        let token = cursor.encode();
        assert!(
            token
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_'),
            "{token:?}"
        );
        assert_eq!(Cursor::decode(&token), Ok(cursor));
    }

    if let Ok(cursor) = Cursor::decode(text) {
        assert!(cursor.after.get() > 0, "{text:?} decoded to {cursor:?}");
        assert_eq!(Cursor::decode(&cursor.encode()), Ok(cursor));
    }
}
