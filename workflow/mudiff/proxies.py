"""Moved to `mudiff.analysis.proxies` (the proxies study is an analysis). This name is kept only until
the modules that still import it from here (stages/report.py, stages/analysis.py, report/markdown.py,
analysis/findings.py) import it from its new place; then delete this file."""

from mudiff.analysis.proxies import (  # noqa: F401
    METRICS, MIN_MEASURABLE_SECONDS, NO_EXTRA_TRAINING, cost_note, cost_phrase, proxies_figure, proxy_table,
    score_cost, time_ratio,
)
