#!/bin/bash
# Offline images: `import` of docker-archive and oci-archive tarballs (plain and gzip'd, as skopeo
# writes them), pulls of the imported images with the upstream down, refusal of truncated and
# tampered tarballs with the store left byte for byte as it was, and `export` of imported and
# pulled images as a docker-archive that skopeo and `import` read back.
# shellcheck source-path=SCRIPTDIR/../lib
MS_ROOT=${MS_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$MS_ROOT/tests/lib/common.sh"
. "$MS_ROOT/tests/lib/upstream.sh"
. "$MS_ROOT/tests/lib/fixtures.sh"
. "$MS_ROOT/tests/lib/cache.sh"

MS=$MS_BUILD/microscale-registry
DEAD=http://127.0.0.1:9 # nobody listens: the upstream is down

fixtures_upstream_start || exit 1
UP=127.0.0.1:$UPSTREAM_PORT

# --- helpers ---------------------------------------------------------------------------------

# snapshot ROOT: every file of the store with its sha256, in a stable order.
snapshot() { (cd "$1" && find . -type f | sort | xargs -r sha256sum); }
tmp_empty() { [ -z "$(ls -A "$1/tmp")" ]; }
fails() { ! "$@"; }
# import ROOT FILE [FLAGS…]: stderr in $T/err.
import() {
	local root=$1 file=$2
	shift 2
	"$MS" import --root "$root" "$@" "$file" 2>"$T/err"
}
# tag_digest ROOT REPO TAG: the digest the store's tag index holds (docker.io).
tag_digest() { cut -d' ' -f1 "$1/tags/docker.io/$2/_tags/$3" 2>/dev/null; }
raw_digest() { skopeo inspect --raw "$1" | sha256sum | sed 's/^/sha256:/; s/ .*//'; }

# flip FILE: flips one byte in the middle of the largest regular member (a layer).
flip() {
	python3 - "$1" <<'EOF'
import sys, tarfile
path = sys.argv[1]
with tarfile.open(path) as t:
    m = max((m for m in t.getmembers() if m.isfile()), key=lambda m: m.size)
off = m.offset_data + m.size // 2
with open(path, "r+b") as f:
    f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ 0xff]))
EOF
}

# legacy SRC DST: a docker-archive whose layers are "<n>/layer.tar", named by no digest (as
# `docker save` before version 25 wrote them), so only the config's diff_ids vouch for them.
legacy() {
	python3 - "$1" "$2" <<'EOF'
import io, json, sys, tarfile
src, dst = sys.argv[1:]
with tarfile.open(src) as t, tarfile.open(dst, "w", format=tarfile.USTAR_FORMAT) as o:
    man = json.load(t.extractfile("manifest.json"))
    ren = {}
    for img in man:
        for i, l in enumerate(img["Layers"]):
            ren.setdefault(l, "%d%s/layer.tar" % (i, l[:8]))
        img["Layers"] = [ren[l] for l in img["Layers"]]
    for m in t.getmembers():
        if not m.isfile() or m.name == "manifest.json":
            continue
        data = t.extractfile(m).read()
        m.name = ren.get(m.name, m.name)
        o.addfile(m, io.BytesIO(data))
    blob = json.dumps(man).encode()
    info = tarfile.TarInfo("manifest.json"); info.size = len(blob)
    o.addfile(info, io.BytesIO(blob))
EOF
}

# --- archives, as skopeo writes them ---------------------------------------------------------

A=$T/archives
mkdir -p "$A"
skopeo copy -q --src-tls-verify=false "docker://$UP/$FIX_OCI" "docker-archive:$A/x.tar:library/x:1" &&
	skopeo copy -q --src-tls-verify=false "docker://$UP/$FIX_DOCKER" "oci-archive:$A/y.tar:1" &&
	skopeo copy -q --all --src-tls-verify=false "docker://$UP/$FIX_INDEX" "oci-archive:$A/m.tar:2" ||
	{ echo "setup: skopeo copy to archives failed" >&2; exit 1; }
gzip -k "$A/m.tar"
upstream_stop # from here on, no upstream

# --- import ------------------------------------------------------------------------------------

R=$T/r1
check "docker-archive imports" import "$R" "$A/x.tar"
check_eq "docker-archive tag recorded from RepoTags" 1 "$([ -n "$(tag_digest "$R" library/x 1)" ] && echo 1)"
check_eq "docker-archive config stored under its digest" 1 \
	"$([ -f "$R/blobs/sha256/${FIX_OCI_CONFIG:7:2}/${FIX_OCI_CONFIG#sha256:}" ] && echo 1)"

check "oci-archive with a tag-only name and no --name is refused" fails import "$R" "$A/y.tar"
check "… saying that --name is needed" grep -q "y.tar: .*--name" "$T/err"
check_eq "… and records no tag" "" "$(tag_digest "$R" library/y 1)"
check "oci-archive imports with --name" import "$R" "$A/y.tar" --name docker.io/library/y
check_eq "oci-archive manifest digest kept" "$(raw_digest "oci-archive:$A/y.tar")" \
	"$(tag_digest "$R" library/y 1)"
check "gzip'd multi-arch oci-archive imports" import "$R" "$A/m.tar.gz" --name library/m
check_eq "index digest kept" "$FIX_INDEX_DIGEST" "$(tag_digest "$R" library/m 2)"
check "ROOT/tmp is empty after the imports" tmp_empty "$R"

echo "{\"root\": \"$T/r-conf\"}" >"$T/conf.json"
check "import -c FILE uses the config's root" "$MS" import -c "$T/conf.json" "$A/x.tar" 2>/dev/null
check_eq "… where the tag is" "$(tag_digest "$R" library/x 1)" "$(tag_digest "$T/r-conf" library/x 1)"
echo partial >"$R/tmp/another-writer"
check "import leaves another writer's temp files in ROOT/tmp alone" import "$R" "$A/x.tar"
check_eq "… (still there)" partial "$(cat "$R/tmp/another-writer" 2>/dev/null)"
rm -f "$R/tmp/another-writer"
check_eq "no FILE: usage, exit 2" 2 "$("$MS" import --root "$R" 2>/dev/null; echo $?)"
check_eq "a missing file: exit 1" 1 "$("$MS" import --root "$R" "$A/nope.tar" 2>"$T/err"; echo $?)"
check "… named on stderr" grep -q "^microscale-registry import: $A/nope.tar: " "$T/err"

# --- refused archives leave the store as it was ------------------------------------------------

before=$(snapshot "$R")
# refuse NAME FILE PATTERN [FLAGS…]: the import fails, says PATTERN, changes nothing.
refuse() {
	local name=$1 file=$2 pattern=$3
	shift 3
	check_eq "$name is refused (exit 1)" 1 "$(import "$R" "$file" "$@"; echo $?)"
	check "$name: no sanitizer report" fails grep -qE "Sanitizer|runtime error" "$T/err"
	check "$name: the reason names the file" grep -qE "^microscale-registry import: $file: .*$pattern" "$T/err"
	check_eq "$name: the store is unchanged" "$before" "$(snapshot "$R")"
	check "$name: ROOT/tmp is empty" tmp_empty "$R"
}
size=$(stat -c %s "$A/x.tar")
head -c $((size / 2)) "$A/x.tar" >"$A/x-trunc.tar"
refuse "truncated docker-archive" "$A/x-trunc.tar" "runcated"
head -c $(($(stat -c %s "$A/m.tar.gz") - 100)) "$A/m.tar.gz" >"$A/m-trunc.tar.gz"
refuse "truncated gzip'd oci-archive" "$A/m-trunc.tar.gz" "truncated gzip" --name library/m2
# Cut right after the layers: a well-formed tar without manifest.json.
python3 - "$A/x.tar" "$A/x-nomanifest.tar" <<'EOF'
import sys, tarfile
with tarfile.open(sys.argv[1]) as t, tarfile.open(sys.argv[2], "w") as o:
    for m in t.getmembers():
        if m.name not in ("manifest.json", "repositories"):
            o.addfile(m, t.extractfile(m) if m.isfile() else None)
EOF
refuse "docker-archive without manifest.json" "$A/x-nomanifest.tar" "no manifest.json"
cp "$A/x.tar" "$A/x-flip.tar" && flip "$A/x-flip.tar"
refuse "docker-archive with a flipped layer byte" "$A/x-flip.tar" "digest mismatch"
legacy "$A/x.tar" "$A/x-legacy.tar"
cp "$A/x-legacy.tar" "$A/x-legacy-flip.tar" && flip "$A/x-legacy-flip.tar"
refuse "legacy docker-archive with a flipped layer byte" "$A/x-legacy-flip.tar" "diff_id"
cp "$A/y.tar" "$A/y-flip.tar" && flip "$A/y-flip.tar"
refuse "oci-archive with a flipped blob byte" "$A/y-flip.tar" "digest mismatch" --name library/y2
check "legacy docker-archive (layers not named by digest) imports" import "$T/r-legacy" "$A/x-legacy.tar"
check_eq "… to the same image as the skopeo one" "$(tag_digest "$R" library/x 1)" \
	"$(tag_digest "$T/r-legacy" library/x 1)"

# --- pulls with the upstream down -------------------------------------------------------------

CACHE_ROOT=$R
cache_start --upstream "$DEAD" || exit 1
for img in library/x:1 library/y:1 library/m:2; do
	rm -rf "$T/out"
	check "$img pulls from the imported store" cache_copy "$img" "dir:$T/out"
	ok=1
	for f in "$T"/out/*; do
		case $(basename "$f") in manifest.json | version) continue ;; esac
		[ "sha256:$(sha256sum <"$f" | cut -d' ' -f1)" = "sha256:$(basename "$f")" ] || ok=0
	done
	check_eq "$img: every blob pulled matches its digest" 1 "$ok"
done
rm -rf "$T/out"
check "library/x:1 pulls as a docker-archive image through the cache" cache_copy library/x:1 "dir:$T/out"
check_eq "library/x:1 has the fixture's config" "${FIX_OCI_CONFIG#sha256:}" \
	"$(jq -r .config.digest "$T/out/manifest.json" | cut -d: -f2)"
cache_stop

# --- export ------------------------------------------------------------------------------------

E=$T/e.tar
check "export of imported images" "$MS" export --root "$R" -o "$E" x:1 library/y:1 docker.io/library/m:2
inspect_quiet() { skopeo inspect "$1" >/dev/null; }
check "skopeo inspect docker-archive accepts it" inspect_quiet "docker-archive:$E:x:1"
check_eq "the multi-arch image exports its linux/amd64 config" "$FIX_INDEX_AMD64_CONFIG" \
	"sha256:$(tar -xOf "$E" manifest.json | jq -r '.[] | select(.RepoTags[0] == "m:2") | .Config' | cut -d. -f1)"
rm -rf "$T/out"
check "skopeo copy docker-archive:… dir: works" skopeo copy -q "docker-archive:$E:library/y:1" "dir:$T/out"
check "export loads back with import" import "$T/r2" "$E"
check_eq "… and x:1 comes back as the same manifest" "$(tag_digest "$R" library/x 1)" \
	"$(tag_digest "$T/r2" library/x 1)"
check "no FILE.tmp left" test ! -e "$E.tmp"

check_eq "export of an image not in the store: exit 1" 1 \
	"$("$MS" export --root "$R" -o "$T/n.tar" nothere:1 2>"$T/err"; echo $?)"
check "… says so" grep -q "^microscale-registry export: nothere:1: not in the store" "$T/err"
check "… cleanly (no sanitizer report)" fails grep -qE "Sanitizer|runtime error" "$T/err"
check "… and writes nothing" test ! -e "$T/n.tar" -a ! -e "$T/n.tar.tmp"
cp -a "$R" "$T/r-broken"
rm -f "$T/r-broken/blobs/sha256/${FIX_OCI_CONFIG:7:2}/${FIX_OCI_CONFIG#sha256:}"
check_eq "export with a blob missing: exit 1" 1 \
	"$("$MS" export --root "$T/r-broken" -o "$T/n.tar" x:1 2>"$T/err"; echo $?)"
check "… naming the blob" grep -q "x:1: blob $FIX_OCI_CONFIG is not in the store" "$T/err"
check "… cleanly (no sanitizer report)" fails grep -qE "Sanitizer|runtime error" "$T/err"
check_eq "export without -o: usage, exit 2" 2 "$("$MS" export --root "$R" x:1 2>/dev/null; echo $?)"

# A pulled image (gzip'd layers, from an OCI index): exported, then imported, where the diff_ids
# are checked against the gunzipped layers.
fixtures_upstream_start "$T/upstream2" || exit 1
CACHE_ROOT=$T/pulled
cache_start --upstream "$UPSTREAM_URL" || exit 1
check "pull of $FIX_INDEX through a live upstream" cache_copy "$FIX_INDEX" "dir:$T/out2"
cache_stop
upstream_stop
check "export of the pulled image" "$MS" export --root "$T/pulled" -o "$T/p.tar" "$FIX_INDEX"
check "it imports (gzip'd layers checked against diff_ids)" import "$T/r3" "$T/p.tar"
check_eq "… with the pulled layers, byte for byte" \
	"$(echo "$FIX_INDEX_AMD64_LAYERS" | tr ' ' '\n' | sort | tr '\n' ' ')" \
	"$(cd "$T/r3/blobs/sha256" && for d in $FIX_INDEX_AMD64_LAYERS; do [ -f "${d:7:2}/${d#sha256:}" ] && echo "$d"; done | sort | tr '\n' ' ')"
# A flipped byte in a gzip'd layer changes its name's digest: refused.
cp "$T/p.tar" "$T/p-flip.tar" && flip "$T/p-flip.tar"
check "flipped gzip'd layer in an export is refused" fails import "$T/r3" "$T/p-flip.tar"

# --- progress and memory on a big layer ------------------------------------------------------

fixtures_upstream_start "$T/upstream3" || exit 1
skopeo copy -q --src-tls-verify=false "docker://127.0.0.1:$UPSTREAM_PORT/$FIX_BIG" \
	"oci-archive:$A/big.tar:1" || { not_ok "big: skopeo copy"; exit 1; }
upstream_stop
/usr/bin/time -f %M -o "$T/rss" "$MS" import --root "$T/r4" --name library/big "$A/big.tar" 2>"$T/err"
check_eq "big image imports" 0 "$?"
rss=$(tail -1 "$T/rss")
check "big image (100 MiB layer) imports in bounded memory (${rss} KiB)" test "$rss" -lt 160000
check "plain log lines off a terminal" grep -q "event=import_done" "$T/err"
# script(1) gives the import a pseudo-terminal; with no stdin of its own (a CI runner may close
# it) script exits before its child writes a byte, hence </dev/null.
script -qec "'$MS' import --root '$T/r5' --name library/big '$A/big.tar'" /dev/null \
	</dev/null >"$T/tty" 2>&1
check "a progress line on a terminal, drawn in place" \
	grep -q $'\r''import .*big.tar: .* MiB' "$T/tty"
check "… and cleared when the import ends" grep -q $'\r\033\\[K' "$T/tty"
check_eq "the big layer is stored whole" "$FIX_BIG_LAYER_SIZE" \
	"$(stat -c %s "$T/r5/blobs/sha256/${FIX_BIG_LAYER:7:2}/${FIX_BIG_LAYER#sha256:}")"

# Interrupted half way through the big layer: exit 1, nothing left behind. The archive comes
# through a FIFO, so the signal lands while the import is certainly mid-layer.
before=$(snapshot "$T/r4")
mkfifo "$T/fifo"
"$MS" import --root "$T/r4" --name library/big2 "$T/fifo" 2>"$T/err" &
pid=$!
exec 3<>"$T/fifo" # read-write: never blocks, even if the import died before opening it
head -c $((32 * 1024 * 1024)) "$A/big.tar" >&3
for ((i = 0; i < 400; i++)); do
	[ -n "$(find "$T/r4/tmp" -type f -size +8M 2>/dev/null)" ] && break
	sleep 0.025
done
kill -INT "$pid"
# More bytes wake the blocked read; the import stops at that block, so the write may be cut.
# (Bounded: fd 3 is read-write, so with no other reader a write would block, not fail.)
timeout 10 sh -c "tail -c +$((32 * 1024 * 1024 + 1)) '$A/big.tar' | head -c $((4 * 1024 * 1024)) >&3" 2>/dev/null
exec 3>&-
wait "$pid"
check_eq "SIGINT during an import: exit 1" 1 "$?"
check "… saying it was interrupted" grep -q "fifo: interrupted by signal 2" "$T/err"
check_eq "… leaving the store unchanged" "$before" "$(snapshot "$T/r4")"
check "… and ROOT/tmp empty" tmp_empty "$T/r4"
