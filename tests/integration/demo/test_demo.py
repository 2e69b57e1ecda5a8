# SPDX-License-Identifier: Apache-2.0
"""The README's demo command must keep working: run it against this build."""
import os
import subprocess


def test_demo_once():
    src = os.environ["FEDGSLB_SOURCE_DIR"]
    build = os.environ["FEDGSLB_BUILD_DIR"]
    proc = subprocess.run(
        [os.path.join(src, "scripts", "demo.sh"), "--once", "--no-build", "--build-dir", build],
        cwd=src, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "every answer as expected" in proc.stdout
    assert "rule: best latency -> eur" in proc.stdout
