#!/bin/bash
# Starts a microscale cluster on this machine and returns; its daemons keep running in the
# background until tests/cluster/stop.sh (or, once its owner has died, the next start) removes
# them. Needs root (namespaces, a bridge, dockerd). Everything stays on this machine: the agents
# have no default route, the host side listens on the bridge address or loopback.
#
#   host (root namespace)   docker-registry on 127.0.0.1 serving the image set ("the remote";
#                           its access log proves what was fetched), behind ONE shaped uplink
#                           (tests/lib/slowlink.py on 10.231.k.1, CLUSTER_WAN_MBPS, 20 MB/s)
#                           that all agents share; the cluster's tier, a microscale-registry on
#                           10.231.k.1:5000 whose upstream is the uplink (--no-tier: none); the
#                           Mesos master emulator on 10.231.k.1:5050; the Marathon emulator on
#                           10.231.k.1:8080; with --lan-mbps, the tier behind a link of its own
#                           (slowlink.py on 10.231.k.1, its port in tier/tier-link.port) as a host's
#                           LAN link, which all the agents' caches share
#   agent i (mscl<k>-a<i>)  10.231.k.(10+i): microscale-registry on :5000 (upstream docker.io =
#                           the tier, or the uplink without one; the cluster's admin_token;
#                           with --runtime, runtime.docker_socket = the agent's dockerd) and a
#                           dockerd of its own whose registry-mirrors is that cache; registered
#                           with the Mesos emulator (hostname = address, attributes name=agent-i,
#                           rack=r1|r2)
#
# Usage: tests/cluster/start.sh [-n AGENTS] [--owner PID] [--images DIR] [--build DIR]
#                               [--no-marathon] [--no-tier] [--runtime] [--lan-mbps N]
#   -n AGENTS      1..8, default 3
#   --owner PID    the cluster lives as long as PID does (default: the caller, $PPID); after
#                  that it is stale, and the next start removes it
#   --images DIR   an image set (DIR/storage, a docker-registry root, and DIR/images.env), as
#                  tests/lib/fixtures.sh's fixtures_image_set makes; default: the demo images
#                  (tests/demo/images.sh), built once if needed
#   --build DIR    where microscale-registry is (default $MS_BUILD, else build/)
#   --no-marathon  no Marathon emulator (also CLUSTER_NO_MARATHON=1)
#   --no-tier      no tier: every agent's cache fetches over the uplink (also CLUSTER_NO_TIER=1)
#   --runtime      every agent's cache puts the images it warms into the agent's dockerd
#                  (runtime.docker_socket; also CLUSTER_RUNTIME=1; agent.sh runtime-on|off N)
#   --lan-mbps N   the tier's answers go through a link of N MB/s (10^6 bytes), as a host's
#                  LAN link shared by every agent it serves (also CLUSTER_LAN_MBPS; default none)
# Environment: CLUSTER_WAN_MBPS (20), CLUSTER_AGENT_CPUS (2), CLUSTER_AGENT_MEM (1024): what the
# agents offer Mesos; CLUSTER_DOCKERD_LOG_LEVEL (info): the agents' dockerd's, agents added
# later included.
#
# Prints cluster.env (see tests/cluster/lib.sh for the state dir), then its path as the last
# line. On failure it removes what it started, says what failed and exits 1.
set -u
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR/../lib
. "$MS_ROOT/tests/lib/upstream.sh" # the remote's config (_upstream_write_config)

AGENTS=3 OWNER=$PPID IMAGES="" NO_MARATHON=${CLUSTER_NO_MARATHON:-} NO_TIER=${CLUSTER_NO_TIER:-} K=""
WAN_MBPS=${CLUSTER_WAN_MBPS:-20} RUNTIME=${CLUSTER_RUNTIME:-} LAN_MBPS=${CLUSTER_LAN_MBPS:-}

usage() {
	sed -n '/^# Usage:/,/^# Environment:/p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

# fail MESSAGE: says why, removes whatever this start made of cluster $K, exits 1.
fail() {
	trap - INT TERM
	cl_say "start failed: $*"
	if [ -n "$K" ]; then
		cl_say "removing what was started of cluster $K"
		cl_teardown "$K"
	fi
	exit 1
}

parse_args() {
	while [ $# -gt 0 ]; do
		case $1 in
		-n) AGENTS=${2:-} && shift ;;
		--owner) OWNER=${2:-} && shift ;;
		--images) IMAGES=${2:-} && shift ;;
		--build) MS_BUILD=${2:-} && shift ;;
		--no-marathon) NO_MARATHON=1 ;;
		--no-tier) NO_TIER=1 ;;
		--runtime) RUNTIME=1 ;;
		--lan-mbps) LAN_MBPS=${2:-} && shift ;;
		-h | --help) usage ;;
		*) cl_say "unknown argument '$1'" && usage ;;
		esac
		shift
	done
	[[ $AGENTS =~ ^[1-8]$ ]] || fail "-n wants 1..$CL_MAX_AGENTS agents, not '$AGENTS'"
	[[ $OWNER =~ ^[0-9]+$ ]] && cl_starttime "$OWNER" >/dev/null ||
		fail "--owner $OWNER is not a running process"
	[ -z "$LAN_MBPS" ] || [[ $LAN_MBPS =~ ^[0-9]+([.][0-9]+)?$ ]] ||
		fail "--lan-mbps wants MB/s, not '$LAN_MBPS'"
	[ -z "$RUNTIME" ] || RUNTIME=1
	MS_BUILD=$(cd "$MS_BUILD" 2>/dev/null && pwd) || fail "no build directory $MS_BUILD"
}

check_tools() {
	local t
	[ "$(id -u)" = 0 ] || fail "needs root (network namespaces, a bridge, dockerd)"
	[ -x "$MS_BUILD/microscale-registry" ] || fail "$MS_BUILD/microscale-registry is not built (make)"
	for t in ip nsenter setsid flock dockerd docker docker-registry python3 curl jq openssl; do
		command -v "$t" >/dev/null || fail "$t is missing (make deps)"
	done
}

# The image set the remote serves: --images, or the demo's (built in a subshell, so that the
# build's temp dir and EXIT trap from tests/lib/common.sh stay its own).
image_set() {
	if [ -z "$IMAGES" ]; then
		IMAGES=$(
			. "$MS_ROOT/tests/lib/common.sh" && . "$MS_ROOT/tests/lib/upstream.sh" &&
				. "$MS_ROOT/tests/lib/fixtures.sh" && . "$MS_ROOT/tests/demo/images.sh" &&
				demo_images_ready >&2 && echo "$DEMO_IMAGES"
		) || fail "the demo images could not be built"
	fi
	IMAGES=$(cd "$IMAGES" 2>/dev/null && pwd) && [ -d "$IMAGES/storage" ] &&
		[ -f "$IMAGES/images.env" ] || fail "--images $IMAGES: no storage/ and images.env there"
}

# Under the global lock: the stale clusters go, then the first free k is claimed by creating
# its state dir with owner.pid in it, so no other start can take it or find it stale.
claim() {
	local k
	cl_lock 8 "$CL_LOCK" || fail "no lock"
	cl_sweep_stale || cl_say "warning: a stale cluster could not be removed completely"
	for ((k = 1; k <= 250; k++)); do
		[ -e "$(cl_state "$k")" ] && continue
		ip link show "mscl$k" >/dev/null 2>&1 && continue
		[ -n "$(cl_namespaces "$k")" ] && continue
		break
	done
	[ "$k" -le 250 ] || fail "no free cluster index in 1..250"
	K=$k CL_STATE=$(cl_state "$k")
	mkdir -p "$CL_STATE/pids" "$CL_STATE/agents" "$CL_STATE/remote" || fail "mkdir $CL_STATE"
	echo "$OWNER $(cl_starttime "$OWNER")" >"$CL_STATE/owner.pid" || fail "writing owner.pid"
	exec 8>&-
}

# The bridge (its address is the host's on the cluster network) and the cluster's admin token.
host_net() {
	ip link add "mscl$K" type bridge && ip addr add "$(cl_host "$K")/24" dev "mscl$K" &&
		ip link set "mscl$K" up || fail "creating bridge mscl$K"
	(umask 077 && openssl rand -hex 24 >"$CL_STATE/admin_token") || fail "writing admin_token"
}

# The remote: docker-registry on 127.0.0.1 (out of the agents' reach: only the uplink leads
# there) over hard links of the image set (a registry that is only pulled from writes nothing).
# A free port can be taken by someone else before the registry binds it: then another try.
remote_start() {
	local try dir=$CL_STATE/remote
	cp -al "$IMAGES/storage" "$dir/storage" 2>/dev/null || cp -a "$IMAGES/storage" "$dir/storage" ||
		fail "copying $IMAGES/storage"
	REMOTE_LOG=$dir/registry.log
	for try in 1 2 3; do
		UPSTREAM_PORT=$(cl_free_port) || fail "no free port"
		_upstream_write_config "$dir" || fail "writing $dir/config.yml"
		cl_daemon "$CL_STATE/pids/remote.pid" "$REMOTE_LOG" - \
			docker-registry serve "$dir/config.yml" || fail "docker-registry did not start"
		REMOTE_PID=$CL_PID REMOTE_URL=http://127.0.0.1:$UPSTREAM_PORT
		cl_wait 20 "$REMOTE_PID" "the remote registry" "$REMOTE_LOG" \
			cl_http_200 "$REMOTE_URL/v2/" && return 0
		grep -q 'address already in use' "$REMOTE_LOG" || break
		cl_say "the remote lost its port to someone else; another try"
	done
	fail "the remote registry did not become ready"
}

# link_start NAME DIR TARGET MBPS: a tests/lib/slowlink.py on the bridge address (port of its
# choosing) in front of TARGET, its pid, log and port under DIR as NAME.*; prints its URL once
# it answers.
link_start() {
	local name=$1 dir=$2 target=$3 mbps=$4 url
	cl_daemon "$CL_STATE/pids/$name.pid" "$dir/$name.log" - \
		python3 "$MS_ROOT/tests/lib/slowlink.py" --listen "$(cl_host "$K")" \
		--target "$target" --mbps "$mbps" --port-file "$dir/$name.port" ||
		fail "the link $name did not start"
	cl_wait 10 "$CL_PID" "the link $name" "$dir/$name.log" cl_port_file "$dir/$name.port" ||
		fail "the link $name did not start"
	url=http://$(cl_host "$K"):$(cat "$dir/$name.port")
	cl_wait 10 "$CL_PID" "the link $name" "$dir/$name.log" cl_http "$url/v2/" ||
		fail "nothing answers through the link $name"
	echo "$url"
}

# The shared uplink in front of the remote.
uplink_start() {
	UPLINK_URL=$(link_start uplink "$CL_STATE" "127.0.0.1:$UPSTREAM_PORT" "$WAN_MBPS") || exit 1
}

# The cluster's tier (README: Chaining): one cache in front of the uplink that every agent's cache
# uses as its upstream, so the uplink carries each blob once however many agents ask.
tier_start() {
	local dir=$CL_STATE/tier
	TIER_URL="" TIER_LOG="" TIER_LINK_URL=""
	[ -z "$NO_TIER" ] || return 0
	mkdir -p "$dir/cache" || fail "mkdir $dir"
	cl_cache_config "$K" "$(cl_host "$K"):5000" "$dir/cache" "$UPLINK_URL" "$dir/cache.json" ||
		fail "writing $dir/cache.json"
	TIER_URL=http://$(cl_host "$K"):5000 TIER_LOG=$dir/cache.log
	cl_daemon "$CL_STATE/pids/tier.pid" "$TIER_LOG" - "$MS_BUILD/microscale-registry" -d \
		-c "$dir/cache.json" || fail "the tier did not start"
	cl_wait 20 "$CL_PID" "the tier" "$TIER_LOG" cl_http "$TIER_URL/v2/" ||
		fail "the tier did not become ready"
	tier_link_start
}

# --lan-mbps: the tier's LAN link, in front of it on the bridge address; the agents' caches use
# it (TIER_LINK_URL) as their upstream, so all they fetch shares the one link.
tier_link_start() {
	[ -n "$LAN_MBPS" ] || return 0
	TIER_LINK_URL=$(link_start tier-link "$CL_STATE/tier" "$(cl_host "$K"):5000" "$LAN_MBPS") ||
		exit 1
}

mesos_start() {
	MESOS_URL=http://$(cl_host "$K"):5050 MESOS_LOG=$CL_STATE/mesos.log
	cl_daemon "$CL_STATE/pids/mesos.pid" "$CL_STATE/mesos.out" - \
		python3 "$CL_DIR/mesos_emu.py" --listen "$(cl_host "$K"):5050" \
		--port-file "$CL_STATE/mesos.port" --log "$MESOS_LOG" || fail "the Mesos emulator did not start"
	MESOS_PID=$CL_PID
}

marathon_start() {
	MARATHON_URL="" MARATHON_LOG=""
	[ -z "$NO_MARATHON" ] || return 0
	MARATHON_URL=http://$(cl_host "$K"):8080 MARATHON_LOG=$CL_STATE/marathon.log
	cl_daemon "$CL_STATE/pids/marathon.pid" "$CL_STATE/marathon.out" - \
		python3 "$MS_ROOT/tests/lib/marathon_emu.py" --listen "$(cl_host "$K"):8080" \
		--port-file "$CL_STATE/marathon.port" --log "$MARATHON_LOG" --mesos "$MESOS_URL" \
		--docker-host "unix://$CL_STATE/agents/{hostname}/docker.sock" --deploy-seconds 0.5 ||
		fail "the Marathon emulator did not start"
	MARATHON_PID=$CL_PID
}

# The host side: the emulators start while the remote comes up; the uplink needs its port.
host_start() {
	mesos_start
	marathon_start
	remote_start
	uplink_start
	tier_start
	cl_wait 10 "$MESOS_PID" "the Mesos emulator" "$CL_STATE/mesos.out" \
		cl_http_200 "$MESOS_URL/health" || fail "the Mesos emulator did not become ready"
	if [ -n "$MARATHON_URL" ]; then
		cl_wait 10 "$MARATHON_PID" "the Marathon emulator" "$CL_STATE/marathon.out" \
			cl_http_200 "$MARATHON_URL/ping" || fail "the Marathon emulator did not become ready"
	fi
}

# base.env: the cluster's own lines of cluster.env (the agents add theirs).
write_base_env() {
	local v
	{
		echo "# microscale cluster $K (tests/cluster/start.sh): sourceable; agent.sh keeps it up to date."
		for v in CLUSTER_STATE CLUSTER_K CLUSTER_HOST CLUSTER_OWNER CLUSTER_ENV CLUSTER_IMAGES \
			MESOS_URL MESOS_LOG MARATHON_URL MARATHON_LOG REMOTE_URL REMOTE_LOG UPLINK_URL \
			UPLINK_MBPS TIER_URL TIER_LOG TIER_LINK_URL TIER_LINK_MBPS CLUSTER_RUNTIME \
			CLUSTER_DOCKERD_LOG_LEVEL ADMIN_TOKEN_FILE; do
			printf '%s=%q\n' "$v" "${!v}"
		done
	} >"$CL_STATE/base.env"
}

# Every agent at once (dockerd's start-up dominates); each one's steps go to its setup.log.
agents_start() {
	local i dir pids=() failed=""
	for ((i = 1; i <= AGENTS; i++)); do
		dir=$(cl_agent_dir "$K" "$i")
		mkdir -p "$dir" || fail "mkdir $dir"
		cl_agent_up "$K" "$i" >"$dir/setup.log" 2>&1 &
		pids+=($!)
	done
	for ((i = 1; i <= AGENTS; i++)); do
		wait "${pids[i - 1]}" && continue
		failed+=" $i"
		cl_say "agent $i failed; $(cl_agent_dir "$K" "$i")/setup.log says:"
		sed 's/^/  /' "$(cl_agent_dir "$K" "$i")/setup.log" >&2
	done
	[ -z "$failed" ] || fail "agents$failed did not start"
}

# shellcheck disable=SC2034 # the CLUSTER_* variables go to base.env by name (write_base_env)
main() {
	local start=$SECONDS
	parse_args "$@"
	check_tools
	image_set
	trap 'fail "interrupted"' INT TERM
	claim
	cl_lock 9 "$CL_STATE/lock" || fail "no lock on $CL_STATE/lock"
	CLUSTER_STATE=$CL_STATE CLUSTER_K=$K CLUSTER_HOST=$(cl_host "$K") CLUSTER_OWNER=$OWNER
	CLUSTER_ENV=$CL_STATE/cluster.env CLUSTER_IMAGES=$IMAGES UPLINK_MBPS=$WAN_MBPS
	ADMIN_TOKEN_FILE=$CL_STATE/admin_token CLUSTER_RUNTIME=$RUNTIME TIER_LINK_MBPS=$LAN_MBPS
	CLUSTER_DOCKERD_LOG_LEVEL=${CLUSTER_DOCKERD_LOG_LEVEL:-info}
	cl_say "cluster $K in $CL_STATE: $AGENTS agents, owner $OWNER, images $IMAGES"
	host_net
	host_start
	agents_start
	write_base_env && cl_write_env "$K" || fail "writing $CLUSTER_ENV"
	trap - INT TERM
	cl_say "cluster $K up in $((SECONDS - start)) s: agents $(cl_agents "$K" | tr '\n' ' ')"
	cat "$CLUSTER_ENV"
	echo "$CLUSTER_ENV"
}

main "$@"
