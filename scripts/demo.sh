#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The README demo: the federation testbed of tests/e2e/ -- three regions on
# one machine (fake member API servers, real HTTP backends behind delaying
# relays, fedgslb-proxy for jpn, a fedgslb-health per region, fedgslb-dnsd as
# ns1 and ns2), a client per region curling the one global name, and the
# scenario of failures it survives, printed step by step. Every daemon runs
# from one deployment file with --instance; step 8 pushes an operator intent
# to both name servers and re-delivers one that a stopped one missed.
#
#   scripts/demo.sh [--once] [--no-build] [--build-dir DIR] [--loopback] [--dns-only] [--etcd]
#
# --once: exit 0 only if every step behaved as stated (used by the tests).
# --loopback: do not use network namespaces even as root.
# --etcd: the distributed mode: the same scenario with the documents going
#         through a three-node etcd cluster on loopback instead of pushes.
# --dns-only: the small demo instead: fedgslb-dnsd alone with conf/ and the
#             sample state documents (conf/state/), queried with dig.
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=build
do_build=1
once=0
dns_only=0
testbed_args=()
while [ $# -gt 0 ]; do
    case "$1" in
    --once) once=1; testbed_args+=(--once) ;;
    --no-build) do_build=0 ;;
    --build-dir) build_dir=$2; shift ;;
    --loopback) testbed_args+=(--loopback) ;;
    --dns-only) dns_only=1 ;;
    --etcd) testbed_args+=(--etcd) ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "demo: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

if [ $do_build -eq 1 ]; then
    scripts/deps.sh
    scripts/build.sh "$build_dir" >/dev/null
fi

if [ $dns_only -eq 0 ]; then
    exec /usr/bin/python3 tests/e2e/testbed.py --build-dir "$build_dir" "${testbed_args[@]}"
fi

# ---- --dns-only: fedgslb-dnsd alone, fed the sample state documents ----

conf=conf/federation.json
dns_port=5300
ctl=http://127.0.0.1:9153
token=$(cat conf/control.token)
zone=fed.example.test
fails=0

mkdir -p var
rm -f var/dnsd-state.json
log=$(mktemp /tmp/fedgslb-demo-dnsd.XXXXXX.log)
"$build_dir/fedgslb-dnsd" --config "$conf" 2>"$log" &
dnsd_pid=$!
trap 'kill $dnsd_pid 2>/dev/null; wait $dnsd_pid 2>/dev/null; rm -f "$log"' EXIT

for _ in $(seq 1 100); do
    curl -fsS "$ctl/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
if ! curl -fsS "$ctl/healthz" >/dev/null 2>&1; then
    echo "demo: fedgslb-dnsd did not start:" >&2
    cat "$log" >&2
    exit 1
fi

say() { printf '\n\033[1m%s\033[0m\n' "$*"; }

echo "status page: $ctl/ui/ (open it in a browser; it refreshes itself)"

push_state() {
    curl -fsS -X PUT -H "Authorization: Bearer $token" --data-binary @"$1" "$ctl/v1/state" >/dev/null
}

# dig NAME CLIENT_SUBNET -> "ADDR ADDR" (or the CNAME chain)
answer() {
    dig +short +norec +subnet="$2" -p $dns_port @127.0.0.1 "$1" A | tr '\n' ' ' | sed 's/ $//'
}

# check NAME SUBNET EXPECTED: prints a row, counts a miss
check() {
    local got
    got=$(answer "$1" "$2")
    local mark=ok
    case " $got " in *" $3 "*) ;; *) mark="UNEXPECTED (wanted $3)"; fails=$((fails + 1)) ;; esac
    printf '  %-60s %-12s %-28s %s\n' "$1" "$2" "$got" "$mark"
}

say "1. fedgslb-dnsd serves $zone on 127.0.0.1:$dns_port; pushing the sample state of three vantages"
for f in conf/state/*.json; do
    push_state "$f"
    echo "  pushed $f"
done

global=web.default.myfed.svc.$zone
regional_us=web.default.myfed.svc.us-east-1.$zone
zonal_eu=web.default.myfed.svc.eu-west-1a.eu-west-1.$zone
us=10.1.0.0/24   # client_networks: us-east-1
eu=10.2.0.0/24   # client_networks: eu-west-1

say "2. What clients in two regions get (dig +subnet, EDNS Client Subnet)"
printf '  %-60s %-12s %s\n' NAME CLIENT ANSWER
check "$global" "$us" 192.0.2.10
check "$global" "$eu" 192.0.2.20
check "$regional_us" "$us" 192.0.2.10
check "$regional_us" "$eu" 192.0.2.10
check "$zonal_eu" "$us" 192.0.2.20
check "$zonal_eu" "$eu" 192.0.2.20

say "3. Why: GET /v1/explain?name=$global&client=10.2.0.1"
curl -fsS "$ctl/v1/explain?name=$global&client=10.2.0.1" |
    /usr/bin/python3 -c '
import json, sys
e = json.load(sys.stdin)
c, r = e["client"], e["decision"]
d = r["decision"]
print("  client region: %s (%s)" % (c["region"], c["how"]))
for m in r["candidates"]:
    print("  %-4s %-15s healthy=%-5s rtt=%7.1f ms (%s)" % (m["member"], m["region"],
          m["healthy"], m["rtt_ms"], m["rtt_source"]))
print("  rule: %s -> %s, ttl %s (%s)" % (d["rule"], ",".join(d["chosen"]), d["ttl"],
                                         d["ttl_reason"]))
print("  records: " + "; ".join(e["response"]["A"]["answer"]))
'

say "4. eur's load balancer fails (every vantage reports it down): eu clients move to usa"
/usr/bin/python3 - "$ctl" "$token" <<'PY'
import json, sys, urllib.request, glob
ctl, token = sys.argv[1], sys.argv[2]
for path in sorted(glob.glob("conf/state/*.json")):
    doc = json.load(open(path))
    doc["generation"] += 1
    m = doc["services"]["default/web"]["members"]["eur"]
    m["healthy"] = False
    m["reason"] = "probe 3/3 failed: connection refused"
    req = urllib.request.Request(ctl + "/v1/state", data=json.dumps(doc).encode(), method="PUT",
                                 headers={"Authorization": "Bearer " + token})
    urllib.request.urlopen(req).read()
PY
printf '  %-60s %-12s %s\n' NAME CLIENT ANSWER
check "$global" "$eu" 192.0.2.10
check "$zonal_eu" "$eu" 192.0.2.10
echo "  (the zonal and regional names are CNAMEs up to the global name now:)"
dig +norec +noall +answer +subnet="$eu" -p $dns_port @127.0.0.1 "$zonal_eu" A | sed 's/^/    /'

say "5. The whole answer, as a resolver sees it"
dig +norec +subnet="$us" -p $dns_port @127.0.0.1 "$global" A | sed -n '/HEADER/,/^$/p;/ANSWER SECTION/,/^$/p;/OPT PSEUDOSECTION/,/^$/p' | sed 's/^/    /'

if [ $fails -ne 0 ]; then
    say "demo: $fails unexpected answer(s)"
    [ $once -eq 1 ] && exit 1
else
    say "demo: every answer as expected"
fi
exit 0
