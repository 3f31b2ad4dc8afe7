#!/bin/bash
# Replays every fuzz target's committed corpus (tests/fuzz/corpus/<target>/) once, against the
# targets built with libFuzzer, ASan and UBSan into $MS_BUILD/fuzz/: the targets keep compiling,
# the seeds keep passing, and an input that once crashed stays fixed. One line per target:
# "ok - fuzz replay <target>: …" or "not ok - fuzz replay <target>: …". Long runs:
# tests/fuzz/run.sh build 600.
set -u
MS_ROOT=${MS_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
MS_BUILD=${MS_BUILD:-$MS_ROOT/build}
exec "$MS_ROOT/tests/fuzz/run.sh" "$MS_BUILD"
