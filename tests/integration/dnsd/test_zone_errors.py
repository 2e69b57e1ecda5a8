# SPDX-License-Identifier: Apache-2.0
"""fedgslb-dnsd --check-config reports zone file errors an operator can act
on, as nsd-checkzone does: file, the line where the problem starts, the
offending text and what was expected."""

import os
import subprocess

import pytest

import fedtest

Z = fedtest.ZONE + "."


def _check(tmp, zone_text):
    conf = fedtest.base_config(tmp, fedtest.free_port(), fedtest.free_port(ipv6=False))
    zone_file = os.path.join(str(tmp), "fed.example.test.zone")
    with open(zone_file, "w") as f:
        f.write(zone_text)
    conf["dnsd"]["zone_file"] = zone_file
    path = fedtest.write_config(tmp, conf)
    exe = fedtest.binary("fedgslb-dnsd")
    r = subprocess.run([exe, "--config", path, "--check-config"], capture_output=True, text=True,
                       timeout=30)
    return r.returncode, r.stderr.strip(), zone_file


HEAD = ("$TTL 300\n"
        f"@ IN SOA ns1.{Z} hostmaster.{Z} 1 7200 900 1209600 60\n"
        "@ IN NS ns1\n"
        "ns1 IN A 192.0.2.1\n")


@pytest.mark.parametrize("body,line,message", [
    ("\n; hosts\nmail IN A 192.0.2.2\nhost IN A 192.0.2.3\nwww IN A 127.0.0.256\n", 9,
     '"127.0.0.256" is not an IPv4 address (A record of www.fed.example.test.)'),
    ("www IN AAAA 2001:db8::1::2\n", 5,
     '"2001:db8::1::2" is not an IPv6 address (AAAA record of www.fed.example.test.)'),
    ("@ IN MX 70000 mail\n", 5,
     '"70000" is not a number from 0 to 65535 (MX record of fed.example.test.)'),
    ("_sip._tcp IN SRV 10 60 5060\n", 5,
     "SRV record of _sip._tcp.fed.example.test.: missing a domain name (field 4 of 4)"),
])
def test_bad_rdata(tmp_path, body, line, message):
    rc, err, zone_file = _check(tmp_path, HEAD + body)
    assert rc == 1
    assert err == f"{zone_file}:{line}: {message}", err


def test_unclosed_parenthesis_line_where_it_opens(tmp_path):
    text = ("$TTL 300\n"
            "\n"
            f"@ IN SOA ns1.{Z} hostmaster.{Z} (\n"
            "        2024010101 ; serial\n"
            "        7200 900 1209600 60\n"
            "@ IN NS ns1\n"
            "ns1 IN A 192.0.2.1\n")
    rc, err, zone_file = _check(tmp_path, text)
    assert rc == 1
    assert err == f'{zone_file}:3: unbalanced parentheses: "(" opened here is never closed', err


def test_apex_differs_from_configured_zone(tmp_path):
    text = ("$ORIGIN example.org.\n"
            "$TTL 300\n"
            "@ IN SOA ns1 hostmaster 1 7200 900 1209600 60\n"
            "@ IN NS ns1\n")
    rc, err, zone_file = _check(tmp_path, text)
    assert rc == 1
    assert err == (f"{zone_file}:3: the zone's apex is example.org. but the configuration's "
                   "zone is fed.example.test."), err


def test_repo_zone_still_checks(tmp_path):
    with open(os.path.join(fedtest.SOURCE_DIR, "conf", "fed.example.test.zone")) as f:
        rc, err, _ = _check(tmp_path, f.read())
    assert rc == 0, err
