"""Stage `prepare_data`: load a dataset from its source, verify checksums, cut the train set to its
`data.train_size` subset (if any), write arrays and a manifest."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mudiff.data import load_source, save_prepared
from mudiff.data.checksums import digest
from mudiff.data.facts import facts
from mudiff.io import write_json
from mudiff.options import build
from mudiff.sections import DataConfig
from mudiff.tracking import job_run


@dataclass
class Params:
    data: DataConfig


def run(job: dict) -> None:
    cfg = build(Params, job["params"]).data
    out = job["output"]
    with job_run(job) as mlrun:
        ds = load_source(
            cfg.dataset,
            cfg.source,
            cfg.download_dir,
            test_fraction=cfg.test_fraction,
            split_seed=cfg.split_seed,
            train_size=cfg.train_size,
            subset_seed=cfg.subset_seed,
        )
        save_prepared(ds, out["arrays"])
        mean, std = ds.channel_stats()
        manifest = {
            "dataset": ds.name,
            "source": cfg.source,
            "n_train": len(ds.y_train),
            "n_test": len(ds.y_test),
            "shape": list(ds.shape),
            "num_classes": ds.num_classes,
            "source_files": ds.files,
            "arrays_md5": digest(out["arrays"]),
            "mean": mean.tolist(),
            "std": std.tolist(),
            "split": {"test_fraction": cfg.test_fraction, "seed": cfg.split_seed}
            if facts(ds.name).split
            else "official",
            # the class-stratified train subset (ids are the source indices); null = the whole train set
            "train_subset": {
                "train_size": cfg.train_size,
                "seed": cfg.subset_seed,
                "n": len(ds.y_train),
                "per_class": np.bincount(ds.y_train, minlength=ds.num_classes).tolist(),
            }
            if cfg.train_size
            else None,
        }
        write_json(
            manifest, out["manifest"], provenance=False
        )  # part of the DVC-tracked folder: content only
        mlrun.log_metrics({"n_train": manifest["n_train"], "n_test": manifest["n_test"]})
        print(f"prepared {ds.name}: {manifest['n_train']} train, {manifest['n_test']} test, shape {ds.shape}")
