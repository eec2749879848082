"""The README's first command starts web, worker and beat; Ctrl-C stops all three."""

import http.cookiejar
import os
import re
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_run_command_serves_the_admin_and_stops_cleanly(tmp_path):
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "DEBUG", "SECRET_KEY"}
    }
    env.update(PORT=str(port), VAR_DIR=str(tmp_path / "var"))
    log = open(tmp_path / "run.log", "w+")
    proc = subprocess.Popen(
        ["bash", "bin/run"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        deadline = time.monotonic() + 180
        login_page = None
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "run.log").read_text()
            try:
                login_page = opener.open(f"{base}/admin/login/", timeout=5).read().decode()
                break
            except OSError:
                time.sleep(0.5)
        assert login_page and "csrfmiddlewaretoken" in login_page, (
            tmp_path / "run.log"
        ).read_text()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page).group(1)
        form = urllib.parse.urlencode(
            {
                "username": "configurer",
                "password": "configurer-demo-pass",
                "csrfmiddlewaretoken": token,
                "next": "/admin/",
            }
        ).encode()
        home = opener.open(f"{base}/admin/login/?next=/admin/", data=form, timeout=10)
        html = home.read().decode()
        assert home.geturl().endswith("/admin/")
        assert "Milestones administration" in html
        assert "configurer" in html  # the logged-in user's name in the header
        output = (tmp_path / "run.log").read_text()
        assert f"http://127.0.0.1:{port}/admin/" in output
        assert "configurer-demo-pass" in output and "care-demo-pass" in output
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    # Nothing of the group is left running.
    time.sleep(1)
    leftover = subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True, text=True)
    assert leftover.stdout.strip() == "", f"still running: {leftover.stdout}"
    assert "Stopped." in (tmp_path / "run.log").read_text()
