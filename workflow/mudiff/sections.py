"""The study's typed configuration sections: every default and allowed value, in one leaf module.

A leaf: it imports nothing of the package but `mudiff.options`, so that a stage, a method or a model
that reads its section never depends on the validation code (`mudiff.config`), which knows every
registry. The JSON schema that validates a config file is derived from these dataclasses there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from mudiff.options import SGDSettings, option

LEVELS = ("low", "mid", "high", "mix")


@dataclass
class DataConfig:
    dataset: str = option("digits", "Dataset name (SPEC, Datasets); one of the loader registry's.")
    source: str = option(
        "default",
        "'default' = scikit-learn for digits, torchvision download otherwise; "
        "or a local folder holding the official files.",
    )
    root: str = option("data", "Folder of prepared datasets (tracked by DVC through data.dvc).")
    download_dir: str = option("downloads", "Folder for raw downloads (not tracked).")
    test_fraction: float = option(
        0.2, "Test share of the stratified split (digits only).", exclusiveMinimum=0, exclusiveMaximum=1
    )
    split_seed: int = option(0, "Seed of the digits train/test split.", minimum=0)
    train_size: float | None = option(
        None,
        "Train on a class-stratified random subset of the official train set (for digits: of its train split): "
        "null or 0 = the whole train set; a share if below 1 (rounded to a count), else a count. Each class keeps "
        "its share, within one sample; ids stay the source indices; the test set stays the official one. "
        "At least one sample per class, at most the whole train set.",
        minimum=0,
    )
    subset_seed: int = option(
        0,
        "Seed of the train_size subset (its own seed, not split_seed; recorded in the manifest).",
        minimum=0,
    )


@dataclass
class TrainConfig(SGDSettings):
    """Target-model training: SGD over the whole train set."""

    lr: float = option(0.05, "Peak learning rate (SGD).", exclusiveMinimum=0)
    epochs: int = option(30, "Epochs of target-model training.", minimum=1)
    schedule: Literal["cosine", "onecycle"] = option("cosine", "Learning-rate schedule.")
    augment: bool = option(False, "Random crop and flip (image datasets).")
    checkpoints: int = option(
        3,
        "Checkpoints saved at evenly spaced epochs (the last one included), for the curvature score.",
        minimum=1,
    )


@dataclass
class BankConfig(SGDSettings):
    """The model bank: K subset models, each trained by SGD with a cosine schedule."""

    lr: float = option(0.1, "Peak learning rate (cosine schedule).", exclusiveMinimum=0)
    batch_size: int = option(128, "Mini-batch size per model.", minimum=1)
    models: int = option(256, "K, the number of subset models.", minimum=2)
    fraction: float = option(
        0.7, "p, the share of train each model sees.", exclusiveMinimum=0, exclusiveMaximum=1
    )
    epochs: int = option(20, "Epochs per subset model.", minimum=1)
    group_size: int = option(
        0,
        "Models trained at once; 0 = automatic: as many as fit 70% of free GPU memory, or the CPU's "
        "last-level cache.",
        minimum=0,
    )
    shards: int = option(
        1,
        "Jobs the bank is trained in (at most `models`): shard s trains its contiguous share of the K models "
        "(about K / shards each, sizing its own groups), each model with the seeds, subset and batch order it "
        "has in a bank of one job; `merge_bank` joins them into that bank (bit for bit on the CPU; on a GPU, "
        "batched kernels may round by group size).",
        minimum=1,
    )
    model: str | None = option(
        None,
        "Architecture of the bank's models: null = the study's `model`; else one of the model registry's "
        "that fits the dataset (memorization is then scored by a bank of another architecture).",
    )

    def shard_models(self, shard: int) -> range:
        """The models shard `shard` of `shards` trains: a contiguous range, the first K % shards shards
        one model more than the rest (np.array_split's split)."""
        if not 0 <= shard < self.shards:
            raise ValueError(f"bank shard {shard}: the bank has shards 0..{self.shards - 1}")
        size, extra = divmod(self.models, self.shards)
        first = shard * size + min(shard, extra)
        return range(first, first + size + (shard < extra))


@dataclass
class ForgetSetsConfig:
    size: float = option(
        0.03, "Forget-set size: a share of train if below 1, else a count.", exclusiveMinimum=0
    )
    seed: int = option(
        0,
        "Seed of the random forget set, and of the order of ties in level sets (mixed with each "
        "replicate's seed, so every seed draws its own).",
        minimum=0,
    )
    random: bool = option(True, "Build the `random` forget set.")
    by_score: dict[str, list[Literal[LEVELS]]] = option(
        {"memorization": ["low", "mid", "high", "mix"]},
        "Score -> levels to build (low, mid, high, mix); 'high' is always the hardest.",
    )
    mid_rule: Literal["quantile", "rum"] = option(
        "quantile", "'quantile': N around the median; 'rum': N closest to 0.5 (memorization only)."
    )
    entanglement: bool = option(
        True,
        "Build es_low, es_mid, es_high: rank by centroid_distance, cut into 15 equal slices, take those at 0-based "
        "indices 3, 12 and 14 (the 4th, 13th and 15th; es_high is the farthest), as RUM's code; from each slice the "
        "`size` samples around its middle.",
    )
    risk_ranked: bool = option(
        True,
        "Build risk_ranked: the `size` samples of highest privacy_risk, with their rank (1 = most exposed).",
    )
    class_id: int | None = option(
        0,
        "Build `class`: every train sample of this class (its size is the class size); null = none.",
        minimum=0,
    )


@dataclass
class ScoresConfig:
    """Per-sample scores. Each score with hyperparameters takes its own block `scores.<name>` (its module's
    `Params`, contributed to the schema by the score registry, like the score names)."""

    names: list[str] = option([], "Per-sample scores to compute (default: every score of the registry).")
    # score name -> its typed Params (`mudiff.config.study` builds them; not a key of its own)
    params: dict[str, Any] = field(default_factory=dict, metadata={"derived": True})


@dataclass
class EvaluateConfig:
    mia_seed: int = option(0, "Seed for balancing the MIA classifier's training data.", minimum=0)
    inert_flip_share: float = option(
        0.02,
        "A run is inert (left out of every cross-method finding) when at no epoch this share of its forget set "
        "has flipped correctness against the target's.",
        exclusiveMinimum=0,
        maximum=1,
    )


@dataclass
class AnalysisConfig:
    n_boot: int = option(500, "Bootstrap replicates of every interval.", minimum=10)
    seed: int = option(0, "Seed of the bootstrap resampling and the predictor's folds.", minimum=0)
    folds: int = option(
        5, "Folds of the hard-sample predictor's cross-validation (stratified, grouped by id).", minimum=2
    )
    hard_share: float = option(
        1 / 3,
        "Top share of a run's difficulty labelled hard for the predictor (censored samples always are).",
        exclusiveMinimum=0,
        exclusiveMaximum=1,
    )
    min_rho: float = option(
        0.5,
        "Median mean-pairwise Spearman between methods needed to call difficulty algorithm-independent.",
        minimum=0,
        maximum=1,
    )
    confidence_threshold: float = option(
        0.5,
        "|Spearman(confidence, memorization)| needed to call that SPEC finding reproduced.",
        minimum=0,
        maximum=1,
    )
    exclude: list[str] = option(
        ["retrain"], "Methods left out of agreement, factors and predictor (retrain never saw F)."
    )


LRS = [0.01, 0.03, 0.1, 0.3]


@dataclass
class TuneConfig:
    draws: int = option(
        3, "Random forget sets each grid point runs on (the study's `random` set first).", minimum=1
    )
    collapse_points: float = option(
        10.0,
        "A grid point has collapsed when its mean test accuracy falls more than this many points below "
        "retrain's; it is never selected.",
        minimum=0,
    )
    grid: dict[str, dict[str, list[float]]] = option(
        {
            **{m: {"lr": list(LRS)} for m in ("finetune", "l1_sparse", "random_label", "salun")},
            "neggrad": {"lr": [1e-4, 1e-3, 0.01, 0.03, 0.05, 0.07, 0.1]},
            "neggrad_plus": {"lr": list(LRS), "alpha": [0.99, 0.95]},
            "scrub": {"lr": [5e-3, 0.02, 0.05], "forget_batch_size": [16, 32]},
        },
        "Method -> hyperparameter -> values tried by `python -m mudiff.tuning` on the random forget set "
        "(the other hyperparameters: the study's).",
    )
    table: str | None = option(
        None,
        "The committed tuning table (`python -m mudiff.tuning` writes it), shown in the report; "
        "null = config/tuning/<name>.csv, when that file exists.",
    )


@dataclass
class TrackingConfig:
    models: Literal["reference", "copy"] = option(
        "reference",
        "Model files (*.pt: target, checkpoints, unlearned models). 'reference': each run records their "
        "path, size and sha256 (its mudiff/outputs.json) and the files stay where the pipeline wrote them; 'copy': "
        "also copied into the artifact store (a ResNet-18 is about 45 MB, and a study holds hundreds).",
    )
    max_artifact_mb: float = option(
        64.0, "Any other output larger than this (MB) is recorded by reference only.", exclusiveMinimum=0
    )
    ui: str = option(
        "http://127.0.0.1:5000",
        "The MLflow UI the report's run links open (`mlflow ui` serves it there by default).",
    )


@dataclass
class StudyConfig:
    name: str = option(
        "default", "Study name: results/<name>/ and the MLflow experiment.", pattern=r"^[A-Za-z0-9_.-]+$"
    )
    seeds: list[int] = option(
        [0],
        "Replicates: target, bank, scores, forget sets, unlearning, evaluation and analysis run once per seed "
        "(results/<name>/seed_<s>/); the report gives every headline number as mean and 95% t-interval over them.",
        minItems=1,
        uniqueItems=True,
    )
    device: Literal["auto", "cpu", "cuda"] = option("auto", "'auto' picks CUDA when present.")
    model: str = option("mlp", "Architecture (SPEC, Models); one of the model registry's.")
    data: DataConfig = option(None, "Dataset and where it comes from.")
    train: TrainConfig = option(None, "Target-model training.")
    bank: BankConfig = option(None, "Model bank of subset models.")
    scores: ScoresConfig = option(None, "Per-sample scores and their hyperparameters.")
    forget_sets: ForgetSetsConfig = option(None, "Forget-set construction.")
    unlearn: dict[str, dict] = option(
        # The default study's roster, its settings and where each method runs. SPEC's defaults are the papers'
        # CIFAR ResNet settings, under which most methods leave the digits MLP's forget set untouched; these
        # were chosen on the `random` forget set by ToW, never on the hard sets (`python -m mudiff.tuning`
        # wrote config/tuning/default.csv; a test checks them against it); every other hyperparameter is
        # SPEC's default. To stay within minutes on 2 CPU cores, finetune runs on every forget set,
        # neggrad_plus (with finetune, the methods of SPEC's memorization finding) on the memorization sets,
        # the rest on `memorization_mix` (a third each of low, mid and high memorization: where the
        # instance-level analysis compares all methods), RUM there too, and RSU in its three orders (the
        # two controls as variants `<method>@<label>`) on the risk-ranked set, ranked by privacy_risk.
        # Meta-algorithms' steps run at the study's settings of the method they wrap; `inner` overrides.
        {
            "retrain": {},
            "finetune": {"lr": 0.1},
            "neggrad_plus": {
                "lr": 0.03,
                "alpha": 0.95,
                "forget_sets": [
                    "memorization_low",
                    "memorization_mid",
                    "memorization_high",
                    "memorization_mix",
                ],
            },
            **{
                m: {**tuned, "forget_sets": ["memorization_mix"]}
                for m, tuned in (
                    ("neggrad", {"lr": 0.05}),
                    ("l1_sparse", {"lr": 0.1}),
                    ("random_label", {"lr": 0.01}),
                    ("salun", {"lr": 0.03}),
                    ("scrub", {"lr": 0.05, "forget_batch_size": 32}),
                )
            },
            **{
                m: {"forget_sets": ["memorization_mix"]}
                for m in ("rum_f:neggrad_plus", "rum", "shuffle:neggrad_plus")
            },
            "rsu:finetune": {"forget_sets": ["risk_ranked"]},
            **{
                f"rsu:finetune@{order}": {"order": order, "forget_sets": ["risk_ranked"]}
                for order in ("hard_to_easy", "random")
            },
        },
        "Unlearning methods to run, each with its hyperparameters (defaults from SPEC). Meta-algorithms are "
        "named '<meta>:<method>' (rum_f, shuffle, rsu) or 'rum'; the wrapped method's hyperparameters go under `inner`. "
        "A method runs again with other hyperparameters as a variant '<method>@<label>' (e.g. 'rsu:finetune@random').",
    )
    evaluate: EvaluateConfig = option(None, "Evaluation.")
    analysis: AnalysisConfig = option(
        None, "Instance-level difficulty: agreement, factors, predictor, findings."
    )
    tune: TuneConfig = option(
        None, "How method settings are chosen: a grid per method on the random forget set, by ToW."
    )
    tracking: TrackingConfig = option(
        None,
        "What MLflow keeps of each job's outputs, and where the report links to it. Changing it reruns no job "
        "(the report job excepted, for `ui`).",
    )
