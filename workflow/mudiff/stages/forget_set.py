"""Stage `forget_set`: the ids of one forget set and the manifest of how it was built."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd

from mudiff import forget_sets
from mudiff.io import check_ids, read_arrays, read_table, write_json, write_table
from mudiff.options import build
from mudiff.tracking import job_run


@dataclass
class Params:
    """What one forget set depends on (`forget_sets.params_of`: the rest of its section is not passed,
    so changing it reruns nothing here); None: not a parameter of this set."""

    size: float | None = None
    seed: int | None = None
    mid_rule: str | None = None
    class_id: int | None = None


def run(job: dict) -> None:
    inp, out = job["input"], job["output"]
    p = build(Params, job["params"])
    name = job["wildcards"]["forget_set"]
    with job_run(job) as mlrun:
        scores = read_table(inp["scores"])
        check_ids(
            scores["id"], inp["scores"], "id"
        )  # a null or non-integer id is refused naming the file and rows
        if p.seed is not None:  # each replicate draws its own random sets and tie orders
            p = replace(p, seed=forget_sets.replicate_seed(p.seed, job["seed"]))
        ids, manifest = forget_sets.build(
            name, scores, **{k: v for k, v in asdict(p).items() if v is not None}
        )
        forget_sets.validate_ids(ids, scores["id"].to_numpy(), name)
        emb = read_arrays(inp["embeddings"])
        forget = np.isin(emb["id_train"], ids)
        manifest["entanglement_score"] = forget_sets.entanglement_score(emb["train"], forget)
        table = pd.DataFrame({"id": ids}).merge(scores, on="id", how="left")
        if manifest["ordered_by"]:
            table.insert(1, "rank", np.arange(1, len(ids) + 1))
        write_table(table, out["ids"])
        write_json(manifest, out["manifest"])
        mlrun.log_metrics({"size": manifest["size"], "entanglement_score": manifest["entanglement_score"]})
        mlrun.log_params({f"manifest.{k}": v for k, v in manifest.items() if v is not None})
        print(manifest)
