//! The census coverage figure (issue 16): of the externs Simple's standard
//! library declares in the in-scope files of ../shared/simple/externs.tsv, how
//! many the registry of the built libraries serves. Printed on the test
//! process's stderr directly (not through the captured `eprintln!`), so it is
//! visible in every `cargo test` / `./x.sh test` log. No threshold yet.

use std::io::Write;
use std::path::Path;
use std::process::Command;

#[test]
fn simple_census_coverage_is_printed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("rt/ sits in the workspace");
    let tsv = root.join("../shared/simple/externs.tsv");
    let mut err = std::io::stderr();
    if !tsv.is_file() {
        let _ = writeln!(
            err,
            "simple census: skipped ({} is not present)",
            tsv.display()
        );
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_rt"))
        .arg("simple-census")
        .arg("--tsv")
        .arg(&tsv)
        .output()
        .expect("run rt simple-census");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "rt simple-census failed ({}); build the libraries first (`cargo build`):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let first = stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("simple census: ") && first.contains(" in-scope Simple externs served ("),
        "{stdout}"
    );
    let _ = write!(err, "\n{stdout}\n");
}
