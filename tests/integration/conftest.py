# SPDX-License-Identifier: Apache-2.0
"""pytest glue for every system test (tests/integration/pytest.ini makes this
directory the root): a failed test's report carries the logs of the daemons
still running (every harness starts them through fedtest.Daemon)."""

import pytest

import fedtest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        logs = fedtest.failure_report()
        if logs:
            rep.sections.append(("fedgslb daemon logs", logs))
