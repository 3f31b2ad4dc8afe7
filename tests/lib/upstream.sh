# A real upstream registry for integration tests: Debian's docker-registry (distribution 2.8.2)
# on a free loopback port, with its log in a file the tests can read to prove what the upstream
# actually served. Sourced after tests/lib/common.sh (needs free_port, spawn, stop_pid).
# shellcheck shell=bash

# What docker-registry 2.8.2 writes, and why the counting functions below look only at one kind
# of line:
#  - stderr: logrus "app" lines, `time=… level=info msg="response completed" … http.request.method=GET
#    http.request.uri=…`, one per /v2/ request, but errors are logged as msg="response completed
#    with error" instead, and requests outside /v2/ get no app line at all.
#  - stdout: the access log (gorilla CombinedLoggingHandler), exactly one line per request of any
#    outcome, Apache "combined" format, written after the handler returned:
#      127.0.0.1 - - [25/Nov/2026:12:08:28 +0000] "GET /v2/x/blobs/sha256:… HTTP/1.1" 200 1234 "" "ua"
#    The byte count is what the handler wrote: 0 for a HEAD that found its blob, but the error
#    JSON's length for a HEAD answered 404. A client that goes away mid-blob still gets status 200
#    (and an app line "response completed" at level info, no error): only the byte count, short
#    of the blob's size, shows the transfer was cut. Range requests log 206 and the range's size.
# So the access log is the one to count: one line per request, method, path, status and bytes.

# upstream_start DIR [PORT]: serves DIR/storage on 127.0.0.1:<free port> (or PORT: an upstream
# started again where a client knows it), logs to DIR/registry.log.
# Sets UPSTREAM_PORT, UPSTREAM_URL, UPSTREAM_PID, UPSTREAM_LOG (callers may declare them local
# to run a private upstream, as fixtures_ready does). Returns non-zero if it never became ready.
upstream_start() {
	local dir=$1 port=${2:-} try
	mkdir -p "$dir/storage" || return 1
	UPSTREAM_LOG=$dir/registry.log
	# free_port can lose a race with another process taking the port before the registry binds
	# it; the registry then exits at once, so a fresh port is worth a few more tries.
	for try in 1 2 3; do
		UPSTREAM_PORT=${port:-$(free_port)} || return 1
		UPSTREAM_URL=http://127.0.0.1:$UPSTREAM_PORT
		_upstream_write_config "$dir" || return 1
		spawn "$UPSTREAM_LOG" docker-registry serve "$dir/config.yml"
		UPSTREAM_PID=$SPAWNED
		_upstream_wait_ready && return 0
		upstream_stop
		grep -q 'address already in use' "$UPSTREAM_LOG" || break
	done
	echo "upstream_start: docker-registry did not become ready (try $try); log follows" >&2
	tail -20 "$UPSTREAM_LOG" >&2
	return 1
}

# The package's /etc/docker/registry/config.yml listens on all interfaces and wants htpasswd
# auth, so every upstream gets its own config: loopback only, no auth, no deletes, no background
# upload purging (it would add log lines and disk activity at a random moment of a test).
_upstream_write_config() {
	cat >"$1/config.yml" <<EOF
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $1/storage
  delete:
    enabled: false
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$UPSTREAM_PORT
  secret: microscale-tests-only
EOF
}

# Polls GET /v2/ until it answers 200; gives up early when the process has died.
_upstream_wait_ready() {
	local i code
	for ((i = 0; i < 600; i++)); do
		kill -0 "$UPSTREAM_PID" 2>/dev/null || return 1
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$UPSTREAM_URL/v2/")
		[ "$code" = 200 ] && return 0
		sleep 0.05
	done
	return 1
}

# upstream_remote_start MBPS: the upstream as a remote registry, behind tests/lib/slowlink.py (all
# it sends back shares one link of MBPS MB/s). Sets REMOTE_URL and REMOTE_PID.
upstream_remote_start() {
	local pf=$T/slowlink.$UPSTREAM_PORT.$1.port
	rm -f "$pf"
	spawn "$T/slowlink.$UPSTREAM_PORT.$1.log" python3 "$MS_ROOT/tests/lib/slowlink.py" \
		--target "127.0.0.1:$UPSTREAM_PORT" --mbps "$1" --port-file "$pf"
	REMOTE_PID=$SPAWNED
	wait_for 10 test -s "$pf" && wait_port "$(cat "$pf")" "$REMOTE_PID" 5 || return 1
	REMOTE_URL=http://127.0.0.1:$(cat "$pf")
}

# upstream_stop: TERM, then KILL (see stop_pid).
upstream_stop() {
	[ -n "${UPSTREAM_PID:-}" ] && stop_pid "$UPSTREAM_PID"
	return 0
}

# upstream_sync: returns once every request the upstream has answered so far is in its access
# log. The access line is written after the response went out, so a client (or microscale) can
# have all the bytes a moment before the line exists. A marker request is answered and logged
# after those, so waiting for the marker's line closes that window without a fixed sleep.
# Marker lines carry "ms-sync=" and are left out of every count below.
upstream_sync() {
	local tag=ms-sync=$$.$RANDOM$RANDOM i
	curl -s -o /dev/null --max-time 5 "$UPSTREAM_URL/v2/?$tag" || return 1
	for ((i = 0; i < 200; i++)); do
		grep -qF "$tag " "$UPSTREAM_LOG" && return 0
		sleep 0.025
	done
	echo "upstream_sync: marker never logged" >&2
	return 1
}

# upstream_access_log [FROM_LINE]: the access-log lines (after line FROM_LINE of the log file),
# without sync markers, as "METHOD PATH STATUS BYTES" (user agent and timestamp dropped).
upstream_access_log() {
	local from=${1:-0}
	upstream_sync || return 1
	# Access lines are the only ones starting with the client address; app lines start "time=".
	awk -v from="$from" 'NR > from && !/^time=/ && $2 == "-" && substr($4, 1, 1) == "[" {
		sub(/^[^"]*"/, ""); split($0, q, "\""); split(q[1], r, " ")
		split(q[2], s, " ")
		if (r[2] ~ /ms-sync=/) next
		print r[1], r[2], s[1], s[2]
	}' "$UPSTREAM_LOG"
}

# upstream_count_gets PATH_ERE [STATUS_ERE]: how many GET requests for a path matching the
# extended regex PATH_ERE (a blob digest is enough) the upstream answered with a status matching
# STATUS_ERE (default: any 2xx or 3xx, i.e. served or redirected, not refused).
upstream_count_gets() {
	_upstream_count GET "$1" "${2:-^[23]}"
}

# upstream_count_heads PATH_ERE [STATUS_ERE]: the same for HEAD requests (default: any status,
# since a HEAD that answers 404 is still a question the upstream had to answer).
upstream_count_heads() {
	_upstream_count HEAD "$1" "${2:-.}"
}

_upstream_count() {
	upstream_access_log | awk -v m="$1" -v p="$2" -v s="$3" \
		'$1 == m && $2 ~ p && $3 ~ s { n++ } END { print n + 0 }'
}

# upstream_bytes_served PATH_ERE: body bytes of all GETs for matching paths. Compared with a
# blob's size it tells one complete transfer apart from an aborted one plus a retry.
upstream_bytes_served() {
	upstream_access_log | awk -v p="$1" '$1 == "GET" && $2 ~ p { n += $4 } END { print n + 0 }'
}

# upstream_mark: a position in the log to pass to upstream_requests_since later.
upstream_mark() {
	upstream_sync || return 1
	wc -l <"$UPSTREAM_LOG"
}

# upstream_requests_since MARK: the requests ("METHOD PATH STATUS BYTES") answered after MARK;
# empty when the upstream was not asked anything.
upstream_requests_since() {
	upstream_access_log "$1"
}
