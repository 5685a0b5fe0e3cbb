"""Instance-level analysis (SPEC "Stage: analysis and figures", item 4): per-sample unlearning
difficulty, agreement between methods, factors of difficulty, a predictor of hard samples, and
the verdict on every SPEC finding.

Pure functions on numpy arrays and pandas tables: no torch, no pipeline, so each is callable
(and tested) on its own. `mudiff.stages.analysis` is the pipeline stage that wires them.

The layer computes tables and verdicts and never imports the report package, which renders them
(markdown, figures) and reads this package.
"""
