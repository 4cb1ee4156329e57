"""One annotator as a process, labelling through the service layer the Label page calls.

Used by the stress and crash tests: ``python -m tests.labeller --workspace DIR --token T
--labels N --log FILE``. It signs in with the token, then claims, labels, now and then skips
or goes back (undo) and answers again, until it holds ``N`` current labels. Every answer is
appended to the log only after the call that recorded it returned (the acknowledgement), one
line each and flushed at once, so a process killed with SIGKILL leaves a log of exactly the
answers it was told were saved, and perhaps one more saved answer it never heard about:

    label ITEM LABEL      an answer (a re-answer after undo replaces the earlier one)
    skip ITEM             a skip
    undo ITEM             undo brought this earlier item back (not an answer)
    empty REASON          the queue had nothing for this annotator
    error TEXT            an exception reached the annotator; the process exits 1
    done                  reached N labels and signed out (released its held item)

With ``--start-file`` it writes ``ready`` once signed in and waits for that file to exist before
the first claim, so that many processes start labelling at the same moment.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import traceback
from pathlib import Path
from typing import TextIO


def _run(args: argparse.Namespace, log: TextIO) -> int:
    from labeling.annotation.session import UserSession
    from labeling.workspace import Workspace

    def write(line: str) -> None:
        log.write(line + "\n")
        log.flush()

    rng = random.Random(args.seed)
    ws = Workspace.open(args.workspace, db_url=args.db)
    try:
        me = UserSession.sign_in(ws, args.token)
        labels = list(me.labels)
        if args.start_file:
            write("ready")
            while not Path(args.start_file).exists():
                time.sleep(0.01)
        current: dict[int, str | None] = {}  # item -> my current answer (None: a skip)
        labelled = 0
        item = me.current_item()
        while labelled < args.labels:
            if item is None:
                write(f"empty {me.why_empty().reason}")
                return 0
            draw = rng.random()
            if current and not item.is_undo and draw < args.undo_rate:
                item = me.undo()  # the previous item comes back; the held one is released
                write(f"undo {item.item_id}")
                continue
            if not item.is_undo and draw < args.undo_rate + args.skip_rate:
                following = me.skip(item.item_id)
                write(f"skip {item.item_id}")
                labelled -= current.get(item.item_id) is not None
                current[item.item_id] = None
            else:
                label = rng.choice(labels)
                following = me.answer(item.item_id, label)
                write(f"label {item.item_id} {label}")
                labelled += current.get(item.item_id) is None
                current[item.item_id] = label
            item = following
        me.sign_out()
        write("done")
        return 0
    finally:
        ws.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.labeller", description=__doc__)
    parser.add_argument("--workspace", "-w", type=Path, required=True)
    parser.add_argument("--db", default=None)
    parser.add_argument("--token", required=True)
    parser.add_argument("--labels", type=int, required=True, help="stop at this many labels")
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-rate", type=float, default=0.02)
    parser.add_argument("--undo-rate", type=float, default=0.01)
    parser.add_argument("--start-file", default=None)
    args = parser.parse_args(argv)
    with args.log.open("a", encoding="utf-8") as log:
        try:
            return _run(args, log)
        except Exception as exc:  # reported to the test through the log, then re-raised
            log.write(f"error {type(exc).__name__}: {exc}".replace("\n", " ") + "\n")
            log.flush()
            traceback.print_exc(file=sys.stderr)
            return 1


if __name__ == "__main__":
    raise SystemExit(main())
