//! External tools some tests need, found on PATH.

use std::path::PathBuf;

/// The program `name` from PATH. Without it the calling test cannot run:
/// locally it is skipped with a loud warning; in CI (`CI=true`) that is a
/// failure, because CI must install what the tests need.
pub(crate) fn find_tool(name: &str, test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{name} is not installed; CI must install it (Debian package `prometheus`)"
        );
        eprintln!("SKIPPED {test}: {name} is not installed");
    }
    found
}
