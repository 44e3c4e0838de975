//! `./x.sh install` as a C user meets it: install/install.sh puts the built
//! libraries into a temporary PREFIX; each has the SONAME
//! `libffi_<domain>.so.<ABI major>` and the unversioned link beside it, the
//! domain libraries need `libffi_core.so.<major>` and find it through
//! `$ORIGIN`; the README's C quick start (install/quickstart.c) compiles with
//! `cc $(pkg-config --cflags --libs simple-rt)` and runs without
//! LD_LIBRARY_PATH; the installed `rt` finds PREFIX/lib by itself.
//!
//! Installs the build the tests run against (target/debug under
//! `./x.sh test`): the install steps are the same for both profiles, so CI
//! needs no release build. Needs `cargo build` first (the rt binary and the
//! libraries) and patchelf, readelf, pkg-config and cc (`./x.sh test`
//! installs them).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the workspace").to_path_buf()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs a command; panics with its output when it fails. Returns the output.
fn run(cmd: &mut Command, what: &str) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: cannot start {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

/// Values of one tag of `readelf -d` (`NEEDED`, `SONAME`, `RPATH`, `RUNPATH`).
fn dynamic(path: &Path, tag: &str) -> Vec<String> {
    let out = run(Command::new("readelf").arg("-d").arg(path), "readelf -d");
    text(&out.stdout)
        .lines()
        .filter(|l| l.contains(&format!("({tag})")))
        .filter_map(|l| Some(l[l.find('[')? + 1..l.rfind(']')?].to_string()))
        .collect()
}

/// `RT_ABI_MAJOR` of the checked-in header.
fn header_major() -> String {
    let h = std::fs::read_to_string(workspace().join("include/simple_rt.h")).expect("include/simple_rt.h");
    h.lines()
        .find_map(|l| l.strip_prefix("#define RT_ABI_MAJOR ")?.strip_suffix('u').map(str::to_string))
        .expect("#define RT_ABI_MAJOR in the header")
}

#[test]
fn install_gives_sonames_pkg_config_and_a_working_c_program() {
    let build = rt_tests::profile_dir();
    for f in ["rt", "libffi_core.so"] {
        assert!(build.join(f).is_file(), "{} is missing: run `cargo build` first", build.join(f).display());
    }
    for tool in ["patchelf", "readelf", "pkg-config", "cc"] {
        let found = Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().is_ok_and(|o| o.status.success());
        assert!(found, "{tool} is missing (./x.sh test installs it: patchelf, binutils, pkg-config)");
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let prefix = tmp.path().join("prefix");
    run(
        Command::new("bash").arg(workspace().join("install/install.sh")).arg("--from").arg(&build).arg(&prefix),
        "install/install.sh",
    );
    let lib = prefix.join("lib");
    let major = header_major();

    // The one domain list, as `rt domains` gives it to install.sh.
    let mut libs = vec!["core"];
    libs.extend(rt_tests::default_domains());
    for l in &libs {
        let so = format!("libffi_{l}.so.{major}");
        let file = lib.join(&so);
        assert!(file.is_file() && !file.is_symlink(), "{so} not installed as a file");
        let link = std::fs::read_link(lib.join(format!("libffi_{l}.so"))).unwrap_or_else(|e| panic!("libffi_{l}.so link: {e}"));
        assert_eq!(link, Path::new(&so), "libffi_{l}.so points at {}", link.display());
        assert_eq!(dynamic(&file, "SONAME"), vec![so.as_str()], "SONAME of {so}");
        let needed = dynamic(&file, "NEEDED");
        if *l == "core" {
            assert!(needed.iter().any(|n| n == "libgc.so.1"), "{so} needs the system libgc: {needed:?}");
        } else {
            assert!(needed.contains(&format!("libffi_core.so.{major}")), "{so} needs {needed:?}");
            assert!(!needed.iter().any(|n| n == "libffi_core.so"), "{so} still needs the unversioned core: {needed:?}");
            let paths = [dynamic(&file, "RPATH"), dynamic(&file, "RUNPATH")].concat();
            assert!(paths.iter().any(|p| p.split(':').any(|d| d == "$ORIGIN")), "{so}: rpath {paths:?}");
        }
    }
    // The build itself keeps no SONAME (tests, rt, dev.sh and the wheel load it unversioned).
    assert!(dynamic(&build.join("libffi_io.so"), "NEEDED").iter().any(|n| n == "libffi_core.so"));
    assert_eq!(
        std::fs::read(prefix.join("include/simple_rt.h")).unwrap(),
        std::fs::read(workspace().join("include/simple_rt.h")).unwrap(),
        "installed header"
    );

    // The README's C quick start, built with pkg-config and run without LD_LIBRARY_PATH.
    let pc_path = lib.join("pkgconfig");
    let pc = |args: &[&str]| {
        let out = run(Command::new("pkg-config").env("PKG_CONFIG_PATH", &pc_path).args(args).arg("simple-rt"), "pkg-config");
        text(&out.stdout).trim().to_string()
    };
    let flags = pc(&["--cflags", "--libs"]);
    for l in &libs {
        assert!(flags.split_whitespace().any(|f| f == format!("-lffi_{l}")), "pkg-config --libs lacks -lffi_{l}: {flags}");
    }
    let version = pc(&["--modversion"]);
    assert!(!version.is_empty(), "simple-rt.pc has a version");
    let exe = tmp.path().join("quickstart");
    run(
        Command::new("sh")
            .arg("-c")
            .arg("cc -std=c99 -Wall -Wextra -Werror -pedantic \"$1\" -o \"$2\" $(pkg-config --cflags --libs simple-rt)")
            .arg("sh")
            .arg(workspace().join("install/quickstart.c"))
            .arg(&exe)
            .env("PKG_CONFIG_PATH", &pc_path),
        "cc quickstart.c $(pkg-config --cflags --libs simple-rt)",
    );
    let out = run(Command::new(&exe).env_remove("LD_LIBRARY_PATH").env_remove("SIMPLE_RT_LIB_DIR"), "the quick start program");
    assert!(
        text(&out.stdout).contains("sha256(abc) = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        "stdout: {}",
        text(&out.stdout)
    );
    let err = text(&out.stderr);
    assert!(err.contains("NotFound (3): rt_file_read_text:"), "stderr: {err}");
    // It ran on the installed copies, through their SONAMEs.
    let ldd = text(&run(Command::new("ldd").arg(&exe).env_remove("LD_LIBRARY_PATH"), "ldd").stdout);
    for l in ["core", "io", "crypto"] {
        let line = ldd.lines().find(|x| x.contains(&format!("libffi_{l}.so.{major} =>"))).unwrap_or_else(|| panic!("ldd:\n{ldd}"));
        assert!(line.contains(&lib.display().to_string()), "{line}");
    }

    // The installed rt tool finds PREFIX/lib by itself and loads every installed library.
    let out = run(
        Command::new(prefix.join("bin/rt")).arg("list").env_remove("SIMPLE_RT_LIB_DIR").env_remove("LD_LIBRARY_PATH"),
        "installed rt list",
    );
    let so = text(&out.stdout);
    let last = so.lines().last().unwrap_or_default();
    assert!(last.contains(&format!("from {} libraries", libs.len())), "rt list: {last}");
    assert!(last.contains(&format!("ABI {major}.")), "rt list: {last}");
}

#[test]
fn install_refuses_a_missing_build() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let out = Command::new("bash")
        .arg(workspace().join("install/install.sh"))
        .arg("--from")
        .arg(tmp.path())
        .arg(tmp.path().join("prefix"))
        .output()
        .expect("run install.sh");
    assert!(!out.status.success());
    assert!(!tmp.path().join("prefix").exists(), "nothing installed from an empty build dir");
}

#[test]
fn readme_quick_start_is_the_tested_program() {
    let readme = std::fs::read_to_string(workspace().join("README.md")).expect("README.md");
    let program = std::fs::read_to_string(workspace().join("install/quickstart.c")).expect("install/quickstart.c");
    let at = readme.find("## C quick start").expect("README has a C quick start");
    let start = at + readme[at..].find("```c\n").expect("a ```c block in the C quick start") + "```c\n".len();
    let end = start + readme[start..].find("```").expect("end of the ```c block");
    assert_eq!(&readme[start..end], program, "README's C quick start differs from install/quickstart.c (tested here)");
}
