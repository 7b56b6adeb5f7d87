"""``list_models`` as in IQA-PyTorch, and listing the metrics without importing torch."""
import json
import os
import re
import subprocess
import sys

import pytest

import pyiqa
from pyiqa.archs.model_cards import MODEL_CARDS
from pyiqa.utils.errors import ConfigError


def test_list_models_by_mode_and_filter():
    assert pyiqa.list_models(metric_mode="NR") == pyiqa.list_models() == sorted(MODEL_CARDS)
    assert pyiqa.list_models("NR") == pyiqa.list_models()  # metric_mode is the first argument
    assert pyiqa.list_models(metric_mode="FR") == []  # every UniQA model is no-reference
    assert pyiqa.list_models(filter="*koniq") == ["uniqa-koniq"]
    assert pyiqa.list_models("NR", "*single") == ["uniqa-single"]


@pytest.mark.parametrize("mode, hint", [("nr", ""), ("*koniq", "list_models\\(filter='\\*koniq'\\)")])
def test_unknown_mode_is_a_config_error(mode, hint):
    with pytest.raises(ConfigError, match=f"unknown metric_mode '{re.escape(mode)}'.*'NR', 'FR'.*{hint}"):
        pyiqa.list_models(metric_mode=mode)


def _fresh(code, env_extra=None):
    env = {**os.environ, **(env_extra or {})}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout


HEAVY = "[m for m in ('torch', 'open_clip', 'numpy', 'PIL') if m in sys.modules]"


def test_pyiqa_list_imports_neither_torch_nor_open_clip(weights_env):
    """The time budget of ``pyiqa --list`` (well under 2 s), checked without a clock: importing torch
    and open_clip alone takes several seconds, and the listing imports neither."""
    out = _fresh("import sys; from pyiqa.cli import main; rc = main(['--list']); "
                 f"print('HEAVY', {HEAVY}); sys.exit(rc)")
    assert "HEAVY []" in out
    assert "uniqa-koniq" in out and "missing: UniQA_weight.pt, uniqa_koniq_adapter.pth" in out
    out = _fresh(f"import sys, pyiqa; names = pyiqa.list_models('NR'); print('HEAVY', {HEAVY}, len(names))")
    assert f"HEAVY [] {len(MODEL_CARDS)}" in out


def test_torch_free_weight_folders_match_torch_hub(weights_env, monkeypatch, tmp_path):
    """The listing's torch-free folder lookup finds what torch.hub would, for each environment."""
    import torch.hub

    from pyiqa.inference import weights
    for env in ({}, {"TORCH_HOME": None, "XDG_CACHE_HOME": str(tmp_path / "xdg")},
                {"TORCH_HOME": None, "XDG_CACHE_HOME": None}):
        for key, value in env.items():
            if value is None:
                monkeypatch.delenv(key, raising=False)
            else:
                monkeypatch.setenv(key, value)
        expected = [str(p) for p in weights.weight_dirs()]
        assert expected[-1] == os.path.join(torch.hub.get_dir(), "pyiqa")
        out = _fresh("import sys; from pyiqa.inference.weight_lookup import weight_dirs; "
                     "import json; assert 'torch' not in sys.modules; "
                     "print(json.dumps([str(p) for p in weight_dirs()]))")
        assert json.loads(out) == expected
