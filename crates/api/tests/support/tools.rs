//! What some tests need from the machine: external tools found on PATH, or
//! a privilege. Without it such a test cannot run: locally it is skipped
//! with a loud warning; in CI (`CI=true`) that is a failure, because CI must
//! provide whatever the tests need.

use std::path::PathBuf;

/// The program `name` from PATH, or `None` when `test` must be skipped.
pub(crate) fn find_tool(name: &str, test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    });
    if found.is_none() {
        cannot_run(
            test,
            &format!("{name} is not installed"),
            "CI must install it (Debian package `prometheus`)",
        );
    }
    found
}

/// Reports that `test` cannot run here because of `reason`, so that the
/// caller can return early: a loud warning locally, a panic in CI with
/// `remedy` saying what CI must provide.
pub(crate) fn cannot_run(test: &str, reason: &str, remedy: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test} cannot run: {reason}; {remedy}"
    );
    eprintln!("SKIPPED {test}: {reason}");
}
