# Runtime: prewarmed means runnable. With runtime.docker_socket set, an image complete in the
# store is asked of that dockerd (POST /images/create on the unix socket), which pulls it through
# its registry mirror, this cache. A real dockerd 20.10 (tests/lib/clients.sh) mirrors to the
# cache through a 20 MB/s link (tests/lib/slowlink.py: a pull of the 100 MiB image lasts long
# enough to kill dockerd in the middle of it). The scenario:
#   upstream: a private copy of the demo images (runnable busybox images; the test moves a tag)
#   cache:    tag_ttl_s 0, a priority list, runtime on; restarted once on the same port
#   what must happen, and what must be in the cache's log:
#   - nothing asked: "runtime": "absent"; listed: in `docker images` with no client pulling,
#     "present", event=runtime_pull; it runs, and running it asks the cache for nothing
#   - dockerd stopped: "failed" with the socket's reason, the store side untouched, one
#     event=runtime_unreachable however many retries; dockerd back: it goes in
#   - dockerd killed mid-pull: "failed", event=runtime_failed … "cut the pull short"; back: in
#   - a tag moved upstream: after revalidation the new digest is in Docker, whether the prewarm
#     job revalidated it (SIGHUP) or a client's pull did
#   - another registry's image: dockerd is asked for host:port/repo; dockerd answering 500
#     (that registry down) is "failed" with dockerd's message
#   - a restarted cache checks, finds the image present and pulls nothing
#   - a refused socket: "failed", "Connection refused"; no runtime key: "off"
. "$(dirname "$0")/../lib/common.sh"
. "$MS_ROOT/tests/lib/upstream.sh"
. "$MS_ROOT/tests/lib/fixtures.sh"
. "$MS_ROOT/tests/lib/cache.sh"
. "$MS_ROOT/tests/lib/clients.sh"
. "$MS_ROOT/tests/demo/images.sh"

clients_need_root || exit 0
demo_images_ready || exit 1
# A private copy: the shared demo storage is served as hard links, and a push would write into it.
mkdir -p "$T/up" && cp -a "$DEMO_IMAGES/storage" "$T/up/storage" && upstream_start "$T/up" || exit 1
UP=127.0.0.1:$UPSTREAM_PORT
SOCK=$T/docker.sock

api() { curl -s "$CACHE_URL/_microscale/v1/$1"; }
field() { api "ready?ref=$1" | jq -r ".$2"; }
rt_is() { [ "$(field "$1" runtime)" = "$2" ]; }
is_ready() { [ "$(field "$1" ready)" = true ]; }
digest_is() { [ "$(field "$1" digest)" = "$2" ]; }
prewarm() { curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d "{\"ref\":\"$1\"}" "$CACHE_URL/_microscale/v1/prewarm"; }
in_docker() { $DOCKER images --format '{{.Repository}}:{{.Tag}}' | grep -qxF "$1"; }
repo_digests() { $DOCKER image inspect --format '{{join .RepoDigests " "}}' "$1" 2>/dev/null; }
metric() { curl -s "$CACHE_URL/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }
metric_ge() { [ "$(metric "$1")" -ge "$2" ] 2>/dev/null; }
# Manifest and blob requests the cache answered, by anyone.
cache_requests() { curl -s "$CACHE_URL/metrics" | awk '/^microscale_cache_requests_total/ { n += $2 } END { print n + 0 }'; }
upstream_digest() {
	curl -s -o /dev/null -D - -H "Accept: $FIX_ACCEPT" "$UPSTREAM_URL/v2/$1/manifests/$2" |
		tr -d '\r' | awk -F': ' 'tolower($1) == "docker-content-digest" { print $2 }'
}
# cache_restart: the same cache again on the same port (dockerd's mirror names it), a new log.
cache_restart() {
	cache_stop
	CACHE_LOG=$T/cache.$CACHE_PORT.restarted.log
	spawn "$CACHE_LOG" "$MS_BUILD/microscale-registry" -d --listen "$CACHE" --root "$CACHE_ROOT" "$@"
	CACHE_PID=$SPAWNED
	wait_port "$CACHE_PORT" "$CACHE_PID"
}

# The key is checked at start-up: an absolute path, else a config error naming it.
echo '{"runtime": {"docker_socket": "run/docker.sock"}}' >"$T/bad.json"
msg=$("$MS_BUILD/microscale-registry" -n -c "$T/bad.json" 2>&1)
check_eq "-n: a relative runtime.docker_socket exits 1" 1 "$?"
check "-n: the message names the file and the key" grep -qF "$T/bad.json: runtime.docker_socket: must be an absolute path" <<<"$msg"

cat >"$T/registry.json" <<EOF
{"tag_ttl_s": 0,
 "upstreams": {"docker.io": {"url": "$UPSTREAM_URL"}, "$UP": {"url": "$UPSTREAM_URL"}},
 "runtime": {"docker_socket": "$SOCK"}}
EOF
: >"$T/images.list"
cache_start -c "$T/registry.json" --prewarm "$T/images.list" || exit 1
rm -f "$T/link.port"
spawn "$T/link.log" python3 "$MS_ROOT/tests/lib/slowlink.py" --target "$CACHE" --mbps 20 \
	--port-file "$T/link.port"
wait_for 10 test -s "$T/link.port" && wait_port "$(cat "$T/link.port")" "$SPAWNED" 5 || exit 1
containerd_start || exit 1 # ours, so that dockerd can stop and start again on it
dockerd_start "http://127.0.0.1:$(cat "$T/link.port")" || exit 1
check_eq "runtime on, image never asked for: absent" absent "$(field "$DEMO_WEB" runtime)"

# --- listed: into Docker before anyone asks ---
echo "$DEMO_WEB" >"$T/images.list"
kill -HUP "$CACHE_PID"
check "listed image: runtime present" wait_for 120 rt_is "$DEMO_WEB" present
check_eq "listed image: the store side is ready" true "$(field "$DEMO_WEB" ready)"
check_eq "listed image: no runtime_error" null "$(field "$DEMO_WEB" runtime_error)"
check "listed image: in docker images, no client pulled it" in_docker demo-web:1
check "log: the cache asked dockerd for docker.io/library/demo-web, tag 1" \
	grep -q 'event=runtime_pull image=docker.io/library/demo-web:1 .*from_image=docker.io/library/demo-web tag=1' "$CACHE_LOG"
check "log: runtime_present, pulled" grep -q 'event=runtime_present image=docker.io/library/demo-web:1 .*pulled=1' "$CACHE_LOG"
check_eq "metrics: one pull, ok" 1 "$(metric 'microscale_runtime_pulls_total{result="ok"}')"
check_eq "metrics: one image present" 1 "$(metric 'microscale_runtime_images{state="present"}')"
check_eq "images lists the runtime state too" present \
	"$(api images | jq -r '.images[] | select(.ref == "docker.io/library/demo-web:1") | .runtime')"
before=$(cache_requests)
out=$($DOCKER run --rm --network none docker.io/library/demo-web:1 /bin/busybox echo runnable 2>&1)
check_eq "it runs" runnable "$out"
check_eq "running it asked the cache for no manifest and no blob" "$before" "$(cache_requests)"

# --- dockerd stopped: the store side goes on, the runtime says why, and catches up ---
dockerd_stop
check_eq "dockerd down: POST prewarm -> 202" 202 "$(prewarm "$DEMO_BATCH")"
check "dockerd down: the image is ready in the store" wait_for 60 is_ready "$DEMO_BATCH"
check "dockerd down: runtime failed" wait_for 30 rt_is "$DEMO_BATCH" failed
err=$(field "$DEMO_BATCH" runtime_error)
check "dockerd down: runtime_error names the socket and why ($err)" \
	grep -qE "^docker socket $SOCK: (No such file or directory|Connection refused)$" <<<"$err"
check_eq "dockerd down: state is ready" ready "$(field "$DEMO_BATCH" state)"
check "dockerd down: clients still pull through the cache" cache_copy "$DEMO_BATCH" "dir:$T/batch"
check "dockerd down: retried" wait_for 30 metric_ge 'microscale_runtime_errors_total{kind="unreachable"}' 2
check_eq "dockerd down: one log line for the outage" 1 "$(grep -c 'event=runtime_unreachable' "$CACHE_LOG")"
check_eq "dockerd down: the earlier image is not disturbed" present "$(field "$DEMO_WEB" runtime)"
dockerd_start "http://127.0.0.1:$(cat "$T/link.port")" || exit 1
check "dockerd back: runtime present" wait_for 120 rt_is "$DEMO_BATCH" present
check "dockerd back: in docker images" in_docker demo-batch:1
check "log: the outage's end" grep -q "event=runtime_reachable socket=$SOCK" "$CACHE_LOG"

# --- dockerd killed in the middle of a pull (the 100 MiB image, 5 s over the link) ---
check_eq "big image: POST prewarm -> 202" 202 "$(prewarm "$DEMO_BIG")"
check "big image: ready in the store" wait_for 120 is_ready "$DEMO_BIG"
check "big image: the runtime pull starts" wait_for 60 grep -q 'event=runtime_pull image=docker.io/library/demo-big:1' "$CACHE_LOG"
kill -KILL "$DOCKERD_PID"
{ wait "$DOCKERD_PID"; } 2>/dev/null # (no "Killed" line from bash)
check "killed mid-pull: runtime failed" wait_for 30 rt_is "$DEMO_BIG" failed
echo "# runtime_error: $(field "$DEMO_BIG" runtime_error)"
# The stream ends early, or the kernel resets it (unread bytes were in dockerd's socket).
check "log: runtime_failed, the pull cut short" \
	grep -qE 'event=runtime_failed image=docker.io/library/demo-big:1 .*error="(dockerd cut the pull short|docker socket [^"]*: Connection reset by peer)' "$CACHE_LOG"
check "killed mid-pull: the store side is untouched" is_ready "$DEMO_BIG"
check "the cache is still up" kill -0 "$CACHE_PID"
dockerd_stop # what the KILL left behind
dockerd_start "http://127.0.0.1:$(cat "$T/link.port")" || exit 1
check "dockerd back: the big image goes in" wait_for 180 rt_is "$DEMO_BIG" present
check "dockerd back: demo-big:1 in docker images" in_docker demo-big:1

# --- a tag moved upstream: after revalidation, the new image is in Docker ---
old=$(field "$DEMO_WEB" digest)
skopeo copy -q --src-tls-verify=false --dest-tls-verify=false "docker://$UP/library/demo-batch:1" \
	"docker://$UP/library/demo-web:1" || not_ok "pushing demo-batch as demo-web:1"
new=$(upstream_digest library/demo-web 1)
check "the tag moved upstream ($old -> $new)" test -n "$new" -a "$new" != "$old"
kill -HUP "$CACHE_PID" # prewarms the list again; tag_ttl_s 0: the tag is revalidated
check "moved: the store side follows" wait_for 60 digest_is "$DEMO_WEB" "$new"
check "moved: runtime present at the new digest" wait_for 120 rt_is "$DEMO_WEB" present
check "moved: Docker's demo-web:1 is the new image" grep -qF "@$new" <<<"$(repo_digests docker.io/library/demo-web:1)"
check_eq "moved: pulled again" 2 "$(grep -c 'event=runtime_pull image=docker.io/library/demo-web:1' "$CACHE_LOG")"
# Moved back, and this time revalidated for a client (no SIGHUP): prewarm and the runtime follow.
skopeo copy -q --src-tls-verify=false --dest-tls-verify=false "docker://$UP/library/demo-web@$old" \
	"docker://$UP/library/demo-web:1" || not_ok "pushing the old demo-web as demo-web:1"
check "moved back: a client pulls the tag through the cache" cache_copy "$DEMO_WEB" "dir:$T/web"
check "moved back: the store side follows" wait_for 60 digest_is "$DEMO_WEB" "$old"
check "moved back: runtime present at the old digest" wait_for 120 rt_is "$DEMO_WEB" present
check "moved back: Docker's demo-web:1 is the old image again" grep -qF "@$old" <<<"$(repo_digests docker.io/library/demo-web:1)"
check_eq "moved back: pulled a third time" 3 "$(grep -c 'event=runtime_pull image=docker.io/library/demo-web:1' "$CACHE_LOG")"

# --- another registry: dockerd is asked for host:port/repo and pulls from it itself ---
check_eq "other registry: POST prewarm -> 202" 202 "$(prewarm "$UP/library/demo-batch:1")"
check "other registry: runtime present" wait_for 120 rt_is "$UP/library/demo-batch:1" present
check "other registry: in docker images as $UP/library/demo-batch:1" in_docker "$UP/library/demo-batch:1"

# --- restarted: present images are found, nothing is pulled again ---
upstream_stop # from here the store alone (stale-if-error) answers for the tags
$DOCKER rmi -f "$UP/library/demo-batch:1" >/dev/null
cache_restart -c "$T/registry.json" --prewarm "$T/images.list" || exit 1
check "restarted: runtime present" wait_for 60 rt_is "$DEMO_WEB" present
check "restarted: found present, not pulled" grep -q 'event=runtime_present image=docker.io/library/demo-web:1 .*pulled=0' "$CACHE_LOG"
check_eq "restarted: no runtime_pull" 0 "$(grep -c 'event=runtime_pull' "$CACHE_LOG")"
# dockerd pulls another registry's images itself: with that registry down, it answers 500.
check_eq "registry down: POST prewarm -> 202" 202 "$(prewarm "$UP/library/demo-batch:1")"
check "registry down: ready from the store" wait_for 60 is_ready "$UP/library/demo-batch:1"
check "registry down: runtime failed" wait_for 60 rt_is "$UP/library/demo-batch:1" failed
err=$(field "$UP/library/demo-batch:1" runtime_error)
check "registry down: dockerd's 500 and its message ($err)" \
	grep -qE "^dockerd answered 500 to POST /images/create: .*$UP.*refused" <<<"$err"
check "log: runtime_failed with dockerd's answer" grep -q 'event=runtime_failed .*error="dockerd answered 500' "$CACHE_LOG"
cache_stop
check_eq "the cache exits 0 with the runtime on" 0 "$?"

# --- a refused socket (bound, nobody listening), and the runtime off ---
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$T/stale.sock"
echo "{\"runtime\": {\"docker_socket\": \"$T/stale.sock\"}, \"upstreams\": {\"docker.io\": {\"url\": \"$UPSTREAM_URL\"}}}" >"$T/stale.json"
cache_start -c "$T/stale.json" || exit 1
check_eq "refused: POST prewarm -> 202" 202 "$(prewarm "$DEMO_WEB")"
check "refused: runtime failed" wait_for 60 rt_is "$DEMO_WEB" failed
check_eq "refused: the reason" "docker socket $T/stale.sock: Connection refused" "$(field "$DEMO_WEB" runtime_error)"
check_eq "refused: the store side is ready" true "$(field "$DEMO_WEB" ready)"
cache_stop
CACHE_ROOT=$T/cache-off cache_start || exit 1
check_eq "no runtime key: off" off "$(field "$DEMO_WEB" runtime)"
check_eq "no runtime key: no runtime_error" null "$(field "$DEMO_WEB" runtime_error)"
cache_stop
