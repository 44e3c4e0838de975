#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) one after another.
#
#   fuzz/run_all.sh [SECONDS_PER_TARGET] [TARGET...]
#
# SECONDS_PER_TARGET defaults to 75. 0 = no fuzzing: only replay the seeds
# (fuzz/seeds/<t>), the regression inputs (fuzz/regressions/<t>) and the saved
# corpus (fuzz/corpus/<t>) once, which is a quick check for CI.
# New corpus inputs go to fuzz/corpus/<t>, crashes to fuzz/artifacts/<t>,
# one log per target to fuzz/artifacts/logs/<t>.log (all three are git-ignored).
# Exit status: 0 when no target crashed, 1 otherwise.
# FUZZ_SKIP_KNOWN=1 makes targets skip inputs of bugs already reported (see
# README.md), so a run can look past them; the regression inputs then pass too.
set -u
cd "$(dirname "$0")/.."            # the repository root: cargo fuzz finds fuzz/ from here
secs=${1:-75}
[ $# -gt 0 ] && shift
all=(json_parse toml_parse yaml_parse bincode_decode time_parse gzip_decompress xz_decompress tar_list regex_new argon2_verify cap_parse)
if [ $# -gt 0 ]; then targets=("$@"); else targets=("${all[@]}"); fi

# One build of every target (release, ASan, debug assertions and overflow checks).
cargo +nightly fuzz build -a || exit 2

mkdir -p fuzz/artifacts/logs
# tar_list keeps its fixture directory under $TMPDIR; give the runs their own.
export TMPDIR="$PWD/fuzz/artifacts/tmp"
failed=()
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t" "fuzz/regressions/$t" "$TMPDIR"
    log="fuzz/artifacts/logs/$t.log"
    if [ "$secs" = 0 ]; then
        args=(-runs=0)
    else
        args=(-max_total_time="$secs")
    fi
    echo "== $t (${secs}s)"
    cargo +nightly fuzz run -a "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" "fuzz/regressions/$t" -- \
        "${args[@]}" -rss_limit_mb=4096 -timeout=30 -print_final_stats=1 >"$log" 2>&1
    rc=$?
    chmod -R u+rwx "$TMPDIR" 2>/dev/null; rm -rf "$TMPDIR"
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1)
    corp=$(grep -o 'corp: [0-9]*/[0-9a-zA-Z]*' "$log" | tail -1)
    if [ $rc -ne 0 ]; then
        failed+=("$t")
        echo "   CRASH (rc $rc): see $log and fuzz/artifacts/$t/"
        grep -m3 -E "panicked at|ERROR: (libFuzzer|AddressSanitizer)|SUMMARY" "$log" | sed 's/^/   /'
    else
        echo "   ok: ${execs:-?} executions, $cov, $corp"
    fi
done
if [ ${#failed[@]} -ne 0 ]; then
    echo "crashed: ${failed[*]}"
    exit 1
fi
echo "no crashes"
