# SPDX-License-Identifier: Apache-2.0
"""pytest glue for the fedgslb-dnsd system tests: the shared harness lives in
tests/integration/fedtest.py; this adds fixtures and puts the daemons' logs
into the report of a failed test."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import fedtest  # noqa: E402


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        logs = fedtest.failure_report()
        if logs:
            rep.sections.append(("fedgslb daemon logs", logs))


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
