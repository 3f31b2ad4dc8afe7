# Helpers for integration tests on a real cluster on this machine (tests/cluster/start.sh):
# agents in network namespaces, each with its own microscale cache on AGENT_ADDR:5000 and its own
# dockerd (mirror: that cache), the Mesos master and Marathon emulators on the bridge, and the
# remote registry behind one shaped uplink. Sourced after tests/lib/common.sh (it sources
# tests/lib/upstream.sh itself, for reading the remote's access log).
#
#   cluster_up [N [START_ARGS…]]  a cluster of at least N agents (3): $MS_CLUSTER_ENV's when that
#                       is set and alive (tests/run.sh may share one between tests; a test that
#                       changes it must undo that), else a new one owned by this test and removed
#                       when it exits (MS_KEEP_CLUSTER=1 leaves it to the next start's sweep).
#                       Exports cluster.env (CLUSTER_*, MESOS_URL, MARATHON_URL, REMOTE_*,
#                       UPLINK_*, AGENT_<i>_*: see tests/cluster/start.sh) and the image set's
#                       images.env (DEMO_WEB, DEMO_BATCH, DEMO_BIG, … by default).
#   cluster_agent ACTION [I]      tests/cluster/agent.sh (add, deactivate, activate, remove,
#                       stop-cache, start-cache, kill-cache), then the env is read again; after
#                       add, CLUSTER_ADDED is the new agent's index
#   cluster_agent_var I NAME      AGENT_<I>_<NAME>, e.g. cluster_agent_var 2 CACHE
#   cluster_agent_docker I ARGS…  the docker CLI against agent I's dockerd
#   cluster_in I CMD…             CMD in agent I's network namespace (proxies unset)
#   cluster_cache_curl I PATH [CURL_ARGS…]  a request to agent I's cache with the admin token;
#                       prints the status, the body lands in $T/cluster.body
#   cluster_cache_metric I SELECTOR  the sum of agent I's samples matching SELECTOR: a metric
#                       name (all its label sets), or name{labels} exactly as exposed
#   cluster_cache_ready I REF     true/false: REF is ready in agent I's cache
#   cluster_mesos PATH [JQ]       GET from the Mesos emulator, through jq (default .)
#   cluster_mesos_agent I [JQ]    agent I's entry in /master/slaves through jq; null if absent
#   cluster_remote_mark / cluster_remote_since MARK / cluster_remote_count_gets PATH_ERE
#                       the remote's access log, as upstream_mark, upstream_requests_since and
#                       upstream_count_gets read it (tests/lib/upstream.sh)
#   cluster_new_image NAME [BYTES] a runnable image no cache has seen (busybox and BYTES of data
#                       unique to this call) pushed to the remote as library/NAME:1; prints it
#   cluster_new_image_alone NAME BYTES [GZIP_LEVEL]  the same as one layer that holds busybox
#                       too, so that it shares no blob with any other image (a benchmark's
#                       fresh image), gzipped at GZIP_LEVEL (-6; -1 for incompressible data)
#   cluster_marathon_app ID IMAGE [JQ]  creates (PUT) app ID with 0 instances, cpus 0.1, mem 32,
#                       the demo command, JQ applied to the definition (e.g. '.constraints = …')
#   cluster_scaler_conf FILE PORT JQ  a scaler config for this cluster (Marathon, Mesos with
#                       refresh_ms 500, the caches' admin token) with JQ applied
#   cluster_leftovers K           what is left of cluster K (names, processes, mounts), one thing
#                       a line; empty when it is entirely gone
# shellcheck shell=bash

# shellcheck source-path=SCRIPTDIR
. "$MS_ROOT/tests/lib/upstream.sh"
. "$MS_ROOT/tests/lib/fixtures.sh"
. "$MS_ROOT/tests/demo/images.sh"
# shellcheck source-path=SCRIPTDIR/../cluster
. "$MS_ROOT/tests/cluster/lib.sh"
CLUSTER_OWNED=""
# The cluster's addresses are not loopback: curl and Go (dockerd) must not send them to the
# fake proxy of tests/lib/common.sh. Both understand a CIDR in NO_PROXY.
export NO_PROXY=${NO_PROXY:+$NO_PROXY,}$CL_NET.0.0/16 no_proxy=${no_proxy:+$no_proxy,}$CL_NET.0.0/16

cluster_up() {
	local n=${1:-3} envf
	[ $# -gt 0 ] && shift
	if [ -n "${MS_CLUSTER_ENV:-}" ] && _cluster_alive "$MS_CLUSTER_ENV"; then
		cluster_env_load "$MS_CLUSTER_ENV" || return 1
		echo "# cluster: reusing cluster $CLUSTER_K ($CLUSTER_STATE), agents $CLUSTER_AGENTS"
		while [ "$(wc -w <<<"$CLUSTER_AGENTS")" -lt "$n" ]; do cluster_agent add || return 1; done
		return 0
	fi
	[ -z "${MS_CLUSTER_ENV:-}" ] || echo "# cluster: $MS_CLUSTER_ENV is not alive; starting one"
	envf=$("$MS_ROOT/tests/cluster/start.sh" -n "$n" --owner "$$" --build "$MS_BUILD" "$@" \
		2>"$T/cluster.start.err" | tail -1)
	sed 's/^/# /' "$T/cluster.start.err"
	if [ ! -f "$envf" ]; then
		echo "cluster_up: tests/cluster/start.sh failed (its output is above)" >&2
		return 1
	fi
	CLUSTER_OWNED=$(dirname "$envf")
	trap 'cluster_down; ms_cleanup' EXIT
	cluster_env_load "$envf"
}

# cluster_down: removes the cluster cluster_up started (not a shared one).
cluster_down() {
	[ -n "$CLUSTER_OWNED" ] || return 0
	if [ -n "${MS_KEEP_CLUSTER:-}" ]; then
		echo "# cluster: kept $CLUSTER_OWNED (MS_KEEP_CLUSTER)"
	else
		"$MS_ROOT/tests/cluster/stop.sh" "$CLUSTER_OWNED" 2>&1 | sed 's/^/# /'
	fi
	CLUSTER_OWNED=""
}

# _cluster_alive ENV_FILE: its owner runs and its Mesos emulator answers.
_cluster_alive() {
	local st url
	[ -f "$1" ] || return 1
	st=$(sed -n 's/^CLUSTER_STATE=//p' "$1") url=$(sed -n 's/^MESOS_URL=//p' "$1")
	cl_owner_alive "$st" && cl_http_200 "$url/health"
}

# cluster_env_load ENV_FILE: exports the cluster's variables and its image set's. AGENT_<i>_*
# of agents no longer there are unset first.
cluster_env_load() {
	local v
	for v in $(compgen -v AGENT_); do unset "$v"; done
	set -a
	# shellcheck source=/dev/null
	. "$1" && . "$CLUSTER_IMAGES/images.env"
	local rc=$?
	set +a
	[ $rc -eq 0 ] || { echo "cluster_env_load: could not read $1" >&2; return 1; }
	(umask 077 && printf 'Authorization: Bearer %s\n' "$(cat "$ADMIN_TOKEN_FILE")" \
		>"$T/cluster.auth") # a header file keeps the token out of the process list
}

cluster_agent() {
	local before=" $CLUSTER_AGENTS " i
	"$MS_ROOT/tests/cluster/agent.sh" "$CLUSTER_STATE" "$@" >/dev/null 2>"$T/cluster.agent.err"
	local rc=$?
	sed 's/^/# /' "$T/cluster.agent.err"
	cluster_env_load "$CLUSTER_ENV" || return 1
	if [ "$1" = add ]; then
		CLUSTER_ADDED=""
		# shellcheck disable=SC2034 # for the test
		for i in $CLUSTER_AGENTS; do [[ $before == *" $i "* ]] || CLUSTER_ADDED=$i; done
	fi
	[ $rc -eq 0 ] || echo "cluster_agent $*: agent.sh failed (above)" >&2
	return $rc
}

cluster_agent_var() {
	local v=AGENT_${1}_$2
	[ -n "${!v:-}" ] || { echo "cluster_agent_var: no $v" >&2; return 1; }
	echo "${!v}"
}

cluster_agent_docker() {
	local host
	host=$(cluster_agent_var "$1" DOCKER) || return 1
	shift
	docker -H "$host" "$@"
}

cluster_in() {
	local ns
	ns=$(cluster_agent_var "$1" NS) || return 1
	shift
	nsenter "--net=/run/netns/$ns" "${CL_ENV_CLEAN[@]}" "$@"
}

cluster_cache_curl() {
	local base
	base=$(cluster_agent_var "$1" CACHE) || return 1
	local path=$2
	shift 2
	curl -s -o "$T/cluster.body" -w '%{http_code}' -H @"$T/cluster.auth" "$@" "$base$path"
}

cluster_cache_metric() {
	local base
	base=$(cluster_agent_var "$1" CACHE) || return 1
	curl -fsS --max-time 5 "$base/metrics" | awk -v sel="$2" '
		$1 == sel || (index(sel, "{") == 0 && index($1, sel "{") == 1) { n += $2 }
		END { printf "%.0f\n", n }'
}

cluster_cache_ready() {
	local code
	code=$(cluster_cache_curl "$1" "/_microscale/v1/ready?ref=$2") || return 1
	[ "$code" = 200 ] || { echo "cluster_cache_ready: agent $1 answered $code" >&2; return 1; }
	jq -r .ready "$T/cluster.body"
}

cluster_mesos() {
	curl -fsS --max-time 5 "$MESOS_URL$1" | jq -c "${2:-.}"
}

cluster_mesos_agent() {
	local id
	id=$(cluster_agent_var "$1" ID) || return 1
	cluster_mesos /master/slaves | jq -c --arg id "$id" "[.slaves[] | select(.id == \$id)][0] |
		if . == null then null else ${2:-.} end"
}

# The remote's access log read by tests/lib/upstream.sh's functions, which know it as
# UPSTREAM_URL/UPSTREAM_LOG.
cluster_remote_mark() { UPSTREAM_URL=$REMOTE_URL UPSTREAM_LOG=$REMOTE_LOG upstream_mark; }
cluster_remote_since() {
	UPSTREAM_URL=$REMOTE_URL UPSTREAM_LOG=$REMOTE_LOG upstream_requests_since "$1"
}
cluster_remote_count_gets() {
	UPSTREAM_URL=$REMOTE_URL UPSTREAM_LOG=$REMOTE_LOG upstream_count_gets "$@"
}

cluster_leftovers() {
	local k=$1 st
	st=$(cl_state "$k")
	[ ! -e "$st" ] || echo "state dir $st"
	ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' |
		grep -xE "mscl$k(-v[0-9]+)?" | sed 's/^/link /'
	cl_namespaces "$k" | sed 's/^/namespace /'
	cl_pids "$k" | sed 's/^/process /'
	pgrep -af "$st/" | sed 's/^/process /'
	awk -v d="$st/" 'index($2, d) == 1 { print "mount " $2 }' /proc/mounts
	find /sys/fs/cgroup -maxdepth 2 -name "mscl$k-a*" -printf 'cgroup %p\n' 2>/dev/null
}

cluster_new_image() {
	local name=$1 bytes=${2:-65536} l=$T/img/$1 w=$T/img/work bb a m
	rm -rf "$l" && _fix_layout_init "$l" || return 1
	bb=$(_fix_layer_busybox "$l" "$w") &&
		a=$(_fix_layer "$l" "$w" "$name-$$-$RANDOM$RANDOM" "$bytes" amd64) &&
		m=$(_fix_image_cmd "$l" amd64 "$DEMO_CMD" "$bb" "$a") || return 1
	_cluster_push "$l" "$m" "$name"
}

cluster_new_image_alone() {
	local name=$1 l=$T/img/$1 w=$T/img/work/$1 a m
	rm -rf "$l" "$w" && _fix_layout_init "$l" && mkdir -p "$w/root/bin" "$w/root/data" &&
		cp /bin/busybox "$w/root/bin/busybox" && ln -s busybox "$w/root/bin/sh" &&
		head -c "$2" /dev/urandom >"$w/root/data/$name.bin" || return 1
	a=$(_fix_tar_layer "$l" "$w" "${3:--6}" bin data) &&
		m=$(_fix_image_cmd "$l" amd64 "$DEMO_CMD" "$a") || return 1
	_cluster_push "$l" "$m" "$name"
}

# _cluster_push LAYOUT MANIFEST NAME: the layout's image (MANIFEST: _fix_image_cmd's descriptor)
# pushed to the remote as library/NAME:1, which it prints; the layout is removed.
_cluster_push() {
	_fix_layout_ref "$1" "$FIX_MT_OCI_MANIFEST" "$2" &&
		skopeo copy --quiet --dest-tls-verify=false "oci:$1:latest" \
			"docker://${REMOTE_URL#http://}/library/$3:1" >&2 || return 1
	rm -rf "$1"
	echo "library/$3:1"
}

cluster_marathon_app() {
	local body code
	body=$(jq -nc --arg id "$1" --arg img "$2" "{id: \$id, instances: 0, cpus: 0.1, mem: 32,
		container: {type: \"DOCKER\", docker: {image: \$img}}} | ${3:-.}") || return 1
	code=$(curl -s -o "$T/cluster.app" -w '%{http_code}' -X PUT -H 'Content-Type: application/json' \
		--data-binary "$body" "$MARATHON_URL/v2/apps$1")
	[ "$code" = 201 ] || { echo "cluster_marathon_app $1: $code $(cat "$T/cluster.app")" >&2; return 1; }
}

cluster_scaler_conf() {
	jq -n --arg m "$MARATHON_URL" --arg me "$MESOS_URL" --arg tok "$ADMIN_TOKEN_FILE" \
		--arg l "127.0.0.1:$2" "{marathon: {url: \$m}, mesos: {url: \$me, refresh_ms: 500},
		gate: {token_file: \$tok}, interval_ms: 100, listen: \$l} | $3" >"$1"
}
