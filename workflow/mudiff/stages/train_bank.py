"""Stage `train_bank`: one shard of the bank (all K subset models when `bank.shards` is 1), trained many
at a time; its models' rows of the mask, phi and correctness saved, with what `merge_bank` checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mudiff.bank import train_bank
from mudiff.io import write_arrays, write_json
from mudiff.options import build
from mudiff.sections import BankConfig
from mudiff.stages import device_of, device_tags, load_data
from mudiff.tracking import job_run


@dataclass
class Params:
    """What the rule `train_bank` passes (rules/bank.smk): the device, the bank section with its
    architecture named (`bank.model`, which the rule resolves: `mudiff.config.bank_section`) and the
    shard this job trains (its `{shard}` wildcard)."""

    device: Literal["auto", "cpu", "cuda"]
    bank: BankConfig
    shard: int


def run(job: dict) -> None:
    p = build(Params, job["params"])
    cfg = p.bank
    with job_run(job) as mlrun:  # a device refusal is then the run's recorded error
        if cfg.model is None:
            raise ValueError("bank.model: no architecture named (the rule names the study's model for null)")
        models = cfg.shard_models(p.shard)
        device = device_of(p.device)
        mlrun.set_tags(device_tags(device))
        prepared, data = load_data(job["input"]["arrays"], device)
        bank = train_bank(data, cfg.model, cfg, seed=job["seed"], models=models)
        write_arrays(
            job["output"]["bank"],
            id_train=prepared.id_train,
            id_test=prepared.id_test,
            mask=bank.mask,
            phi_train=bank.phi_train,
            correct_train=bank.correct_train,
            phi_test=bank.phi_test,
            correct_test=bank.correct_test,
        )
        n_images = len(models) * int(round(cfg.fraction * len(prepared.y_train))) * cfg.epochs
        shard = {  # what merge_bank checks the shards against each other by, and what it sums
            "shard": p.shard,
            "shards": cfg.shards,
            "first": models.start,
            "stop": models.stop,
            "models": cfg.models,
            "model": cfg.model,
            "fraction": cfg.fraction,
            "epochs": cfg.epochs,
            "seed": job["seed"],
            "n_train": len(prepared.id_train),
            "n_test": len(prepared.id_test),
            "mask_sha256": bank.mask_digest,
            "seconds": bank.seconds,
            "group_size": bank.group_size,
            "engine": bank.engine,
            "group_note": bank.group_note,
            "images_per_second": n_images / bank.seconds,
        }
        write_json(shard, job["output"]["summary"])
        mlrun.log_metrics(
            {k: shard[k] for k in ("seconds", "group_size", "images_per_second", "first", "stop")}
        )
        mlrun.set_tags(
            {
                "mudiff.bank.engine": bank.engine,
                "mudiff.bank.group": bank.group_note,
                "mudiff.bank.model": cfg.model,
            }
        )
        print(
            f"bank shard {p.shard} of {cfg.shards}: {cfg.model} models {models.start}..{models.stop - 1} "
            f"of {cfg.models}, {bank.seconds:.1f}s, {shard['images_per_second']:.0f} images/s, "
            f"{bank.engine} engine, groups of {bank.group_size} ({bank.group_note})"
        )
