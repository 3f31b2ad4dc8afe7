# Where upstream credentials go (issue #15 item 6). A 401 names the token realm, so the upstream
# picks where the cache would send its configured Authorization: Basic. Scenarios, one upstream
# (tests/lib/realm_upstream.py) each, all with the same configured credentials:
#   upstream            its 401's realm                     credentials go?  token asked?
#   own.test            its own http://127.0.0.1:P/token    yes              yes
#   port.test           http://127.0.0.1:OTHER/token        no               yes, anonymously
#   host.test           http://localhost:P/token            no               yes, anonymously
#   listed.test         OTHER, listed in auth_realms        yes              yes
#   tls.test (https)    http://127.0.0.1:OTHER/token        no (plain http)  yes, anonymously
#   tlsown.test (https) its own https://127.0.0.1:P/token   yes              yes
# OTHER is own.test's server, which logs every token request with the kind of Authorization it
# carried and the scope (so which upstream it was for). A withheld credential is logged, without
# the secret; an auth_realms entry that is plain http:// for an https:// upstream is refused.
. "$(dirname "$0")/../lib/common.sh"
. "$MS_ROOT/tests/lib/cache.sh"

password=Realm-pass-never-sent

# realm_start NAME [ARGS…]: a realm_upstream.py; sets PORT_<NAME> and its log is $T/NAME.log.
realm_start() {
	local name=$1 pf=$T/$1.port
	shift
	spawn "$T/$name.out" python3 "$MS_ROOT/tests/lib/realm_upstream.py" --port-file "$pf" \
		--log "$T/$name.log" "$@"
	wait_for 10 test -s "$pf" && wait_port "$(cat "$pf")" "$SPAWNED" 5 || {
		cat "$T/$name.out" >&2
		exit 1
	}
	printf -v "PORT_$name" '%s' "$(cat "$pf")"
}

# The token requests LOG holds for repository REPO, as their auth= kinds ("basic", "none").
token_auth() {
	grep -i "^GET /token?.*scope=repository%3a$2%3apull" "$T/$1.log" | sed 's/.* auth=//' |
		sort -u | tr '\n' ' ' | sed 's/ $//'
}

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/ca.key" -out "$T/ca.pem" -days 1 \
	-subj /CN=microscale-test-ca 2>/dev/null &&
	openssl req -newkey rsa:2048 -nodes -keyout "$T/srv.key" -out "$T/srv.csr" \
		-subj /CN=127.0.0.1 2>/dev/null &&
	openssl x509 -req -in "$T/srv.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial \
		-out "$T/srv.pem" -days 1 -extfile <(echo 'subjectAltName=IP:127.0.0.1') 2>/dev/null ||
	exit 1

realm_start own
other=http://127.0.0.1:$PORT_own/token
realm_start port --realm "$other"
realm_start host --realm "http://localhost:{port}/token"
realm_start tls --realm "$other" --tls-cert "$T/srv.pem" --tls-key "$T/srv.key"
realm_start tlsown --tls-cert "$T/srv.pem" --tls-key "$T/srv.key"

creds="\"username\": \"bot\", \"password\": \"$password\""
cat >"$T/registry.json" <<EOF
{"upstreams": {
  "own.test": {"url": "http://127.0.0.1:$PORT_own", $creds},
  "port.test": {"url": "http://127.0.0.1:$PORT_port", $creds},
  "host.test": {"url": "http://127.0.0.1:$PORT_host", $creds},
  "tls.test": {"url": "https://127.0.0.1:$PORT_tls", "ca_file": "$T/ca.pem", $creds},
  "tlsown.test": {"url": "https://127.0.0.1:$PORT_tlsown", "ca_file": "$T/ca.pem", $creds}}}
EOF
chmod 600 "$T/registry.json"
cache_start -c "$T/registry.json" --log-level debug || exit 1

for repo in own port host tls tlsown; do
	check_eq "$repo.test: the pull goes on (the upstream's 404 after its token)" 404 \
		"$(cache_curl "/v2/$repo/manifests/latest?ns=$repo.test")"
done
check_eq "own.test: its own realm gets the credentials" basic "$(token_auth own own)"
check_eq "port.test: a realm on another port does not" none "$(token_auth own port)"
check_eq "host.test: a realm under another host name does not" none "$(token_auth host host)"
check_eq "tls.test: a plain http:// realm of an https:// upstream does not" none \
	"$(token_auth own tls)"
check_eq "tlsown.test: an https:// upstream's own https:// realm does" basic \
	"$(token_auth tlsown tlsown)"
check "the withheld credentials are logged, with the reason" \
	grep -q 'event=upstream_auth_withheld registry=port.test .*reason="realm http://127.0.0.1:'"$PORT_own"' is not' "$CACHE_LOG"
check "... for the plain http:// realm too" \
	grep -q 'event=upstream_auth_withheld registry=tls.test .*reason="plain http://' "$CACHE_LOG"
check "the password is in no log" bash -c "! grep -q '$password' '$CACHE_LOG' '$T'/*.log"
cache_stop
check_eq "cache exits 0 on SIGTERM" 0 "$?"

# The same upstream as port.test, its realm on the list (a cache of its own: older builds refuse
# the key, and the scenarios above must still show what they do).
echo "{\"upstreams\": {\"listed.test\": {\"url\": \"http://127.0.0.1:$PORT_port\", $creds,
  \"auth_realms\": [\"$other\"]}}}" >"$T/listed.json"
chmod 600 "$T/listed.json"
CACHE_ROOT=$T/cache2
cache_start -c "$T/listed.json" || exit 1
check_eq "listed.test: the pull goes on" 404 "$(cache_curl "/v2/listed/manifests/latest?ns=listed.test")"
check_eq "listed.test: a realm listed in auth_realms gets the credentials" basic \
	"$(token_auth own listed)"
cache_stop

# auth_realms entries: no plain http:// for an https:// upstream, and nothing but URLs.
echo '{"upstreams": {"a.test": {"auth_realms": ["http://auth.a.test/token"]}}}' >"$T/bad1.json"
check_eq "a plain http:// auth_realms entry for an https:// upstream is a config error" \
	"microscale-registry: $T/bad1.json: upstreams.a.test.auth_realms: entry 0: a plain http:// realm for an https:// upstream" \
	"$("$MS_BUILD/microscale-registry" -n -c "$T/bad1.json" 2>&1)"
echo '{"upstreams": {"a.test": {"auth_realms": ["auth.a.test"]}}}' >"$T/bad2.json"
check_eq "an auth_realms entry that is not a URL is a config error" \
	"microscale-registry: $T/bad2.json: upstreams.a.test.auth_realms: entry 0: expected an http:// or https:// URL" \
	"$("$MS_BUILD/microscale-registry" -n -c "$T/bad2.json" 2>&1)"
echo '{"upstreams": {"a.test": {"auth_realms": ["https://auth.a.test/token"]}}}' >"$T/good.json"
check "an https:// auth_realms entry is accepted" bash -c "\"$MS_BUILD/microscale-registry\" -n -c \"$T/good.json\" >/dev/null"
