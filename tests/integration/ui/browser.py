# SPDX-License-Identifier: Apache-2.0
"""Debian's chromium, headless, through chromium-driver and python3-selenium.
The machine has no network: every flag that would make chromium call home is
set, and each browser gets a fresh profile directory."""

import os
import shutil
import tempfile
import time

import pytest

import fedtest


def artifacts_dir():
    d = os.path.join(os.environ.get("FEDGSLB_BUILD_DIR") or ".", "artifacts", "ui")
    os.makedirs(d, exist_ok=True)
    return d


def chrome(width=1500, height=1250):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("python3-selenium is not installed (scripts/deps.sh)")
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not os.path.exists(driver_path) or not shutil.which("chromium"):
        pytest.skip("chromium / chromium-driver are not installed (scripts/deps.sh)")
    profile = tempfile.mkdtemp(prefix="fedgslb-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
              "--no-first-run", "--disable-background-networking", "--disable-component-update",
              "--disable-sync", "--disable-dev-shm-usage", "--user-data-dir=" + profile,
              "--window-size=%d,%d" % (width, height)):
        opts.add_argument(a)
    drv = webdriver.Chrome(service=Service(driver_path), options=opts)
    drv.fedgslb_profile = profile
    return drv


def quit(drv):
    try:
        drv.quit()
    finally:
        shutil.rmtree(drv.fedgslb_profile, ignore_errors=True)


def shot(drv, name):
    """A screenshot as artifacts/ui/NAME.png; prints and returns the path."""
    path = os.path.join(artifacts_dir(), name + ".png")
    drv.save_screenshot(path)
    print("screenshot: " + path)
    return path


def wait_for(drv, pred, what, timeout=15, prefix="dnsd"):
    """Polls pred() until it returns something true (returned); on timeout a
    PREFIX-timeout screenshot and an AssertionError with the page's error."""
    deadline = time.monotonic() + timeout * fedtest.SLOW
    last = None
    while time.monotonic() < deadline:
        try:
            last = pred()
            if last:
                return last
        except Exception as e:  # the DOM is being replaced under us: retry
            last = e
        time.sleep(0.2)
    shot(drv, prefix + "-timeout")
    raise AssertionError("timed out waiting for %s (last: %r); page error: %r"
                         % (what, last, drv.execute_script(
                             "return document.getElementById('error').textContent")))
