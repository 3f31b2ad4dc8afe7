# Both daemons under valgrind memcheck: no invalid read or write, no byte definitely lost.
# Scenario, as data:
#   cache: `import` of a docker-archive that skopeo made; the daemon with a prewarm list (one
#     small image), a cold pull through it (skopeo), a pull of the imported image, a HEAD and a
#     Range request of a blob, a miss, SIGTERM; then `verify` of the store.
#   scaler: against the Marathon emulator, demand 2 -> 5 -> 1 (a few rounds of reads and PUTs),
#     SIGTERM.
#   every run must: exit 0 (valgrind exits 99 on an error), and its report say "ERROR SUMMARY: 0
#     errors" and "definitely lost: 0 bytes" (or that every block was freed).
# It runs the plain build (the -O2 -g one that `make` writes to build/), never the sanitizer
# build; when there is none it builds one in build/vg.
. "$(dirname "$0")/../lib/common.sh"
. "$MS_ROOT/tests/lib/upstream.sh"
. "$MS_ROOT/tests/lib/fixtures.sh"
. "$MS_ROOT/tests/lib/cache.sh"
. "$MS_ROOT/tests/lib/marathon.sh"
. "$MS_ROOT/tests/lib/scaler.sh"
command -v valgrind >/dev/null || { echo "# skip: no valgrind"; exit 0; }

VG_BUILD=${MEMCHECK_BUILD:-$MS_ROOT/build}
if [ ! -x "$VG_BUILD/microscale-registry" ] || [ ! -x "$VG_BUILD/microscale-scaler" ]; then
	VG_BUILD=$MS_ROOT/build/vg
	echo "# building $VG_BUILD for valgrind"
	make -s -C "$MS_ROOT" BUILD=build/vg CFLAGS="-O1 -g" all >"$T/make.log" 2>&1 ||
		{ tail -20 "$T/make.log"; exit 1; }
fi
VG=(valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99
	--track-fds=no --num-callers=30)

# vg NAME CMD…: CMD under memcheck, its report in $T/vg.NAME.log.
vg() {
	local name=$1
	shift
	"${VG[@]}" --log-file="$T/vg.$name.log" "$@"
}
# vg_clean NAME: the report says no error and nothing definitely lost; prints its summary.
vg_clean() {
	local f=$T/vg.$1.log
	grep -E 'ERROR SUMMARY|in use at exit|definitely lost|possibly lost|All heap blocks were freed' "$f" | sed "s/^==[0-9]*== */# $1: /"
	grep -q 'ERROR SUMMARY: 0 errors' "$f" &&
		{ grep -q 'All heap blocks were freed' "$f" || grep -q 'definitely lost: 0 bytes' "$f"; } &&
		! grep -q 'definitely lost: [1-9]' "$f"
}
# vg_stop PID: SIGTERM, then waits (valgrind's leak check takes a while); the exit status.
vg_stop() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < 600; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	wait "$pid"
}

fixtures_upstream_start || exit 1
MS=$VG_BUILD/microscale-registry
CACHE_ROOT=$T/cache

# --- cache ---------------------------------------------------------------------------------------
skopeo copy -q --src-tls-verify=false "docker://127.0.0.1:$UPSTREAM_PORT/$FIX_SHARED_A" \
	"docker-archive:$T/imported.tar:docker.io/library/imported:1" || exit 1
vg import "$MS" import --root "$CACHE_ROOT" "$T/imported.tar" >"$T/import.out" 2>&1
check_eq "import under valgrind exits 0" 0 "$?"
check "import: no error, nothing definitely lost" vg_clean import

echo "$FIX_OCI" >"$T/prewarm.list"
CACHE_PORT=$(free_port)
CACHE=127.0.0.1:$CACHE_PORT
CACHE_URL=http://$CACHE
CACHE_LOG=$T/cache.log
spawn "$CACHE_LOG" "${VG[@]}" --log-file="$T/vg.registry.log" "$MS" -d --listen "$CACHE" \
	--root "$CACHE_ROOT" --upstream "$UPSTREAM_URL" --prewarm "$T/prewarm.list"
CACHE_PID=$SPAWNED
wait_port "$CACHE_PORT" "$CACHE_PID" 60 || { tail -20 "$CACHE_LOG" >&2; exit 1; }
ready() { [ "$(curl -s "$CACHE_URL/_microscale/v1/ready?ref=$FIX_OCI" | jq -r .ready)" = true ]; }
check "prewarm makes $FIX_OCI ready" wait_for 30 ready
rm -rf "$T/out1" "$T/out2"
check "a cold pull through the cache" cache_copy "$FIX_DOCKER" "dir:$T/out1"
check "a pull of the imported image" cache_copy library/imported:1 "dir:$T/out2"
read -r _ layer <<<"$FIX_DOCKER_LAYERS" # the 256 KiB data layer
size=$(fixtures_blob_size "$layer")
check_eq "HEAD of a blob" 200 "$(curl -s -o /dev/null -w '%{http_code}' -I "$CACHE_URL/v2/$FIX_DOCKER_REPO/blobs/$layer")"
check_eq "Range of a blob: 206" 206 "$(cache_curl "/v2/$FIX_DOCKER_REPO/blobs/$layer" -r 100-1123)"
check_eq "... with the right bytes" "$(tail -c +101 "$(fixtures_blob_path "$layer")" | head -c 1024 | sha256sum)" "$(sha256sum <"$T/body")"
check_eq "a manifest the upstream does not have: 404" 404 "$(cache_curl /v2/library/nothing-here/manifests/1)"
check "the blob was $size bytes (sanity)" test "$size" -gt 1124
vg_stop "$CACHE_PID"
check_eq "the cache under valgrind exits 0 on SIGTERM" 0 "$?"
check "cache: no error, nothing definitely lost" vg_clean registry
vg verify "$MS" verify --root "$CACHE_ROOT" >"$T/verify.out" 2>&1
check_eq "verify under valgrind exits 0" 0 "$?"
check "verify: no error, nothing definitely lost" vg_clean verify

# --- scaler --------------------------------------------------------------------------------------
cat >"$T/apps.json" <<'EOF'
[{"id": "/vg/a", "instances": 1}, {"id": "/vg/b", "instances": 1}]
EOF
marathon_start --deploy-seconds 0.1 --apps "$T/apps.json" || exit 1
demand_start || exit 1
demand_set a 2
scaler_port
cat >"$T/scaler.json" <<EOF
{"marathon": {"url": "$MARATHON_URL", "timeout_ms": 5000, "resync_ms": 1000},
 "capacity": 6, "interval_ms": 50, "listen": "127.0.0.1:$SCALER_PORT",
 "apps": [{"id": "/vg/a", "priority": 1, "min": 1, "max": 6,
           "demand": {"type": "http", "url": "$DEMAND_URL/a"}},
          {"id": "/vg/b", "priority": 2, "min": 0, "max": 6, "demand": {"type": "remainder"}}]}
EOF
SCALER_LOG=$T/scaler.log
"${VG[@]}" --log-file="$T/vg.scaler.log" "$VG_BUILD/microscale-scaler" -d -c "$T/scaler.json" \
	>>"$SCALER_LOG" 2>&1 &
SCALER_PID=$!
MS_PIDS+=("$SCALER_PID")
wait_port "$SCALER_PORT" "$SCALER_PID" 60 || { tail -20 "$SCALER_LOG" >&2; exit 1; }
at() { # A B
	[ "$(app_field /vg/a '"\(.instances) \(.tasksRunning)"')" = "$1 $1" ] &&
		[ "$(app_field /vg/b '"\(.instances) \(.tasksRunning)"')" = "$2 $2" ]
}
check "round 1: a 2, b 4" wait_for 30 at 2 4
demand_set a 5
check "round 2: a 5, b 1" wait_for 30 at 5 1
demand_set a 1
check "round 3: a 1, b 5" wait_for 30 at 1 5
scaler_get /status >/dev/null
scaler_get /metrics >/dev/null
vg_stop "$SCALER_PID"
check_eq "the scaler under valgrind exits 0 on SIGTERM" 0 "$?"
check "scaler: no error, nothing definitely lost" vg_clean scaler
