//! The census coverage figure (issue 16): of the externs Simple's standard
//! library declares in the in-scope files of rt/data/simple_externs.tsv, how
//! many the registry of the built libraries serves. Printed on the test
//! process's stderr directly (not through the captured `eprintln!`), so it is
//! visible in every `cargo test` / `./x.sh test` log. The in-scope coverage
//! (served / (declared − out of scope)) must stay at 85% or more, overall and
//! per census file, and every name listed out of scope must be in docs/SIMPLE.md.

use std::io::Write;
use std::path::Path;
use std::process::Command;

#[test]
fn simple_census_coverage_is_printed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("rt/ sits in the workspace");
    let tsv = root.join("rt/data/simple_externs.tsv");
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

    // The figures: overall, then `served / in scope (declared) pct% file` per file.
    let pct = |s: &str| -> f64 { s.trim().trim_end_matches('%').parse().unwrap_or_else(|_| panic!("not a percentage: {s:?}")) };
    let overall = first.split(" served (").nth(1).and_then(|r| r.split(')').next()).expect("overall figure");
    assert!(pct(overall) >= 85.0, "in-scope coverage below 85%:\n{stdout}");
    for l in stdout.lines().skip(2).take_while(|l| l.contains(".spl")) {
        let p = l.split_whitespace().find(|w| w.ends_with('%')).expect("per-file percentage");
        assert!(pct(p) >= 85.0, "a census file is below 85% in-scope coverage: {l}\n{stdout}");
    }

    // Every name the census lists out of scope has its reason in docs/SIMPLE.md.
    let out = Command::new(env!("CARGO_BIN_EXE_rt"))
        .args(["simple-census", "--missing", "--tsv"])
        .arg(&tsv)
        .output()
        .expect("run rt simple-census --missing");
    let listing = String::from_utf8_lossy(&out.stdout);
    let doc = std::fs::read_to_string(root.join("docs/SIMPLE.md")).expect("docs/SIMPLE.md");
    let oos: Vec<&str> = listing
        .lines()
        .skip_while(|l| *l != "out of scope:")
        .skip(1)
        .filter_map(|l| l.trim().split(':').next())
        .collect();
    assert!(!oos.is_empty(), "no out-of-scope list in:\n{listing}");
    for n in oos {
        assert!(doc.contains(&format!("`{n}")), "{n} is listed out of scope by rt simple-census but not in docs/SIMPLE.md");
    }
}
