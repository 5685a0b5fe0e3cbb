"""Method settings chosen as papers choose them: on the `random` forget set, by ToW.

`python -m mudiff.tuning --configfile config/<study>.yaml` runs, for every method in the study's
`tune.grid`, each grid point on `tune.draws` random forget sets (the study's own `random` set and
further seeded draws of the same size), from the study's seed-0 target model, and compares each
run with retrain on the same set. A grid point is *eligible* when it moves F (its mean flipped share
of F reaches `evaluate.inert_flip_share`, the inert rule) without collapsing (its mean test
accuracy stays within `tune.collapse_points` of retrain's). A point whose model diverges
(`DivergedError`: non-finite weights or logits) on any draw is *diverged*: never eligible, its
unlearned metrics left empty, not rerun on later draws, and named in its method's status; the
run goes on with the other points. The selected setting is the eligible point of highest mean
ToW; where no point is eligible the table says why, and the method keeps the study's setting.
The hard forget sets are never looked at.

The table (`config/tuning/<study>.csv`, committed with the config) lists every grid point; the
study's config then carries the selected settings (a test checks they agree), and the report
shows the table. It needs the study's target model and prepared data: run
`snakemake results/<study>/seed_0/target/model.pt --cores all --configfile config/<study>.yaml` first.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from mudiff.config import dataset_dir, load, method_hyper
from mudiff.forget_sets import random_set, replicate_seed, resolve_size

COLUMNS = (
    "method",
    "setting",
    "FA",
    "RA",
    "TA",
    "ToW",
    "FA_retrain",
    "RA_retrain",
    "TA_retrain",
    "flip_share",
    "moves_forget_set",
    "collapsed",
    "diverged",
    "selected",
    "method_status",
)
UNLEARNED = ("FA", "RA", "TA", "ToW", "flip_share")  # a diverged point's are left empty (NaN)


def grid_points(grid: dict[str, list]) -> list[dict]:
    """Every combination of a method's grid, in a stable order."""
    keys = sorted(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def draws_of(id_train: np.ndarray, size: float, base_seed: int, draws: int) -> list[np.ndarray]:
    """The study's seed-0 `random` forget set, then `draws - 1` further seeded draws of its size."""
    n = resolve_size(size, len(id_train))
    seeds = [replicate_seed(base_seed, 0)] + [
        int(np.random.SeedSequence([base_seed, 0, d]).generate_state(1)[0]) for d in range(1, draws)
    ]
    return [random_set(id_train, n, s) for s in seeds]


def select(rows: pd.DataFrame, flip_share: float, collapse_points: float) -> pd.DataFrame:
    """Mean over draws per (method, setting), eligibility, the selected point and each method's status.

    `rows` may carry a boolean `diverged` column (a run whose model came out non-finite): a point
    diverged on any draw is diverged, its unlearned metrics NaN, and never eligible."""
    metrics = ["FA", "RA", "TA", "ToW", "FA_retrain", "RA_retrain", "TA_retrain", "flip_share"]
    rows = rows.assign(diverged=rows["diverged"].eq(True) if "diverged" in rows.columns else False)
    grouped = rows.groupby(["method", "setting"], sort=False)
    table = grouped[metrics].mean().join(grouped["diverged"].any()).reset_index()
    table.loc[table["diverged"], list(UNLEARNED)] = np.nan
    table["moves_forget_set"] = ~table["diverged"] & (table["flip_share"] >= flip_share)
    table["collapsed"] = ~table["diverged"] & (table["TA"] < table["TA_retrain"] - collapse_points)
    eligible = table["moves_forget_set"] & ~table["collapsed"] & ~table["diverged"]
    table["selected"] = False
    table["method_status"] = ""
    for method, group in table.groupby("method", sort=False):
        ok = group[eligible.loc[group.index]]
        diverged = group.loc[group["diverged"], "setting"].tolist()
        if len(ok):
            table.loc[ok["ToW"].idxmax(), "selected"] = True
            status = "selected: highest ToW among the settings that move F without collapsing"
        elif len(diverged) == len(group):
            status = "diverged at every setting: keeps the study's setting"
        elif group["moves_forget_set"].any():
            status = "no setting moves F without collapsing: keeps the study's setting"
        else:
            status = "inert at every setting: keeps the study's setting"
        if diverged and len(diverged) < len(group):
            status += f"; diverged (never eligible): {', '.join(diverged)}"
        table.loc[group.index, "method_status"] = status
    return table[list(COLUMNS)]


def tune(
    cfg: dict, out: str | Path, threads: int = 1, configfile: str = "config/<study>.yaml"
) -> pd.DataFrame:
    """Run the grid (see module doc); write and return the table."""
    import torch

    from mudiff import methods, models
    from mudiff.device import pick
    from mudiff.methods.base import DivergedError
    from mudiff.metrics.evaluation import compare, model_metrics
    from mudiff.metrics.movement import forget_movement
    from mudiff.options import build
    from mudiff.sections import TrainConfig
    from mudiff.stages import load_data
    from mudiff.stages.unlearn import unlearn_one
    from mudiff.training import prediction_table

    torch.set_num_threads(threads)
    run_dir = Path("results") / cfg["name"] / "seed_0"
    target = run_dir / "target" / "model.pt"
    arrays = Path(cfg["data"]["root"]) / dataset_dir(cfg["data"]) / "arrays.npz"
    for need in (target, arrays):
        if not need.exists():
            raise FileNotFoundError(
                f"{need} is missing: run `snakemake {target} --cores all --configfile {configfile}` first"
            )
    device = pick(cfg["device"])
    prepared, data = load_data(str(arrays), device)
    model = models.load(cfg["model"], prepared, str(target), device)
    tune_cfg, fs = cfg["tune"], cfg["forget_sets"]
    train = build(TrainConfig, cfg["train"])
    sets = draws_of(prepared.id_train, fs["size"], fs["seed"], tune_cfg["draws"])
    rows = []
    diverged: dict[tuple[str, str], str] = {}  # (method, setting) -> the first draw's DivergedError

    def measure(method: str, params, forget_ids: np.ndarray) -> tuple[dict, dict]:
        done = unlearn_one(
            method, params, copy.deepcopy(model), prepared, data, forget_ids, cfg["model"], train, 0
        )
        table = prediction_table(done.model, data, prepared.id_train, prepared.id_test)
        return model_metrics(table, forget_ids, cfg["evaluate"]["mia_seed"]), forget_movement(done.trace)

    for draw, forget_ids in enumerate(sets):
        r, _ = measure("retrain", methods.get("retrain").Params(), forget_ids)
        for method, grid in tune_cfg["grid"].items():
            study = method_hyper(cfg["unlearn"].get(method, {}))
            for point in grid_points(grid):
                setting = json.dumps(point, sort_keys=True)
                retrain = {f"{k}_retrain": r[k] for k in ("FA", "RA", "TA")}
                if (method, setting) not in diverged:
                    params = methods.get(method).Params(**{**study, **point})
                    try:
                        u, moved = measure(method, params, forget_ids)
                    except DivergedError as err:  # this point is out; the grid goes on
                        diverged[(method, setting)] = str(err)
                        print(f"draw {draw} {method} {point}: diverged, never eligible: {err}", flush=True)
                if (method, setting) in diverged:
                    rows.append(
                        {
                            "method": method,
                            "setting": setting,
                            "draw": draw,
                            **dict.fromkeys(UNLEARNED, np.nan),
                            **retrain,
                            "diverged": True,
                        }
                    )
                    continue
                rows.append(
                    {
                        "method": method,
                        "setting": setting,
                        "draw": draw,
                        **u,
                        **retrain,
                        **compare(u, r),
                        "flip_share": moved["forget_flip_share"],
                        "diverged": False,
                    }
                )
                print(
                    f"draw {draw} {method} {point}: FA {u['FA']:.1f} (retrain {r['FA']:.1f}) TA {u['TA']:.1f} "
                    f"ToW {rows[-1]['ToW']:.3f} flipped {moved['forget_flip_share']:.3f}",
                    flush=True,
                )
    table = select(pd.DataFrame(rows), cfg["evaluate"]["inert_flip_share"], tune_cfg["collapse_points"])
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False, float_format="%.4f")
    return table


def selected_settings(table: pd.DataFrame) -> dict[str, dict]:
    """Method -> its selected grid point (methods with none selected are left out)."""
    return {r.method: json.loads(r.setting) for r in table[table["selected"]].itertuples()}


def mismatches(cfg: dict, table: pd.DataFrame) -> list[str]:
    """Where the study's config differs from the tuning table's selected settings."""
    out = []
    for method, point in selected_settings(table).items():
        block = cfg["unlearn"].get(method)
        if block is None:
            continue
        for key, value in point.items():
            if not np.isclose(float(block.get(key, np.nan)), float(value)):
                out.append(
                    f"unlearn.{method}.{key} is {block.get(key)} but the tuning table selected {value}"
                )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mudiff.tuning", description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", required=True)
    parser.add_argument(
        "--out", help="table path (default: the config's tune.table, else config/tuning/<study>.csv)"
    )
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    os.environ.setdefault("TQDM_DISABLE", "1")  # one line per grid point instead of a bar per run
    cfg = load(args.configfile)
    out = args.out or cfg["tune"]["table"] or f"config/tuning/{cfg['name']}.csv"
    from mudiff.tracking import job_run

    job = {"rule": "tune", "study": cfg["name"], "params": {"tune": cfg["tune"]}, "output": {"table": out}}
    with job_run(job) as mlrun:
        table = tune(cfg, out, args.threads, args.configfile)
        mlrun.log_metrics({f"ToW.{r.method}": r.ToW for r in table[table["selected"]].itertuples()})
    print(table.to_string(index=False))
    print("\n# selected settings for the study's config (unlearn.<method>):")
    for method, point in selected_settings(table).items():
        print(f"  {method}: {json.dumps(point)}")
    for method in sorted(set(table["method"]) - set(selected_settings(table))):
        print(f"  # {method}: {table.loc[table['method'] == method, 'method_status'].iloc[0]}")
    bad = mismatches(cfg, table)
    if bad:
        print("\nthe config differs from this table:\n  " + "\n  ".join(bad), file=sys.stderr)


if __name__ == "__main__":
    main()
