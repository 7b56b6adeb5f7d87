"""Option values the ``pyiqa`` command and ``create_metric`` refuse in one line, naming the option, the
value and what is expected, before a weight file is read: the bad-input sweep found ``--num-crops
100000000`` running for hours, ``--max-image-pixels -5`` accepted, and ``--device gpu9`` ending in
torch's RuntimeError traceback."""
import pytest
import torch

import pyiqa
from pyiqa.cli import main
from pyiqa.utils.devices import resolve_device
from pyiqa.utils.errors import ConfigError

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is there")


def error_line(extra, image_dir, tmp_path, capsys):
    # the backbone does not exist: a value check that ran after the weight lookup would say so instead
    code = main(["uniqa", "-t", str(image_dir), "--backbone", str(tmp_path / "none.pt"), "-q", *extra])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1, err
    return err.rstrip("\n")


@pytest.mark.parametrize("extra, message", [
    (["--num-crops", "100000000"],
     "'--num-crops' must be an integer >= 1 and at most 1,000 (a sane bound; no run needs more), got 100000000"),
    (["--num-crops", "0"], "'--num-crops' must be an integer >= 1, got 0"),
    (["--max-image-pixels", "-5"], "--max-image-pixels must be 0 (no limit beyond what fits in memory) or a "
                                   "positive number of pixels, got -5"),
    (["--max-side", "-1"], "'--max-side' must be an integer >= 0, got -1"),
    (["--batch-size", "0"], "'--batch-size' must be an integer >= 1, got 0"),
    (["--device", "gpu9"], "--device 'gpu9' is not a device; expected cpu, cuda or cuda:N"),
    (["--device", "meta"], "--device 'meta': meta devices are not supported; expected cpu, cuda or cuda:N"),
    pytest.param(["--device", "cuda:1"], "--device 'cuda:1': CUDA is not available on this machine "
                 "(torch.cuda.is_available() is False); use --device cpu", marks=NO_CUDA),
])
def test_bad_values_are_one_line(extra, message, image_dir, tmp_path, capsys):
    assert error_line(extra, image_dir, tmp_path, capsys) == f"pyiqa: error: {message}"


def test_limits_still_accepted(image_dir, backbone_file, capsys):
    """--num-crops 1000 (the bound) and --max-image-pixels 0 (no limit beyond memory) are valid values;
    main(argv) leaves this process's Pillow limit as it found it."""
    from PIL import Image
    limit = Image.MAX_IMAGE_PIXELS
    code = main(["uniqa-single", "-t", str(image_dir / "img1.png"), "--backbone", str(backbone_file), "-q",
                 "--device", "cpu", "--crops", "center", "--num-crops", "1000", "--max-image-pixels", "0",
                 "--max-side", "64"])
    assert code == 0, capsys.readouterr().err
    assert Image.MAX_IMAGE_PIXELS == limit


def test_create_metric_checks_the_same(backbone_file):
    with pytest.raises(ConfigError, match=r"^'num_crops' must be an integer >= 1 and at most 1,000 .* got 1001$"):
        pyiqa.create_metric("uniqa", backbone=backbone_file, num_crops=1001)
    with pytest.raises(ConfigError, match=r"^'num_crops' must be an integer >= 1, got True$"):
        pyiqa.create_metric("uniqa", backbone=backbone_file, num_crops=True)
    with pytest.raises(ConfigError, match=r"^device 'gpu9' is not a device; expected cpu, cuda or cuda:N$"):
        pyiqa.create_metric("uniqa", backbone=backbone_file, device="gpu9")


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu") == resolve_device(torch.device("cpu"))
    assert resolve_device(" cpu ") == torch.device("cpu")
    assert resolve_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    for bad in ("", "gpu9", "cuda:x", "cuda:-1", 3.5):
        with pytest.raises(ConfigError, match="is not a device; expected cpu, cuda or cuda:N"):
            resolve_device(bad, "--device")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match=r"^device 'cuda': CUDA is not available .* use device='cpu'$"):
            resolve_device("cuda")
    else:
        count = torch.cuda.device_count()
        assert resolve_device("cuda:0") == torch.device("cuda:0")
        with pytest.raises(ConfigError, match=f"has {count} CUDA device"):
            resolve_device(f"cuda:{count}")
