# SPDX-License-Identifier: Apache-2.0
"""Fixtures of the status page tests: a headless chromium (`drv`) and two
name servers of one deployment file (`fleet`, uibed.PeerBed)."""

import pytest

import browser
from uibed import PeerBed


@pytest.fixture
def drv():
    d = browser.chrome()
    try:
        yield d
    finally:
        browser.quit(d)


@pytest.fixture
def fleet(tmp_path):
    f = PeerBed(tmp_path).start("ns1", "ns2")
    try:
        yield f
    finally:
        f.close()
