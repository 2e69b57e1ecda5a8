# SPDX-License-Identifier: Apache-2.0
"""Runs build/fedgslbctl for the system tests and reads its tables.

Every run is checked for sanitizer reports and for the control token
leaking into the output (fedgslbctl must never print it)."""

import os
import re


import fedtest


def ctl(*args, config=None, cwd=None, env=None, timeout=30.0):
    """Runs fedgslbctl [--config CONFIG] ARGS; returns the CompletedProcess."""
    argv = [fedtest.binary("fedgslbctl")]
    if config:
        argv += ["--config", str(config)]
    argv += [str(a) for a in args]
    run_env = {k: v for k, v in os.environ.items() if k != "FEDGSLB_CONFIG"}
    run_env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
    if env:
        run_env.update(env)
    p = fedtest.run(argv, timeout=timeout, cwd=cwd, env=run_env)
    for marker in fedtest.SANITIZER_MARKERS:
        assert marker not in p.stderr, f"sanitizer report from {argv}:\n{p.stderr}"
    assert fedtest.TOKEN not in p.stdout + p.stderr, f"{argv} printed the token"
    return p


def tables(text):
    """Every table in @text: a list of lists of rows ({header: cell}).

    A table starts at a line whose first cell is SERVICE or RANK; cells are
    separated by two or more spaces, as ctl_table renders them."""
    out, cur, head = [], None, None
    for line in text.splitlines():
        cells = re.split(r" {2,}", line.strip()) if line.strip() else []
        if not cells:
            head = None
        elif cells[0] in ("SERVICE", "RANK"):
            head, cur = cells, []
            out.append(cur)
        elif head is not None:
            cur.append(dict(zip(head, cells)))
    return out


def row(table, **match):
    """The one row of @table whose cells equal @match."""
    rows = [r for r in table if all(r.get(k) == v for k, v in match.items())]
    assert len(rows) == 1, f"{match}: {len(rows)} rows in {table}"
    return rows[0]
