"""Command-line entry point of every pipeline stage: `python -m mudiff STAGE --job JSON`.

Stages are imported lazily, so a job loads (and depends on) its own stage's code only.
"""

from __future__ import annotations

import argparse
import importlib
import json

STAGES = {
    "init": "mudiff.tracking",
    "prepare": "mudiff.stages.prepare",
    "track": "mudiff.stages.track",
    "train": "mudiff.stages.train",
    "bank": "mudiff.stages.bank",
    "scores_target": "mudiff.stages.scores_target",
    "scores_bank": "mudiff.stages.scores_bank",
    "scores": "mudiff.stages.scores",
    "proxies": "mudiff.stages.proxies",
    "forget_set": "mudiff.stages.forget_set",
    "unlearn": "mudiff.stages.unlearn",
    "evaluate": "mudiff.stages.evaluate",
    "analysis": "mudiff.stages.analysis",
    "report": "mudiff.stages.report",
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mudiff", description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=sorted(STAGES))
    parser.add_argument("--job", required=True, help="JSON: rule, study, wildcards, params")
    parser.add_argument("--io", default="{}", help="JSON: input and output paths by name")
    args = parser.parse_args(argv)
    module = importlib.import_module(STAGES[args.stage])
    module.run({"input": {}, "output": {}, **json.loads(args.job), **json.loads(args.io)})


if __name__ == "__main__":
    main()
