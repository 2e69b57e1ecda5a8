# SPDX-License-Identifier: Apache-2.0
"""fedgslb-dnsd answers the static zone as an authoritative server should
(RFC 1034/1035, 2308, 8482), seen by dnspython and by dig/kdig."""

import dns.flags
import dns.message
import dns.query
import dns.name
import dns.rcode
import dns.rdatatype
import pytest

import fedtest
from fedtest import ZONE, query, soa_in_authority

Z = ZONE + "."


def _soa_negative_ttl_ok(r):
    soa = soa_in_authority(r)
    assert len(soa) == 1, r.to_text()
    assert soa[0].name == dns.name.from_text(Z)
    # RFC 2308 section 3: min(SOA TTL 300, MINIMUM 60)
    assert soa[0].ttl == 60, r.to_text()


def test_aa_on_in_zone_answer(dnsd):
    r = query(dnsd, "host." + Z, "A")
    assert r.rcode() == dns.rcode.NOERROR
    assert r.flags & dns.flags.AA
    assert r.flags & dns.flags.QR
    assert not r.flags & dns.flags.RA
    assert fedtest.addresses(r) == {"192.0.2.80"}
    assert r.answer[0].ttl == 3600


def test_apex_records(dnsd):
    r = query(dnsd, Z, "NS")
    assert r.flags & dns.flags.AA
    assert {rd.target.to_text() for rd in r.answer[0]} == {"ns1." + Z, "ns2." + Z}
    r = query(dnsd, Z, "MX")
    assert [(rd.preference, rd.exchange.to_text()) for rd in r.answer[0]] == [(10, "mail." + Z)]
    r = query(dnsd, Z, "TXT")
    assert [rd.strings for rd in r.answer[0]] == [(b"v=fedgslb test zone",)]
    r = query(dnsd, Z, "SOA")
    assert r.answer[0][0].serial == 2024010101 and r.answer[0][0].minimum == 60


@pytest.mark.parametrize("name", ["example.com.", "example.test.", "test.", "xfed.example.test.",
                                  "fed.example.org."])
def test_refused_outside_zone(dnsd, name):
    r = query(dnsd, name, "A")
    assert r.rcode() == dns.rcode.REFUSED
    assert not r.flags & dns.flags.AA
    assert not r.answer


def test_refused_class_chaos(dnsd):
    q = dns.message.make_query("version.bind.", "TXT", "CH")
    r = dns.query.udp(q, "127.0.0.1", port=dnsd.dns_port, timeout=3)
    assert r.rcode() == dns.rcode.REFUSED
    assert not r.answer


def test_axfr_refused(dnsd):
    q = dns.message.make_query(Z, "AXFR")
    r = dns.query.tcp(q, "127.0.0.1", port=dnsd.dns_port, timeout=3)
    assert r.rcode() == dns.rcode.REFUSED
    assert not r.answer


def test_nxdomain_with_soa(dnsd):
    r = query(dnsd, "nope." + Z, "A")
    assert r.rcode() == dns.rcode.NXDOMAIN
    assert r.flags & dns.flags.AA
    assert not r.answer
    _soa_negative_ttl_ok(r)


def test_nodata_with_soa(dnsd):
    r = query(dnsd, "mail." + Z, "AAAA")
    assert r.rcode() == dns.rcode.NOERROR
    assert r.flags & dns.flags.AA
    assert not r.answer
    _soa_negative_ttl_ok(r)


def test_empty_non_terminal_is_nodata(dnsd):
    r = query(dnsd, "b." + Z, "A")
    assert r.rcode() == dns.rcode.NOERROR, "empty non-terminal must not be NXDOMAIN (RFC 8020)"
    assert r.flags & dns.flags.AA
    assert not r.answer
    _soa_negative_ttl_ok(r)
    # and the name below it exists
    r = query(dnsd, "a.b." + Z, "TXT")
    assert r.answer and r.answer[0].rdtype == dns.rdatatype.TXT


def test_nxdomain_below_existing_name(dnsd):
    r = query(dnsd, "x.host." + Z, "A")
    assert r.rcode() == dns.rcode.NXDOMAIN
    _soa_negative_ttl_ok(r)


def test_cname_chased_within_zone(dnsd):
    r = query(dnsd, "www." + Z, "A")
    assert r.rcode() == dns.rcode.NOERROR
    assert r.flags & dns.flags.AA
    assert len(r.answer) == 2, r.to_text()
    cname, a = r.answer
    assert cname.rdtype == dns.rdatatype.CNAME and cname.name.to_text() == "www." + Z
    assert cname[0].target.to_text() == "host." + Z
    assert a.rdtype == dns.rdatatype.A and a.name.to_text() == "host." + Z
    assert {rd.address for rd in a} == {"192.0.2.80"}


def test_cname_query_type_cname_not_chased(dnsd):
    r = query(dnsd, "www." + Z, "CNAME")
    assert [rr.rdtype for rr in r.answer] == [dns.rdatatype.CNAME]


def test_cname_then_nodata(dnsd):
    r = query(dnsd, "www." + Z, "MX")
    assert r.rcode() == dns.rcode.NOERROR
    assert [rr.rdtype for rr in r.answer] == [dns.rdatatype.CNAME]
    _soa_negative_ttl_ok(r)


def test_cname_out_of_zone_not_chased(dnsd):
    r = query(dnsd, "ext." + Z, "A")
    assert r.rcode() == dns.rcode.NOERROR
    assert [rr.rdtype for rr in r.answer] == [dns.rdatatype.CNAME]
    assert r.answer[0][0].target.to_text() == "target.example.net."


@pytest.mark.parametrize("name", ["host.lab.", "lab.", "ns.lab.", "a.b.c.lab."])
def test_referral_for_delegation(dnsd, name):
    r = query(dnsd, name + Z, "A")
    assert r.rcode() == dns.rcode.NOERROR, r.to_text()
    assert not r.flags & dns.flags.AA, "a referral is not authoritative"
    assert not r.answer, r.to_text()
    ns = [rr for rr in r.authority if rr.rdtype == dns.rdatatype.NS]
    assert len(ns) == 1 and ns[0].name.to_text() == "lab." + Z
    assert {rd.target.to_text() for rd in ns[0]} == {"ns.lab." + Z}
    assert not soa_in_authority(r)
    glue = [rr for rr in r.additional if rr.rdtype == dns.rdatatype.A]
    assert glue and glue[0].name.to_text() == "ns.lab." + Z
    assert {rd.address for rd in glue[0]} == {"192.0.2.53"}


def test_question_case_preserved(dnsd):
    name = "WwW.FeD.ExAmPlE.TeSt."
    r = query(dnsd, name, "A")
    assert r.rcode() == dns.rcode.NOERROR
    assert r.question[0].name.to_text() == name
    assert [lab for lab in r.question[0].name.labels] == [b"WwW", b"FeD", b"ExAmPlE", b"TeSt", b""]
    assert fedtest.addresses(r) == {"192.0.2.80"}


def test_question_case_preserved_in_wire(dnsd):
    q = dns.message.make_query("HoSt.FED.example.TEST.", "A")
    wire = fedtest.raw_udp(dnsd.dns_port, q.to_wire())
    assert wire is not None
    assert b"\x04HoSt\x03FED\x07example\x04TEST\x00" in wire[12:40]


@pytest.mark.parametrize("name", ["big.", "", "host."])
def test_any_answers_one_rrset(dnsd, name):
    r = query(dnsd, name + Z, "ANY", edns=0, payload=4096, tcp=True)
    assert r.rcode() == dns.rcode.NOERROR
    assert r.flags & dns.flags.AA
    assert len(r.answer) == 1, "RFC 8482: one RRset for ANY, got " + r.to_text()
    assert r.answer[0].name.to_text() == name + Z


def test_any_for_missing_name_is_nxdomain(dnsd):
    r = query(dnsd, "missing." + Z, "ANY")
    assert r.rcode() == dns.rcode.NXDOMAIN
    _soa_negative_ttl_ok(r)


def test_dig_answers(dnsd):
    p = fedtest.run(["dig", "@127.0.0.1", "-p", str(dnsd.dns_port), "+norec", "+time=3",
                     "+tries=1", "www." + Z, "A"])
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "status: NOERROR" in out
    assert " aa" in out.split("flags:")[1].split(";")[0]
    assert "CNAME\thost." + Z in out.replace(" ", "\t") or "CNAME host." + Z in out
    assert "192.0.2.80" in out
    p = fedtest.run(["dig", "@127.0.0.1", "-p", str(dnsd.dns_port), "+time=3", "+tries=1",
                     "nope." + Z, "A"])
    assert "status: NXDOMAIN" in p.stdout
    assert "SOA" in p.stdout.split("AUTHORITY SECTION")[1]


def test_kdig_answers(dnsd):
    p = fedtest.run(["kdig", "@127.0.0.1", "-p", str(dnsd.dns_port), "+time=3", "+retry=0",
                     "host." + Z, "AAAA"])
    assert p.returncode == 0, p.stdout + p.stderr
    assert "status: NOERROR" in p.stdout
    assert "2001:db8::80" in p.stdout
    p = fedtest.run(["kdig", "@127.0.0.1", "-p", str(dnsd.dns_port), "+time=3", "+retry=0",
                     "example.com", "A"])
    assert "status: REFUSED" in p.stdout
