"""Faults of issue 14: output modes under the umask, jobs that outlive their parent, corrupt
downloads and prepared arrays, null ids, and diverged unlearning."""

from __future__ import annotations

import copy
import gzip
import io
import os
import re
import signal
import stat
import subprocess
import sys
import tarfile
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from tinydata import cpu, separable

from mudiff import io as mio
from mudiff.data import cifar, idx
from mudiff.data.checksums import ChecksumError, digest

WORKFLOW = str(Path(__file__).resolve().parents[1] / "workflow")


@pytest.fixture
def umask():
    """Set the process umask for one test, and restore it."""
    old = os.umask(0o022)
    try:
        yield lambda mask: os.umask(mask)
    finally:
        os.umask(old)


# ----------------------------------------------------------------------------- 1. modes under the umask


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002], ids=["022", "027", "002"])
def test_outputs_get_the_umasks_ordinary_mode(tmp_path, umask, mask):
    umask(mask)
    want = 0o666 & ~mask
    out = tmp_path / "new" / "folder"
    mio.write_json({"a": 1}, out / "r.json")
    mio.write_table(pd.DataFrame({"id": [1, 2]}), out / "t.parquet")
    mio.write_arrays(out / "a.npz", x=np.arange(3))
    mio.save_model(torch.nn.Linear(2, 1), out / "m.pt")
    mio.save_checkpoints({1: {"w": torch.ones(1)}}, out / "ck.pt")
    with mio.atomic_path(out / "plain.txt") as tmp:
        tmp.write_text("x")
    for name in ("r.json", "t.parquet", "a.npz", "m.pt", "ck.pt", "plain.txt"):
        assert oct(_mode(out / name)) == oct(want), name
    assert oct(_mode(out)) == oct(0o777 & ~mask)  # folders made on the way follow the umask too
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary left


def test_a_figure_written_through_atomic_path_follows_the_umask(tmp_path, umask):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    umask(0o022)
    fig = plt.figure()
    with mio.atomic_path(tmp_path / "f.png") as tmp:
        fig.savefig(tmp, format="png")  # savefig reopens the 0600 temporary: the mode is set after the block
    plt.close(fig)
    assert oct(_mode(tmp_path / "f.png")) == "0o644"


def test_umask_is_read_without_changing_it(umask):
    umask(0o027)
    assert mio.current_umask() == 0o027
    assert mio.file_mode() == 0o640
    assert os.umask(0o027) == 0o027  # still what the test set


def test_umask_is_read_safely_while_other_threads_write(tmp_path, umask):
    umask(0o022)
    errors = []

    def writer(k):
        try:
            for i in range(20):
                mio.write_json({"i": i}, tmp_path / f"{k}-{i}.json")
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert {oct(_mode(p)) for p in tmp_path.iterdir()} == {"0o644"}


# ----------------------------------------------------------------------------- 2. a job dies with its parent


def _alive(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] not in ("Z", "X")  # a zombie has exited; its reaper may be slow


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return not _alive(pid)


def _readline(proc: subprocess.Popen, seconds: float = 30) -> str:
    """A line of `proc`'s stdout, or fail after `seconds` (a child that never got ready)."""
    box = []
    t = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)
    t.start()
    t.join(seconds)
    if not box or not box[0]:
        proc.kill()
        pytest.fail(
            f"no line from the process tree in {seconds}s; stderr: {proc.stderr.read() if proc.stderr else ''}"
        )
    return box[0].strip()


# The parent: starts `argv` (the job, maybe in a bash wrapper), says its pid and waits to be killed.
PARENT = textwrap.dedent("""
    import subprocess, sys, time
    child = subprocess.Popen(sys.argv[1:])
    print(child.pid, flush=True)
    time.sleep(120)
""")

# A job: arms die_with_parent as `python -m mudiff` does, says ready, then works for a minute.
JOB = textwrap.dedent(f"""
    import os, sys, time
    sys.path.insert(0, {WORKFLOW!r})
    from mudiff.__main__ import die_with_parent
    assert die_with_parent()
    print("ready", os.getpid(), flush=True)
    time.sleep(60)
""")


def _tree(tmp_path: Path, argv: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": WORKFLOW + os.pathsep + str(tmp_path)}
    return subprocess.Popen(
        [sys.executable, "-c", PARENT, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _kill_and_reap(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_job_dies_when_its_parent_is_killed(tmp_path):
    parent = _tree(tmp_path, [sys.executable, "-c", JOB])
    _readline(parent)  # the child's pid
    ready, pid = _readline(parent).split()
    assert ready == "ready"
    _kill_and_reap(parent)
    assert _gone_within(int(pid), 5), "the job outlived its killed parent"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_job_in_a_shell_wrapper_dies_when_snakemake_is_killed(tmp_path):
    # Snakemake -> `bash -c "set -euo pipefail; python -m mudiff ..."` -> the job. Killing Snakemake
    # orphans the wrapper, which lives on: the job must notice and stop. `; true` keeps bash from
    # exec-ing the job, as Snakemake's prefix does.
    parent = _tree(tmp_path, ["bash", "-c", f"set -euo pipefail; {sys.executable} -c {_quote(JOB)}; true"])
    wrapper = int(_readline(parent))
    _, pid = _readline(parent).split()
    _kill_and_reap(parent)
    assert _gone_within(int(pid), 5), "the job outlived Snakemake"
    assert _gone_within(wrapper, 5)  # and the wrapper then ends


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_killing_the_shell_wrapper_kills_the_job_started_by_main(tmp_path):
    # The real entry point: `python -m mudiff <stage>` arms the death signal in main().
    (tmp_path / "slowstage.py").write_text(
        "import os, time\n\ndef run(job):\n    print('ready', os.getpid(), flush=True)\n    time.sleep(60)\n"
    )
    main = "import mudiff.__main__ as m; m.STAGES['slow'] = 'slowstage'; m.main(['slow', '--job', '{}'])"
    parent = _tree(tmp_path, ["bash", "-c", f"{sys.executable} -c {_quote(main)}; true"])
    wrapper = int(_readline(parent))
    _, pid = _readline(parent).split()
    os.kill(wrapper, signal.SIGKILL)  # the job's shell wrapper
    try:
        assert _gone_within(int(pid), 5), "the job outlived its shell wrapper"
    finally:
        _kill_and_reap(parent)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_parent_that_died_before_the_signal_was_armed_is_noticed(tmp_path):
    # The job imports mudiff.__main__ (which notes its parent), its parent dies, then it arms the signal.
    late = textwrap.dedent(f"""
        import os, sys, time
        sys.path.insert(0, {WORKFLOW!r})
        import mudiff.__main__ as m
        noted, arm = m.PARENT_AT_START, m.die_with_parent
        print("imported", os.getpid(), flush=True)
        while os.getppid() == noted:
            time.sleep(0.02)
        arm()
        time.sleep(60)
    """)
    parent = _tree(tmp_path, [sys.executable, "-c", late])
    _readline(parent)
    _, pid = _readline(parent).split()
    _kill_and_reap(parent)
    assert _gone_within(int(pid), 5)


def test_die_with_parent_does_nothing_off_linux(monkeypatch):
    import mudiff.__main__ as m

    monkeypatch.setattr(m.sys, "platform", "darwin")
    assert m.die_with_parent() is False


def _quote(code: str) -> str:
    import shlex

    return shlex.quote(code)


# ----------------------------------------------------------------------------- 3. corrupt downloads


def _idx_bytes(array: np.ndarray) -> bytes:
    import struct

    return (
        bytes([0, 0, 0x08, array.ndim])
        + struct.pack(f">{array.ndim}i", *array.shape)
        + array.astype(np.uint8).tobytes()
    )


def _corrupt_body(gz: bytes) -> bytes:
    """The same gzip header, a damaged deflate stream."""
    body = bytearray(gz)
    for i in range(10, len(body) - 8):
        body[i] ^= 0xA5
    return bytes(body)


@pytest.mark.parametrize("recorded", ["matches", "differs"])
def test_a_corrupt_gzip_body_names_the_file_and_digests(tmp_path, recorded):
    payload = _idx_bytes(np.arange(200, dtype=np.uint8) % 251)
    gz = tmp_path / "train-labels-idx1-ubyte.gz"
    gz.write_bytes(_corrupt_body(gzip.compress(payload)))
    assert gz.read_bytes()[:3] == b"\x1f\x8b\x08"  # a valid header
    md5 = digest(gz) if recorded == "matches" else "0" * 32  # matches: the md5-verified path
    sha = "1" * 64
    with pytest.raises(ChecksumError) as err:
        idx.read_verified(tmp_path, "train-labels-idx1-ubyte", md5, sha)
    msg = str(err.value)
    assert str(gz) in msg and "corrupt gzip" in msg
    assert md5 in msg and digest(gz) in msg and sha in msg


def test_a_truncated_gzip_names_the_file_and_digests(tmp_path):
    gz = tmp_path / "t10k-labels-idx1-ubyte.gz"
    gz.write_bytes(gzip.compress(_idx_bytes(np.arange(3000, dtype=np.uint8) % 7))[:-30])
    with pytest.raises(ChecksumError) as err:
        idx.read_verified(tmp_path, "t10k-labels-idx1-ubyte", digest(gz), None)
    assert str(gz) in str(err.value) and digest(gz) in str(err.value)


def test_idx_load_of_a_corrupt_official_file_raises_checksum_error(tmp_path, monkeypatch):
    digests = {}
    for stem in idx.STEMS:
        gz = tmp_path / f"{stem}.gz"
        shape = (3, 2, 2) if "images" in stem else (3,)
        gz.write_bytes(gzip.compress(_idx_bytes(np.zeros(shape, dtype=np.uint8))))
        digests[stem] = (digest(gz), None)
    bad = tmp_path / "train-images-idx3-ubyte.gz"
    bad.write_bytes(_corrupt_body(bad.read_bytes()))
    digests["train-images-idx3-ubyte"] = (digest(bad), None)  # as if the recorded md5 were of this file
    monkeypatch.setitem(idx.DIGESTS, "fashion_mnist", digests)
    with pytest.raises(ChecksumError, match=re.escape(str(bad))):
        idx.load("fashion_mnist", source=str(tmp_path))


def test_idx_parse_failure_after_a_digest_match_names_the_digest(tmp_path, monkeypatch):
    digests = {}
    for stem in idx.STEMS:
        gz = tmp_path / f"{stem}.gz"
        gz.write_bytes(gzip.compress(_idx_bytes(np.zeros((3,), dtype=np.uint8))[:-1]))  # truncated idx
        digests[stem] = (digest(gz), None)
    monkeypatch.setitem(idx.DIGESTS, "fashion_mnist", digests)
    with pytest.raises(ChecksumError, match=r"truncated or padded.*md5:[0-9a-f]{32} matched"):
        idx.load("fashion_mnist", source=str(tmp_path))


def _cifar_archive(tmp_path: Path) -> bytes:
    import pickle

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, _ in cifar.SPECS["cifar10"]["train"] + cifar.SPECS["cifar10"]["test"]:
            entry = pickle.dumps(
                {b"data": np.zeros((2, 3072), dtype=np.uint8), b"labels": [0, 1]}, protocol=2
            )
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(entry)
            tar.addfile(info, io.BytesIO(entry))
    return buf.getvalue()


@pytest.mark.parametrize("damage", ["truncated", "corrupt body"])
def test_a_damaged_cifar_archive_names_the_file_and_digests(tmp_path, damage):
    src = tmp_path / "src"
    src.mkdir()
    raw = _cifar_archive(tmp_path)
    raw = raw[: len(raw) // 2] if damage == "truncated" else _corrupt_body(raw)
    archive = src / "cifar-10-python.tar.gz"
    archive.write_bytes(raw)
    with pytest.raises(ChecksumError) as err:
        cifar.load("cifar10", source=str(src), download_dir=str(tmp_path / "dl"))
    msg = str(err.value)
    assert (
        "cifar-10-python.tar.gz" in msg
        and "c58f30108f718f92721af3b95e74349a" in msg
        and digest(archive) in msg
    )


@pytest.mark.parametrize("damage", ["truncated", "corrupt body"])
def test_a_damaged_cifar_archive_whose_md5_matches_is_a_checksum_error(tmp_path, monkeypatch, damage):
    src = tmp_path / "src"
    src.mkdir()
    raw = _cifar_archive(tmp_path)
    raw = raw[: len(raw) // 2] if damage == "truncated" else _corrupt_body(raw)
    archive = src / "cifar-10-python.tar.gz"
    archive.write_bytes(raw)
    spec = {
        **cifar.SPECS["cifar10"],
        "archive": ("cifar-10-python.tar.gz", digest(archive)),
    }  # a mislisted md5
    monkeypatch.setitem(cifar.SPECS, "cifar10", spec)
    with pytest.raises(ChecksumError) as err:
        cifar.load("cifar10", source=str(src), download_dir=str(tmp_path / "dl"))
    msg = str(err.value)
    assert str(archive) in msg and "corrupt archive" in msg and digest(archive) in msg


@pytest.mark.parametrize("content", [b"", b"garbage, not a pickle", None])
def test_an_unreadable_cifar_batch_names_the_file(tmp_path, content):
    import pickle

    path = tmp_path / "data_batch_1"
    if content is None:  # a truncated pickle
        content = pickle.dumps({b"data": np.zeros((2, 3072), dtype=np.uint8), b"labels": [0, 1]}, protocol=2)[
            :100
        ]
    path.write_bytes(content)
    with pytest.raises(
        ValueError, match=re.escape(str(path)) + r": not a readable CIFAR batch .*md5 " + digest(path)
    ):
        cifar.parse_batches([path], b"labels")


def test_a_cifar_batch_without_its_label_key_names_the_file(tmp_path):
    import pickle

    path = tmp_path / "train"
    path.write_bytes(
        pickle.dumps({b"data": np.zeros((2, 3072), dtype=np.uint8), b"labels": [0, 1]}, protocol=2)
    )
    with pytest.raises(ValueError, match=re.escape(str(path)) + r": not a readable CIFAR batch \(KeyError"):
        cifar.parse_batches([path], b"fine_labels")


# ----------------------------------------------------------------------------- 4. unreadable arrays.npz


def _good_npz(path: Path) -> bytes:
    mio.write_arrays(path, x_train=np.arange(20000, dtype=np.uint8), y_train=np.arange(100))
    return path.read_bytes()


@pytest.mark.parametrize(
    "damage", ["garbage", "empty", "truncated", "cut short", "flipped byte", "npy", "object array"]
)
def test_an_unreadable_prepared_array_file_is_named(tmp_path, damage):
    path = tmp_path / "digits" / "arrays.npz"
    good = _good_npz(path)
    if damage == "garbage":
        path.write_bytes(b"\x80\x04 this is no npz, but numpy would try it as a pickle" * 20)
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "cut short":
        path.write_bytes(good[:-5])
    elif damage == "flipped byte":
        path.write_bytes(good[:500] + bytes([good[500] ^ 0xFF]) + good[501:])
    elif damage == "npy":
        np.save(tmp_path / "a.npy", np.arange(3))
        path.write_bytes((tmp_path / "a.npy").read_bytes())
    else:
        np.savez(path, x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(mio.ArrayFileError) as err:
        mio.read_arrays(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: not a readable prepared array file")
    assert "snakemake --forcerun prepare_data" in msg and "dvc checkout" in msg
    assert "allow_pickle" not in msg  # never advise loading pickles


def test_an_unreadable_other_array_file_is_named_with_a_generic_fix(tmp_path):
    path = tmp_path / "bank.npz"
    path.write_bytes(_good_npz(tmp_path / "x.npz")[:300])
    with pytest.raises(
        mio.ArrayFileError, match=re.escape(f"{path}: not a readable array file") + ".*--forcerun"
    ):
        mio.read_arrays(path)


def test_load_prepared_of_garbage_names_the_file(tmp_path):
    from mudiff.data import load_prepared

    path = tmp_path / "arrays.npz"
    path.write_bytes(b"definitely not arrays")
    with pytest.raises(ValueError, match=re.escape(str(path)) + ": not a readable prepared array file"):
        load_prepared(path)


def test_a_missing_array_file_is_still_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        mio.read_arrays(tmp_path / "nope.npz")


# ----------------------------------------------------------------------------- 5. null and non-integer ids


def _ids_table(path: Path, values) -> Path:
    pd.DataFrame({"id": values, "memorization": np.linspace(0, 1, len(values))}).to_parquet(path, index=False)
    return path


def test_read_ids_refuses_nan_naming_the_file_and_rows(tmp_path):
    path = _ids_table(tmp_path / "ids.parquet", [3.0, np.nan, 5.0, np.nan])
    with pytest.raises(mio.IdError) as err:
        mio.read_ids(path)
    msg = str(err.value)
    assert (
        msg.startswith(str(path)) and "2 of 4 rows hold null ids" in msg and "row 1" in msg and "row 3" in msg
    )
    assert "-9223372036854775808" not in msg


@pytest.mark.parametrize(
    "values, what",
    [
        ([1.0, 2.5], "non-integer ids: row 1 = 2.5"),
        ([1.0, np.inf], "non-integer ids: row 1 = inf"),
        (pd.array([1, None], dtype="Int64"), "null ids"),
        (["1", "2"], "values that are not integers"),
        ([True, False], "booleans"),
    ],
)
def test_read_ids_refuses_non_integer_ids(tmp_path, values, what):
    path = _ids_table(tmp_path / "ids.parquet", values)
    with pytest.raises(mio.IdError, match=re.escape(str(path)) + ".*" + re.escape(what)):
        mio.read_ids(path)


def test_read_ids_accepts_integers_and_integral_floats(tmp_path):
    assert mio.read_ids(_ids_table(tmp_path / "a.parquet", np.array([4, 2, 9]))).tolist() == [4, 2, 9]
    out = mio.read_ids(_ids_table(tmp_path / "b.parquet", [4.0, 2.0]))
    assert out.dtype == np.int64 and out.tolist() == [4, 2]
    assert mio.read_ids(_ids_table(tmp_path / "c.parquet", pd.array([7, 8], dtype="Int64"))).tolist() == [
        7,
        8,
    ]


def test_read_ids_without_the_column(tmp_path):
    path = tmp_path / "t.parquet"
    pd.DataFrame({"sample": [1]}).to_parquet(path)
    with pytest.raises(mio.IdError, match=re.escape(str(path)) + ": no column 'id'"):
        mio.read_ids(path)


def test_validate_ids_refuses_nan_before_any_cast():
    from mudiff.forget_sets import ForgetSetError, validate_ids

    with pytest.raises(
        ForgetSetError, match=r"results/x/ids\.parquet: column 'id': 1 of 3 rows hold null ids: row 2 = nan"
    ):
        validate_ids(np.array([1.0, 2.0, np.nan]), np.arange(5), "results/x/ids.parquet")


def test_building_from_a_scores_table_with_a_null_id_says_so():
    from mudiff import forget_sets
    from mudiff.forget_sets import ForgetSetError

    scores = pd.DataFrame(
        {"id": [0.0, 1.0, np.nan, 3.0], "label": [0, 1, 0, 1], "memorization": [0.1, 0.2, 0.3, 0.4]}
    )
    with pytest.raises(
        ForgetSetError, match="scores table: column 'id': 1 of 4 rows hold null ids: row 2"
    ) as err:
        forget_sets.build("memorization_high", scores, size=2)
    assert "-9223372036854775808" not in str(err.value)


def test_the_unlearn_stage_refuses_a_forget_set_with_a_nan_id(tmp_path, monkeypatch):
    from mudiff.stages import unlearn

    prepared = separable(n_train=20, n_test=8)
    ids = _ids_table(tmp_path / "ids.parquet", [1.0, np.nan, 4.0])
    monkeypatch.setattr(unlearn, "load_data", lambda path, device: (prepared, prepared.to(cpu())))
    job = {
        "rule": "unlearn",
        "study": "t",
        "seed": 0,
        "wildcards": {"method": "finetune", "forget_set": "random"},
        "params": {"hyper": {}, "model": "mlp", "device": "cpu", "train": {}},
        "input": {
            "arrays": str(tmp_path / "arrays.npz"),
            "forget_set": str(ids),
            "model": str(tmp_path / "m.pt"),
        },
        "output": {"model": str(tmp_path / "out.pt")},
    }
    monkeypatch.setattr(unlearn, "job_run", _no_tracking)
    with pytest.raises(
        mio.IdError, match=re.escape(str(ids)) + ": column 'id': 1 of 3 rows hold null ids: row 1 = nan"
    ):
        unlearn.run(job)
    assert not (tmp_path / "out.pt").exists()


class _NoRun:
    def set_tags(self, *a, **k):
        pass

    def log_metrics(self, *a, **k):
        pass


def _no_tracking(job):
    import contextlib

    @contextlib.contextmanager
    def cm():
        yield _NoRun()

    return cm()


# ----------------------------------------------------------------------------- 6. diverged unlearning


@pytest.fixture(scope="module")
def tiny():
    from mudiff.models import build
    from mudiff.training import Recipe, fit

    prepared = separable(n_train=40, n_test=16, seed=0, flip=4)
    data = prepared.to(cpu())
    target = fit(
        build("mlp", data.shape, 2, seed=0),
        data,
        torch.arange(40),
        Recipe(epochs=5, batch_size=16, lr=0.05),
        seed=0,
    )
    return prepared, data, target


TRAIN = {
    "epochs": 2,
    "batch_size": 16,
    "lr": 0.05,
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "schedule": "constant",
    "augment": False,
}


def _unlearn(tiny, method, hyper, train=TRAIN):
    from mudiff import methods
    from mudiff.stages.unlearn import unlearn_one

    prepared, data, target = tiny
    params = methods.get(method).Params(**hyper)
    from mudiff.sections import TrainConfig

    return unlearn_one(
        method, params, copy.deepcopy(target), prepared, data, np.arange(4), "mlp", TrainConfig(**train), 0
    )


@pytest.mark.parametrize(
    "method, hyper",
    [
        ("finetune", {"lr": 1e30, "epochs": 2, "batch_size": 16}),
        ("neggrad", {"lr": 1e30, "epochs": 2, "batch_size": 16}),
        ("finetune", {"lr": float("nan"), "epochs": 1, "batch_size": 16}),
    ],
)
def test_a_diverged_method_fails_naming_itself_its_settings_and_the_tensor(tiny, method, hyper):
    from mudiff.methods.base import DivergedError

    with pytest.raises(DivergedError) as err:
        _unlearn(tiny, method, hyper)
    msg = str(err.value)
    assert f"unlearning method {method!r} diverged" in msg
    assert re.search(r"(parameter|buffer) '[\w.]+' holds \d+ non-finite values", msg)
    assert "'lr': " in msg and f"lower its learning rate (unlearn.{method}.lr)" in msg


def test_a_diverged_retrain_names_the_target_recipe(tiny):
    from mudiff.methods.base import DivergedError

    with pytest.raises(DivergedError, match=r"'retrain' diverged.*target recipe.*'lr': 1e\+30.*train\.lr"):
        _unlearn(tiny, "retrain", {}, {**TRAIN, "lr": 1e30})


def test_a_sane_run_passes_the_check(tiny):
    done = _unlearn(tiny, "finetune", {"lr": 0.01, "epochs": 1, "batch_size": 16})
    assert all(torch.isfinite(p).all() for p in done.model.parameters())


def test_finite_weights_with_overflowing_logits_are_refused(tiny):
    from mudiff.methods.base import DivergedError, check_finite

    _, data, target = tiny
    model = copy.deepcopy(target)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(3e38)  # finite, but the products overflow to inf
    with pytest.raises(
        DivergedError, match="parameters are finite but its logits are not, on 40 of 40 train samples"
    ):
        check_finite(model, data, "finetune", {"lr": 0.01})


def test_a_non_finite_buffer_is_named(tiny):
    from mudiff.methods.base import DivergedError, check_finite

    _, data, target = tiny
    model = copy.deepcopy(target)
    model.register_buffer("running_thing", torch.tensor([1.0, float("inf")]))
    with pytest.raises(
        DivergedError, match=r"buffer 'running_thing' holds 1 non-finite values \(NaN or inf\) of 2"
    ):
        check_finite(model, data, "salun", {"lr": 0.01})


# ----------------------------------------------------------------------------- 5b. ids read by the other stages


def test_the_evaluate_stage_refuses_a_forget_set_with_a_nan_id(tmp_path, monkeypatch):
    from mudiff.stages import evaluate

    ids = _ids_table(tmp_path / "ids.parquet", [1.0, np.nan, 4.0])
    monkeypatch.setattr(evaluate, "job_run", _no_tracking)
    job = {
        "rule": "evaluate",
        "study": "t",
        "seed": 0,
        "wildcards": {"method": "finetune", "forget_set": "random"},
        "params": {"evaluate": {"mia_seed": 0, "inert_flip_share": 0.02}},
        "input": {
            "forget_set": str(ids),
            "predictions": str(tmp_path / "p.parquet"),
            "retrain_predictions": str(tmp_path / "r.parquet"),
            "record": str(tmp_path / "rec.json"),
            "retrain_record": str(tmp_path / "rrec.json"),
            "trace": str(tmp_path / "trace.parquet"),
        },
        "output": {"metrics": str(tmp_path / "metrics.json")},
    }
    with pytest.raises(
        mio.IdError, match=re.escape(str(ids)) + ": column 'id': 1 of 3 rows hold null ids: row 1 = nan"
    ):
        evaluate.run(job)
    assert not (tmp_path / "metrics.json").exists()


def test_the_report_refuses_a_forget_set_with_a_non_integer_id(tmp_path):
    from mudiff.stages.report import forget_set_table

    folder = tmp_path / "results" / "t" / "seed_0" / "forget_sets" / "memorization_high"
    folder.mkdir(parents=True)
    ids = _ids_table(folder / "ids.parquet", [1.0, 2.5])
    mio.write_json(
        {
            "name": "memorization_high",
            "rule": "top",
            "score": "memorization",
            "size": 2,
            "entanglement_score": 0.1,
        },
        folder / "manifest.json",
    )
    scores = pd.DataFrame({"id": np.arange(5), "memorization": np.linspace(0, 1, 5)})
    with pytest.raises(
        mio.IdError,
        match=re.escape(str(ids)) + ": column 'id': 1 of 2 rows hold non-integer ids: row 1 = 2.5",
    ):
        forget_set_table([str(folder / "manifest.json")], [str(ids)], {0: scores})


def test_the_forget_set_stage_names_a_scores_table_with_a_null_id(tmp_path, monkeypatch):
    from mudiff.stages import forget_set

    scores = tmp_path / "scores.parquet"
    pd.DataFrame(
        {"id": [0.0, 1.0, np.nan, 3.0], "label": [0, 1, 0, 1], "memorization": [0.1, 0.2, 0.3, 0.4]}
    ).to_parquet(scores, index=False)
    monkeypatch.setattr(forget_set, "job_run", _no_tracking)
    job = {
        "rule": "forget_set",
        "study": "t",
        "seed": 0,
        "wildcards": {"forget_set": "memorization_high"},
        "params": {"size": 2},
        "input": {"scores": str(scores), "embeddings": str(tmp_path / "emb.npz")},
        "output": {"ids": str(tmp_path / "ids.parquet"), "manifest": str(tmp_path / "manifest.json")},
    }
    with pytest.raises(
        mio.IdError, match=re.escape(str(scores)) + ": column 'id': 1 of 4 rows hold null ids: row 2 = nan"
    ):
        forget_set.run(job)
    assert not (tmp_path / "ids.parquet").exists()
