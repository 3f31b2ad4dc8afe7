# Upstream TLS with a test CA: refused without the CA, working with ca_file. Secrets never reach
# a log: an upstream password, the registry token it earns, a Marathon token. Files holding
# secrets that others may read are named in a warning.
. "$(dirname "$0")/../lib/common.sh"
. "$MS_ROOT/tests/lib/upstream.sh"
. "$MS_ROOT/tests/lib/fixtures.sh"
. "$MS_ROOT/tests/lib/cache.sh"
. "$MS_ROOT/tests/lib/hostile.sh"
. "$MS_ROOT/tests/lib/marathon.sh"
. "$MS_ROOT/tests/lib/scaler.sh"
fixtures_ready || exit 1

# A CA and a server certificate for 127.0.0.1, made here and now.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/ca.key" -out "$T/ca.pem" -days 1 \
	-subj /CN=microscale-test-ca 2>/dev/null &&
	openssl req -newkey rsa:2048 -nodes -keyout "$T/srv.key" -out "$T/srv.csr" \
		-subj /CN=127.0.0.1 2>/dev/null &&
	openssl x509 -req -in "$T/srv.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial \
		-out "$T/srv.pem" -days 1 -extfile <(echo 'subjectAltName=IP:127.0.0.1') 2>/dev/null ||
	exit 1

# docker-registry serving the fixtures over TLS on loopback.
mkdir -p "$T/tls"
cp -a --reflink=auto "$FIXTURES/storage" "$T/tls/storage"
port=$(free_port)
printf '%s\n' 'version: 0.1' 'log: {level: error}' \
	"storage: {filesystem: {rootdirectory: $T/tls/storage}, delete: {enabled: false}}" \
	"http: {addr: 127.0.0.1:$port, secret: tls-test, tls: {certificate: $T/srv.pem, key: $T/srv.key}}" \
	>"$T/tls/config.yml"
spawn "$T/tls/registry.log" docker-registry serve "$T/tls/config.yml"
wait_port "$port" "$SPAWNED" || exit 1
manifest=/v2/$FIX_OCI_REPO/manifests/$FIX_OCI_TAG

CACHE_ROOT=$T/c1
cache_start --upstream "https://127.0.0.1:$port" || exit 1
check_eq "TLS upstream without its CA: refused" 503 "$(cache_curl "$manifest")"
check "... naming the certificate problem" grep -qi 'certificate' "$T/body"
cache_stop
echo "{\"upstreams\": {\"docker.io\": {\"url\": \"https://127.0.0.1:$port\", \"ca_file\": \"$T/ca.pem\"}}}" >"$T/tls.json"
CACHE_ROOT=$T/c2
cache_start -c "$T/tls.json" || exit 1
check_eq "TLS upstream with ca_file: works" 200 "$(cache_curl "$manifest" -H "Accept: $FIX_ACCEPT")"
check "skopeo pulls through over TLS" cache_copy "$FIX_OCI" "dir:$T/out"
cache_stop
echo '{"upstreams": {"docker.io": {"ca_file": "/nonexistent/ca.pem"}}}' >"$T/bad.json"
out=$("$MS_BUILD/microscale-registry" -n -c "$T/bad.json" 2>&1)
check_eq "an unreadable ca_file is a config error" \
	"microscale-registry: $T/bad.json: upstreams.docker.io.ca_file: cannot read /nonexistent/ca.pem: No such file or directory" "$out"

# Secrets: the cache earns a token with a password; the scaler talks to Marathon with a token.
mkdir -p "$T/blobs"
head -c 100000 /dev/urandom >"$T/blob"
hex=$(sha256sum <"$T/blob" | cut -d' ' -f1)
mv "$T/blob" "$T/blobs/$hex"
password=Pa55-word-never-logged
hostile_start "$T/blobs" --basic "bot:$password" || exit 1
echo "{\"upstreams\": {\"docker.io\": {\"url\": \"$HOSTILE_URL\", \"username\": \"bot\", \"password\": \"$password\"}}}" >"$T/auth.json"
chmod 644 "$T/auth.json"
CACHE_ROOT=$T/c3
cache_start -c "$T/auth.json" --log-level debug || exit 1
check_eq "a blob behind token auth" 200 "$(cache_curl "/v2/auth/x/blobs/sha256:$hex")"
check "the password is in no log" bash -c "! grep -q '$password' '$CACHE_LOG' '$T/hostile.log'"
check "the token is in no log" bash -c "! grep -q 'good-token' '$CACHE_LOG'"
check "a config holding a password that others may read is named" \
	grep -q "event=secret_file_exposed file=$T/auth.json" "$CACHE_LOG"
cache_stop

token=marathon-token-never-logged
echo "$token" >"$T/token"
chmod 644 "$T/token"
marathon_start --token "$token" || exit 1
scaler_port
echo "{\"marathon\": {\"url\": \"$MARATHON_URL\", \"token_file\": \"$T/token\"}, \"capacity\": 2,
 \"listen\": \"127.0.0.1:$SCALER_PORT\", \"log_level\": \"debug\",
 \"apps\": [{\"id\": \"/s/a\", \"min\": 0, \"max\": 2, \"demand\": {\"type\": \"static\", \"instances\": 1}}]}" >"$T/scaler.json"
scaler_start "$T/scaler.json" || exit 1
check "the scaler reached Marathon with its token" wait_for 10 bash -c "curl -s '$MARATHON_URL/_emu/requests' | grep -q '/v2/apps'"
scaler_stop
check_eq "... which never refused it" 0 "$(marathon_requests '[.[] | select(.status == 401)] | length')"
check "the Marathon token is in no log" bash -c "! grep -q '$token' '$SCALER_LOG'"
check "a token file others may read is named" grep -q "event=secret_file_exposed file=$T/token" "$SCALER_LOG"
