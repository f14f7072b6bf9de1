//! Shared by the command-line tests: the `host` binary as a user runs it.

/// Runs `host ARGS`: whether it succeeded, its stdout and its stderr.
pub fn host(args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_host"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
