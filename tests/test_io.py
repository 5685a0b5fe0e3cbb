"""Loading state dicts safely (weights_only)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from mudiff.io import ModelFileError, load_state_dict, save_model


class Sneaky:
    """Unpickling this runs Path.touch(marker): code execution that weights_only must refuse."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_round_trip(tmp_path):
    model = torch.nn.Linear(3, 2)
    save_model(model, tmp_path / "m.pt")
    state = load_state_dict(tmp_path / "m.pt")
    assert set(state) == {"weight", "bias"}
    torch.testing.assert_close(state["weight"], model.weight.detach())


def test_corrupt_file(tmp_path):
    path = tmp_path / "corrupt.pt"
    path.write_bytes(b"\x00\x01 definitely not a torch file")
    with pytest.raises(ModelFileError, match=re.escape(str(path)) + ": not a loadable state dict"):
        load_state_dict(path)


def test_truncated_file(tmp_path):
    path = tmp_path / "m.pt"
    save_model(torch.nn.Linear(3, 2), path)
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(ModelFileError, match=re.escape(str(path))):
        load_state_dict(path)


def test_non_dict(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([torch.zeros(2)], path)
    with pytest.raises(ModelFileError, match=re.escape(str(path)) + ": holds list, not a state dict"):
        load_state_dict(path)


def test_dict_with_non_tensor_values(tmp_path):
    path = tmp_path / "d.pt"
    torch.save({"weight": torch.zeros(2), "epoch": 3}, path)
    with pytest.raises(ModelFileError, match=re.escape(str(path))):
        load_state_dict(path)


def test_pickled_object_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pt"
    torch.save({"weight": Sneaky(marker)}, path)
    assert not marker.exists()
    with pytest.raises(ModelFileError, match=re.escape(str(path))):
        load_state_dict(path)
    assert not marker.exists()  # the payload was never executed


def test_checkpoints_round_trip_and_load_safely(tmp_path):
    from mudiff.io import load_checkpoints, save_checkpoints

    states = {
        20: {"w": torch.ones(2), "b": torch.zeros(1)},
        10: {"w": torch.full((2,), 3.0), "b": torch.ones(1)},
    }
    save_checkpoints(states, tmp_path / "ck.pt")
    back = load_checkpoints(tmp_path / "ck.pt")
    assert list(back) == [10, 20]
    torch.testing.assert_close(back[10]["w"], torch.full((2,), 3.0))
    torch.save({"not-an-epoch": torch.ones(1)}, tmp_path / "bad.pt")
    with pytest.raises(ModelFileError, match="is not '<epoch>/<parameter>'"):
        load_checkpoints(tmp_path / "bad.pt")


def test_checkpoint_epochs_are_evenly_spaced_with_the_last():
    from mudiff.stages.train_target import checkpoint_epochs

    assert checkpoint_epochs(30, 3) == [10, 20, 30]
    assert checkpoint_epochs(5, 1) == [5]
    assert checkpoint_epochs(2, 5) == [1, 2]
