#!/bin/bash
# tests/bake/boot.sh STATE: the second half of tests/bake/run.sh, run by it inside the network
# namespace $NS (nsenter --net), which the nodes share: what the test reaches on 127.0.0.1 is
# the node's loopback. STATE/out/node.tar (the baked image) is unpacked and booted under
# `systemd-nspawn --boot`, checked from outside (the cache's HTTP API, the upstream's log, the
# Marathon emulator) and inside (systemctl, journalctl, ps, skopeo, docker, through nsenter into
# the node's namespaces); then unpacked again and booted a second time.
#
# The test upstream is started again on the port the image was baked with (BAKE_UPSTREAM_PORT,
# from the same storage), the Marathon emulator on BAKE_MARATHON_PORT, requiring a token. What an
# operator does on a node before it runs (the Marathon token as a systemd credential, the Docker
# runtime turned on with the unit's docker-socket drop-in, dockerd without iptables in the
# namespace) is written into the unpacked tree before each boot, never into the image.
# shellcheck source-path=SCRIPTDIR/../lib
set -u
MS_ROOT=${MS_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$MS_ROOT/tests/lib/common.sh"
. "$MS_ROOT/tests/lib/upstream.sh"
. "$MS_ROOT/tests/lib/marathon.sh"
. "$MS_ROOT/tests/bake/lib.sh"

S=$1
rmdir "$T"
T=$S/boot
mkdir -p "$T"
export MSCL_BAKE=$S
NODE_PID="" LEADER=""
trap 'node_stop; ms_cleanup' EXIT
SECRET=bake-secret-$RANDOM$RANDOM$RANDOM
CACHE=http://127.0.0.1:5000

# --- the node -------------------------------------------------------------------------------

# IN CMD…: CMD inside the node (every namespace of its init, its root), with a clean environment.
IN() {
	nsenter --target "$LEADER" --all --root --wd \
		env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"
}

# node_prepare DIR: unpacks the image into DIR and does what the node's operator does.
node_prepare() {
	local d=$1
	mkdir -p "$d" && tar -C "$d" --numeric-owner --xattrs -xpf "$S/out/node.tar" || return 1
	# The Marathon token, root's alone, handed to the scaler's transient user as a credential.
	install -m 0600 /dev/null "$d/etc/microscale/marathon-token"
	echo "$SECRET" >"$d/etc/microscale/marathon-token"
	mkdir -p "$d/etc/systemd/system/microscale-scaler.service.d"
	printf '[Service]\nLoadCredential=marathon-token:/etc/microscale/marathon-token\n' \
		>"$d/etc/systemd/system/microscale-scaler.service.d/token.conf"
	jq '.marathon.token_file = "/run/credentials/microscale-scaler.service/marathon-token" |
		.interval_ms = 200' "$d/etc/microscale/scaler.json" >"$d/etc/microscale/scaler.json.new" &&
		mv "$d/etc/microscale/scaler.json.new" "$d/etc/microscale/scaler.json"
	if [ -x "$d/usr/sbin/dockerd" ]; then
		# The node's Docker: the runtime step on, with the drop-in the README gives for it.
		install -D -m 0644 "$d/usr/lib/microscale/microscale-registry-docker-socket.conf" \
			"$d/etc/systemd/system/microscale-registry.service.d/docker-socket.conf"
		jq '.runtime = {"docker_socket": "/var/run/docker.sock", "parallel": 2}' \
			"$d/etc/microscale/registry.json" >"$d/etc/microscale/registry.json.new" &&
			mv "$d/etc/microscale/registry.json.new" "$d/etc/microscale/registry.json"
		# In a namespace of the test's: no iptables, no bridge (wire-runtimes.sh keeps these keys).
		jq '. + {"iptables": false, "ip6tables": false, "bridge": "none", "storage-driver": "vfs"}' \
			"$d/etc/docker/daemon.json" >"$d/etc/docker/daemon.json.new" &&
			mv "$d/etc/docker/daemon.json.new" "$d/etc/docker/daemon.json"
	fi
}

# node_boot N: boots $S/node$N as machine $NS-N; sets NODE_PID (nspawn) and LEADER (the node's
# init, as the host sees it), and waits for the boot to finish.
node_boot() {
	local n=$1 i p state
	# nspawn keeps its mount propagation directory in /run/systemd/nspawn and will only remove
	# it from a tmpfs; this machine's /run is on its disk (no systemd here). So nspawn gets a
	# tmpfs there in a mount namespace of its own, which leaves the host's /run as it is.
	mkdir -p /run/systemd/nspawn
	# shellcheck disable=SC2016 # the inner shell's "$@"
	spawn "$T/console$n.log" unshare --mount --propagation private sh -c \
		'mount -t tmpfs -o mode=0755 mscl-bake /run/systemd/nspawn && exec "$@"' sh \
		systemd-nspawn --boot --directory="$S/node$n" --machine="$NS-$n" --register=no --keep-unit \
		--setenv="MSCL_BAKE=$S" --console=read-only
	NODE_PID=$SPAWNED
	LEADER=""
	for ((i = 0; i < 400 && ${#LEADER} == 0; i++)); do
		sleep 0.05
		# The node's init: pid 1 in its namespace, once it has become systemd and listens.
		for p in $(pgrep -P "$NODE_PID"); do
			grep -qE '^NSpid:.*[[:space:]]1$' "/proc/$p/status" 2>/dev/null &&
				[ "$(cat "/proc/$p/comm")" = systemd ] && [ -S "/proc/$p/root/run/systemd/private" ] &&
				LEADER=$p
		done
	done
	[ -n "$LEADER" ] || { tail -20 "$T/console$n.log" | sed 's/^/# /'; return 1; }
	state=$(timeout 180 nsenter --target "$LEADER" --all --root --wd \
		systemctl is-system-running --wait 2>&1)
	echo "# node $n: systemctl is-system-running: $state"
	[ "$state" = running ] || IN systemctl --failed --no-legend | sed 's/^/# failed: /'
	[ "$state" = running ] || [ "$state" = degraded ]
}

# node_stop: power the node off (nspawn turns TERM into SIGRTMIN+3 for its init), wait for it.
node_stop() {
	local i
	[ -n "$NODE_PID" ] && kill -0 "$NODE_PID" 2>/dev/null || return 0
	kill -TERM "$NODE_PID"
	for ((i = 0; i < 1200; i++)); do
		kill -0 "$NODE_PID" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$NODE_PID" 2>/dev/null
	wait "$NODE_PID" 2>/dev/null
	NODE_RC=$?
	NODE_PID=""
}

main_pid() { IN systemctl show -p MainPID --value "$1"; }
ready() { curl -s -G --data-urlencode "ref=$1" "$CACHE/_microscale/v1/ready" | jq -r "${2:-.ready}"; }
ready_is() { [ "$(ready "$1" "${3:-.ready}")" = "$2" ]; }
journal() { IN journalctl --no-pager -o cat -u "$1"; }

# unit_user UNIT: "NAME UID" of the unit's main process.
unit_user() {
	IN ps -o user:32=,uid= -p "$(main_pid "$1")" 2>/dev/null | awk '{ print $1, $2 }'
}

# dynamic_uid UID: in systemd's range for DynamicUser (61184–65519).
dynamic_uid() { [ "$1" -ge 61184 ] && [ "$1" -le 65519 ]; }

# pull_in REF DEST: skopeo inside the node, through its cache.
pull_in() {
	IN skopeo copy -q --src-tls-verify=false "docker://127.0.0.1:5000/$1" "dir:$2" >/dev/null
}

restarted() { local p; p=$(main_pid microscale-registry); [ "$p" != 0 ] && [ "$p" != "$1" ] &&
	IN systemctl -q is-active microscale-registry; }

# units_common N: what every boot must show.
units_common() {
	local n=$1 u uid
	for u in microscale-registry microscale-scaler; do
		check_eq "boot $n: $u.service is active" active "$(IN systemctl is-active "$u")"
	done
	read -r u uid <<<"$(unit_user microscale-registry)"
	check "boot $n: the cache runs as its DynamicUser ($u, uid $uid)" \
		bash -c "[ '$u' = microscale-registry ] && [ '${uid:-0}' -ge 61184 ] && [ '${uid:-0}' -le 65519 ]"
	check_eq "boot $n: StateDirectory= moved the baked store to the user's private dir" \
		private/microscale "$(IN readlink /var/lib/microscale)"
	check_eq "boot $n: every file of the store is that user's" "0 0" \
		"$(IN find /var/lib/private/microscale ! -uid "${uid:-0}" | wc -l) $(IN find /var/lib/private/microscale/blobs -type f -uid "${uid:-0}" | grep -c . | sed 's/^[1-9][0-9]*$/0/')"
	read -r u uid <<<"$(unit_user microscale-scaler)"
	check "boot $n: the scaler runs as its DynamicUser ($u, uid $uid)" \
		bash -c "[ '$u' = microscale-scaler ] && [ '${uid:-0}' -ge 61184 ] && [ '${uid:-0}' -le 65519 ]"
	# The priority images: ready from the baked store, before any blob came from the upstream.
	check "boot $n: $FIX_OCI is ready" wait_for 10 ready_is "$FIX_OCI" true
	check "boot $n: $FIX_DOCKER is ready" wait_for 10 ready_is "$FIX_DOCKER" true
	check_eq "boot $n: no blob came from the upstream since the boot" "" \
		"$(upstream_requests_since "$MARK" | grep '/blobs/')"
	check "boot $n: the scaler scaled /bake/web on the emulated Marathon to 3" \
		marathon_wait_instances /bake/web 3 30
	check "boot $n: the scaler's log is in the journal" \
		bash -c "$(declare -f IN journal); LEADER=$LEADER; journal microscale-scaler | grep -q 'prog=microscale-scaler'"
	check "boot $n: no secret in the journal (the Marathon token)" \
		bash -c "! { $(declare -f IN); LEADER=$LEADER; IN journalctl --no-pager -o cat; } | grep -qF '$SECRET'"
}

# --- the services the node talks to -----------------------------------------------------------

upstream_start "$S/upstream" "$BAKE_UPSTREAM_PORT" || exit 1
cat >"$T/apps.json" <<EOF
[{"id": "/bake/web", "instances": 0, "container": {"type": "DOCKER", "docker": {"image": "$FIX_OCI"}}}]
EOF
marathon_start --listen "127.0.0.1:$BAKE_MARATHON_PORT" --token "$SECRET" --deploy-seconds 0.2 \
	--apps "$T/apps.json" || exit 1

# --- boot 1 -----------------------------------------------------------------------------------

node_prepare "$S/node1" || exit 1
MARK=$(upstream_mark)
start=$SECONDS
node_boot 1
check_eq "boot 1: systemd-nspawn --boot: the node is up ($((SECONDS - start))s)" 0 $?
[ -n "$LEADER" ] || exit 1
units_common 1
MID1=$(IN cat /etc/machine-id)

# A pull through the cache, inside the node: an image the bake never saw, from the upstream.
mark=$(upstream_mark)
check "boot 1: skopeo in the node pulls $FIX_SHARED_B through the cache" pull_in "$FIX_SHARED_B" /tmp/b
check "boot 1: ... which the cache fetched from the upstream" \
	bash -c "$(declare -f upstream_requests_since upstream_access_log upstream_sync); UPSTREAM_URL=$UPSTREAM_URL UPSTREAM_LOG=$UPSTREAM_LOG; upstream_requests_since $mark | grep -q '/v2/${FIX_SHARED_B%%:*}/blobs/'"
check "boot 1: skopeo in the node pulls $FIX_SHARED_A (imported at bake time)" pull_in "$FIX_SHARED_A" /tmp/a

# The off-loop fsync under the unit's filter: an io_uring instance in the daemon, or the
# fallback's warning in the journal.
pid=$(main_pid microscale-registry)
if IN ls -l "/proc/$pid/fd" | grep -q 'io_uring'; then
	ok "boot 1: the off-loop fsync runs: the daemon holds an io_uring under SystemCallFilter="
	FSYNC=io_uring
else
	check "boot 1: no io_uring: the blocking fsync's fallback is logged" \
		bash -c "$(declare -f IN journal); LEADER=$LEADER; journal microscale-registry | grep -q 'io_uring=unavailable fsync=blocking'"
	FSYNC=blocking
fi
echo "# boot 1: fsync: $FSYNC"
check_eq "boot 1: no system call was refused (no SIGSYS, no 'Bad system call')" "" \
	"$(journal microscale-registry | grep -iE 'sigsys|bad system call|operation not permitted' | head -3)"

# systemctl reload: the priority list is read again.
IN sh -c "echo '$FIX_INDEX' >>/etc/microscale/images.list"
check "boot 1: systemctl reload microscale-registry" IN systemctl reload microscale-registry
check "boot 1: ... re-read the priority list: $FIX_INDEX is prewarmed" wait_for 30 ready_is "$FIX_INDEX" true
check_eq "boot 1: ... and pinned" true "$(ready "$FIX_INDEX" .pinned)"

# kill -9: systemd restarts the daemon, the store is intact.
pid=$(main_pid microscale-registry)
IN kill -9 "$pid"
check "boot 1: kill -9 of the cache: systemd starts it again" wait_for 20 restarted "$pid"
check "boot 1: NRestarts=1" test "$(IN systemctl show -p NRestarts --value microscale-registry)" -ge 1
IN microscale-registry verify -c /etc/microscale/registry.json >"$T/verify.out" 2>&1
check_eq "boot 1: microscale-registry verify after the kill exits 0" 0 $?
sed 's/^/# /' "$T/verify.out" | tail -1
check "boot 1: $FIX_OCI still ready after the restart" wait_for 10 ready_is "$FIX_OCI" true

# The node's Docker: the runtime step hands the priority images to it, and pulls through the cache.
if [ -x "$S/node1/usr/sbin/dockerd" ]; then
	check_eq "boot 1: docker.service is active" active "$(IN systemctl is-active docker)"
	check "boot 1: the cache reaches the Docker socket (drop-in): $FIX_OCI is present in Docker" \
		wait_for 60 ready_is "$FIX_OCI" present .runtime
	check "boot 1: docker image inspect docker.io/$FIX_OCI in the node" \
		IN sh -c "docker image inspect docker.io/$FIX_OCI >/dev/null"
	check "boot 1: docker pull docker.io/$FIX_SHARED_B in the node, through the cache" \
		IN sh -c "docker pull -q docker.io/$FIX_SHARED_B >/dev/null"
	runtime_error=$(ready "$FIX_OCI" .runtime_error)
	[ "$runtime_error" = null ] || echo "# runtime_error: $runtime_error"
else
	echo "# skip: the image has no Docker: no docker pull in the node"
fi

# With the upstream stopped, the priority images still pull.
upstream_stop
check "boot 1: upstream stopped: skopeo pulls $FIX_OCI from the cache" pull_in "$FIX_OCI" /tmp/o
check "boot 1: upstream stopped: skopeo pulls $FIX_DOCKER from the cache" pull_in "$FIX_DOCKER" /tmp/d

# systemd-analyze security, as the booted node sees both units.
for u in microscale-registry microscale-scaler; do
	IN systemd-analyze security --no-pager "$u.service" >"$S/security-$u.txt" 2>&1
	level=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' "$S/security-$u.txt")
	check "boot 1: systemd-analyze security $u.service in the node: $level" \
		awk -v l="${level:-10}" 'BEGIN { exit !(l < 2.0) }'
done

node_stop
check_eq "boot 1: the node powered off cleanly (nspawn exit 0)" 0 "$NODE_RC"

# --- boot 2: the same image again ---------------------------------------------------------------

upstream_start "$S/upstream" "$BAKE_UPSTREAM_PORT" || exit 1
curl -fsS -X POST "$MARATHON_URL/_emu/reset" >/dev/null
node_prepare "$S/node2" || exit 1
MARK=$(upstream_mark)
start=$SECONDS
node_boot 2
check_eq "boot 2: the same image boots again ($((SECONDS - start))s)" 0 $?
[ -n "$LEADER" ] || exit 1
units_common 2
MID2=$(IN cat /etc/machine-id)
check "boot 2: a machine-id of its own (boot 1: $MID1, boot 2: $MID2)" \
	bash -c "[[ '$MID2' =~ ^[0-9a-f]{32}\$ ]] && [ '$MID1' != '$MID2' ]"
check_eq "boot 2: the journal holds this boot only" 1 "$(IN journalctl --list-boots --no-pager -q | wc -l)"
check_eq "boot 2: nothing of the bake or of boot 1 in /tmp, /var/tmp" "" \
	"$(IN find /tmp /var/tmp -mindepth 1 -maxdepth 1 ! -name 'systemd-private-*' ! -name '.*-unix')"
node_stop
check_eq "boot 2: the node powered off cleanly" 0 "$NODE_RC"
