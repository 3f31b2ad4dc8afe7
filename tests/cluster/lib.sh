# Shared by tests/cluster/start.sh, stop.sh and agent.sh: the names a cluster uses, how its
# daemons are started and found again, and how all of it is removed.
#
# Cluster k (1..250) owns exactly these names, and nothing else is ever touched:
#   bridge mscl<k> (10.231.<k>.1/24 on the host), namespaces mscl<k>-a<i>, veths mscl<k>-v<i>
#   (host end; "eth0" inside), cgroups mscl<k>-a<i> (docker's cgroup-parent per agent), the
#   state dir /tmp/mscl-<k>/ (everything on disk, mounts included) and processes whose
#   environment carries MSCL_CLUSTER=/tmp/mscl-<k> (every daemon is started with it; what they
#   start inherits it), every process in its namespaces, and their descendants.
# /tmp/mscl-<k>/owner.pid holds "PID STARTTIME" of the owner; once that process is gone the
# cluster is stale and the next start (or stop.sh --all-stale) removes it.
#
# Layout of /tmp/mscl-<k>/:
#   owner.pid  admin_token (0600)  cluster.env (sourceable)  base.env  lock  pids/<name>.pid
#   remote/ (docker-registry: config.yml, storage/, registry.log = its access log)
#   uplink.port uplink.log  mesos.port mesos.log mesos.out  marathon.port marathon.log ...
#   tier/ (cache.json cache/ cache.log; with --lan-mbps: tier-link.port tier-link.log, its LAN link)
#   agents/<addr>/ cache.json (0600) cache/ cache.log daemon.json docker/{data,exec}
#                  docker.sock docker.pid dockerd.log pids/ mesos.id agent.env setup.log
#   removed/<addr>.<time>/  the logs of agents that agent.sh removed
# shellcheck shell=bash

CL_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MS_ROOT=${MS_ROOT:-$(cd "$CL_DIR/../.." && pwd)}
MS_BUILD=${MS_BUILD:-$MS_ROOT/build}
CL_NET=10.231
# shellcheck disable=SC2034 # for the scripts that source this
CL_MAX_AGENTS=8
# shellcheck disable=SC2034 # taken while clusters are created or swept: two starts never race
CL_LOCK=/tmp/mscl.lock
# Daemons run without the caller's proxies: the tests' fake proxy (tests/lib/common.sh) would
# otherwise swallow every request dockerd, the caches and the emulators make on the bridge.
CL_ENV_CLEAN=(env -u HTTP_PROXY -u HTTPS_PROXY -u http_proxy -u https_proxy -u ALL_PROXY
	-u all_proxy -u NO_PROXY -u no_proxy)

cl_say() { echo "cluster: $*" >&2; }

# --- names -------------------------------------------------------------------------------------

cl_state() { echo "/tmp/mscl-$1"; }
cl_host() { echo "$CL_NET.$1.1"; }
cl_addr() { echo "$CL_NET.$1.$((10 + $2))"; }
cl_ns() { echo "mscl$1-a$2"; }
cl_veth() { echo "mscl$1-v$2"; }
cl_agent_dir() { echo "/tmp/mscl-$1/agents/$(cl_addr "$1" "$2")"; }

# cl_namespaces K / cl_links K: the namespaces and host-side veths of cluster K that exist.
cl_namespaces() {
	ip netns list 2>/dev/null | awk '{ print $1 }' | grep -xE "mscl$1-a[0-9]+"
}
cl_links() {
	ip -o link show 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' |
		grep -xE "mscl$1-v[0-9]+"
}

# cl_known: every k for which something of a cluster exists (state dir, bridge or namespace).
cl_known() {
	{
		find /tmp -maxdepth 1 -type d -regex '/tmp/mscl-[0-9]+' -printf '%f\n' | cut -d- -f2
		ip -o link show 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' |
			sed -nE 's/^mscl([0-9]+)$/\1/p'
		ip netns list 2>/dev/null | awk '{ print $1 }' | sed -nE 's/^mscl([0-9]+)-a[0-9]+$/\1/p'
	} | sort -un
}

# --- owners ------------------------------------------------------------------------------------

# cl_starttime PID: the process's start time in clock ticks since boot (field 22 of its stat;
# the fields are counted after the command name, which may hold spaces and parentheses). With
# the pid it names one process for good: a pid reused later has another start time.
cl_starttime() {
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	s=${s##*) }
	awk '{ print $20 }' <<<"$s"
}

# cl_owner_alive STATE: the owner named in STATE/owner.pid still runs.
cl_owner_alive() {
	local pid start now
	read -r pid start 2>/dev/null <"$1/owner.pid" || return 1
	now=$(cl_starttime "$pid") && [ "$now" = "$start" ] && cl_running "$pid"
}

# cl_stale K: nothing of cluster K is owned by a live process (state dir or owner gone).
cl_stale() {
	! cl_owner_alive "$(cl_state "$1")"
}

# --- daemons -----------------------------------------------------------------------------------

# cl_daemon PIDFILE LOG NS|- CMD…: starts CMD in the background for good: its own session (no
# terminal's signals, no SIGHUP when the caller's shell exits), stdin from /dev/null, output
# appended to LOG, the lock descriptors closed, proxies unset, tagged MSCL_CLUSTER=$CL_STATE and,
# unless NS is -, in the network namespace NS (nsenter --net only: `ip netns exec` would also
# remount /sys, and dockerd would then find no cgroups). The process itself writes PIDFILE
# before it becomes CMD (so the pid is right whether or not setsid forked). Sets CL_PID.
cl_daemon() {
	local pf=$1 log=$2 ns=$3 pre=() i
	shift 3
	[ "$ns" = - ] || pre=(nsenter "--net=/run/netns/$ns")
	rm -f "$pf"
	# shellcheck disable=SC2016 # $$, $0 and $@ belong to the inner shell
	setsid "${pre[@]}" "${CL_ENV_CLEAN[@]}" "MSCL_CLUSTER=$CL_STATE" \
		sh -c 'echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' "$pf" "$@" \
		</dev/null >>"$log" 2>&1 8>&- 9>&- &
	for ((i = 0; i < 100; i++)); do
		[ -s "$pf" ] && CL_PID=$(cat "$pf") && return 0
		sleep 0.02
	done
	echo "cluster: $* never started (no $pf); the end of $log:" >&2
	tail -5 "$log" >&2
	return 1
}

# cl_wait SECONDS PID WHAT LOG CMD…: polls CMD every 50 ms until it succeeds. Fails, saying WHAT
# and showing the end of LOG, after SECONDS or as soon as PID has died.
cl_wait() {
	local limit=$1 pid=$2 what=$3 log=$4 i
	shift 4
	for ((i = 0; i < limit * 20; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		if ! cl_running "$pid"; then
			echo "cluster: $what: the process died; the end of $log:" >&2
			tail -15 "$log" >&2
			return 1
		fi
		sleep 0.05
	done
	echo "cluster: $what: not ready after ${limit}s; the end of $log:" >&2
	tail -15 "$log" >&2
	return 1
}

# cl_http URL: any HTTP answer at all (the server is up); cl_http_200 URL: a 200.
cl_http() {
	curl --noproxy '*' -s -o /dev/null --max-time 2 "$1"
}
cl_http_200() {
	[ "$(curl --noproxy '*' -s -o /dev/null -w '%{http_code}' --max-time 2 "$1")" = 200 ]
}

# cl_docker_ping SOCKET: dockerd answers its API on SOCKET.
cl_docker_ping() {
	[ "$(curl -s --max-time 2 --unix-socket "$1" http://docker/_ping)" = OK ]
}

# cl_port_file FILE: the port a daemon wrote to FILE (atomically, once listening).
cl_port_file() {
	[ -s "$1" ] && cat "$1"
}

# cl_free_port: a loopback TCP port nobody listens on now (the kernel picks it).
cl_free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# cl_running PID: PID is a process that has not exited. kill -0 is not enough: an exited daemon
# stays a zombie until its parent reaps it, and ours are orphans, reaped whenever this
# machine's init gets to it (here: up to seconds later).
cl_running() {
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	s=${s##*) }
	[ "${s%% *}" != Z ]
}

# cl_is_ours PID K: PID runs with cluster K's tag (so a stale pidfile never kills a stranger).
cl_is_ours() {
	tr '\0' '\n' 2>/dev/null <"/proc/$1/environ" | grep -qx "MSCL_CLUSTER=$(cl_state "$2")"
}

# cl_pidfile_stop PIDFILE K [GRACE_S] [SIGNAL]: sends SIGNAL (TERM) to the process of PIDFILE if
# it is cluster K's, and waits up to GRACE_S (5) seconds for it to go; then KILL. Idempotent.
cl_pidfile_stop() {
	local pid i
	pid=$(cat "$1" 2>/dev/null) || return 0
	cl_is_ours "$pid" "$2" || return 0
	kill "-${4:-TERM}" "$pid" 2>/dev/null
	for ((i = 0; i < ${3:-5} * 20; i++)); do
		cl_running "$pid" || return 0
		sleep 0.05
	done
	kill -KILL "$pid" 2>/dev/null
	for ((i = 0; i < 40; i++)); do
		cl_running "$pid" || return 0
		sleep 0.05
	done
	echo "cluster: pid $pid ($1) survived SIGKILL" >&2
	return 1
}

# --- finding and removing everything ---------------------------------------------------------

# cl_descendants ROOT_PIDS: ROOT_PIDS (newline-separated) and all their descendants that exist.
# A container's processes are children of its shim, with an environment and perhaps a network
# namespace of their own, so only the process tree finds them.
cl_descendants() {
	[ -n "$1" ] || return 0
	# Zombies are left out: they are dead already, only not yet reaped (see cl_running).
	ps -eo pid=,ppid=,stat= | awk -v roots="$1" '
		BEGIN { n = split(roots, r, "\n"); for (i = 1; i <= n; i++) if (r[i] != "") keep[r[i]] = 1 }
		$3 !~ /^Z/ { parent[$1] = $2 }
		END {
			do {
				grew = 0
				for (p in parent) if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; grew = 1 }
			} while (grew)
			for (p in keep) if (p in parent) print p
		}' | grep -vxF -e "$$" -e "$BASHPID"
}

# cl_pids K [NS]: the processes of cluster K (see the top of this file); with NS only those in
# that namespace and their descendants.
cl_pids() {
	local roots ns
	if [ $# -ge 2 ]; then
		roots=$(ip netns pids "$2" 2>/dev/null)
	else
		roots=$({
			grep -lzx "MSCL_CLUSTER=$(cl_state "$1")" /proc/[0-9]*/environ 2>/dev/null |
				cut -d/ -f3
			for ns in $(cl_namespaces "$1"); do ip netns pids "$ns" 2>/dev/null; done
		} | sort -un)
	fi
	cl_descendants "$roots"
}

# cl_kill_all K [NS]: SIGKILL to cl_pids until none is left (10 s at most).
cl_kill_all() {
	local pids i
	for ((i = 0; i < 100; i++)); do
		pids=$(cl_pids "$@")
		[ -z "$pids" ] && return 0
		# shellcheck disable=SC2086 # one pid per word
		kill -KILL $pids 2>/dev/null
		sleep 0.1
	done
	echo "cluster: processes that would not die: $(cl_pids "$@" | tr '\n' ' ')" >&2
	return 1
}

# cl_dockerd_stop AGENT_DIR K: the agent's containers removed at once (docker rm -f: a stop
# would wait 10 s for every process 1 that ignores SIGTERM), then SIGTERM to its dockerd, so
# that it unmounts its layers and ends its containerd itself; KILL after 10 s.
cl_dockerd_stop() {
	local sock=unix://$1/docker.sock ids pid
	pid=$(cat "$1/docker.pid" 2>/dev/null) && cl_is_ours "$pid" "$2" || return 0
	ids=$(timeout 5 docker -H "$sock" ps -aq 2>/dev/null)
	# shellcheck disable=SC2086 # one id per word
	[ -z "$ids" ] || timeout 10 docker -H "$sock" rm -f $ids >/dev/null 2>&1
	cl_pidfile_stop "$1/docker.pid" "$2" 10
}

# cl_umount_under DIR: unmounts everything mounted below DIR (dockerd's overlay and shm mounts,
# the netns it bind-mounts in its exec root), deepest first; lazily when a mount is busy.
cl_umount_under() {
	local m mounts
	for _ in 1 2 3 4 5; do
		mapfile -t mounts < <(awk -v d="$1/" 'index($2, d) == 1 { print $2 }' /proc/mounts |
			sort -ru)
		[ ${#mounts[@]} -eq 0 ] && return 0
		for m in "${mounts[@]}"; do
			umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
		done
	done
	echo "cluster: still mounted under $1: ${mounts[*]}" >&2
	return 1
}

# cl_cgroups_remove NAME: removes the cgroup directories named NAME (an agent's cgroup-parent)
# in every hierarchy, children first. Only empty cgroups can go: call it once the processes are.
cl_cgroups_remove() {
	local d
	for d in /sys/fs/cgroup/*/"$1" /sys/fs/cgroup/"$1"; do
		[ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	return 0
}

# cl_shim_sockets_remove AGENT_DIR: the sockets the agent's containerd shims left in
# /run/containerd/s when they were killed (a shim that exits removes its own). Each is named
# sha256(<containerd address>/<namespace>/<container id>), so only those of this agent's
# containers are removed, found by their ids in docker's data root.
cl_shim_sockets_remove() {
	local c f
	for c in "$1"/docker/data/containers/*/; do
		[ -d "$c" ] || continue
		f=/run/containerd/s/$(printf '%s' "$1/docker/exec/containerd/containerd.sock/moby/$(basename "$c")" |
			sha256sum | cut -c1-64)
		[ ! -S "$f" ] || rm -f "$f"
	done
}

# cl_link_del LINK: deletes a link in the host's namespace; one that is not there is fine.
cl_link_del() {
	ip link del "$1" 2>/dev/null || ! ip link show "$1" >/dev/null 2>&1
}

# cl_agent_teardown K I: removes agent I of cluster K: its dockerd (gracefully first), every
# process in its namespace, its mounts, cgroups, namespace and veth. Keeps the directory.
cl_agent_teardown() {
	local k=$1 i=$2 dir ns left=""
	dir=$(cl_agent_dir "$k" "$i") ns=$(cl_ns "$k" "$i")
	# Politely first (the cache meanwhile), then whatever is left in the namespace.
	cl_pidfile_stop "$dir/pids/cache.pid" "$k" &
	cl_dockerd_stop "$dir" "$k"
	wait "$!"
	[ -e "/run/netns/$ns" ] && { cl_kill_all "$k" "$ns" || left+=" processes"; }
	cl_umount_under "$dir" || left+=" mounts"
	cl_shim_sockets_remove "$dir"
	cl_cgroups_remove "$ns"
	cl_link_del "$(cl_veth "$k" "$i")" || left+=" veth"
	if [ -e "/run/netns/$ns" ]; then ip netns del "$ns" || left+=" namespace"; fi
	[ -z "$left" ] || { echo "cluster $k agent $i: could not remove:$left" >&2; return 1; }
}

# cl_teardown K: removes cluster K entirely. First politely (containers removed, then every
# daemon gets SIGTERM, all at once so it takes one grace period, not one per daemon; the
# dockerds unmount their layers), then whatever is left: SIGKILL to every process of the cluster,
# unmount what is mounted below its state dir, remove cgroups, namespaces, veths, the bridge,
# the state dir. Idempotent; says what it could not remove and returns 1 then.
cl_teardown() {
	local k=$1 st left="" f ns jobs=()
	st=$(cl_state "$k")
	for f in "$st"/agents/*/docker.pid "$st"/agents/*/pids/cache.pid "$st"/pids/*.pid; do
		[ -f "$f" ] || continue
		case $f in
		*/docker.pid) cl_dockerd_stop "$(dirname "$f")" "$k" & ;;
		*) cl_pidfile_stop "$f" "$k" 10 & ;;
		esac
		jobs+=($!)
	done
	# Only these jobs: a bare `wait` would wait for daemons this shell started, too.
	[ ${#jobs[@]} -eq 0 ] || wait "${jobs[@]}"
	cl_kill_all "$k" || left+=" processes"
	cl_umount_under "$st" || left+=" mounts"
	for f in "$st"/agents/*/; do cl_shim_sockets_remove "${f%/}"; done
	for ns in $(find /sys/fs/cgroup -maxdepth 2 -type d -regex ".*/mscl$k-a[0-9]+" \
		-printf '%f\n' 2>/dev/null | sort -u); do
		cl_cgroups_remove "$ns"
	done
	# A veth goes with either end, and a namespace's end goes with it, a moment later: so the
	# links first, and one already gone is no failure.
	for f in $(cl_links "$k") "mscl$k"; do cl_link_del "$f" || left+=" $f"; done
	for ns in $(cl_namespaces "$k"); do ip netns del "$ns" || left+=" $ns"; done
	# Mounts would make rm fail (or worse, reach into them): only remove once none is left.
	if [ -z "$left" ] && [ -e "$st" ]; then rm -rf "$st" || left+=" $st"; fi
	[ -z "$left" ] || { echo "cluster $k: could not remove:$left" >&2; return 1; }
}

# cl_sweep_stale: removes every stale cluster (cl_stale). Call with $CL_LOCK held.
cl_sweep_stale() {
	local k rc=0
	for k in $(cl_known); do
		[ "$k" -ge 1 ] && [ "$k" -le 250 ] || continue
		cl_stale "$k" || continue
		cl_say "removing stale cluster $k ($(cl_state "$k"))"
		cl_teardown "$k" || rc=1
	done
	return $rc
}

# cl_lock FD FILE: takes an exclusive lock on FILE through descriptor FD (8: $CL_LOCK, the
# global one; 9: a cluster's own), waiting up to 120 s.
cl_lock() {
	eval "exec $1>>\"\$2\"" || return 1
	flock -w 120 "$1" || { echo "cluster: could not lock $2 in 120 s" >&2; return 1; }
}

# --- one agent ---------------------------------------------------------------------------------

# cl_agent_net K I: namespace mscl<k>-a<i> with eth0 (the inside end of veth mscl<k>-v<i>, on
# the bridge) at 10.231.k.(10+i)/24, and lo up. No default route: an agent reaches only the
# bridge, so nothing it runs can go beyond this machine.
cl_agent_net() {
	local k=$1 i=$2 ns veth addr
	ns=$(cl_ns "$k" "$i") veth=$(cl_veth "$k" "$i") addr=$(cl_addr "$k" "$i")
	ip netns add "$ns" &&
		ip link add "$veth" type veth peer name eth0 netns "$ns" &&
		ip link set "$veth" master "mscl$k" up &&
		ip -n "$ns" addr add "$addr/24" dev eth0 &&
		ip -n "$ns" link set eth0 up &&
		ip -n "$ns" link set lo up
}

# cl_cache_config K LISTEN ROOT UPSTREAM FILE [DOCKER_SOCKET]: a cache's config (it holds the
# admin token: mode 0600): an agent's (upstream: the tier, or the uplink without one) or the
# tier's (the uplink). With DOCKER_SOCKET, runtime.docker_socket: the cache puts every image it
# has warmed into that dockerd too (an agent's, with --runtime).
cl_cache_config() {
	(umask 077 && jq -n --arg listen "$2" --arg root "$3" --arg up "$4" --arg sock "${6:-}" \
		--arg token "$(cat "$(cl_state "$1")/admin_token")" \
		'{listen: $listen, root: $root, log_level: "info", admin_token: $token,
		  upstreams: {"docker.io": {url: $up}}} +
		 if $sock == "" then {} else {runtime: {docker_socket: $sock}} end' >"$5")
}

# cl_agent_cache_config K I RUNTIME: agent I's cache.json; RUNTIME 1: with runtime.docker_socket
# = the agent's dockerd socket (a file on the host's file system, so the cache reaches it from
# the agent's namespace). Its upstream: the tier's link, the tier, or the uplink.
cl_agent_cache_config() {
	local dir sock=""
	dir=$(cl_agent_dir "$1" "$2")
	[ "$3" != 1 ] || sock=$dir/docker.sock
	cl_cache_config "$1" "$(cl_addr "$1" "$2"):5000" "$dir/cache" \
		"${TIER_LINK_URL:-${TIER_URL:-$UPLINK_URL}}" "$dir/cache.json" ${sock:+"$sock"}
}

# cl_cache_start K I: the agent's microscale-registry (foreground -d, in its namespace); waits
# until it answers on AGENT_ADDR:5000 from the host.
cl_cache_start() {
	local k=$1 i=$2 dir addr
	dir=$(cl_agent_dir "$k" "$i") addr=$(cl_addr "$k" "$i")
	cl_daemon "$dir/pids/cache.pid" "$dir/cache.log" "$(cl_ns "$k" "$i")" \
		"$MS_BUILD/microscale-registry" -d -c "$dir/cache.json" || return 1
	cl_wait 20 "$CL_PID" "agent $i's cache" "$dir/cache.log" cl_http "http://$addr:5000/v2/"
}

# cl_dockerd_config K I: the agent dockerd's daemon.json. Everything in the file (dockerd refuses
# a setting given both as flag and in the file): its own roots, pidfile and socket under the
# agent dir; its cache as the docker.io mirror; no bridge, iptables, forwarding or masquerading
# (the host's network is left alone); containers' cgroups under mscl<k>-a<i>; a short
# shutdown (its containers are removed before it is told to stop, see cl_dockerd_stop). Every
# registry on the cluster network speaks plain HTTP (insecure-registries: the cache, and the
# network's CIDR, for an image named by its host, such as the uplink's or a bench's proxy's).
# CLUSTER_DOCKERD_LOG_LEVEL (info): debug logs each blob's download and unpack.
cl_dockerd_config() {
	local k=$1 i=$2 dir addr
	dir=$(cl_agent_dir "$k" "$i") addr=$(cl_addr "$k" "$i")
	jq -n --arg d "$dir" --arg m "$addr:5000" --arg cg "/$(cl_ns "$k" "$i")" \
		--arg net "$CL_NET.0.0/16" --arg level "${CLUSTER_DOCKERD_LOG_LEVEL:-info}" '{
		"data-root": "\($d)/docker/data", "exec-root": "\($d)/docker/exec",
		pidfile: "\($d)/docker.pid", hosts: ["unix://\($d)/docker.sock"],
		"registry-mirrors": ["http://\($m)"], "insecure-registries": [$m, $net],
		bridge: "none", iptables: false, ip6tables: false, "ip-forward": false,
		"ip-masq": false, "userland-proxy": false, "storage-driver": "overlay2",
		"cgroup-parent": $cg, "shutdown-timeout": 2, "log-level": $level,
		features: {buildkit: false}}' >"$dir/daemon.json"
}

# cl_dockerd_start K I: the agent's dockerd in its namespace; waits until its API answers.
cl_dockerd_start() {
	local k=$1 i=$2 dir
	dir=$(cl_agent_dir "$k" "$i")
	cl_daemon "$dir/pids/dockerd.pid" "$dir/dockerd.log" "$(cl_ns "$k" "$i")" \
		dockerd --config-file "$dir/daemon.json" || return 1
	cl_wait 30 "$CL_PID" "agent $i's dockerd" "$dir/dockerd.log" cl_docker_ping "$dir/docker.sock"
}

# cl_mesos_register K I: registers the agent with the Mesos emulator; its id into DIR/mesos.id.
cl_mesos_register() {
	local k=$1 i=$2 dir addr body
	dir=$(cl_agent_dir "$k" "$i") addr=$(cl_addr "$k" "$i")
	body=$(jq -nc --arg h "$addr" --arg n "agent-$i" --arg r "r$((i % 2 + 1))" \
		--argjson cpus "${CLUSTER_AGENT_CPUS:-2}" --argjson mem "${CLUSTER_AGENT_MEM:-1024}" \
		'{hostname: $h, port: 5051, attributes: {name: $n, rack: $r},
		  resources: {cpus: $cpus, mem: $mem, disk: 10000, ports: "[31000-31999]"}}') || return 1
	curl --noproxy '*' -fsS --max-time 5 -d "$body" "$MESOS_URL/_emu/agents" |
		jq -er .id >"$dir/mesos.id" || { echo "cluster: registering agent $i failed" >&2; return 1; }
}

# cl_agent_env K I: the agent's lines of cluster.env.
cl_agent_env() {
	local k=$1 i=$2 dir addr
	dir=$(cl_agent_dir "$k" "$i") addr=$(cl_addr "$k" "$i")
	cat >"$dir/agent.env" <<EOF
AGENT_${i}_ADDR=$addr
AGENT_${i}_NS=$(cl_ns "$k" "$i")
AGENT_${i}_ID=$(cat "$dir/mesos.id")
AGENT_${i}_CACHE=http://$addr:5000
AGENT_${i}_CACHE_LOG=$dir/cache.log
AGENT_${i}_CACHE_ROOT=$dir/cache
AGENT_${i}_DOCKER=unix://$dir/docker.sock
AGENT_${i}_DOCKER_LOG=$dir/dockerd.log
AGENT_${i}_DIR=$dir
EOF
}

# cl_agent_up K I: the whole agent: network, cache and dockerd (started together, then waited
# for), registration, env lines. Needs UPLINK_URL (or TIER_URL, TIER_LINK_URL), MESOS_URL and
# CLUSTER_RUNTIME (1: the cache's runtime is on).
cl_agent_up() {
	local k=$1 i=$2 dir cache
	dir=$(cl_agent_dir "$k" "$i")
	mkdir -p "$dir/cache" "$dir/docker/data" "$dir/docker/exec" "$dir/pids" || return 1
	cl_agent_net "$k" "$i" || { echo "cluster: agent $i: network setup failed" >&2; return 1; }
	cl_agent_cache_config "$k" "$i" "${CLUSTER_RUNTIME:-}" && cl_dockerd_config "$k" "$i" ||
		return 1
	# Only this job is waited for: a bare `wait` would also wait for the daemons, which are
	# children of this shell too.
	cl_cache_start "$k" "$i" &
	cache=$!
	cl_dockerd_start "$k" "$i" || { wait "$cache"; return 1; }
	wait "$cache" && cl_mesos_register "$k" "$i" && cl_agent_env "$k" "$i"
}

# --- the env file ------------------------------------------------------------------------------

# cl_agents K: the indices of the agents present (their agent.env exists), in order.
cl_agents() {
	local f
	for f in "$(cl_state "$1")"/agents/*/agent.env; do
		[ -f "$f" ] && sed -nE 's/^AGENT_([0-9]+)_ADDR=.*/\1/p' "$f"
	done | sort -n
}

# cl_write_env K: cluster.env from base.env and the agents' agent.env, atomically.
cl_write_env() {
	local st i
	st=$(cl_state "$1")
	{
		cat "$st/base.env"
		echo "CLUSTER_AGENTS=\"$(cl_agents "$1" | tr '\n' ' ' | sed 's/ $//')\""
		for i in $(cl_agents "$1"); do cat "$(cl_agent_dir "$1" "$i")/agent.env"; done
	} >"$st/cluster.env.tmp" && mv "$st/cluster.env.tmp" "$st/cluster.env"
}

# cl_k_of STATE_DIR: K of /tmp/mscl-K (the only state dirs there are); fails for anything else.
cl_k_of() {
	local d=${1%/}
	[[ $d =~ ^/tmp/mscl-([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" -ge 1 ] &&
		[ "${BASH_REMATCH[1]}" -le 250 ] && echo "${BASH_REMATCH[1]}"
}
