#!/bin/bash
# tests/fuzz/run.sh BUILD [SECONDS]: builds every libFuzzer target (tests/fuzz/fuzz_*.c) into
# BUILD/fuzz/, then
#   - without SECONDS (or 0): replays each target's committed corpus (tests/fuzz/corpus/NAME/)
#     once and prints "ok - fuzz replay NAME …" or "not ok - fuzz replay NAME …"; exits 1 if any
#     input crashes, leaks, hangs or breaks a property;
#   - with SECONDS > 0: fuzzes each target, one after the other, for SECONDS on a scratch copy of
#     its corpus (BUILD/fuzz/work/NAME; the committed corpus is not touched), keeping new crash,
#     leak, timeout and out-of-memory inputs in BUILD/fuzz/crashes/; prints per target the runs,
#     exec/s and coverage from libFuzzer's final stats and the findings; exits 1 on any finding.
# FUZZ_TARGETS="ref range" limits the targets; FUZZ_CC picks the compiler (default clang);
# FUZZ_JOBS the parallel compiles (default: the CPUs).
set -u
usage() {
	echo "usage: $0 BUILD [SECONDS]" >&2
	exit 2
}
if [ $# -lt 1 ] || [ $# -gt 2 ]; then usage; fi
seconds=${2:-0}
case $seconds in '' | *[!0-9]*) usage ;; esac
root=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$1" || exit 1
build=$(cd "$1" && pwd)
out=$build/fuzz
fuzzdir=$root/tests/fuzz
cc=${FUZZ_CC:-clang}
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}

WARN="-std=c11 -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Werror"
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
CPP="-D_GNU_SOURCE -I$root/shared -I$root/registry -I$root/scaler"
CFLAGS="-g -O1 $SAN $WARN $CPP"
LIBS="-lev -lcurl -ljansson -lcrypto -lhttp_parser -larchive -luring -lzookeeper_st"
# Sanitizer reports must stop the run; leaks are findings too.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# What each target reads at most: archives and documents need more than the 4 KiB default.
max_len() {
	case $1 in
	archive) echo 65536 ;;
	import_json | image_walk) echo 16384 ;;
	http_head | registry_conf | scaler_conf | prewarm_list | marathon_app | demand_http) echo 8192 ;;
	*) echo 4096 ;;
	esac
}

if ! echo 'int LLVMFuzzerTestOneInput(const char *d, long n) { (void)d; (void)n; return 0; }' |
	"$cc" -x c -fsanitize=fuzzer -o /dev/null - >/dev/null 2>&1; then
	echo "not ok - fuzz: $cc cannot build libFuzzer targets (Debian: apt-get install clang)"
	exit 1
fi

# --- build: the sources of shared/, registry/ and scaler/ (every .c but main.c) into one
# archive per directory, instrumented for the fuzzer; then each target linked against them.
# A target that #includes a .c defines its symbols itself, so the linker takes nothing of that
# file from the archive. ---
headers=$(ls "$root"/shared/*.h "$root"/registry/*.h "$root"/scaler/*.h)
# shellcheck disable=SC2012,SC2086 # our own file names
newest_header=$(ls -t $headers | head -1)
stale() { # stale OUT IN…: OUT is missing or older than one of IN
	local o=$1 i
	shift
	[ -e "$o" ] || return 0
	for i in "$@"; do [ "$i" -nt "$o" ] && return 0; done
	return 1
}
mkdir -p "$out/obj" "$out/crashes" "$out/work" "$out/logs" || exit 1
libs=()
for dir in registry scaler shared; do
	objs=() todo=()
	for src in "$root/$dir"/*.c; do
		[ "$(basename "$src")" = main.c ] && continue
		obj=$out/obj/$dir/$(basename "$src" .c).o
		objs+=("$obj")
		stale "$obj" "$src" "$newest_header" && todo+=("$src:$obj")
	done
	if [ ${#todo[@]} -gt 0 ]; then
		mkdir -p "$out/obj/$dir"
		echo "fuzz: compiling ${#todo[@]} files of $dir/"
		# shellcheck disable=SC2086
		printf '%s\n' "${todo[@]}" | xargs -P "$jobs" -I{} sh -c \
			'src=${1%%:*} obj=${1#*:}; exec '"$cc"' '"$CFLAGS"' -fsanitize=fuzzer-no-link -c -o "$obj" "$src"' \
			sh {} || exit 1
	fi
	lib=$out/lib$dir.a
	if stale "$lib" "${objs[@]}"; then
		rm -f "$lib"
		ar rcs "$lib" "${objs[@]}" || exit 1
	fi
	libs+=("$lib")
done

targets=()
for src in "$fuzzdir"/fuzz_*.c; do
	name=$(basename "$src" .c)
	name=${name#fuzz_}
	if [ -n "${FUZZ_TARGETS:-}" ] && ! echo " $FUZZ_TARGETS " | grep -q " $name "; then
		continue
	fi
	targets+=("$name")
done
[ ${#targets[@]} -gt 0 ] || { echo "fuzz: no target matches FUZZ_TARGETS" >&2; exit 2; }
todo=()
for name in "${targets[@]}"; do
	bin=$out/fuzz_$name
	stale "$bin" "$fuzzdir/fuzz_$name.c" "$fuzzdir"/*.h "${libs[@]}" && todo+=("$name")
done
if [ ${#todo[@]} -gt 0 ]; then
	echo "fuzz: linking ${#todo[@]} targets"
	# shellcheck disable=SC2086
	printf '%s\n' "${todo[@]}" | xargs -P "$jobs" -I{} sh -c \
		'exec '"$cc"' '"$CFLAGS"' -fsanitize=fuzzer -o "$1/fuzz_$2" "$3/fuzz_$2.c" '"${libs[*]}"' '"$LIBS" \
		sh "$out" {} "$fuzzdir" || exit 1
fi

# --- run ---
stat_of() { # stat_of LOG NAME: a value of libFuzzer's -print_final_stats
	sed -n "s/^stat::$2: *//p" "$1" | tail -1
}
cov_of() { # the last "cov: N" libFuzzer printed
	grep -o 'cov: [0-9]*' "$1" | tail -1 | cut -d' ' -f2
}
findings_of() { # the artifacts of this run (newer than the marker), or "none"
	local f
	f=$(find "$out/crashes" -name "$1-*" -newer "$2" ! -name "$1-slow-unit-*" -printf '%f ' 2>/dev/null)
	echo "${f:-none}"
}

# triage NAME MARKER BIN: replays each artifact of this run once and prints one line per
# distinct finding (the sanitizer's or the property's first report line) with an example input.
triage() {
	local f sig seen="" n=0
	for f in $(find "$out/crashes" -name "$1-*" -newer "$2" ! -name "$1-slow-unit-*" | sort); do
		n=$((n + 1))
		sig=$(timeout 60 "$3" -close_fd_mask=2 -timeout=10 -rss_limit_mb=2048 "$f" 2>&1 |
			grep -m1 -E 'runtime error:|ERROR: (AddressSanitizer|LeakSanitizer)|fuzz property failed|ERROR: libFuzzer: (timeout|out-of-memory)' |
			sed -E 's/==[0-9]+==//; s/0x[0-9a-f]{8,}/ADDR/g; s/ \(pid [0-9]+\)//; s/^ +//')
		sig=${sig:-"no longer reproduces (flaky?)"}
		case $seen in *"|$sig|"*) continue ;; esac
		seen="$seen|$sig|"
		echo "    finding: $sig"
		echo "      input: $f"
	done
	[ $n -eq 0 ] && echo "    findings: none"
	[ $n -gt 0 ] && echo "    ($n artifacts in $out/crashes)"
	[ $n -eq 0 ]
}

# Scratch stores of the targets, on tmpfs when there is one; a crashed run leaves its own here.
scratch=$(mktemp -d "$([ -d /dev/shm ] && echo /dev/shm || echo /tmp)/ms-fuzz-run.XXXXXX") || exit 1
trap 'rm -rf "$scratch"' EXIT
export FUZZ_SCRATCH=$scratch

failed=0
for name in "${targets[@]}"; do
	bin=$out/fuzz_$name
	corpus=$fuzzdir/corpus/$name
	log=$out/logs/$name.log
	marker=$out/logs/$name.start
	touch "$marker"
	sleep 0.01 # so that artifacts of this run are strictly newer than the marker
	common=(-rss_limit_mb=2048 -timeout=10 -close_fd_mask=2 -print_final_stats=1
		"-artifact_prefix=$out/crashes/$name-")
	[ -f "$fuzzdir/$name.dict" ] && common+=("-dict=$fuzzdir/$name.dict")
	if [ "$seconds" -eq 0 ]; then
		ninputs=$(find "$corpus" -type f 2>/dev/null | wc -l)
		if [ "$ninputs" -eq 0 ]; then
			echo "not ok - fuzz replay $name: no corpus in tests/fuzz/corpus/$name"
			failed=1
			continue
		fi
		start=$(date +%s.%N)
		"$bin" "${common[@]}" -runs=0 "$corpus" >"$log" 2>&1
		rc=$?
		ms=$(echo "$start $(date +%s.%N)" | awk '{printf "%.0f", ($2 - $1) * 1000}')
		if [ $rc -eq 0 ]; then
			echo "ok - fuzz replay $name: $ninputs inputs, cov $(cov_of "$log"), ${ms} ms"
		else
			echo "not ok - fuzz replay $name: exit $rc, findings: $(findings_of "$name" "$marker")"
			grep -E '^==[0-9]+==ERROR|runtime error|fuzz property failed|^SUMMARY|Test unit written' "$log" | head -5 | sed 's/^/#   /'
			failed=1
		fi
		continue
	fi
	# Fork mode: a crash (also one the corpus already holds, a known bug not fixed yet) ends
	# only the job it happened in, so one run can find several bugs. libFuzzer stops only
	# between jobs (job N runs N seconds), so a run lasts SECONDS at least and up to about
	# sqrt(2 * SECONDS) more: SECONDS is the promise, never cut short.
	work=$out/work/$name
	rm -rf "$work"
	mkdir -p "$work"
	[ -d "$corpus" ] && cp -r "$corpus"/. "$work"/
	start=$(date +%s)
	"$bin" "${common[@]}" -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
		"-max_total_time=$seconds" "-max_len=$(max_len "$name")" "$work" >"$log" 2>&1
	rc=$?
	elapsed=$(($(date +%s) - start))
	last=$(grep -E '^#[0-9]+: cov:' "$log" | tail -1)
	runs=$(echo "$last" | sed -n 's/^#\([0-9]*\):.*/\1/p')
	cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
	printf '%-14s %4ss  runs %-10s exec/s %-7s cov %-6s corpus %-5s\n' "$name" "$elapsed" \
		"${runs:-0}" "$(( ${runs:-0} / (elapsed > 0 ? elapsed : 1) ))" "${cov:-?}" \
		"$(find "$work" -type f | wc -l)"
	if ! triage "$name" "$marker" "$bin"; then
		failed=1
	elif [ $rc -ne 0 ]; then
		echo "    libFuzzer exited $rc (see $log)"
		failed=1
	fi
done
[ "$seconds" -gt 0 ] && echo "fuzz: logs in $out/logs, findings in $out/crashes"
exit $failed
