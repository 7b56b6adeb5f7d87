"""Limits of the ``pyiqa`` command: ``-o`` into a folder that cannot take the CSV fails at once, before
any image is scored (it used to score everything and then fail, or print an errno about a path
component); ``--max-image-pixels 0`` still refuses a decompression bomb that cannot fit in memory (it
used to end in a MemoryError)."""
import os
import resource
import struct
import subprocess
import sys
import zlib

from pyiqa.cli import main


def _unwritable_folder(tmp_path):
    if os.geteuid() == 0:  # root writes through any mode bits; /proc takes no new files
        return "/proc"
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    return str(folder)


def test_output_in_a_folder_that_cannot_be_written_is_one_error(image_dir, tmp_path, capsys):
    folder = _unwritable_folder(tmp_path)
    # a backbone that does not exist is never reached: the output is checked first
    args = ["uniqa-single", "-t", str(image_dir), "--backbone", str(tmp_path / "none.pt"), "-q"]
    assert main([*args, "-o", f"{folder}/scores.csv"]) == 2
    err = capsys.readouterr().err
    assert f"cannot create files in the folder '{folder}'" in err and "Traceback" not in err
    (tmp_path / "afile").write_text("keep")
    assert main([*args, "-o", str(tmp_path / "afile" / "sub" / "scores.csv")]) == 2
    err = capsys.readouterr().err
    assert f"'{tmp_path / 'afile'}' is a file, not a folder" in err
    assert (tmp_path / "afile").read_text() == "keep"


def _png_bomb(path, side):
    """A PNG of a few KiB whose header declares side x side RGB pixels (decoded: 4 * side**2 bytes)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\0" * (1 + 3 * side) * 4)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b""))
    return path


def _limit_memory():  # a bug here must fail the test, not exhaust the machine
    resource.setrlimit(resource.RLIMIT_AS, (16 * 2 ** 30, 16 * 2 ** 30))


def test_no_pixel_limit_still_refuses_a_bomb_that_cannot_fit_in_memory(backbone_file, tmp_path):
    bomb = _png_bomb(tmp_path / "bomb.png", 200_000)  # 4e10 pixels: 160 GB decoded
    cmd = [sys.executable, "-c", "import sys; from pyiqa.cli import main; sys.exit(main())", "uniqa-single",
           "-t", str(bomb), "--backbone", str(backbone_file), "--device", "cpu", "--max-image-pixels", "0", "-q"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, preexec_fn=_limit_memory,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 1, proc.stderr[-2000:]  # 1: a file could not be read (the others would be scored)
    assert "--max-image-pixels 0: images above" in proc.stderr and "of available memory" in proc.stderr
    assert "FAILED" in proc.stderr and "Image size (40000000000 pixels) exceeds limit" in proc.stderr
    assert "Traceback" not in proc.stderr and "MemoryError" not in proc.stderr
