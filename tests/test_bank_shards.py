"""The bank in shards: shard jobs (stage train_bank) merged (stage merge_bank) are the bank of one job,
array for array; shards that do not fit together are refused with no output; the bank's own
architecture (`bank.model`) is trained, recorded and named in the report."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
from tinydata import cpu, separable

from mudiff import bank
from mudiff.io import read_arrays, read_json, write_arrays
from mudiff.report.markdown import bank_text
from mudiff.sections import BankConfig
from mudiff.stages import merge_bank, train_bank

CFG = BankConfig(models=8, epochs=3, batch_size=16, model="mlp")
SEED = 3
ARRAYS = ("id_train", "id_test", "mask", "phi_train", "correct_train", "phi_test", "correct_test")


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A folder with the tiny prepared data and its own MLflow store, for the stages' jobs."""
    root = tmp_path_factory.mktemp("shards")
    prepared = separable(n_train=40, n_test=16, seed=0)
    write_arrays(root / "arrays.npz", **{k: np.asarray(v) for k, v in dataclasses.asdict(prepared).items()})
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        # the same groups on any host (a 32 MiB cache), so that a one-job bank trains in one group of 8
        mp.setattr(bank, "last_level_cache_bytes", lambda: 32 * 2**20)
        cpu()
        yield root, prepared


def train_shards(root, cfg: BankConfig, name: str) -> list[tuple[str, str]]:
    """Every shard of `cfg` trained by the train_bank stage, as the rule runs it: (npz, json) paths."""
    paths = []
    for shard in range(cfg.shards):
        out = root / name / "shards"
        out.mkdir(parents=True, exist_ok=True)
        job = {
            "rule": "train_bank",
            "study": "s",
            "seed": SEED,
            "wildcards": {"seed": str(SEED), "shard": str(shard)},
            "params": {"device": "cpu", "bank": dataclasses.asdict(cfg), "shard": shard},
            "input": {"arrays": str(root / "arrays.npz")},
            "output": {"bank": str(out / f"{shard}.npz"), "summary": str(out / f"{shard}.json")},
        }
        train_bank.run(job)
        paths.append((job["output"]["bank"], job["output"]["summary"]))
    return paths


def merge_job(root, cfg: BankConfig, paths, name: str) -> dict:
    return {
        "rule": "merge_bank",
        "study": "s",
        "seed": SEED,
        "wildcards": {"seed": str(SEED)},
        "params": {"bank": dataclasses.asdict(cfg)},
        "input": {"shards": [a for a, _ in paths], "shard_summaries": [s for _, s in paths]},
        "output": {"bank": str(root / name / "bank.npz"), "summary": str(root / name / "summary.json")},
    }


def sharded_bank(root, cfg: BankConfig, name: str) -> tuple[dict, dict]:
    """The bank of `cfg` through both stages: the merged bank.npz and summary.json."""
    job = merge_job(root, cfg, train_shards(root, cfg, name), name)
    merge_bank.run(job)
    return read_arrays(job["output"]["bank"]), read_json(job["output"]["summary"])


@pytest.fixture(scope="module", params=["mlp", "smallcnn"], ids=["stacked_mlp", "vmap"])
def one_job(study, request):
    """The bank of one job (bank.shards 1) of either engine: the reference every sharding must equal."""
    root, prepared = study
    cfg = dataclasses.replace(CFG, model=request.param)
    arrays, summary = sharded_bank(root, cfg, f"{request.param}-1")
    return cfg, arrays, summary


def test_one_job_is_the_bank_train_bank_trains(study, one_job):
    root, prepared = study
    cfg, arrays, summary = one_job
    direct = bank.train_bank(prepared.to(cpu()), cfg.model, cfg, seed=SEED)
    np.testing.assert_array_equal(arrays["mask"], bank.inclusion_mask(8, 40, cfg.fraction, SEED))
    for name in ("mask", "phi_train", "correct_train", "phi_test", "correct_test"):
        assert np.array_equal(arrays[name], getattr(direct, name)), name
    assert summary["shards"] == 1 and summary["group_size"] == direct.group_size == 8
    assert summary["group_note"] == direct.group_note and summary["engine"] == direct.engine


@pytest.mark.parametrize(
    "shards, group_size",
    [(2, 0), (3, 0), (3, 3)],
    ids=["2 shards", "3 uneven shards", "3 shards in groups of 3"],
)
def test_sharded_bank_is_identical_to_the_one_job_bank(study, one_job, shards, group_size):
    """Shards of 4+4 and 3+3+2 models, each sizing its own groups (4, then 3 and 2; or groups of 3 that
    straddle nothing of the one job's single group of 8): every array equal, bit for bit."""
    root, _ = study
    cfg, reference, ref_summary = one_job
    sharded = dataclasses.replace(cfg, shards=shards, group_size=group_size)
    arrays, summary = sharded_bank(root, sharded, f"{cfg.model}-{shards}-{group_size}")
    assert set(arrays) == set(reference) == set(ARRAYS)
    for name in ARRAYS:
        assert arrays[name].dtype == reference[name].dtype, name
        assert np.array_equal(arrays[name], reference[name]), name
    same = ("models", "fraction", "epochs", "model", "engine", "test_acc_mean", "in_acc_mean", "out_acc_mean")
    assert {k: summary[k] for k in same} == {k: ref_summary[k] for k in same}
    assert summary["shards"] == shards and len(summary["shard_seconds"]) == shards
    assert summary["seconds"] == pytest.approx(sum(summary["shard_seconds"]))
    expected_groups = {0: [4, 4] if shards == 2 else [3, 3, 2], 3: [3, 3, 2]}[group_size]
    records = [
        read_json(root / f"{cfg.model}-{shards}-{group_size}" / "shards" / f"{s}.json") for s in range(shards)
    ]
    assert [r["group_size"] for r in records] == expected_groups  # each shard sized its own groups
    assert [(r["first"], r["stop"]) for r in records] == [
        (p.start, p.stop) for p in (sharded.shard_models(s) for s in range(shards))
    ]
    assert summary["group_size"] == max(expected_groups)


def test_a_lone_model_gets_the_bits_it_gets_in_a_group_on_several_threads():
    """A group of one (a bank's last, shorter group; a shard of one model) on a multi-threaded CPU: torch
    rounds a lone matrix product otherwise than a batch of them (on 2 threads, a ten-class perceptron
    head's weight gradient), so the bank trains a lone model on one thread (`_alone_on_one_thread`)."""
    import torch

    prepared = separable(n_train=400, n_test=16, seed=0)
    rng = np.random.default_rng(0)
    prepared = dataclasses.replace(
        prepared, y_train=rng.integers(0, 10, 400), y_test=rng.integers(0, 10, 16), num_classes=10
    )
    cfg = dataclasses.replace(CFG, models=3, epochs=2, batch_size=128)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        data = prepared.to(torch.device("cpu"))
        grouped = bank.train_bank(data, "mlp", dataclasses.replace(cfg, group_size=3), seed=SEED)
        alone = bank.train_bank(data, "mlp", dataclasses.replace(cfg, group_size=1), seed=SEED)
        shard = bank.train_bank(data, "mlp", cfg, seed=SEED, models=range(2, 3))
        assert torch.get_num_threads() == 2  # restored after the lone groups
    finally:
        torch.set_num_threads(threads)
    assert grouped.group_size == 3 and alone.group_size == 1 and shard.group_size == 1
    for name in ("phi_train", "phi_test"):
        assert np.array_equal(getattr(alone, name), getattr(grouped, name)), name
        assert np.array_equal(getattr(shard, name), getattr(grouped, name)[2:]), name


def test_shard_ranges_tile_the_bank():
    cfg = BankConfig(models=8, shards=3)
    assert [cfg.shard_models(s) for s in range(3)] == [range(0, 3), range(3, 6), range(6, 8)]
    assert [len(BankConfig(models=256, shards=7).shard_models(s)) for s in range(7)] == [37] * 4 + [36] * 3
    with pytest.raises(ValueError, match="shards 0..2"):
        cfg.shard_models(3)


@pytest.fixture(scope="module")
def two_shards(study):
    """A two-shard bank's shard files, read: [(arrays, record)] in shard order."""
    root, _ = study
    cfg = dataclasses.replace(CFG, shards=2)
    paths = train_shards(root, cfg, "mismatch")
    return cfg, paths, [(read_arrays(a), read_json(s)) for a, s in paths]


def _edited(shards, index, arrays=None, info=None):
    """A deep copy of `shards` with shard `index`'s arrays and record updated."""
    out = copy.deepcopy(shards)
    out[index][0].update(arrays or {})
    out[index][1].update(info or {})
    return out


def test_merge_refuses_shards_that_do_not_fit_together(two_shards):
    cfg, _, shards = two_shards
    merged, _ = merge_bank.merge(shards[::-1], cfg)  # the order given does not matter
    assert merged["mask"].shape == (8, 40)
    flipped = shards[1][0]["mask"].copy()
    flipped[0, :2] = ~flipped[0, :2]  # another subset for model 4 (same size)
    other_ids = shards[1][0]["id_train"][::-1].copy()
    cases = [
        ([shards[0]], "1 bank shards given, but bank.shards is 2"),
        (_edited(shards, 1, info={"shard": 0}), r"expected each of shards 0..1 once"),
        (_edited(shards, 1, info={"first": 3}), "overlaps the shard before it, which ends at model 3"),
        (_edited(shards, 1, info={"first": 5}), r"a gap, models 4..4 are in no shard"),
        (_edited(shards, 1, info={"stop": 7}), r"cover models 0..6, not the bank's 0..7"),
        (_edited(shards, 1, info={"mask_sha256": "0" * 64}), "mask_sha256"),
        (_edited(shards, 1, arrays={"mask": flipped}), "not the inclusion mask they record"),
        (_edited(shards, 1, arrays={"id_train": other_ids}), "other id_train than shard 0"),
        (_edited(shards, 1, info={"n_test": 15}), "n_test 15"),
        (_edited(shards, 1, info={"model": "smallcnn"}), "model 'smallcnn'"),
        (_edited(shards, 1, info={"seed": 4}), "seed 4"),
        (
            _edited(shards, 1, arrays={"phi_test": shards[1][0]["phi_test"][:, :8]}),
            r"phi_test of shape \(4, 8\)",
        ),
    ]
    for bad, message in cases:
        with pytest.raises(merge_bank.ShardMismatch, match=message):
            merge_bank.merge(bad, cfg)
    with pytest.raises(merge_bank.ShardMismatch, match="epochs 3, but the bank section has 4"):
        merge_bank.merge(shards, dataclasses.replace(cfg, epochs=4))


def test_the_merge_stage_fails_and_writes_nothing_for_shards_that_do_not_fit(study, two_shards):
    from mlflow.tracking import MlflowClient

    root, _ = study
    cfg, paths, shards = two_shards
    bad = root / "mismatch" / "bad"
    bad.mkdir()
    arrays, info = shards[1]
    write_arrays(bad / "1.npz", **{**arrays, "id_test": arrays["id_test"] + 100})  # another test set
    (bad / "1.json").write_text((root / "mismatch" / "shards" / "1.json").read_text())
    job = merge_job(root, cfg, [paths[0], (str(bad / "1.npz"), str(bad / "1.json"))], "mismatch/bad")
    with pytest.raises(merge_bank.ShardMismatch, match="bank shard 1: other id_test than shard 0"):
        merge_bank.run(job)
    assert not (bad / "bank.npz").exists() and not (bad / "summary.json").exists()
    assert not [p for p in bad.iterdir() if p.name.startswith(".")]  # no temporary file left either
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    exp = client.get_experiment_by_name("s")
    merges = client.search_runs([exp.experiment_id], "tags.`mudiff.rule` = 'merge_bank'")
    failed = [r for r in merges if r.info.status != "FINISHED"]
    assert [r.info.status for r in failed] == ["FAILED"]  # its one run, closed as failed
    assert "other id_test" in failed[0].data.tags["mudiff.error"]
    merge_bank.run(merge_job(root, cfg, paths, "mismatch"))  # the shards themselves merge


def test_the_bank_trains_its_own_architecture_and_the_report_names_it(study, one_job):
    """bank.model smallcnn beside a study model mlp: the shards train smallcnn (vmap: not a perceptron),
    the summary records it and the report says that a bank of smallcnn models scored memorization."""
    cfg, arrays, summary = one_job
    assert summary["model"] == cfg.model
    if cfg.model == "smallcnn":
        assert summary["engine"] == "vmap"
    text = bank_text(summary, "mlp")
    assert f"memorization scored by a bank of K = 8 {cfg.model} models" in text
    older = {k: v for k, v in summary.items() if k not in ("model", "shards")}  # a summary before bank.model
    assert "a bank of K = 8 mlp models" in bank_text(older, "mlp")
    assert "trained in 3 shards" in bank_text({**summary, "shards": 3}, "mlp")


def test_the_bank_stage_refuses_an_unnamed_architecture_and_a_shard_out_of_range(study):
    root, _ = study
    for cfg, shard, message in (
        (dataclasses.replace(CFG, model=None), 0, "no architecture named"),
        (dataclasses.replace(CFG, shards=2), 2, "shards 0..1"),
    ):
        job = {
            "rule": "train_bank",
            "study": "s",
            "seed": SEED,
            "wildcards": {"shard": str(shard)},
            "params": {"device": "cpu", "bank": dataclasses.asdict(cfg), "shard": shard},
            "input": {"arrays": str(root / "arrays.npz")},
            "output": {"bank": str(root / "refused.npz"), "summary": str(root / "refused.json")},
        }
        with pytest.raises(ValueError, match=message):
            train_bank.run(job)
        assert not (root / "refused.npz").exists()
