# SPDX-License-Identifier: Apache-2.0
"""Fixtures of the fedgslb-dnsd system tests (the harness is
tests/integration/fedtest.py; failure reports come from ../conftest.py)."""

import pytest

import fedtest


@pytest.fixture(scope="module")
def dnsd(tmp_path_factory):
    """One fedgslb-dnsd on the base configuration for the whole module."""
    tmp = tmp_path_factory.mktemp("dnsd")
    d = fedtest.start_dnsd(tmp)
    yield d
    fedtest.finish(d)


@pytest.fixture(scope="module")
def ctl(dnsd):
    return fedtest.Control(dnsd.ctl_port)
