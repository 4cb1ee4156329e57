"""``labelloop guidelines ...``: show, edit, pin examples, history (labeling.annotation.guidelines),
and hints: the label pairs people confuse most (labeling.quality.confusion_pairs).

``show --toml`` prints the guidelines as a TOML file that ``edit --file`` takes back: the way to
keep them in version control beside ``labelloop.toml``.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer

from labeling.annotation.guidelines import TEXT_FIELDS, Guidelines
from labeling.cli.common import (
    DbOpt,
    JsonOpt,
    WorkspaceOpt,
    handle_errors,
    open_workspace,
    print_json,
)
from labeling.errors import BadInput, UnknownAnnotator
from labeling.quality.confusion_pairs import ConfusedPair

guidelines_app = typer.Typer(
    help="The guidelines annotators read with ? on the Label page: a definition, include and "
    "exclude notes and pinned examples per label; every edit is a new version.",
    no_args_is_help=True,
)

AsOpt = Annotated[str, typer.Option("--as", help="Who makes the change (engineer or above).")]
LabelOpt = Annotated[str | None, typer.Option("--label", help="The label the fields are for.")]


def _text_block(title: str, text: str) -> list[str]:
    return [f"  {title}: " + text.replace("\n", "\n    ")] if text else []


def render(found: Guidelines, only: str | None = None) -> str:
    """The guidelines as people read them on a terminal."""
    if found.version == 0:
        return "No guidelines yet: labelloop guidelines edit --as NAME --label L --definition TEXT"
    when = found.created_at.strftime("%Y-%m-%d %H:%M UTC") if found.created_at else ""
    lines = [f"Guidelines version {found.version} by {found.author}, {when}"]
    if found.overview and only is None:
        lines += ["", found.overview]
    for name, guide in found.labels.items():
        if only is not None and name != only:
            continue
        lines += ["", name]
        lines += _text_block("definition", guide.definition)
        lines += _text_block("include", guide.include)
        lines += _text_block("exclude", guide.exclude)
        if guide.examples:
            lines.append("  examples: " + ", ".join(guide.examples))
        if not (guide.definition or guide.include or guide.exclude or guide.examples):
            lines.append("  (nothing written yet)")
    return "\n".join(lines)


def as_toml(found: Guidelines) -> str:
    """A TOML file of the guidelines' content (``edit --file`` reads it back)."""
    lines = [
        f"# labelloop guidelines, version {found.version}; edit and load with",
        "# labelloop guidelines edit --file THIS_FILE --as NAME",
        f"overview = {json.dumps(found.overview, ensure_ascii=False)}",
    ]
    for name, guide in found.labels.items():
        lines += ["", f"[labels.{_toml_key(name)}]"]
        for key in TEXT_FIELDS:
            lines.append(f"{key} = {json.dumps(getattr(guide, key), ensure_ascii=False)}")
        lines.append(f"examples = {json.dumps(list(guide.examples), ensure_ascii=False)}")
    return "\n".join(lines) + "\n"


def _toml_key(name: str) -> str:
    bare = name.isascii() and all(c.isalnum() or c in "_-" for c in name)
    return name if bare else json.dumps(name, ensure_ascii=False)


def read_file(path: Path) -> dict[str, Any]:
    """Changes from a ``.toml`` or ``.json`` file shaped as ``show --toml`` prints them."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"{path.name}: cannot read it ({exc.strerror})") from None
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(raw.decode("utf-8"))
        else:
            data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadInput(f"{path.name}: not UTF-8 text") from None
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BadInput(
            f"{path.name}: not valid {path.suffix.lstrip('.') or 'TOML'}: {exc}"
        ) from None
    if not isinstance(data, dict):
        raise BadInput(f"{path.name}: expected a table with 'overview' and 'labels'")
    return data


@guidelines_app.command("show", short_help="Print the guidelines (any version).")
@handle_errors
def guidelines_show(
    version: Annotated[int | None, typer.Option("--version", help="A version number.")] = None,
    label: LabelOpt = None,
    toml: Annotated[bool, typer.Option("--toml", help="Print a file for `edit --file`.")] = False,
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the newest guidelines, or version N."""
    with open_workspace(workspace, db) as ws:
        if label is not None and label not in ws.labels:
            raise BadInput(
                f"option '--label': expected one of {', '.join(ws.labels)}, found {label!r}"
            )
        found = ws.guidelines(version)
    if as_json:
        print_json(found.as_dict())
    elif toml:
        typer.echo(as_toml(found), nl=False)
    else:
        typer.echo(render(found, label))


@guidelines_app.command("edit", short_help="Change the guidelines: a new version.")
@handle_errors
def guidelines_edit(
    by: AsOpt,
    file: Annotated[
        Path | None, typer.Option("--file", help="A .toml or .json file as `show --toml` prints.")
    ] = None,
    label: LabelOpt = None,
    definition: Annotated[str | None, typer.Option("--definition")] = None,
    include: Annotated[str | None, typer.Option("--include")] = None,
    exclude: Annotated[str | None, typer.Option("--exclude")] = None,
    overview: Annotated[str | None, typer.Option("--overview")] = None,
    note: Annotated[str, typer.Option("--note", help="What changed and why.")] = "",
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a new version: from a file, or the fields given for one label (and the
    overview); fields not given stay as they are."""
    changes: dict[str, Any] = read_file(file) if file is not None else {}
    fields = {
        key: value
        for key, value in (("definition", definition), ("include", include), ("exclude", exclude))
        if value is not None
    }
    if fields and label is None:
        raise BadInput("options '--definition', '--include', '--exclude' need '--label'")
    if label is not None and not fields:
        raise BadInput("option '--label' needs one of '--definition', '--include', '--exclude'")
    if fields:
        assert label is not None
        labels = dict(changes.get("labels") or {})
        labels[label] = {**dict(labels.get(label) or {}), **fields}
        changes["labels"] = labels
    if overview is not None:
        changes["overview"] = overview
    if not changes:
        raise BadInput("nothing to change: give --file, or --label with a field, or --overview")
    with open_workspace(workspace, db) as ws:
        before = ws.guidelines().version
        try:
            found = ws.edit_guidelines(changes, by=by, note=note)
        except UnknownAnnotator as exc:
            raise UnknownAnnotator(f"option '--as': {exc}") from None
    if as_json:
        print_json(found.as_dict())
    elif found.version == before:
        typer.echo(f"No change: the guidelines stay at version {found.version}.")
    else:
        typer.echo(f"Saved guidelines version {found.version}.")


@guidelines_app.command("pin", short_help="Pin an item as an example of a label.")
@handle_errors
def guidelines_pin(
    label: Annotated[str, typer.Argument(help="The label.")],
    item: Annotated[str, typer.Argument(help="The item's id.")],
    by: AsOpt,
    remove: Annotated[bool, typer.Option("--remove", help="Unpin it instead.")] = False,
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
) -> None:
    """Pin item ITEM as an example of LABEL (``--remove``: unpin it); a new version."""
    with open_workspace(workspace, db) as ws:
        try:
            if remove:
                found = ws.unpin_example(label, item, by=by)
            else:
                found = ws.pin_example(label, item, by=by)
        except UnknownAnnotator as exc:
            raise UnknownAnnotator(f"option '--as': {exc}") from None
    done = "Unpinned" if remove else "Pinned"
    typer.echo(f"{done} {item!r} for {label!r}: guidelines version {found.version}.")


@guidelines_app.command("history", short_help="Every version: who, when, what changed.")
@handle_errors
def guidelines_history(
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every version of the guidelines, newest first."""
    with open_workspace(workspace, db) as ws:
        found = ws.guidelines_history()
    if as_json:
        print_json(found)
        return
    if not found:
        typer.echo("No guidelines yet.")
    for entry in found:
        note = f" - {entry['note']}" if entry["note"] else ""
        changed = ", ".join(entry["changed"])
        typer.echo(f"v{entry['version']}  {entry['created_at'][:16]}  {entry['author']}{note}")
        typer.echo(f"     changed: {changed}")


def render_hints(pairs: list[ConfusedPair], version: int) -> str:
    """The confused pairs as people read them on a terminal."""
    if not pairs:
        return (
            "No confused label pairs yet: they come from answers on gold items, items two "
            "people answered, and a round's likely label errors."
        )
    lines = [f"Label pairs people confuse most (guidelines version {version}):"]
    for pair in pairs:
        a, b = pair.labels
        counts = f"gold {pair.gold}, people {pair.people}, model {pair.model}"
        if pair.noted:
            said = "noted in the exclude of " + " and ".join(pair.noted_in)
        else:
            said = f"no exclude note names the other: write one on {pair.note_on}"
        lines.append(f"  {a} / {b}: {pair.total} ({counts}); {said}")
    return "\n".join(lines)


@guidelines_app.command("hints", short_help="The label pairs people confuse most.")
@handle_errors
def guidelines_hints(
    limit: Annotated[
        int, typer.Option("--limit", min=0, help="How many pairs, most confused first (0: all).")
    ] = 10,
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The label pairs people confuse most (answers on gold items, disagreements on items two
    people answered, likely label errors of the latest round), each with whether an exclude
    note already names the other label: where to write one."""
    with open_workspace(workspace, db) as ws:
        version = ws.guidelines().version
        pairs = ws.confused_pairs(limit=limit or None)
    if as_json:
        print_json({"guidelines_version": version, "confused_pairs": [p.as_dict() for p in pairs]})
    else:
        typer.echo(render_hints(pairs, version))
