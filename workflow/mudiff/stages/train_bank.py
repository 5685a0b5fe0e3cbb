"""Stage `train_bank`: K subset models, trained many at a time; mask, phi and correctness saved."""

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
    """What the rule `train_bank` passes (rules/bank.smk): the study's model, device and bank section."""

    model: str  # a name of the model registry
    device: Literal["auto", "cpu", "cuda"]
    bank: BankConfig


def run(job: dict) -> None:
    p = build(Params, job["params"])
    cfg = p.bank
    with job_run(job) as mlrun:  # a device refusal is then the run's recorded error
        device = device_of(p.device)
        mlrun.set_tags(device_tags(device))
        prepared, data = load_data(job["input"]["arrays"], device)
        bank = train_bank(data, p.model, cfg, seed=job["seed"])
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
        n_images = cfg.models * int(round(cfg.fraction * len(prepared.y_train))) * cfg.epochs
        summary = {
            "models": cfg.models,
            "fraction": cfg.fraction,
            "epochs": cfg.epochs,
            "seconds": bank.seconds,
            "group_size": bank.group_size,
            "vectorized": bank.vectorized,
            "engine": bank.engine,
            "group_note": bank.group_note,
            "images_per_second": n_images / bank.seconds,
            "test_acc_mean": float(bank.correct_test.mean() * 100),
            "in_acc_mean": float(bank.correct_train[bank.mask].mean() * 100),
            "out_acc_mean": float(bank.correct_train[~bank.mask].mean() * 100),
        }
        write_json(summary, job["output"]["summary"])
        mlrun.log_metrics({k: v for k, v in summary.items() if isinstance(v, (int, float))})
        mlrun.set_tags({"mudiff.bank.engine": bank.engine, "mudiff.bank.group": bank.group_note})
        print(
            f"bank of {cfg.models}: {bank.seconds:.1f}s, {summary['images_per_second']:.0f} images/s, "
            f"{bank.engine} engine, groups of {bank.group_size} ({bank.group_note})"
        )
