"""Loading the model: a torchvision built for another torch is recognised and the fix is given."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from stepwise.cli import main
from stepwise.cli.loading import version_mismatch_hint

MISMATCH = "operator torchvision::nms does not exist"

MODULES = {
    # a model module that imports torchvision at its top, as most do
    "at import": f"raise RuntimeError({MISMATCH!r})\n",
    # a factory that imports torchvision when it builds the model
    "in the factory": f"def build():\n    raise RuntimeError({MISMATCH!r})\n",
}


@pytest.mark.parametrize("where", list(MODULES))
def test_a_torchvision_of_another_torch_is_explained(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    name = f"vision_net_{where.replace(' ', '_')}"
    (tmp_path / f"{name}.py").write_text(MODULES[where])
    monkeypatch.chdir(tmp_path)  # the command imports --model modules from the current folder
    monkeypatch.syspath_prepend(str(tmp_path))
    data = tmp_path / "data.pt"
    torch.save(torch.zeros(2, 3, 8, 8), data)
    with pytest.raises(SystemExit) as stop:
        main(["analyse", "--model", f"{name}:build", "--data", str(data), "--out", str(tmp_path / "out")])
    assert stop.value.code == 2
    error = capsys.readouterr().err
    assert MISMATCH in error
    assert "torchvision was built for another torch than the installed torch" in error, error
    assert "pip install torch==2.14.1 torchvision==0.29.1" in error and "--index-url" in error
    assert not (tmp_path / "out").exists()


def test_other_errors_get_no_torchvision_hint() -> None:
    assert version_mismatch_hint(RuntimeError("CUDA out of memory")) == ""
    assert version_mismatch_hint(ImportError("No module named 'torchvision'")) == ""
    assert "matching pair" in version_mismatch_hint(RuntimeError(MISMATCH))


def test_a_module_that_fails_on_import_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "broken_net.py").write_text("x = 1 / 0\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    torch.save(torch.zeros(2, 3), tmp_path / "data.pt")
    with pytest.raises(SystemExit) as stop:
        main(["levels", "--model", "broken_net:build", "--data", str(tmp_path / "data.pt")])
    assert stop.value.code == 2
    error = capsys.readouterr().err
    assert "importing module 'broken_net' raised ZeroDivisionError: division by zero" in error, error
    assert "Fix the error in the module" in error and "torchvision" not in error
