"""Stage `scores_target`: every score that needs only the target model (its training dynamics,
its checkpoints, the held-out test set), so none of them waits for the bank. Also writes the
target's train embeddings (centroid_distance, knn_disagreement, entanglement scores of sets).

Each score runs through the registry (`mudiff.scores`), in the config's order. The target model,
the normalised train inputs, the embedding pass and the dynamics table are loaded before any
score's clock starts; each embedding score's time includes the embedding pass (`embed_seconds`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from mudiff.device import full_fp32
from mudiff.io import write_arrays, write_json, write_table
from mudiff.options import build
from mudiff.scores import FROM_BANK, REGISTRY
from mudiff.scores.inputs import Inputs, compute_scores
from mudiff.stages import device_of, device_tags
from mudiff.tracking import job_run


@dataclass
class Params:
    """The job's params: the target's model name, the device, and the scores section (`names`, and
    each score's hyperparameters as its block `<name>`, built by the score's own Params)."""

    model: str
    scores: dict
    device: str = "auto"


def run(job: dict) -> None:
    p, inp, out = build(Params, job["params"]), job["input"], job["output"]
    names = [n for n in p.scores["names"] if n not in FROM_BANK]
    with job_run(job) as mlrun:  # a device refusal is then the run's recorded error
        device = device_of(p.device)
        mlrun.set_tags(device_tags(device))
        inputs = Inputs(inp, p.model, device, seed=job["seed"], log_metrics=mlrun.log_metrics)
        inputs.load("data", "target", "x_train", "embeddings")
        if any("dynamics" in REGISTRY[n].needs for n in names):
            inputs.load("dynamics")
        table = pd.DataFrame({"id": inputs.ids, "label": inputs.labels})
        with full_fp32():  # the scores' own arithmetic in fp32 on a GPU too (no TF32)
            values, seconds = compute_scores(names, inputs, p.scores)
        for name in names:
            table[name] = values[name]
        write_table(table, out["scores"])
        write_arrays(out["embeddings"], id_train=inputs.ids, train=inputs.embeddings)
        write_json({"seconds": seconds, "embed_seconds": inputs.paid["embeddings"]}, out["timings"])
        mlrun.log_metrics({f"seconds.{k}": v for k, v in seconds.items()})
        mlrun.log_metrics({f"nan.{k}": int(table[k].isna().sum()) for k in seconds})
        print(table.describe().T.to_string())
