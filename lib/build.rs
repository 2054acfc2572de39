//! Stamps the binary with the git commit it is built from (`CALLPLANE_GIT_COMMIT`, which a
//! build without a checkout can set itself), for `GET /info`.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=CALLPLANE_GIT_COMMIT");
    let commit = std::env::var("CALLPLANE_GIT_COMMIT").ok().or_else(|| {
        let out = Command::new("git")
            .args(["rev-parse", "HEAD"])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    });
    println!(
        "cargo:rustc-env=CALLPLANE_GIT_COMMIT={}",
        commit.unwrap_or_else(|| "unknown".into())
    );
    // Build again when HEAD moves (a watched path that does not exist would rebuild always).
    let git = Path::new("../.git");
    let head = git.join("HEAD");
    if head.is_file() {
        println!("cargo:rerun-if-changed={}", head.display());
        if let Ok(text) = std::fs::read_to_string(&head)
            && let Some(reference) = text.strip_prefix("ref: ")
        {
            let file = git.join(reference.trim());
            let watched = if file.is_file() {
                file
            } else {
                git.join("packed-refs")
            };
            if watched.is_file() {
                println!("cargo:rerun-if-changed={}", watched.display());
            }
        }
    }
}
