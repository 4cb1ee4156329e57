"""``labelloop serve``: start the Streamlit app for a workspace.

The app runs in a child process (``python -m streamlit run app.py``) with the workspace folder
and database URL in its environment. Before it starts, the first active admin (created as
``admin`` when the workspace has none) gets a sign-in link valid for ``link_hours``, printed on
the terminal as Jupyter prints its token: whoever started the server can open the UI at once.
The link is revoked when the server stops. A server killed outright cannot do that, so each
one records its link in a run file (:mod:`labeling.ui.serve_runs`) and the next ``serve`` on the
same host revokes the links of servers that are gone. A second child process, the round worker
(:mod:`labeling.rounds.worker`), runs retraining rounds in the background.
"""

from __future__ import annotations

import ctypes
import ipaddress
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from sqlmodel import col, select

from labeling.annotation import users
from labeling.errors import BadInput, LabelloopError
from labeling.store import db
from labeling.store.models import Annotator
from labeling.ui import serve_runs, web_auth
from labeling.workspace import Workspace

APP_FILE = Path(__file__).resolve().with_name("main.py")
# What Streamlit runs: main.py plus the sign-in routes that set the session cookie.
SERVER_FILE = Path(__file__).resolve().parent / "web_app.py"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class Launch:
    url: str
    public_url: str  # what sign-in links name: ``--public-url``, else ``url``
    sign_in_url: str
    admin: str
    created_admin: bool
    token: str
    run_file: Path


def is_loopback(host: str) -> bool:
    if host in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_port(host: str, port: int) -> None:
    """Refuse a port that is taken, before Streamlit starts and fails less clearly."""
    if not 1 <= port <= 65535:
        raise BadInput(f"option '--port': expected 1-65535, found {port}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise BadInput(
                f"option '--port': cannot listen on {host}:{port} ({exc.strerror}); "
                "pick another port with --port"
            ) from exc


def sweep_stale_links(ws: Workspace) -> serve_runs.Sweep:
    """Revoke the links of servers on this host that stopped without revoking their own."""

    def revoke(token_ids: list[str]) -> int:
        with db.write_session(ws.engine) as session:
            return users.revoke_sign_in_links(session, token_ids=token_ids)

    return serve_runs.sweep_stale(ws.root, revoke)


def check_public_url(url: str) -> str:
    """``--public-url`` as a base address ending in ``/``; a bad one is refused."""
    parsed = urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.query:
        raise BadInput(
            "option '--public-url': expected an address such as https://labels.example.org/, "
            f"found {url!r}"
        )
    return url if url.endswith("/") else url + "/"


def prepare(
    ws: Workspace, *, host: str, port: int, link_hours: float, public_url: str | None = None
) -> Launch:
    """Make sure an admin exists, issue their sign-in link and record it in a run file.

    The run file is written before the link is committed, so there is no moment when the link
    works and no file names it; if the commit fails, the file is removed again.
    """
    run_file: Path | None = None
    try:
        with db.write_session(ws.engine) as session:
            admin = session.exec(
                select(Annotator)
                .where(Annotator.role == "admin", col(Annotator.active).is_(True))
                .order_by(col(Annotator.id))
            ).first()
            created = admin is None
            if admin is None:
                name = "admin"
                taken = session.exec(select(Annotator).where(Annotator.name == name)).first()
                if taken is not None:
                    name = f"admin-{taken.id}"
                admin, _token = users.add_annotator(session, name=name, role="admin")
            token = users.issue_sign_in_link(session, annotator=admin, hours=link_hours)
            admin_name = admin.name
            token_id = users.sign_in_link_id(token)
            assert token_id is not None
            run_file = serve_runs.record(ws.root, token_id)
    except BaseException:
        if run_file is not None:
            serve_runs.forget(run_file)
        raise
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if ":" in shown_host:
        shown_host = f"[{shown_host}]"
    url = f"http://{shown_host}:{port}/"
    public = public_url or url
    return Launch(
        url=url,
        public_url=public,
        sign_in_url=f"{public}?token={token}",
        admin=admin_name,
        created_admin=created,
        token=token,
        run_file=run_file,
    )


PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _die_with_server() -> Callable[[], None] | None:
    """Linux: a function for ``Popen(preexec_fn=...)`` that has the child sent SIGTERM when
    ``serve`` dies, however it dies.

    ``serve`` stops its children on the way out, but a server killed with SIGKILL (or by the
    out-of-memory killer) never gets there: Streamlit would keep running, holding the port and
    a connection to the store, and the next ``serve`` could not start. Elsewhere: None (the
    round worker still stops when it sees its parent gone).
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    server = os.getpid()

    def arm() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != server:  # the server died before the line above took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return arm


def streamlit_command(host: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(SERVER_FILE),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "minimal",
        "--theme.base",
        "light",
    ]


def serve(
    root: Path,
    *,
    db_url: str | None,
    host: str,
    port: int,
    link_hours: float = 24,
    public_url: str | None = None,
    api_port: int | None = None,
    echo: Callable[[str], None] = print,
    echo_err: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> int:
    """Run the UI until interrupted; returns the Streamlit process's exit code.

    ``api_port``: also run the HTTP API (labeling.service) on this port, in a third process
    (None: no API).

    ``public_url`` is the address people reach the server at, when it is not
    ``http://HOST:PORT/`` (behind an HTTPS proxy, say): sign-in links name it.
    ``echo`` prints the launch message, ``echo_err`` notes about links of servers that are gone.
    """
    _check_launch(host, port, api_port)
    public = check_public_url(public_url) if public_url else None
    ws = Workspace.open(root, db_url=db_url)
    try:
        swept = sweep_stale_links(ws)
        launch = prepare(ws, host=host, port=port, link_hours=link_hours, public_url=public)
    finally:
        ws.close()
    _report_swept(swept, echo_err)
    _announce(
        launch,
        root=root,
        host=host,
        public=public,
        link_hours=link_hours,
        echo=echo,
        api_port=api_port,
    )
    env = _child_env(root, db_url=db_url, public_url=launch.public_url)
    with_server = _die_with_server()
    children = [_start_worker(root, db_url, env, with_server)]
    if api_port is not None:
        children.append(_start_api(root, host, api_port, env, with_server))
    child = subprocess.Popen(streamlit_command(host, port), env=env, preexec_fn=with_server)
    try:
        return _wait_for(child)
    finally:
        for process in (child, *children):
            _stop(process)
        if _revoke(root, db_url, launch.token):
            serve_runs.forget(launch.run_file)


def _check_launch(host: str, port: int, api_port: int | None) -> None:
    """Refuse to start without the Streamlit entry points, or on a port that is taken."""
    for needed in (APP_FILE, SERVER_FILE):
        if not needed.is_file():
            raise LabelloopError(f"the Streamlit entry point {needed.name} is missing")
    check_port(host, port)
    if api_port is not None:
        _check_api_port(host, port, api_port)


def _check_api_port(host: str, port: int, api_port: int) -> None:
    """Refuse an API port that is the UI's or taken, naming ``--api-port``."""
    if api_port == port:
        raise BadInput(f"option '--api-port': {api_port} is the UI's port; pick another")
    try:
        check_port(host, api_port)
    except BadInput as exc:
        raise BadInput(
            str(exc)
            .replace("option '--port'", "option '--api-port'")
            .replace("with --port", "with --api-port, or run without the API: --no-api")
        ) from exc


def _start_worker(
    root: Path, db_url: str | None, env: dict[str, str], preexec: Callable[[], None] | None
) -> subprocess.Popen[bytes]:
    """The round worker's process (labeling.rounds.worker), which stops when this one is gone."""
    command = [sys.executable, "-m", "labeling.rounds.worker", "--workspace", str(root.resolve())]
    command += ["--db", db_url] if db_url else []
    command += ["--parent", str(os.getpid())]
    return subprocess.Popen(command, env=env, preexec_fn=preexec)


def _start_api(
    root: Path, host: str, port: int, env: dict[str, str], preexec: Callable[[], None] | None
) -> subprocess.Popen[bytes]:
    """The HTTP API's process (labeling.service.server), beside the UI."""
    command = [sys.executable, "-m", "labeling.service.server", "--workspace"]
    command += [str(root.resolve()), "--host", host, "--port", str(port)]
    return subprocess.Popen(command, env=env, preexec_fn=preexec)


def _report_swept(swept: serve_runs.Sweep, echo_err: Callable[[str], None]) -> None:
    """Say what the sweep of earlier servers' run files did."""
    for path in swept.unreadable:
        echo_err(f"warning: {path} is not a serve run file; left as it is")
    if swept.removed:
        echo_err(
            f"Revoked {swept.revoked} sign-in link(s) of {swept.removed} server(s) on this host "
            "that stopped without revoking their own."
        )


def _announce(
    launch: Launch,
    *,
    root: Path,
    host: str,
    public: str | None,
    link_hours: float,
    echo: Callable[[str], None],
    api_port: int | None = None,
) -> None:
    """The launch message: where the UI (and the API) is, the admin's sign-in link, warnings
    for a host reachable from other machines."""
    if not is_loopback(host):
        echo(
            f"warning: serving on {host}, reachable from other machines. Anyone who can reach "
            "it sees the sign-in page; put it behind HTTPS for a team."
        )
        if public is None:
            echo(
                f"warning: sign-in links name {launch.public_url}; give --public-url with the "
                "address people open, so that the Team page's links work for them."
            )
    if launch.created_admin:
        echo(f"No admin existed, so one was created: {launch.admin}.")
    echo(f"labelloop is serving workspace {root} at {launch.url}")
    if api_port is not None:
        echo(f"The HTTP API is at http://{host}:{api_port}/ (OpenAPI: /docs); off with --no-api.")
    echo(
        f"Sign in as {launch.admin} with this link (valid {link_hours:g} h; the browser "
        "trades it for a session cookie and the address bar keeps no token):"
    )
    echo(f"    {launch.sign_in_url}")
    echo("Stop with Ctrl+C.")


def _child_env(root: Path, *, db_url: str | None, public_url: str) -> dict[str, str]:
    """The environment of the app and the round worker: the workspace, its store, the URL."""
    env = dict(os.environ)
    env[web_auth.WORKSPACE_ENV] = str(root.resolve())
    if db_url:
        env[web_auth.DB_ENV] = db_url
    # The Team page builds sign-in links from this, never from a browser's address.
    env[web_auth.SERVER_URL_ENV] = public_url
    return env


def _wait_for(child: subprocess.Popen[bytes]) -> int:
    """The Streamlit process's exit code; SIGTERM or Ctrl+C to the server stops it first."""

    def _on_sigterm(signum: int, _frame: object) -> None:
        child.send_signal(signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return child.wait()
    except KeyboardInterrupt:
        child.send_signal(signal.SIGTERM)
        try:
            return child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            return child.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate a child still running; kill it if it has not stopped within 10 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _revoke(root: Path, db_url: str | None, token: str) -> bool:
    """Revoke the launch link; False when the workspace cannot be opened any more (its run file
    then stays, so the next ``serve`` revokes the link)."""
    try:
        with Workspace.open(root, db_url=db_url) as ws, db.write_session(ws.engine) as session:
            users.revoke_sign_in_link(session, token)
    except LabelloopError:
        return False
    return True
