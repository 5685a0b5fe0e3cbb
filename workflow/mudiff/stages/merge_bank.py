"""Stage `merge_bank`: the bank's shards (`train_bank`, one job per shard) joined into the one bank,
`bank/bank.npz` and `summary.json`, as a bank of one job writes them.

numpy only: it reads, checks and concatenates arrays, and imports no torch. Before it writes
anything it checks that the shards fit together: every shard of `bank.shards` once, their model
ranges covering 0..K-1 without a gap or an overlap, one architecture, fraction, epochs and seed,
one inclusion mask (each shard records the digest of the whole K x N mask; the stacked rows must
be that mask), the same train and test samples (ids, so N and M) and arrays of their ranges' shapes.
A shard that does not fit is refused by name (`ShardMismatch`), and no output is written.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mudiff.io import array_digest, read_arrays, read_json, write_arrays, write_json
from mudiff.options import build
from mudiff.sections import BankConfig
from mudiff.tracking import job_run

ARRAYS = ("mask", "phi_train", "correct_train", "phi_test", "correct_test")
SAMPLES = {"mask": "n_train", "phi_train": "n_train", "correct_train": "n_train"}  # the rest: n_test
SHARED = ("shards", "models", "model", "fraction", "epochs", "seed", "n_train", "n_test", "mask_sha256")


@dataclass
class Params:
    """What the rule `merge_bank` passes (rules/bank.smk): the bank section, its architecture named."""

    bank: BankConfig


class ShardMismatch(ValueError):
    """Bank shards that do not make one bank; the message names the shard and what differs."""


def _ranges(infos: list[dict], models: int) -> list[dict]:
    """The shards in model order, once their indices and ranges are checked: every index once, and
    ranges that tile 0..models-1."""
    count = infos[0]["shards"]
    indices = sorted(i["shard"] for i in infos)
    if indices != list(range(count)):
        raise ShardMismatch(f"bank shards {indices}: expected each of shards 0..{count - 1} once")
    ordered = sorted(infos, key=lambda i: (i["first"], i["stop"]))
    stop = 0
    for info in ordered:
        where = f"bank shard {info['shard']} (models {info['first']}..{info['stop'] - 1})"
        if info["stop"] <= info["first"]:
            raise ShardMismatch(f"{where}: an empty range")
        if info["first"] > stop:
            raise ShardMismatch(f"{where}: a gap, models {stop}..{info['first'] - 1} are in no shard")
        if info["first"] < stop:
            raise ShardMismatch(f"{where}: overlaps the shard before it, which ends at model {stop - 1}")
        stop = info["stop"]
    if stop != models:
        raise ShardMismatch(f"bank shards cover models 0..{stop - 1}, not the bank's 0..{models - 1}")
    return ordered


def merge(shards: list[tuple[dict, dict]], cfg: BankConfig) -> tuple[dict, dict]:
    """The whole bank's arrays and summary from its shards, each (arrays, record) as `train_bank`
    writes them (in any order); raises `ShardMismatch` where they do not fit together."""
    if not shards:
        raise ShardMismatch("no bank shards to merge")
    first_arrays, first_info = shards[0]
    for _, info in shards:
        for key in SHARED:
            if info.get(key) != first_info.get(key):
                raise ShardMismatch(
                    f"bank shard {info.get('shard')}: {key} {info.get(key)!r}, but shard "
                    f"{first_info.get('shard')} has {first_info.get(key)!r}"
                )
    expected = {
        "shards": cfg.shards,
        "models": cfg.models,
        "model": cfg.model,
        "fraction": cfg.fraction,
        "epochs": cfg.epochs,
    }
    for key, value in expected.items():
        if first_info[key] != value:
            raise ShardMismatch(f"bank shards: {key} {first_info[key]!r}, but the bank section has {value!r}")
    if len(shards) != cfg.shards:
        raise ShardMismatch(f"{len(shards)} bank shards given, but bank.shards is {cfg.shards}")
    by_index = {info["shard"]: (arrays, info) for arrays, info in shards}
    ordered = _ranges([info for _, info in shards], cfg.models)
    for arrays, info in (by_index[i["shard"]] for i in ordered):
        where = f"bank shard {info['shard']}"
        for ids in ("id_train", "id_test"):
            if not np.array_equal(arrays[ids], first_arrays[ids]):
                raise ShardMismatch(
                    f"{where}: other {ids} than shard {first_info['shard']} (trained on other data)"
                )
        if len(arrays["id_train"]) != info["n_train"] or len(arrays["id_test"]) != info["n_test"]:
            raise ShardMismatch(f"{where}: its ids are not its recorded n_train and n_test")
        for name in ARRAYS:
            shape = (info["stop"] - info["first"], info[SAMPLES.get(name, "n_test")])
            if arrays[name].shape != shape:
                raise ShardMismatch(f"{where}: {name} of shape {arrays[name].shape}, expected {shape}")
    rows = [by_index[i["shard"]][0] for i in ordered]
    merged = {
        "id_train": first_arrays["id_train"],
        "id_test": first_arrays["id_test"],
        **{name: np.concatenate([r[name] for r in rows]) for name in ARRAYS},
    }
    if array_digest(merged["mask"]) != first_info["mask_sha256"]:
        raise ShardMismatch(
            "bank shards: their mask rows, stacked, are not the inclusion mask they record (mask_sha256)"
        )
    return merged, summary(merged, [by_index[i["shard"]][1] for i in ordered])


def summary(merged: dict, infos: list[dict]) -> dict:
    """The bank's summary.json: what the scores and the report read, from the merged arrays and the
    shards' records in model order. `seconds` is the shards' training time summed (what the bank cost,
    however many jobs it ran in); a bank of one shard keeps that shard's group size and note."""
    one = infos[0]
    seconds = sum(i["seconds"] for i in infos)
    n_images = one["models"] * int(round(one["fraction"] * one["n_train"])) * one["epochs"]
    engines = sorted({i["engine"] for i in infos})
    if len(infos) == 1:
        note = one["group_note"]
    else:
        note = "; ".join(
            f"shard {i['shard']} (models {i['first']}..{i['stop'] - 1}): {i['group_note']}" for i in infos
        )
    mask = merged["mask"]
    return {
        "models": one["models"],
        "fraction": one["fraction"],
        "epochs": one["epochs"],
        "model": one["model"],
        "shards": len(infos),
        "seconds": seconds,
        "shard_seconds": [i["seconds"] for i in infos],
        "group_size": max(i["group_size"] for i in infos),
        "vectorized": True,
        "engine": engines[0] if len(engines) == 1 else "+".join(engines),
        "group_note": note,
        "images_per_second": n_images / seconds if seconds > 0 else float("nan"),
        "test_acc_mean": float(merged["correct_test"].mean() * 100),
        "in_acc_mean": float(merged["correct_train"][mask].mean() * 100),
        "out_acc_mean": float(merged["correct_train"][~mask].mean() * 100),
    }


def run(job: dict) -> None:
    p = build(Params, job["params"])
    inp = job["input"]
    with job_run(job) as mlrun:
        shards = [(read_arrays(a), read_json(s)) for a, s in zip(inp["shards"], inp["shard_summaries"])]
        merged, bank_summary = merge(shards, p.bank)  # every check before any output is written
        write_arrays(job["output"]["bank"], **merged)
        write_json(bank_summary, job["output"]["summary"])
        mlrun.log_metrics({k: v for k, v in bank_summary.items() if isinstance(v, (int, float))})
        mlrun.set_tags(
            {
                "mudiff.bank.engine": bank_summary["engine"],
                "mudiff.bank.group": bank_summary["group_note"][:5000],
                "mudiff.bank.model": bank_summary["model"],
            }
        )
        print(
            f"bank of {bank_summary['models']} {bank_summary['model']} models from {len(shards)} shard(s): "
            f"{bank_summary['seconds']:.1f}s of training, {bank_summary['images_per_second']:.0f} images/s"
        )
