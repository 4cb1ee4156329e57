"""Helpers for driving ``labelloop serve`` in Debian's Chromium with Playwright.

Used by the end-to-end tests, the screenshot script and the browser benchmark. The server is a
real ``labelloop serve`` process on a free loopback port; the browser is the system Chromium
(Playwright's own browser download is not used).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from labeling.config import write_config

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LINK = re.compile(r"(http://\S+/\?token=(ls_\S+))")


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[str]
    url: str
    sign_in_url: str
    output: list[str]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "_stcore/health", timeout=1) as reply:
            return bool(reply.read().decode().strip() == "ok")
    except OSError:
        return False


@contextmanager
def serve(
    workspace: Path,
    *,
    timeout: float = 60.0,
    db_url: str | None = None,
    command: list[str] | None = None,
    port: int | None = None,
    api_port: int | None = None,
) -> Iterator[Server]:
    """Start ``labelloop serve`` (or ``command``, given without the port option) on ``port``
    (default: a free one; the same port again restarts a server at the address a page knows);
    yield once it answers; stop it by its pid. ``api_port``: run the HTTP API beside it there
    (default: no API)."""
    port = port if port is not None else free_port()
    if command is None:
        command = [sys.executable, "-m", "labeling.cli", "serve", "-w", str(workspace)]
    api = ["--no-api"] if api_port is None else ["--api-port", str(api_port)]
    command = [*command, "--port", str(port), *api]
    if db_url:
        command += ["--db", db_url]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    output: list[str] = []
    try:
        sign_in_url = ""
        deadline = time.monotonic() + timeout
        assert process.stdout is not None
        while not sign_in_url:
            line = process.stdout.readline()
            if not line:
                raise RuntimeError("labelloop serve exited early:\n" + "".join(output))
            output.append(line)
            found = LINK.search(line)
            if found:
                sign_in_url = found.group(1)
            if time.monotonic() > deadline:
                raise RuntimeError("no sign-in link printed:\n" + "".join(output))
        url = sign_in_url.split("?", 1)[0]
        while not _healthy(url):
            if process.poll() is not None:
                raise RuntimeError("labelloop serve stopped:\n" + "".join(output))
            if time.monotonic() > deadline:
                raise RuntimeError("the server never became healthy:\n" + "".join(output))
            time.sleep(0.2)
        yield Server(process, url, sign_in_url, output)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if process.stdout is not None:
            process.stdout.close()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


# An opener that returns a redirect instead of following it (sign-in answers with one).
NO_REDIRECTS = urllib.request.build_opener(_NoRedirect)


def session_cookie(link: str) -> str:
    """The ``name=value`` of the session cookie that signing in with ``link`` sets."""
    try:
        NO_REDIRECTS.open(link, timeout=30)
    except urllib.error.HTTPError as exc:
        return str(exc.headers["Set-Cookie"]).split(";")[0]
    raise RuntimeError("sign-in did not redirect")


def streamlit_pid(serve_pid: int) -> int:
    """The Streamlit child of ``labelloop serve`` (the round worker is the other child)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == serve_pid and "streamlit" in cmdline:
            return int(entry.name)
    raise RuntimeError("no Streamlit process under labelloop serve")


def cpu_seconds(pid: int) -> float:
    """A process's CPU time so far, user and system (Linux: from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium browser through Playwright."""
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    if path is None:
        raise RuntimeError("Chromium is not installed (apt-get install -y chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def tfidf_only(root: Path) -> None:
    """Set the workspace at ``root`` to the TF-IDF featurizer, for a browser test that reads no
    features. With the default (auto, embeddings installed) the round worker that ``serve``
    starts first embeds every item: ~15 s of CPU beside the browser, and a worker that stops
    only when that is done, so that the server's stop waits out its 10 s grace."""
    toml = root / "labelloop.toml"
    toml.write_text(toml.read_text().replace('featurizer = "auto"', 'featurizer = "tfidf"'))
    assert 'featurizer = "tfidf"' in toml.read_text()


def one_item_page(target: Any) -> None:
    """Set a workspace (a :class:`Workspace`, whose settings in memory change too, or the folder
    of one) to the one-item Label page (``prefetch = 0``), for a test of that page: its keys,
    buttons and notes. The buffered page, the default, has tests of its own
    (tests/test_browser_buffer.py)."""
    if isinstance(target, Path):
        toml = target / "labelloop.toml"
        text = re.sub(r"(?m)^prefetch = \d+$", "prefetch = 0", toml.read_text())
        toml.write_text(text)
        assert "prefetch = 0" in toml.read_text()
        return
    target.config = replace(target.config, prefetch=0)
    write_config(target.root, target.config)


SIGN_IN_INPUT = "form[action='/auth/sign-in'] input[name=token]"
SIGNED_IN = "Signed in as "


def sign_in_form_shown(page: Any, *, timeout: float = 20_000) -> bool:
    """Whether ``page`` shows the sign-in form (waits for it, then for the run to settle)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout  # as chromium() does

    try:
        page.locator(SIGN_IN_INPUT).wait_for(timeout=timeout)
    except PlaywrightTimeout:
        return False
    wait_idle(page)
    return page.get_by_text(SIGNED_IN).count() == 0


def sign_in_with_form(page: Any, url: str, token: str) -> None:
    """Open ``url``, type ``token`` into the sign-in form and wait for the signed-in app."""
    page.goto(url)
    page.locator(SIGN_IN_INPUT).fill(token)
    page.locator("form[action='/auth/sign-in'] button[type=submit]").click()
    page.get_by_text(SIGNED_IN).first.wait_for(timeout=20_000)
    wait_idle(page)


def wait_idle(page: Any, *, buttons: int | None = None, timeout: float = 20_000) -> None:
    """Wait until Streamlit has finished a run and the page is not stale.

    A key press sent before the buttons are mounted is lost silently, so every press waits
    for: script not running, connection up, no stale elements and (when given) the expected
    number of buttons.
    """
    page.wait_for_function(
        """(n) => {
            const app = document.querySelector('[data-test-script-state]');
            const conn = document.querySelector('[data-test-connection-state]');
            if (!app || app.getAttribute('data-test-script-state') === 'running') return false;
            if (conn && conn.getAttribute('data-test-connection-state') !== 'CONNECTED')
                return false;
            if (document.querySelector('[data-stale="true"]')) return false;
            if (n !== null && document.querySelectorAll('.stButton').length < n) return false;
            return true;
        }""",
        arg=buttons,
        timeout=timeout,
    )


def item_id(page: Any) -> str:
    """The id of the item on screen (its caption reads ``Item <id>``)."""
    caption = page.locator("[data-testid='stCaptionContainer']", has_text="Item ").first
    text = caption.inner_text(timeout=10_000).strip()
    return text.split("Item ", 1)[1].strip()


def wait_item_change(page: Any, before: str, *, timeout: float = 20_000) -> None:
    """Wait until the item on screen is no longer ``before`` (then for the run to settle)."""
    page.wait_for_function(
        """(before) => {
            const caps = [...document.querySelectorAll('[data-testid="stCaptionContainer"]')];
            const cap = caps.find((c) => c.innerText.trim().startsWith('Item '));
            if (!cap) return true;  // no item: the queue is empty
            return cap.innerText.trim().slice(5).trim() !== before;
        }""",
        arg=before,
        timeout=timeout,
        polling="raf",
    )
