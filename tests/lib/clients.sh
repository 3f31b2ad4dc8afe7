# Real pulling clients (containerd's ctr, dockerd 20.10) aimed at a registry mirror on loopback.
# Sourced after common.sh. Every daemon keeps its state, sockets and logs under $T; nothing touches
# /var/lib/docker, /var/lib/containerd or /run/containerd, and nothing may leave loopback (common.sh
# points the proxies at 127.0.0.1:9). Both daemons need root; tests should `clients_need_root || exit 0`.
#
# What the clients send (measured with tests/lib/hostile.py --verbose as the mirror, tiny image):
#
# ctr 1.6.20: `ctr image pull --hosts-dir $T/certs.d docker.io/library/x:1`, certs.d/docker.io/
# hosts.toml naming the mirror. User-Agent: containerd/1.6.20~ds1. No /v2/ ping.
#   Every request to the mirror carries ?ns=docker.io (the registry the mirror stands in for);
#   the token request does not.
#   1. HEAD /v2/library/x/manifests/1?ns=docker.io
#        Accept: application/vnd.docker.distribution.manifest.v2+json,
#        application/vnd.docker.distribution.manifest.list.v2+json,
#        application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, */*
#        (one header). Takes the digest from Docker-Content-Digest.
#   2. GET  /v2/library/x/manifests/sha256:M?ns=docker.io   Accept: <manifest media type>, */*
#   3. GET  /v2/library/x/blobs/sha256:B?ns=docker.io       config and layers in parallel, in any
#        order; Accept: <the descriptor's media type>, */*. Never HEADs a blob.
#   On 401 it GETs <realm>?scope=repository%3Ax%3Apull&service=… (no POST without credentials)
#   and repeats the request with Authorization: Bearer; a fresh token for the by-digest GETs.
#   It follows 307 (HEAD stays HEAD) and drops Authorization on the other host. It retries a 429
#   once (after backoff); a 503 fails the pull at once. Content already in its store (same
#   digest, any image name) is not fetched again: tests need fresh digests or `$CTR content rm`.
#
# dockerd 20.10.24: --registry-mirror=http://127.0.0.1:PORT, `docker pull docker.io/library/x:1`
# (only docker.io images go to a mirror). No ?ns=. User-Agent: docker/20.10.24+dfsg1 go/go1.19.8
# … UpstreamClient(Docker-Client/20.10.24+dfsg1 \(linux\)).
#   1. GET  /v2/                                          ping; auth is learnt only from this answer
#        (a 401 later without a challenge at /v2/ is taken as "mirror failed")
#   2. HEAD /v2/library/x/manifests/1
#        SIX separate Accept headers, in random order (Go map): …manifest.v2+json,
#        …manifest.list.v2+json, application/vnd.oci.image.index.v1+json,
#        application/vnd.oci.image.manifest.v1+json, …manifest.v1+prettyjws, application/json
#   3. GET  /v2/library/x/manifests/sha256:M               same six; skipped when the manifest is
#        already in containerd's content store (namespace "moby"), e.g. after an earlier pull
#   4. GET  /v2/library/x/blobs/sha256:B                   config, then layers; no Accept header
#   Token: GET <realm>?scope=…&service=… once per pull. Follows 307, dropping Authorization.
#   When the mirror fails (5xx, digest mismatch, short body) dockerd falls back to
#   https://registry-1.docker.io through HTTPS_PROXY, i.e. the dead port 127.0.0.1:9 here, and the
#   pull fails with "proxyconnect tcp: dial tcp 127.0.0.1:9". A 429 on the tag HEAD did not fail
#   the pull (it went on with the by-digest GET).
# shellcheck shell=bash

CLIENTS_DOCKER_BIN=${CLIENTS_DOCKER_BIN:-$(command -v /usr/bin/docker || command -v docker)}

clients_need_root() {
	[ "$(id -u)" = 0 ] && return 0
	echo "# skip: containerd/dockerd need root"
	return 1
}

# containerd_start: our own containerd, CRI disabled, state under $T/containerd.
# Exports CTR (command prefix), CTR_SOCK, CONTAINERD_PID.
containerd_start() {
	local d=$T/containerd i
	mkdir -p "$d/root" "$d/state" "$d/opt"
	CTR_SOCK=$T/containerd.sock
	cat >"$d/config.toml" <<-EOF
		version = 2
		root = "$d/root"
		state = "$d/state"
		disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs",
		  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
		  "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp"]
		[grpc]
		  address = "$CTR_SOCK"
		[ttrpc]
		  address = "$CTR_SOCK.ttrpc"
		[debug]
		  address = ""
		[plugins."io.containerd.internal.v1.opt"]
		  path = "$d/opt"
	EOF
	spawn "$T/containerd.log" containerd --config "$d/config.toml" --log-level debug
	CONTAINERD_PID=$SPAWNED
	export CTR_SOCK CONTAINERD_PID CONTAINERD_SNAPSHOTTER=native
	export CTR="ctr --address $CTR_SOCK --namespace mstest"
	for ((i = 0; i < 600; i++)); do
		if ! kill -0 "$CONTAINERD_PID" 2>/dev/null; then
			echo "containerd_start: containerd died; see below" >&2
			tail -20 "$T/containerd.log" >&2
			return 1
		fi
		[ -S "$CTR_SOCK" ] && $CTR version >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	echo "containerd_start: no answer on $CTR_SOCK after 30 s" >&2
	return 1
}

containerd_stop() {
	[ -n "${CONTAINERD_PID:-}" ] || return 0
	stop_pid "$CONTAINERD_PID"
	CONTAINERD_PID=
	clients_reap
}

# containerd_mirror HOSTNAME MIRROR_URL: $T/certs.d/HOSTNAME/hosts.toml sends pulls and resolves
# for HOSTNAME to MIRROR_URL; the upstream itself (`server`) is a dead loopback port, so a fallback
# after a mirror failure can never leave the machine.
containerd_mirror() {
	mkdir -p "$T/certs.d/$1"
	cat >"$T/certs.d/$1/hosts.toml" <<-EOF
		server = "http://127.0.0.1:9"
		[host."$2"]
		  capabilities = ["pull", "resolve"]
	EOF
}

# ctr_pull REF [ctr pull options…]: pulls and unpacks REF (e.g. docker.io/library/tiny:1) through
# the hosts.toml mirrors. The http:// scheme in hosts.toml is enough; no --plain-http needed.
ctr_pull() {
	local ref=$1
	shift
	$CTR image pull --hosts-dir "$T/certs.d" --snapshotter native "$@" "$ref"
}

# dockerd_start MIRROR_URL: dockerd with vfs storage, no networking set-up, every path under
# $T/docker, containerd = ours (started here unless running; otherwise dockerd 20.10 would adopt a
# system containerd at /run/containerd/containerd.sock if one exists). Exports DOCKER, DOCKERD_PID.
dockerd_start() {
	local mirror=$1 d=$T/docker i
	mkdir -p "$d/data" "$d/exec" "$d/cli"
	if [ -z "${CONTAINERD_PID:-}" ]; then
		containerd_start || return 1
		DOCKERD_OWNS_CONTAINERD=1
	fi
	echo '{}' >"$d/daemon.json" # else dockerd reads /etc/docker/daemon.json
	[ -e /run/docker ] || DOCKERD_MADE_RUN=1
	spawn "$T/dockerd.log" env HTTPS_PROXY=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 \
		NO_PROXY=127.0.0.1,localhost dockerd --config-file "$d/daemon.json" \
		--data-root "$d/data" --exec-root "$d/exec" --pidfile "$d/dockerd.pid" \
		-H "unix://$T/docker.sock" --containerd "$CTR_SOCK" --storage-driver vfs \
		--iptables=false --ip6tables=false --bridge=none --ip-masq=false --userland-proxy=false \
		--registry-mirror "$mirror" --insecure-registry 127.0.0.0/8 --log-level debug
	DOCKERD_PID=$SPAWNED
	export DOCKERD_PID
	export DOCKER="$CLIENTS_DOCKER_BIN --config $d/cli -H unix://$T/docker.sock"
	for ((i = 0; i < 1200; i++)); do
		if ! kill -0 "$DOCKERD_PID" 2>/dev/null; then
			echo "dockerd_start: dockerd died; see below" >&2
			tail -20 "$T/dockerd.log" >&2
			return 1
		fi
		$DOCKER info >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	echo "dockerd_start: no answer on $T/docker.sock after 60 s" >&2
	return 1
}

# docker_pull REF: e.g. docker.io/library/tiny:1 (only docker.io images go through the mirror).
docker_pull() {
	$DOCKER pull "$@"
}

# dockerd_stop: TERM then KILL, the containerd we started for it, then leftovers (clients_reap).
dockerd_stop() {
	[ -n "${DOCKERD_PID:-}" ] || return 0
	stop_pid "$DOCKERD_PID"
	DOCKERD_PID=
	# dockerd always creates /run/docker/plugins (hard-coded); remove it when it was ours and empty.
	[ -n "${DOCKERD_MADE_RUN:-}" ] && rmdir /run/docker/plugins /run/docker 2>/dev/null
	if [ -n "${DOCKERD_OWNS_CONTAINERD:-}" ]; then
		DOCKERD_OWNS_CONTAINERD=
		containerd_stop
	fi
	clients_reap
}

# clients_reap: after containerd is gone, kills its shims (they outlive it by design; each names
# our socket in its command line) by pid, then unmounts whatever is still mounted under $T,
# deepest first (dockerd bind-mounts its --data-root onto itself; a KILLed daemon leaves it).
clients_reap() {
	local p m
	for p in /proc/[0-9]*; do
		case $(cat "$p/comm" 2>/dev/null) in containerd-shim*) ;; *) continue ;; esac
		tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF "$T/" && stop_pid "${p#/proc/}"
	done
	awk -v t="$T/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
		while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
	return 0
}

clients_cleanup() {
	dockerd_stop
	containerd_stop
}
# Runs before common.sh's ms_cleanup so $T is removed only after the daemons and mounts are gone.
trap 'clients_cleanup; ms_cleanup' EXIT
