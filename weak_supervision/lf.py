"""What a labelling function (LF) is: a thin object around a function of one row.

An LF returns a label *name* or ``ABSTAIN`` (or, for multi-label data, ``absent(name)``);
binding it to a workspace's ordered labels turns the names into Snorkel's integers and catches
unknown names before anything runs.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import inspect
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, NamedTuple, overload

from weak_supervision.errors import LFDefinitionError, UnknownLabelError

#: What an LF returns to say "no opinion". Snorkel's value, so ``L`` matrices read the same.
ABSTAIN = -1

#: Internal vote meaning "the LF raised on this row": appliers count these, then store ABSTAIN.
FAULT = -2


class Absent(NamedTuple):
    """A multi-label vote: the item does NOT have ``label`` (see :func:`absent`)."""

    label: str


def absent(label: str) -> Absent:
    """What an LF returns to vote that an item does not have ``label`` (multi-label data).

    In ``L`` such a vote is the integer ``n_labels + index`` (:func:`absent_code`), so votes
    stay non-negative and every engine, Snorkel's included, keeps them.
    """
    if not isinstance(label, str):
        raise LFDefinitionError(f"absent() takes a label name, found {type(label).__name__}")
    return Absent(label)


def absent_code(index: int, n_labels: int) -> int:
    """The ``L`` value of an absent vote on the label at ``index``."""
    return n_labels + index


def split_vote(code: int, n_labels: int) -> tuple[int, bool]:
    """``(label index, present)`` of a non-abstain ``L`` value."""
    return (code, True) if code < n_labels else (code - n_labels, False)


class Row(SimpleNamespace):
    """One item as an LF sees it: ``row.text`` and ``row["FIELD"]`` both work.

    A ``SimpleNamespace`` because Snorkel's preprocessors know how to copy, set fields on and
    memoize it, and it is far cheaper to build per row than a ``pandas.Series``.
    """

    def __getitem__(self, key: str) -> Any:
        try:
            return self.__dict__[key]
        except KeyError:
            raise KeyError(f"row has no field {key!r}; fields: {sorted(self.__dict__)}") from None

    def __contains__(self, key: object) -> bool:
        return key in self.__dict__

    def get(self, key: str, default: Any = None) -> Any:
        """The field's value, or ``default`` when the row has no such field."""
        return self.__dict__.get(key, default)

    def keys(self) -> list[str]:
        """The field names, as on a ``dict`` or ``pandas.Series``."""
        return list(self.__dict__)


Preprocessor = Callable[[Any], Any]


@dataclass(frozen=True, eq=False)
class LabelingFunction:
    """A user's function of one row with its declared label, resources and preprocessors.

    ``label`` is optional: with it, the function may also return ``True``/``False`` (vote the
    label or abstain); without it, the label names the function can return are read from its
    ``return "name"`` statements so typos are caught at load time.
    """

    name: str
    func: Callable[..., Any]
    label: str | None = None
    resources: Mapping[str, Any] = field(default_factory=dict)
    pre: Sequence[Preprocessor] = ()
    #: The source of the whole file the LF came from, when loaded from one: helpers and
    #: constants next to the function then count towards its version.
    module_source: str | None = None

    def __call__(self, row: Any) -> Any:
        """Run preprocessors then the function, returning what the user's code returns."""
        if self.pre:
            # A plain preprocessor may set fields in place; the next LF must not see them.
            row = copy.copy(row)
        for preprocess in self.pre:
            row = preprocess(row)
            if row is None:
                raise ValueError(f"preprocessor {_callable_name(preprocess)} returned None")
        return self.func(row, **self.resources)

    @property
    def kind(self) -> str:
        return "code"

    @property
    def source_line(self) -> int | None:
        """First line of the function in its file, for error messages."""
        code = getattr(self.func, "__code__", None)
        return code.co_firstlineno if code is not None else None

    @property
    def source_file(self) -> str | None:
        code = getattr(self.func, "__code__", None)
        return code.co_filename if code is not None else None

    def declared_labels(self) -> set[str]:
        """Label names this LF can vote: its ``label=`` or the strings its function returns."""
        if self.label is not None:
            return {self.label}
        return _returned_strings(self.func)

    def spec_text(self) -> str:
        """Everything the votes depend on, as text: the basis of ``version``."""
        parts = [
            "code",
            self.name,
            repr(self.label),
            self.module_source if self.module_source is not None else _source(self.func),
            _canonical(dict(self.resources)),
            *(_source(p) for p in self.pre),
        ]
        return "\n\x00".join(parts)

    def bind(self, labels: Sequence[str]) -> BoundLF:
        """Tie the LF to a workspace's ordered labels; unknown label names raise here."""
        label_index = _label_index(labels)
        unknown = sorted(self.declared_labels() - set(label_index))
        if unknown:
            where = ""
            if self.source_file and self.source_line:
                where = f" ({Path(self.source_file).name}:{self.source_line})"
            raise UnknownLabelError(
                f"LF {self.name!r}{where} uses label {', '.join(map(repr, unknown))}, "
                f"expected one of {list(labels)}"
            )
        return BoundLF(lf=self, labels=tuple(labels), label_index=label_index)


@dataclass(frozen=True, eq=False)
class BoundLF:
    """A code LF tied to an ordered label list: votes are integers in that order."""

    lf: LabelingFunction
    labels: tuple[str, ...]
    label_index: Mapping[str, int]

    @property
    def name(self) -> str:
        return self.lf.name

    @property
    def kind(self) -> str:
        return "code"

    @property
    def label(self) -> str | None:
        return self.lf.label

    @property
    def version(self) -> str:
        """Stable hash of the LF's code, spec and the label order its integers refer to."""
        return version_hash(self.lf.spec_text(), self.labels)

    def vote(self, row: Any) -> int:
        """The integer vote for one row; raises if the LF fails or returns something invalid."""
        value = self.lf(row)
        if isinstance(value, Absent):
            if self.lf.label is not None and value.label != self.lf.label:
                raise ValueError(
                    f"returned absent({value.label!r}) but is declared label={self.lf.label!r}"
                )
            if value.label not in self.label_index:
                raise ValueError(
                    f"returned absent({value.label!r}), expected a name from {list(self.labels)}"
                )
            return absent_code(self.label_index[value.label], len(self.labels))
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            if value is None or value == ABSTAIN:
                return ABSTAIN
            raise ValueError(
                f"returned the integer {value}; return a label name from "
                f"{list(self.labels)} or ABSTAIN"
            )
        if isinstance(value, bool):
            if self.lf.label is None:
                raise ValueError("returned a bool; give the LF a label= to vote with True")
            return self.label_index[self.lf.label] if value else ABSTAIN
        if isinstance(value, str):
            if self.lf.label is not None and value != self.lf.label:
                raise ValueError(f"returned {value!r} but is declared label={self.lf.label!r}")
            try:
                return self.label_index[value]
            except KeyError:
                shown = repr(value) if len(value) <= 80 else repr(value[:77]) + "..."
                raise ValueError(
                    f"returned {shown}, expected one of {list(self.labels)} or ABSTAIN"
                ) from None
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        raise ValueError(
            f"returned {type(value).__name__} {shown}; expected a label name from "
            f"{list(self.labels)}, ABSTAIN or None"
        )


@overload
def labeling_function(
    label: Callable[..., Any],
) -> LabelingFunction: ...


@overload
def labeling_function(
    label: str | None = None,
    *,
    name: str | None = None,
    resources: Mapping[str, Any] | None = None,
    pre: Iterable[Preprocessor] | None = None,
) -> Callable[[Callable[..., Any]], LabelingFunction]: ...


def labeling_function(
    label: str | Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    resources: Mapping[str, Any] | None = None,
    pre: Iterable[Preprocessor] | None = None,
) -> LabelingFunction | Callable[[Callable[..., Any]], LabelingFunction]:
    """Decorate ``f(row, **resources)`` into an LF, as Snorkel's decorator of the same name.

    Parameters
    ----------
    label
        The one label this LF votes (optional). Without it the function returns label names.
    name
        The LF's name; defaults to the function's name. Names identify stored votes.
    resources
        Keyword arguments passed to every call (word lists, models): not globals, so they
        count towards the LF's version.
    pre
        Preprocessors (Snorkel ``@preprocessor`` objects or any ``row -> row`` callables) run
        in order before the function.
    """
    if callable(label):  # used bare: @labeling_function
        return _make_lf(label, None, name, resources, pre)

    def decorate(func: Callable[..., Any]) -> LabelingFunction:
        return _make_lf(func, label, name, resources, pre)

    return decorate


def _make_lf(
    func: Callable[..., Any],
    label: str | None,
    name: str | None,
    resources: Mapping[str, Any] | None,
    pre: Iterable[Preprocessor] | None,
) -> LabelingFunction:
    if label is not None and not isinstance(label, str):
        raise LFDefinitionError(
            f"LF {name or func.__name__!r}: label must be a label name (str), "
            f"found {type(label).__name__} {label!r}"
        )
    return LabelingFunction(
        name=name or func.__name__,
        func=func,
        label=label,
        resources=dict(resources or {}),
        pre=tuple(pre or ()),
    )


def version_hash(spec_text: str, labels: Sequence[str]) -> str:
    """A short, stable hash of an LF's spec and the label order (votes are label indices)."""
    digest = hashlib.sha256()
    digest.update(spec_text.encode("utf-8", "surrogatepass"))
    digest.update(b"\x00labels\x00")
    digest.update("\x1f".join(labels).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:16]


def _label_index(labels: Sequence[str]) -> dict[str, int]:
    if isinstance(labels, str) or not labels:
        raise LFDefinitionError(f"expected a non-empty list of label names, found {labels!r}")
    index = {str(label): k for k, label in enumerate(labels)}
    if len(index) != len(labels):
        raise LFDefinitionError(f"label names must be unique, found {list(labels)}")
    return index


def _source(obj: Any) -> str:
    """The source code of a function or preprocessor, or its repr when there is none."""
    target = getattr(obj, "_f", None) or getattr(obj, "func", None) or obj
    try:
        return textwrap.dedent(inspect.getsource(target))
    except (OSError, TypeError):
        code = getattr(target, "__code__", None)
        return repr(code.co_code) if code is not None else repr(target)


def _callable_name(obj: Any) -> str:
    return str(getattr(obj, "name", None) or getattr(obj, "__name__", None) or repr(obj))


def _canonical(value: Any) -> str:
    """A repr that does not depend on set order or hash seeds, for version hashes."""
    if isinstance(value, Mapping):
        items = sorted((_canonical(k), _canonical(v)) for k, v in value.items())
        return "{" + ",".join(f"{k}:{v}" for k, v in items) + "}"
    if isinstance(value, set | frozenset):
        return "set(" + ",".join(sorted(_canonical(v) for v in value)) + ")"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_canonical(v) for v in value) + "]"
    pattern = getattr(value, "pattern", None)  # compiled regexes: their pattern and flags
    if isinstance(pattern, str | bytes):
        return f"re({pattern!r},{getattr(value, 'flags', '')})"
    return repr(value)


def _returned_strings(func: Callable[..., Any]) -> set[str]:
    """String constants a function can return, read from its AST (``return "spam"``, ternaries).

    Only literal returns are found; a name computed at run time is checked when it is returned.
    """
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    except (OSError, TypeError, SyntaxError):
        return set()
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Return) and node.value is not None:
            found |= _string_leaves(node.value)
    return found


def _string_leaves(node: ast.expr) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        return _string_leaves(node.body) | _string_leaves(node.orelse)
    if isinstance(node, ast.BoolOp):
        return set().union(*(_string_leaves(v) for v in node.values))
    if isinstance(node, ast.Call) and len(node.args) == 1 and _called_name(node) == "absent":
        return _string_leaves(node.args[0])
    return set()


def _called_name(node: ast.Call) -> str | None:
    """``absent`` for ``absent(...)`` and ``weak_supervision.absent(...)``."""
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else None
