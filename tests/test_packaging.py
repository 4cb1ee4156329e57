"""labelloop installed from its wheel, not run from a clone.

The wheel is built from a copy of this checkout without network (no build isolation, no
index) and checked file by file against the source tree. It is then installed, not editable
and without dependencies, into a fresh virtual environment that reuses the dependencies
installed here; the checks run that environment's ``python`` and ``labelloop`` from a scratch
folder with no ``PYTHONPATH``, so nothing can come from the checkout or from the editable
install: import paths, ``labelloop demo --no-serve``, the app's pages (Streamlit's AppTest on
the installed entry script) and ``labelloop serve`` answering on a free port.

About 30 s on 2 cores, half of it the demo's first round.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import serve
from tests.conftest import REPO

PACKAGES = ("labeling", "strategies", "weak_supervision")
# Files the installed package reads by path, and the entry points ``serve`` starts.
REQUIRED = (
    "labeling/ui/main.py",
    "labeling/ui/web_app.py",
    "labeling/ui/views/label_keys.js",
    "labeling/store/migrations/env.py",
    "labeling/store/migrations/script.py.mako",
    "labeling/rounds/worker.py",
)
# What a clone has beside the packages and a wheel must not: tests, benchmarks, docs, data,
# the ``streamlit run app.py`` shim.
NOT_SHIPPED = ("tests", "benchmarks", "docs", "datasets", "app.py")
# Left out of the copy the wheel is built from: build output, caches, local environments and
# workspaces (a stale build/ folder would put deleted modules back into the wheel).
NOT_COPIED = shutil.ignore_patterns(
    ".git",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    "*.py[cod]",
    ".*_cache",
    ".hypothesis",
    ".venv",
    "venv",
    "labelloop-demo",
    "*.db",
    "*.db-*",
)
# Where an installed labelloop must not look: the checkout, and the workspace or database of
# whoever runs the tests.
UNSET = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")
TIMEOUT = 180


def _source_files() -> set[str]:
    """Every file of the three packages in the checkout, as wheel paths: modules of any
    subpackage (one without ``__init__.py`` too, which setuptools' find would leave out) and
    the data files the code reads."""
    found: set[str] = set()
    for package in PACKAGES:
        for path in (REPO / package).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                found.add(path.relative_to(REPO).as_posix())
    return found


def _clean_env() -> dict[str, str]:
    return {
        name: value
        for name, value in os.environ.items()
        if name not in UNSET and not name.startswith("LABELLOOP_")
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    scratch = tmp_path_factory.mktemp("wheel")
    source = scratch / "source"
    shutil.copytree(REPO, source, ignore=NOT_COPIED)
    built = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"),
            *("--no-index", "--disable-pip-version-check", "-q"),
            *("-w", str(scratch / "dist"), str(source)),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=TIMEOUT,
    )
    assert built.returncode == 0, (
        "building the wheel failed (it needs setuptools and wheel installed, as "
        f'`pip install -e ".[dev]"` does):\n{built.stdout}{built.stderr}'
    )
    (found,) = (scratch / "dist").glob("labelloop-*.whl")
    return found


class Installed:
    """A virtual environment holding labelloop from the wheel."""

    def __init__(self, root: Path, cwd: Path) -> None:
        self.root = root
        self.cwd = cwd  # a scratch folder: ``python -m`` puts the current folder on sys.path
        self.python = root / "bin" / "python"
        self.labelloop = root / "bin" / "labelloop"
        self.site = Path(self.run_python("import sysconfig; print(sysconfig.get_path('purelib'))"))

    def run(self, *command: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(part) for part in command],
            cwd=self.cwd,
            env=_clean_env(),
            capture_output=True,
            text=True,
            check=False,
            timeout=TIMEOUT,
        )
        if check:
            assert done.returncode == 0, f"{command}:\n{done.stdout}{done.stderr}"
        return done

    def run_python(self, code: str, *args: str) -> str:
        return self.run(self.python, "-c", code, *args).stdout.strip()


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    scratch = tmp_path_factory.mktemp("installed")
    root = scratch / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(root)],
        check=True,
        timeout=TIMEOUT,
    )
    cwd = scratch / "cwd"
    cwd.mkdir()
    venv = Installed(root, cwd)
    if sys.prefix != sys.base_prefix:
        # The tests run in a virtual environment: the dependencies are installed in it, not in
        # the base interpreter that --system-site-packages shows. Show this one's too, after
        # the new environment's own packages.
        outer = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
        (venv.site / "labelloop_test_dependencies.pth").write_text(
            "".join(f"import site; site.addsitedir({path!r})\n" for path in sorted(outer)),
            encoding="utf-8",
        )
    pip = (venv.python, "-m", "pip", "install", "--disable-pip-version-check", "-q")
    venv.run(*pip, "--no-deps", "--no-index", wheel)
    return venv


@pytest.fixture(scope="module")
def demo(installed: Installed) -> tuple[Path, subprocess.CompletedProcess[str]]:
    root = installed.cwd / "demo"
    return root, installed.run(installed.labelloop, "demo", "--no-serve", root, check=False)


def test_the_wheel_holds_every_module_and_data_file_of_the_packages_and_nothing_else(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    shipped = {name for name in names if name.split("/", 1)[0] in PACKAGES}
    expected = _source_files()
    assert sorted(expected - shipped) == [], "in the source tree, missing from the wheel"
    assert sorted(shipped - expected) == [], "in the wheel, not in the source tree"
    for name in REQUIRED:
        assert name in shipped
    versions = REPO / "labeling" / "store" / "migrations" / "versions"
    assert {p.name for p in versions.glob("0*.py")} <= {Path(n).name for n in shipped}
    others = {name.split("/", 1)[0] for name in names - shipped}
    assert len(others) == 1 and others.pop().endswith(".dist-info")
    assert not [name for name in names if name.split("/", 1)[0] in NOT_SHIPPED]


def test_the_wheel_declares_the_labelloop_command(wheel):
    with zipfile.ZipFile(wheel) as archive:
        (entry_points,) = [
            n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt")
        ]
        text = archive.read(entry_points).decode()
    assert "[console_scripts]" in text
    assert "labelloop = labeling.cli:main" in text


def test_the_installed_environment_imports_labelloop_from_its_own_copy(installed):
    found = json.loads(
        installed.run_python(
            "import importlib.metadata, importlib.util, json\n"
            "dist = importlib.metadata.distribution('labelloop')\n"
            "names = ['labeling', 'strategies', 'weak_supervision', 'labeling.ui.main']\n"
            "print(json.dumps({\n"
            "    'modules': {n: importlib.util.find_spec(n).origin for n in names},\n"
            "    'dist': str(dist.locate_file('')),\n"
            "    'direct_url': json.loads(dist.read_text('direct_url.json') or '{}'),\n"
            "}))"
        )
    )
    for name, origin in found["modules"].items():
        assert Path(origin).is_relative_to(installed.site), f"{name} from {origin}"
        assert not Path(origin).is_relative_to(REPO), f"{name} from the checkout"
    assert Path(found["dist"]) == installed.site
    assert not found["direct_url"].get("dir_info", {}).get("editable")
    assert installed.labelloop.read_text().startswith(f"#!{installed.python}")


def test_the_demo_builds_from_the_installed_package(demo):
    root, done = demo
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith(
        f"Created the demo workspace in {root}: 2,400 support messages to label"
    )
    assert "and 200 gold items with known answers" in done.stdout
    assert "The loop has turned once" in done.stdout and "promoted" in done.stdout
    assert (root / "labelloop.toml").is_file()


APP_CHECK = """\
import importlib.util, json, os, sys
from streamlit.testing.v1 import AppTest
from labeling import Workspace
from labeling.ui import web_auth
from labeling.ui.views import common

main = importlib.util.find_spec("labeling.ui.main").origin
views = os.path.dirname(importlib.util.find_spec("labeling.ui.views.label").origin)
os.environ[web_auth.WORKSPACE_ENV] = sys.argv[1]
shipped = [n for n in os.listdir(views) if n.startswith("label_") and n.endswith((".js", ".css"))]
seen = {"main": main, "component": sorted(shipped)}
for name, role in (("wheel_annotator", "annotator"), ("wheel_admin", "admin")):
    with Workspace.open(sys.argv[1]) as ws:
        _, token = ws.add_user(name, role=role)
        key = web_auth.start_session(ws, token)
    # AppTest carries no cookie: read the session's key as the browser would send it.
    common.session_cookie = lambda key=key: key
    at = AppTest.from_file(main, default_timeout=60)
    at.run()
    seen[role] = {
        "exceptions": [e.message for e in at.exception],
        "titles": [t.value for t in at.title],
        "leased": at.session_state["ll_item"] is not None if "ll_item" in at.session_state
        else False,
    }
print(json.dumps(seen))
"""


def test_the_installed_app_signs_people_in_and_shows_their_pages(installed, demo):
    root, done = demo
    assert done.returncode == 0, done.stdout + done.stderr
    output = installed.run(installed.python, "-c", APP_CHECK, root).stdout
    seen = json.loads(output.strip().splitlines()[-1])
    assert Path(seen["main"]).is_relative_to(installed.site)
    # An annotator lands on Label: the buffered page (prefetch = 3, the default), whose
    # component is read from the package; its items are leased when the browser asks for them.
    assert seen["component"] == ["label_buffer.css", "label_buffer.js", "label_keys.js"]
    assert seen["annotator"] == {"exceptions": [], "titles": [], "leased": False}
    assert seen["admin"] == {"exceptions": [], "titles": ["Metrics"], "leased": False}


@pytest.fixture
def outside_the_checkout(installed: Installed, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """For helpers that start processes with this process's environment and folder."""
    for name in list(os.environ):
        if name in UNSET or name.startswith("LABELLOOP_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(installed.cwd)
    yield


def _command_line(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


def test_serve_runs_the_installed_entry_points(installed, demo, outside_the_checkout):
    root, done = demo
    assert done.returncode == 0, done.stdout + done.stderr
    command = [str(installed.labelloop), "serve", "-w", str(root)]
    with serve(root, command=command, timeout=90) as server:
        with urllib.request.urlopen(server.sign_in_url, timeout=10) as reply:
            assert reply.status == 200
        children = subprocess.run(
            ["pgrep", "-P", str(server.process.pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        lines = [_command_line(int(pid)) for pid in children]
        os.killpg(server.process.pid, signal.SIGTERM)
        assert server.process.wait(timeout=20) == 0
    assert sorted(line[:3] for line in lines) == [
        [str(installed.python), "-m", "labeling.rounds.worker"],
        [str(installed.python), "-m", "streamlit"],
    ]
    (streamlit,) = [line for line in lines if line[2] == "streamlit"]
    assert streamlit[4] == str(installed.site / "labeling" / "ui" / "web_app.py")
