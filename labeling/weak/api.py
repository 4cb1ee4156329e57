"""The Workspace calls for weak supervision: load, list, apply and analyse LFs, keyword and
regex rules, and the label model's weak labels. :class:`labeling.workspace.Workspace` inherits
them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from labeling.context import Context, ProgressCallback
from labeling.data import search_syntax
from labeling.store.models import LabelingFunction
from labeling.weak import apply, label_model, llm, loading, rules, votes
from labeling.weak.votes import LFRow


class WeakAPI(Context):
    """Labelling functions and weak labels."""

    def load_lfs(self) -> loading.LoadedLFs:
        """Load the LF files in ``lfs/`` and the stored rules (recording code LFs' versions)."""
        return loading.load(self)

    def list_lfs(self) -> list[LFRow]:
        """Every LF and rule with its votes and faults, as ``labelloop lf list`` shows them."""
        return votes.list_lfs(self)

    def apply_lfs(
        self,
        *,
        engine: str = "local",
        scheduler: str | None = None,
        progress: ProgressCallback | None = None,
        skip_broken: bool = False,
        everything: bool = False,
        wait: bool = True,
        on_wait: Callable[[], None] | None = None,
    ) -> apply.ApplyReport:
        """Apply the active LFs to the items they have not voted on (``everything``: all items
        again); one apply at a time per store (``wait``, or raise
        :class:`labeling.weak.lock.ApplyRunning`)."""
        return apply.apply(
            self,
            engine=engine,
            scheduler=scheduler,
            progress=progress,
            skip_broken=skip_broken,
            everything=everything,
            wait=wait,
            on_wait=on_wait,
        )

    def run_llm(self, *, sample: int | None = None) -> dict[str, Any]:
        """Label the items with the LLM labelling function (``[llm]`` in labelloop.toml;
        ``sample``: N gold items only, to see its accuracy and cost first)."""
        return llm.run_llm(self, sample=sample)

    def fit_weak_labels(self, *, model: str = "auto") -> dict[str, Any]:
        """Fit the label model on the stored votes and store a weak label per covered item
        (multi-label: a label model per label, and a weak set per covered item)."""
        return label_model.fit_weak_labels(self, model=model)

    def weak_labels_stale(self) -> bool:
        """Whether votes changed since the weak labels were fitted."""
        return votes.weak_labels_stale(self)

    def lf_analysis(self) -> dict[str, Any]:
        """Coverage, overlaps, conflicts and accuracy (on gold and on people's labels) per LF."""
        return label_model.analyze(self)

    def preview_rule(self, spec: dict[str, Any], *, samples: int = 5) -> dict[str, Any]:
        """What a keyword or regex rule would vote, without storing it."""
        return rules.preview_rule(self, spec, samples=samples)

    def add_rule(self, spec: dict[str, Any]) -> LabelingFunction:
        return rules.add_rule(self, spec)

    def rule_from_search(self, name: str, query: str, label: str) -> LabelingFunction:
        """Store a search (its words, ``a OR b``, phrases, prefixes) as a keyword or regex
        rule voting ``label`` (labeling.data.search_syntax.rule_spec), so the label model
        weighs it; a query a rule cannot express is refused with the reason."""
        return rules.add_rule(self, search_syntax.rule_spec(query, name=name, label=label))

    def rule_spec(self, name: str) -> dict[str, Any]:
        return rules.rule_spec(self, name)

    def edit_rule(self, name: str, spec: dict[str, Any]) -> LabelingFunction:
        return rules.edit_rule(self, name, spec)

    def set_rule_active(self, name: str, active: bool) -> None:
        rules.set_active(self, name, active)

    def delete_rule(self, name: str) -> int:
        """Delete a rule and its votes; returns how many votes went."""
        return rules.delete_rule(self, name)
