# Steps 1-5: the cache against docker-registry's proxy mode (the peer) and nginx. Sourced by
# tests/bench/run.sh; each step runs ROUNDS rounds, the contenders taking turns within a round.
# Needs UPSTREAM_URL, and for the warm steps MS_W / PEER_W / NGINX_W (addresses of instances
# that already hold the image).
# shellcheck shell=bash

# 1. Warm manifest GETs, by digest and by tag, wrk at 32 connections.
step_manifests() {
	local r c addr how ref out rps p50 p99
	for ((r = 1; r <= ROUNDS; r++)); do
		for c in $MS_CONTENDERS peer nginx; do
			addr=$(contender_addr "$c")
			for how in digest tag; do
				ref=$BENCH_BIG_DIGEST
				[ $how = tag ] && ref=${BENCH_BIG##*:}
				out=$(wrk_manifest "http://$addr/v2/$BENCH_BIG_REPO/manifests/$ref") ||
					bench_fail "wrk of $c's manifest by $how"
				read -r rps p50 p99 <<<"$out"
				record 1 "manifest by $how: req/s" "$c" "$rps" req/s
				record 1 "manifest by $how: p50" "$c" "$p50" ms
				record 1 "manifest by $how: p99" "$c" "$p99" ms
			done
		done
	done
}

# 2. Warm blob throughput: 1 client, then 16 at once, reading the big layer to /dev/null. The
# single client reads it 4 times in a row: one read is too short to time well.
step_blobs() {
	local r c n reps i addr t0 s
	for ((r = 1; r <= ROUNDS; r++)); do
		for c in $MS_CONTENDERS peer nginx; do
			addr=$(contender_addr "$c")
			for n in 1 16; do
				reps=$((n == 1 ? 4 : 1))
				t0=$(now_ns)
				for ((i = 0; i < reps; i++)); do
					get_blobs "$addr" $n || bench_fail "GET of the layer from $c ($n clients)"
				done
				s=$(seconds_since "$t0")
				record 2 "blob, $n client(s): MB/s" "$c" \
					"$(awk -v b="$BENCH_BIG_LAYER_SIZE" -v n=$((n * reps)) -v s="$s" \
						'BEGIN { printf "%.0f", b * n / s / 1e6 }')" MB/s
			done
		done
	done
}

contender_addr() {
	case $1 in
	microscale) echo "$MS_W" ;;
	baseline) echo "$BASE_W" ;;
	peer) echo "$PEER_W" ;;
	nginx) echo "$NGINX_W" ;;
	esac
}

contender_pid() {
	case $1 in
	microscale) echo "$MS_W_PID" ;;
	baseline) echo "$BASE_W_PID" ;;
	peer) echo "$PEER_W_PID" ;;
	nginx) echo "$NGINX_W_PID" ;;
	esac
}

# cold_start CONTENDER [UPSTREAM_URL]: a fresh instance of CONTENDER on an empty store (the
# previous cold one stopped and its store removed); sets COLD_ADDR, COLD_PID. "direct" is the
# upstream itself.
cold_start() {
	local up=${2:-$UPSTREAM_URL}
	[ -n "${COLD_PID:-}" ] && stop_pid "$COLD_PID"
	COLD_PID=
	rm -rf "$T/cold"
	case $1 in
	direct) COLD_ADDR=${up#http://} && return 0 ;;
	microscale) ms_start "$T/cold" "$up" || return 1 ;;
	baseline) MS_BUILD=$BASE_BUILD ms_start "$T/cold" "$up" || return 1 ;;
	peer) peer_start "$T/cold" "$up" || return 1 ;;
	esac
	COLD_ADDR=$ADDR COLD_PID=$PID
}

# 3. Cold pull of the big image with skopeo: direct, through microscale, through the peer.
step_cold_pull() {
	local r c t0
	for ((r = 1; r <= ROUNDS; r++)); do
		for c in direct $MS_CONTENDERS peer; do
			cold_start $c || bench_fail "starting a cold $c"
			t0=$(now_ns)
			skopeo_pull "$COLD_ADDR" || bench_fail "skopeo copy through a cold $c"
			record 3 "cold skopeo pull: s" $c "$(seconds_since "$t0")" s
		done
	done
	cold_start direct
}

# 4. Herd: one cold GET of the big layer, then (on a new empty store) 20 at once, from the
# upstream behind a link of HERD_MBPS ($HERD_URL): a herd matters when the registry is remote.
# The upstream's access log counts the GETs each contender made. The herd's peak RSS is step 5's.
step_herd() {
	local r c t0 mark gets
	for ((r = 1; r <= ROUNDS; r++)); do
		for c in $MS_CONTENDERS peer; do
			cold_start $c "$HERD_URL" || bench_fail "starting a cold $c"
			t0=$(now_ns)
			get_blob "$COLD_ADDR" || bench_fail "cold GET through $c"
			record 4 "1 cold GET: s" $c "$(seconds_since "$t0")" s
			cold_start $c "$HERD_URL" || bench_fail "starting a cold $c"
			mark=$(upstream_mark) || bench_fail "reading the upstream's log"
			t0=$(now_ns)
			get_blobs "$COLD_ADDR" 20 || bench_fail "20 cold GETs through $c"
			record 4 "20 cold GETs at once: s" $c "$(seconds_since "$t0")" s
			gets=$(upstream_requests_since "$mark" |
				awk -v l="$BENCH_BIG_LAYER" '$1 == "GET" && index($2, l) && $3 ~ /^2/' | wc -l)
			record 4 "20 cold GETs at once: upstream GETs" $c "$gets" GETs
			record 5 "peak RSS, 20 cold GETs" $c "$(hwm_kib "$COLD_PID")" KiB
		done
	done
	cold_start direct
}
