"""Evaluation: score a labelled test set, compute the paper's metrics and write the report.

:mod:`~piade.evaluation.evaluate` (:func:`evaluate`, ``piade evaluate``) and
:mod:`~piade.evaluation.report` (figures and the HTML page).
"""

from piade.evaluation.evaluate import evaluate

__all__ = ["evaluate"]
