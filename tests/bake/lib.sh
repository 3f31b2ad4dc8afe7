# Shared by tests/bake/run.sh and boot.sh: counting, and finding and removing what a bake run
# made. A run with pid P owns exactly: the state dir /tmp/mscl-bake-P/, the network namespace
# mscl-bake-P, the machines mscl-bake-P-<n> (their root file systems are under the state dir)
# and the processes tagged MSCL_BAKE=/tmp/mscl-bake-P in their environment, living in a root
# under the state dir, or naming it on their command line (dockerd's shims). Nothing else is
# touched. Sourced after tests/lib/common.sh.
# shellcheck shell=bash

BAKE_PASSED=0 BAKE_FAILED=0 BAKE_SKIPPED=0

# common.sh's ok and not_ok, counted for bake_summary.
ok() {
	echo "ok - $*"
	BAKE_PASSED=$((BAKE_PASSED + 1))
}
not_ok() {
	echo "not ok - $*"
	BAKE_FAILED=$((BAKE_FAILED + 1))
}

# bake_count_file FILE: adds FILE's ok / not ok / skip lines to the totals.
bake_count_file() {
	BAKE_PASSED=$((BAKE_PASSED + $(grep -c '^ok ' "$1")))
	BAKE_FAILED=$((BAKE_FAILED + $(grep -c '^not ok ' "$1")))
	BAKE_SKIPPED=$((BAKE_SKIPPED + $(grep -c '^# skip: ' "$1")))
}

bake_summary() {
	echo "bake: $BAKE_PASSED passed, $BAKE_FAILED failed, $BAKE_SKIPPED skipped"
	[ "$BAKE_FAILED" = 0 ]
}

# bake_pids DIR: the processes of the run whose state dir is DIR (see above), not this shell nor
# any of its ancestors.
bake_pids() {
	python3 - "$1" <<'EOF'
import os, sys
d = sys.argv[1].rstrip("/")
tag = ("MSCL_BAKE=" + d).encode()
mine, p = set(), os.getpid()
while p > 1:
    mine.add(p)
    try:
        p = int(open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1])
    except OSError:
        break
for e in os.listdir("/proc"):
    if not e.isdigit() or int(e) in mine:
        continue
    try:
        env = open(f"/proc/{e}/environ", "rb").read().split(b"\0")
        cmd = open(f"/proc/{e}/cmdline", "rb").read().replace(b"\0", b" ")
        root = os.readlink(f"/proc/{e}/root")
    except OSError:
        continue
    if tag in env or (d + "/").encode() in cmd or root == d or root.startswith(d + "/"):
        print(e)
EOF
}

# bake_teardown DIR: every process of DIR's run (machines first, asked to power off), its
# network namespace, every mount under DIR, then DIR itself (unless MS_KEEP).
bake_teardown() {
	local dir=$1 p i pids ns=mscl-bake-${1##*-}
	[ -n "$dir" ] && [ "${dir#/tmp/mscl-bake-}" != "$dir" ] || return 0
	# The machines first: nspawn turns TERM into an orderly power-off of the node (what runs in
	# it must not get a TERM of ours: the node's systemd takes that as "re-execute").
	nspawns() {
		for p in $(bake_pids "$dir"); do
			[ "$(cat "/proc/$p/comm" 2>/dev/null)" = systemd-nspawn ] && echo "$p"
		done
	}
	pids=$(nspawns)
	# shellcheck disable=SC2086
	[ -z "$pids" ] || kill -TERM $pids 2>/dev/null
	for ((i = 0; i < 400 && ${#pids} > 0; i++)); do
		sleep 0.05
		pids=$(nspawns)
	done
	# Then the rest: TERM, and KILL what is left after 5 s. A node whose nspawn is gone (its init
	# carries the tag, --setenv) gets KILL at once: that ends every process of its namespace.
	pids=$(bake_pids "$dir")
	for p in $pids; do
		if grep -qE '^NSpid:.*[[:space:]]1$' "/proc/$p/status" 2>/dev/null; then
			kill -KILL "$p" 2>/dev/null
		else
			kill -TERM "$p" 2>/dev/null
		fi
	done
	for ((i = 0; i < 200 && ${#pids} > 0; i++)); do
		sleep 0.05
		pids=$(bake_pids "$dir")
		# shellcheck disable=SC2086
		[ "$i" -ge 100 ] && [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
	done
	ip netns del "$ns" 2>/dev/null
	awk -v t="$dir/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
		while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
	[ -n "${MS_KEEP:-}" ] || rm -rf --one-file-system "$dir"
}

# bake_sweep: what earlier runs left whose process is gone: state dirs and namespaces.
bake_sweep() {
	local d k
	for d in /tmp/mscl-bake-*; do
		[ -d "$d" ] || continue
		k=${d##*-}
		case $k in '' | *[!0-9]*) continue ;; esac
		kill -0 "$k" 2>/dev/null && continue
		echo "# bake: removing what run $k left ($d)"
		MS_KEEP='' bake_teardown "$d"
	done
	for k in $(ip netns list 2>/dev/null | awk '{ print $1 }' | sed -nE 's/^mscl-bake-([0-9]+)$/\1/p'); do
		kill -0 "$k" 2>/dev/null || ip netns del "mscl-bake-$k"
	done
}
