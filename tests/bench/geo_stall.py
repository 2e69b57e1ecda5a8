#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""How long the control API stalls while dnsd reloads a full-size GeoIP
database: worst /healthz latency idle, across a SIGHUP, and across a file
replacement (not in the suite).

    FEDGSLB_BUILD_DIR=build python3 tests/bench/geo_stall.py DATABASE.mmdb
"""
import os, sys, time, signal, shutil, tempfile, threading, urllib.request
SRC = sys.argv[1]
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import fedtest
tmp = tempfile.mkdtemp(prefix="geo_stall.")
dport, cport = fedtest.free_port(), fedtest.free_port(ipv6=False)
conf = fedtest.base_config(tmp, dport, cport, ipv6=False)
conf["regions"]["us-east-1"]["location"] = [38.9, -77.0]
conf["regions"]["eu-west-1"]["location"] = [53.3, -6.3]
db = tmp + "/geo.mmdb"
shutil.copy(SRC, db)
conf["dnsd"]["geoip"] = {"path": db}
d = fedtest.start_dnsd(tmp, conf=conf, dns_port=dport, ctl_port=cport)
def worst(action, secs=3.0):
    lat = []
    stop = time.time() + secs
    t = threading.Timer(0.5, action); t.start()
    while time.time() < stop:
        t0 = time.time()
        urllib.request.urlopen(f"http://127.0.0.1:{cport}/healthz", timeout=5).read()
        lat.append(time.time() - t0)
        time.sleep(0.005)
    return max(lat) * 1000, sorted(lat)[len(lat) // 2] * 1000
print("idle: max %.1f ms, median %.1f ms" % worst(lambda: None))
print("SIGHUP: max %.1f ms, median %.1f ms" % worst(lambda: d.signal(signal.SIGHUP)))
def replace():
    shutil.copy(SRC, db + ".new"); os.rename(db + ".new", db)
print("file replaced: max %.1f ms, median %.1f ms" % worst(replace))
log = d.log_text()
print("\n".join(l for l in log.splitlines() if "geoip" in l or "reload" in l or "view built" in l)[-2500:])
fedtest.finish(d)
