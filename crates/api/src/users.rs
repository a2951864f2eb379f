//! The users resource: its record, and the validated values it is made of.
//!
//! Input reaches the store only as these types, each built by a `parse`
//! constructor that says what is wrong with a bad value. Storage and HTTP
//! live elsewhere; this module knows neither.

use std::{fmt, str::FromStr};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::Serialize;
use time::OffsetDateTime;

/// A stored user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// Assigned by the store; never reused.
    pub id: UserId,
    /// Display name, trimmed.
    pub name: String,
    /// Address as the user spelled it, trimmed.
    pub email: String,
    /// When the user was created, UTC.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the user was last changed, UTC.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// The identifier of a user: a positive integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct UserId(i64);

impl UserId {
    /// Wraps an id read from the store.
    pub fn from_stored(id: i64) -> Self {
        Self(id)
    }

    /// The id as the store keeps it.
    pub fn get(self) -> i64 {
        self.0
    }
}

impl FromStr for UserId {
    type Err = &'static str;

    /// Accepts decimal digits only: no sign, no spaces, no leading `+`.
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        const INVALID: &str = "a user id is a positive integer";
        if raw.is_empty() || !raw.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(INVALID);
        }
        match raw.parse::<i64>() {
            Ok(id) if id > 0 => Ok(Self(id)),
            _ => Err(INVALID),
        }
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A display name: 1 to 100 characters after trimming, no control
/// characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserName(String);

impl UserName {
    /// Longest name accepted, in characters.
    pub const MAX_CHARS: usize = 100;

    /// Trims and checks a name.
    ///
    /// # Errors
    ///
    /// Says why the name is refused: empty, too long, or holding a control
    /// character (newlines and NUL included).
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let name = raw.trim();
        if name.is_empty() {
            return Err("must not be empty");
        }
        if name.chars().count() > Self::MAX_CHARS {
            return Err("must be at most 100 characters");
        }
        if name.chars().any(char::is_control) {
            return Err("must not contain control characters");
        }
        Ok(Self(name.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address, checked for syntax.
///
/// The accepted form is the common one that mail providers issue:
/// `local@domain`, where the local part is made of letters, digits and
/// ``!#$%&'*+/=?^_`{|}~-`` in dot-separated runs, and the domain of at least
/// two dot-separated labels of letters, digits and inner hyphens. Quoted
/// local parts, IP-literal domains and non-ASCII addresses are refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    address: String,
    key: String,
}

impl Email {
    /// Longest address accepted, in bytes (the limit of an SMTP path).
    pub const MAX_LEN: usize = 254;

    /// Trims and checks an address.
    ///
    /// # Errors
    ///
    /// Says why the address is refused.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let address = raw.trim();
        if address.is_empty() {
            return Err("must not be empty");
        }
        if address.len() > Self::MAX_LEN {
            return Err("must be at most 254 characters");
        }
        let Some((local, domain)) = address.rsplit_once('@') else {
            return Err("must be an email address such as name@example.com");
        };
        if !is_local_part(local) || !is_domain(domain) {
            return Err("must be an email address such as name@example.com");
        }

        // The address is ASCII by now, so ASCII folding is complete folding.
        Ok(Self {
            address: address.to_owned(),
            key: address.to_ascii_lowercase(),
        })
    }

    /// The address as given, trimmed.
    pub fn as_str(&self) -> &str {
        &self.address
    }

    /// The address folded to lower case: equal keys are the same address.
    pub fn key(&self) -> &str {
        &self.key
    }
}

fn is_local_part(local: &str) -> bool {
    const SPECIALS: &[u8] = b"!#$%&'*+/=?^_`{|}~-";
    (1..=64).contains(&local.len())
        && local.split('.').all(|run| {
            !run.is_empty()
                && run
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || SPECIALS.contains(&byte))
        })
}

fn is_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
        })
}

/// A user to create, validated.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Display name.
    pub name: UserName,
    /// Email address.
    pub email: Email,
}

/// Changes to a user, validated; at least one field is set.
#[derive(Debug, Clone)]
pub struct UserChanges {
    /// New display name, if it changes.
    pub name: Option<UserName>,
    /// New email address, if it changes.
    pub email: Option<Email>,
}

/// Where a page of the newest-first list starts: after this id.
///
/// Clients see it only as an opaque token, so its encoding can change
/// without breaking them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The last id of the previous page; the next page holds smaller ids.
    pub after: UserId,
}

impl Cursor {
    /// Version tag inside every token, so old tokens can be told apart.
    const PREFIX: &'static str = "v1:";

    /// The token handed to clients.
    pub fn encode(self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}{}", Self::PREFIX, self.after))
    }

    /// Reads a token that `encode` produced.
    ///
    /// # Errors
    ///
    /// Fails for any string that `encode` cannot have produced.
    pub fn decode(token: &str) -> Result<Self, &'static str> {
        const INVALID: &str = "the cursor is not one this service issued";
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| INVALID)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| INVALID)?;
        let id = text.strip_prefix(Self::PREFIX).ok_or(INVALID)?;
        let after = id.parse().map_err(|_| INVALID)?;
        Ok(Self { after })
    }
}

/// What a client asked of the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// Most users on the page.
    pub limit: u32,
    /// Where to start; the newest user when absent.
    pub cursor: Option<Cursor>,
}

impl PageRequest {
    /// Page size when the client names none.
    pub const DEFAULT_LIMIT: u32 = 50;
    /// Largest page size a client may ask for.
    pub const MAX_LIMIT: u32 = 500;
}

/// One page of the newest-first list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Users, newest first.
    pub users: Vec<User>,
    /// Where the next page starts, when there is one.
    pub next: Option<Cursor>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_are_positive_decimal_integers() {
        assert_eq!("42".parse(), Ok(UserId(42)));
        assert_eq!("9223372036854775807".parse(), Ok(UserId(i64::MAX)));
        for bad in [
            "",
            "0",
            "-1",
            "+1",
            " 1",
            "1.0",
            "abc",
            "9223372036854775808",
            "١",
        ] {
            assert!(bad.parse::<UserId>().is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            UserName::parse("  Ada Lovelace ").map(|n| n.0),
            Ok("Ada Lovelace".into())
        );
        assert!(
            UserName::parse(&"é".repeat(100)).is_ok(),
            "100 characters, 200 bytes"
        );
        let cases = [
            ("", "empty"),
            ("   ", "blank"),
            ("a\nb", "newline"),
            ("a\0b", "NUL"),
        ];
        for (name, why) in cases {
            assert!(UserName::parse(name).is_err(), "{why} was accepted");
        }
        assert!(
            UserName::parse(&"x".repeat(101)).is_err(),
            "101 characters was accepted"
        );
    }

    #[test]
    fn common_addresses_are_accepted() {
        for address in [
            "ada@example.com",
            "a.b+tag@mail.example.co.uk",
            "o'neil@x-y.io",
            "A@B.CD",
        ] {
            assert!(Email::parse(address).is_ok(), "{address} was refused");
        }
    }

    #[test]
    fn malformed_addresses_are_refused() {
        let cases = [
            "plain",
            "@example.com",
            "ada@",
            "ada@localhost",
            "ada@@example.com",
            "ada@exa mple.com",
            ".ada@example.com",
            "ada.@example.com",
            "a..da@example.com",
            "ada@-example.com",
            "ada@example..com",
            "\"quoted\"@example.com",
            "ada@[127.0.0.1]",
            "adà@example.com",
            "ada@example.com\0",
        ];
        for address in cases {
            assert!(Email::parse(address).is_err(), "{address:?} was accepted");
        }
    }

    #[test]
    fn addresses_longer_than_254_bytes_are_refused() {
        let label = "a".repeat(60);
        let long = format!("user@{label}.{label}.{label}.{label}.{label}.com");
        assert!(long.len() > 254);

        assert!(Email::parse(&long).is_err());
    }

    #[test]
    fn email_keys_ignore_case() {
        let email = Email::parse(" Ada@Example.COM ").expect("valid");

        assert_eq!(email.as_str(), "Ada@Example.COM");
        assert_eq!(email.key(), "ada@example.com");
    }

    #[test]
    fn cursors_round_trip_and_reject_foreign_tokens() {
        let cursor = Cursor { after: UserId(17) };

        assert_eq!(Cursor::decode(&cursor.encode()), Ok(cursor));
        for bad in ["", "17", "djE6", "djE6LTE", "not base64!", "djI6MTc"] {
            assert!(Cursor::decode(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
