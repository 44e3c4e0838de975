fn main() {
    // The system's shared collector (SPEC §4): one heap per process.
    let lib = std::process::Command::new("pkg-config").args(["--libs", "bdw-gc"]).output();
    match lib {
        Ok(o) if o.status.success() => {
            for flag in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                if let Some(l) = flag.strip_prefix("-l") {
                    println!("cargo:rustc-link-lib=dylib={l}");
                } else if let Some(p) = flag.strip_prefix("-L") {
                    println!("cargo:rustc-link-search=native={p}");
                }
            }
        }
        _ => println!("cargo:rustc-link-lib=dylib=gc"),
    }
}
