//! Records what this binary was built from, for `/version` and the logs.
//!
//! Three facts are passed to the compiler as environment variables:
//! `API_GIT_REVISION` (the short commit hash, or `GIT_REVISION` when set by a
//! container build that has no `.git`, or `unknown`), `API_BUILD_PROFILE`
//! (`debug` or `release`) and `API_RUSTC_VERSION`.

use std::{env, path::Path, process::Command};

fn main() {
    let revision = env::var("GIT_REVISION")
        .ok()
        .filter(|value| !value.trim().is_empty())
        .or_else(git_revision)
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=API_GIT_REVISION={revision}");

    let profile = env::var("PROFILE").unwrap_or_else(|_| "unknown".to_owned());
    println!("cargo:rustc-env=API_BUILD_PROFILE={profile}");

    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let rustc_version = command_output(&rustc, &["--version"])
        .and_then(|line| line.split_whitespace().nth(1).map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=API_RUSTC_VERSION={rustc_version}");

    // Rebuild when the checked-out commit moves, not on every source change.
    println!("cargo:rerun-if-env-changed=GIT_REVISION");
    let git_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.git");
    for watched in ["HEAD", "refs/heads"] {
        let path = git_dir.join(watched);
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}

/// The short hash of the checked-out commit, when this is a git checkout.
fn git_revision() -> Option<String> {
    command_output("git", &["rev-parse", "--short=12", "HEAD"])
}

/// The first line a command prints, when it runs and succeeds.
fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program).args(args).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let stdout = String::from_utf8(output.stdout).ok()?;
    let line = stdout.lines().next()?.trim().to_owned();
    (!line.is_empty()).then_some(line)
}
