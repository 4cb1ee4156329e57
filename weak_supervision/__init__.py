"""Weak supervision: labelling functions, appliers, label models and LF analysis.

This package knows nothing of the database; ``labeling`` stores and serves what it computes.
LF files import ``ABSTAIN`` and ``labeling_function`` from here.
"""

from weak_supervision.analysis import analyze_lfs, coverage_totals, lf_summary, wilson_interval
from weak_supervision.apply import ENGINES, ApplyResult, apply_lfs
from weak_supervision.errors import (
    ApplyError,
    LabelModelError,
    LFDefinitionError,
    LFProcessDied,
    LFTimeoutError,
    RuleError,
    UnknownLabelError,
    WeakSupervisionError,
)
from weak_supervision.label_model import (
    FittedLabelModel,
    WeakLabels,
    estimate_class_balance,
    fit_label_model,
    gold_accuracy,
)
from weak_supervision.lf import (
    ABSTAIN,
    BoundLF,
    LabelingFunction,
    Row,
    absent,
    labeling_function,
)
from weak_supervision.loader import LoadError, LoadResult, load_lf_dir, load_lf_file
from weak_supervision.rules import BoundRule, KeywordRule, RegexRule, rule_from_spec

__all__ = [
    "ABSTAIN",
    "ENGINES",
    "ApplyError",
    "ApplyResult",
    "BoundLF",
    "BoundRule",
    "FittedLabelModel",
    "KeywordRule",
    "LFDefinitionError",
    "LFProcessDied",
    "LFTimeoutError",
    "LabelModelError",
    "LabelingFunction",
    "LoadError",
    "LoadResult",
    "RegexRule",
    "Row",
    "RuleError",
    "UnknownLabelError",
    "WeakLabels",
    "WeakSupervisionError",
    "absent",
    "analyze_lfs",
    "apply_lfs",
    "coverage_totals",
    "estimate_class_balance",
    "fit_label_model",
    "gold_accuracy",
    "labeling_function",
    "lf_summary",
    "load_lf_dir",
    "load_lf_file",
    "rule_from_spec",
    "wilson_interval",
]
