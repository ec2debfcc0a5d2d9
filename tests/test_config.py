"""Configs from files and from the command line (`--set section.key=value`), validated alike."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ecgnet.cli import app
from ecgnet.config import load_config
from ecgnet.errors import ECGNetError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
BASELINE = CONFIGS / "baseline_time.yaml"


def test_overrides_change_only_what_they_name():
    cfg = load_config(BASELINE, ["training.epochs=2", "model.params.dropout=0.1", "data.augment=[noise]"])
    base = load_config(BASELINE)
    assert cfg.training.epochs == 2 and cfg.model.params["dropout"] == 0.1 and cfg.data.augment == ["noise"]
    assert cfg.model.params["widths"] == base.model.params["widths"]
    assert cfg.training.lr == base.training.lr and cfg.name == base.name


def test_an_override_can_add_a_model_parameter():
    assert load_config(BASELINE, ["model.params.center=true"]).model.params["center"] is True


@pytest.mark.parametrize("item, fragment", [
    ("training.epoch=2", "training.epoch"),  # a typo: unknown field, named
    ("training.epochs=-1", "training.epochs"),  # validated like the file
    ("training.epochs", "expected KEY=VALUE"),
    ("=3", "expected KEY=VALUE"),
    ("training..epochs=3", "expected KEY=VALUE"),
    ("training.epochs=[1", "not valid YAML"),
])
def test_bad_overrides_are_one_clear_error(item, fragment):
    with pytest.raises(ECGNetError, match="--set") as info:
        load_config(BASELINE, [item])
    assert fragment in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("item, hint", [
    ("training.epoch=2", "(did you mean training.epochs?)"),  # a close spelling
    ("training.seed=3", "(did you mean seed?)"),  # the same key in another section
    ("training.zzzzzz=3", None),  # nothing close: no guess
])
def test_an_unknown_key_suggests_the_one_meant(item, hint):
    with pytest.raises(ECGNetError) as info:
        load_config(BASELINE, [item])
    assert (hint in str(info.value)) if hint else "did you mean" not in str(info.value)


def test_train_validates_overrides_before_anything_else(tmp_path, monkeypatch):
    """Through the CLI: a bad --set is a usage error (exit 2) naming the field, before data is looked for."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["train", "-c", str(BASELINE), "--set", "training.epochs=zero"])
    assert result.exit_code == 2 and "training.epochs" in result.stderr


def test_merged_config_round_trips(tmp_path):
    from ecgnet.config import dump_config

    cfg = load_config(BASELINE, ["training.epochs=3"])
    (tmp_path / "c.yaml").write_text(dump_config(cfg))
    assert yaml.safe_load((tmp_path / "c.yaml").read_text())["training"]["epochs"] == 3
    assert load_config(tmp_path / "c.yaml") == cfg


@pytest.mark.parametrize("command, config, said", [
    ("train", "pretrain_simclr_time.yaml", "a pretraining config, not a training one: run it with `ecgnet pretrain -c`"),
    ("pretrain", "fast_time.yaml", "a training config, not a pretraining one: run it with `ecgnet train -c`"),
    ("train", "sweeps/intermediate_concat.yaml", "a sweep's search space (dotted keys), not a config"),
])
def test_another_commands_file_is_named_as_such(tmp_path, command, config, said):
    result = CliRunner().invoke(app, [command, "-c", str(CONFIGS / config), "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2 and said in " ".join(result.output.split()), result.output
    assert "Extra inputs" not in result.output and not any(tmp_path.iterdir())
    with pytest.raises(ECGNetError, match="Extra inputs are not permitted"):  # a mistyped key is still listed
        load_config(CONFIGS / "fast_time.yaml", ["training.simclr=1"])


@pytest.mark.parametrize("name", ["..", ".", ".hidden", "a/b", ""])
def test_a_run_name_cannot_leave_or_hide_in_the_runs_folder(name):
    with pytest.raises(ECGNetError, match="name"):
        load_config(BASELINE, [f"name='{name}'"])
    assert load_config(BASELINE, ["name=v1.2_a-b"]).name == "v1.2_a-b"


def test_a_config_that_gives_a_key_twice_is_refused(tmp_path):
    """PyYAML keeps the last of two 'lr:' lines without a word; a config is one error naming the line instead."""
    from ecgnet.config import load_config

    path = tmp_path / "c.yaml"
    path.write_text("name: x\ntraining:\n  lr: 0.001\n  epochs: 3\n  lr: 0.1\n")
    with pytest.raises(ECGNetError, match=r"c.yaml line 5: 'lr' is given twice \(also on line 3\)"):
        load_config(path)
    from ecgnet.config import read_yaml

    merged = tmp_path / "m.yaml"  # merge keys are YAML's own: an anchor merged into itself is not a key given twice
    merged.write_text("a: {deeper: {mid: &m {<<: {x: 1}, x: 2}}}\ntop: {<<: *m}\n")
    assert read_yaml(merged, "config") == yaml.safe_load(merged.read_text())
