# The control API answers loopback peers, or others presenting the admin token. A second host in
# a network namespace this test makes (a veth pair on a private /30) plays the other peer.
. "$(dirname "$0")/../lib/common.sh"
. "$MS_ROOT/tests/lib/cache.sh"
[ "$(id -u)" = 0 ] || { echo "# skip: network namespaces need root"; exit 0; }

ns=ms$$ veth=ms$$a peer=ms$$b
net=10.213.$(($$ % 250)).
ip netns add "$ns" || exit 1
trap 'ip netns del "$ns" 2>/dev/null; ip link del "$veth" 2>/dev/null; ms_cleanup' EXIT
ip link add "$veth" type veth peer name "$peer" &&
	ip link set "$peer" netns "$ns" &&
	ip addr add "${net}1/30" dev "$veth" && ip link set "$veth" up &&
	ip netns exec "$ns" ip addr add "${net}2/30" dev "$peer" &&
	ip netns exec "$ns" ip link set "$peer" up || exit 1

token=0123456789abcdef-test-token
port=$(free_port)
echo "{\"listen\": \"${net}1:$port\", \"admin_token\": \"$token\"}" >"$T/cache.json"
CACHE_ROOT=$T/cache
spawn "$T/cache.log" "$MS_BUILD/microscale-registry" -d -c "$T/cache.json" --root "$CACHE_ROOT" --upstream http://127.0.0.1:9
pid=$SPAWNED
url=http://${net}1:$port
for ((i = 0; i < 200; i++)); do
	ip netns exec "$ns" curl --noproxy '*' -s -o /dev/null "$url/v2/" && break
	sleep 0.05
done
other() { ip netns exec "$ns" curl --noproxy '*' -s -o /dev/null -w '%{http_code}' "$@"; }
check_eq "registry API open to the other host" 200 "$(other "$url/v2/")"
check_eq "images: other host without token -> 403" 403 "$(other "$url/_microscale/v1/images")"
check_eq "ready: other host without token -> 403" 403 "$(other "$url/_microscale/v1/ready?ref=busybox")"
check_eq "prewarm: other host without token -> 403" 403 "$(other -d '{"ref":"busybox"}' "$url/_microscale/v1/prewarm")"
check_eq "wrong token -> 403" 403 "$(other -H "Authorization: Bearer ${token}x" "$url/_microscale/v1/images")"
check_eq "the admin token opens it" 200 "$(other -H "Authorization: Bearer $token" "$url/_microscale/v1/images")"
check_eq "the scheme in lower case too (schemes are case-insensitive)" 200 \
	"$(other -H "Authorization: bearer $token" "$url/_microscale/v1/images")"
body=$(ip netns exec "$ns" curl --noproxy '*' -s "$url/_microscale/v1/images")
check_eq "the refusal is OCI error JSON" DENIED "$(jq -r '.errors[0].code' <<<"$body")"
check "the token is never logged" bash -c "! grep -q '$token' '$T/cache.log'"
stop_pid "$pid"
