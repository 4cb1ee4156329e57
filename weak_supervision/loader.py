"""Load the LFs in a workspace's ``lfs/`` folder, one file at a time, each in isolation.

A file that fails to compile or import is reported with its line and skipped; the others load.
Modules get private names (``_labelloop_lfs_<hash>_<stem>``) so an LF file called ``re.py`` or
``pandas.py`` cannot shadow an installed package, and they are removed from ``sys.modules`` after
loading so Dask ships their functions by value to workers that never saw the folder.
"""

from __future__ import annotations

import hashlib
import sys
import traceback
import types
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from weak_supervision.errors import LFDefinitionError
from weak_supervision.lf import BoundLF, LabelingFunction


@dataclass(frozen=True)
class LoadError:
    """One problem found while loading: the file, the line (when known) and what went wrong."""

    file: str
    line: int | None
    message: str
    lf: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


@dataclass
class LoadResult:
    """The LFs that loaded, bound to the labels, and the errors of those that did not."""

    lfs: list[BoundLF] = field(default_factory=list)
    errors: list[LoadError] = field(default_factory=list)
    #: LF name -> file name it came from, for display next to votes and faults.
    files: dict[str, str] = field(default_factory=dict)


def load_lf_dir(folder: Path | str, labels: Sequence[str]) -> LoadResult:
    """Load every ``*.py`` in ``folder`` (files starting with ``_`` are skipped, sorted by name).

    A missing folder is no LFs, not an error: a new workspace has none yet. A symbolic link to
    a file outside the folder is an error and is not loaded (a link between files of the
    folder is followed; the folder itself may be a link).
    """
    folder = Path(folder)
    result = LoadResult()
    if not folder.is_dir():
        return result
    home = folder.resolve()
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        target = path.resolve()
        if target.parent != home:
            # LF code runs with the user's rights: it is loaded only from this folder, so
            # whoever may write here decides what runs, and a link cannot bring in code kept
            # (and changed) elsewhere.
            result.errors.append(
                LoadError(
                    file=path.name,
                    line=None,
                    message=f"a link to {target}, outside the LF folder; LF files are loaded "
                    "only from the folder itself: copy the file in instead",
                )
            )
            continue
        lfs, errors = load_lf_file(path, labels)
        result.errors.extend(errors)
        for lf in lfs:
            if lf.name in result.files:
                result.errors.append(
                    LoadError(
                        file=path.name,
                        line=lf.lf.source_line,
                        message=f"duplicate LF name {lf.name!r} (already defined in "
                        f"{result.files[lf.name]}); this one is skipped",
                        lf=lf.name,
                    )
                )
                continue
            result.lfs.append(lf)
            result.files[lf.name] = path.name
    return result


def load_lf_file(path: Path, labels: Sequence[str]) -> tuple[list[BoundLF], list[LoadError]]:
    """The LFs of one file, bound to ``labels``, and the errors met; never raises for the file."""
    try:
        source = path.read_text(encoding="utf-8")
        code = compile(source, str(path), "exec")
    except SyntaxError as exc:
        message = f"syntax error: {exc.msg}"
        return [], [LoadError(file=path.name, line=exc.lineno, message=message)]
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return [], [LoadError(file=path.name, line=None, message=f"cannot read: {exc}")]
    module = _run_module(path, code)
    if isinstance(module, LoadError):
        return [], [module]
    return _collect(module, path, source, labels)


def _module_name(path: Path) -> str:
    digest = hashlib.sha256(str(path.resolve().parent).encode()).hexdigest()[:10]
    stem = "".join(c if c.isalnum() else "_" for c in path.stem)
    return f"_labelloop_lfs_{digest}_{stem}"


def _run_module(path: Path, code: types.CodeType) -> types.ModuleType | LoadError:
    """Execute the file as a fresh module; an exception becomes a LoadError at its line."""
    name = _module_name(path)
    module = types.ModuleType(name)
    module.__file__ = str(path)
    # Present while the file runs (dataclasses, pickle and typing look modules up by name),
    # gone afterwards (see the module docstring).
    sys.modules[name] = module
    try:
        exec(code, module.__dict__)
    except Exception as exc:  # an LF file may raise anything at import; report, do not crash
        return LoadError(
            file=path.name,
            line=_line_in_file(exc, path),
            message=f"{type(exc).__name__}: {exc}",
        )
    finally:
        sys.modules.pop(name, None)
    return module


def _line_in_file(exc: BaseException, path: Path) -> int | None:
    """The deepest traceback line that lies in ``path``: where the user's file went wrong."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename) == path:
            line = frame.lineno
    return line


def _collect(
    module: types.ModuleType, path: Path, source: str, labels: Sequence[str]
) -> tuple[list[BoundLF], list[LoadError]]:
    lfs: list[BoundLF] = []
    errors: list[LoadError] = []
    seen: set[int] = set()
    for value in vars(module).values():
        if not isinstance(value, LabelingFunction) or id(value) in seen:
            continue
        seen.add(id(value))
        # The whole file counts towards the version: helpers and constants beside the LF.
        lf = LabelingFunction(
            name=value.name,
            func=value.func,
            label=value.label,
            resources=value.resources,
            pre=value.pre,
            module_source=source,
        )
        try:
            lfs.append(lf.bind(labels))
        except LFDefinitionError as exc:
            errors.append(LoadError(path.name, lf.source_line, str(exc), lf=lf.name))
    return lfs, errors
