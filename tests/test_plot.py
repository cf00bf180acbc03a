"""`gpt2 plot`: the image's format is the one its suffix names, written atomically; the metrics
file is read strictly (one-line errors), except for a last line a running training is writing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from gpt2.cli.main import main
from gpt2.cli.plot import read_metrics

pytest.importorskip("matplotlib")

MAGIC = {
    "png": b"\x89PNG\r\n\x1a\n",
    "svg": b"<?xml",
    "pdf": b"%PDF",
    "jpg": b"\xff\xd8\xff",
    "jpeg": b"\xff\xd8\xff",
}


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    rows = [{"step": s, "loss": 6.0 - 0.1 * s, "lr": 1e-3} for s in range(1, 11)]
    rows += [{"step": 5, "val_loss": 5.6}, {"step": 10, "val_loss": 5.2}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run


def test_default_output_is_a_png_in_the_run_dir(run_dir, capsys):
    assert main(["plot", str(run_dir)]) == 0
    png = run_dir / "loss.png"
    assert capsys.readouterr().out.strip() == str(png)
    assert png.read_bytes().startswith(MAGIC["png"])


@pytest.mark.parametrize("suffix", ["svg", "pdf", "jpg", "jpeg", "PNG"])
def test_the_suffix_picks_the_format(run_dir, tmp_path, suffix):
    # `-o out.jpg` used to write PNG bytes under the .jpg name.
    out = tmp_path / f"curves.{suffix}"
    assert main(["plot", str(run_dir), "-o", str(out)]) == 0
    assert out.read_bytes().startswith(MAGIC[suffix.lower()])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["run", out.name])  # no temporaries


def test_an_existing_image_is_replaced(run_dir):
    out = run_dir / "loss.png"
    out.write_bytes(b"old")
    assert main(["plot", str(run_dir)]) == 0
    assert out.read_bytes().startswith(MAGIC["png"])
    assert sorted(p.name for p in run_dir.iterdir()) == ["loss.png", "metrics.jsonl"]


def test_read_metrics_keeps_the_last_value_of_a_step_and_skips_bad_steps(tmp_path):
    rows = [{"step": 1, "loss": 3.0}, {"step": 2, "loss": 2.5}, {"step": 2, "loss": 2.0},
            {"step": 3, "loss": float("nan")}, {"step": 4, "loss": 9.0, "skipped": True},
            {"step": 4, "val_loss": 2.2}, {"step": 4, "lr": "not a loss row"}]
    text = "".join(json.dumps(r) + "\n" for r in rows) + '{"step": 5, "lo'  # being written
    (tmp_path / "metrics.jsonl").write_text(text)
    assert read_metrics(tmp_path) == ([(1, 3.0), (2, 2.0)], [(4, 2.2)])


@pytest.mark.parametrize("content, message", [
    (b'{"step": 1, "loss": 2}\n\xff\xfe garbage\n{"step": 2, "loss": 1}\n', r"metrics.jsonl:2: not a JSON line"),
    (b'{"step": "one", "loss": 2}\n', r"metrics.jsonl:1: step must be an integer >= 0, got 'one'"),
    (b'{"step": 1, "loss": "low"}\n', r"metrics.jsonl:1: loss must be a number, got 'low'"),
    (b'[1, 2]\n', r"metrics.jsonl:1: expected a JSON object, got list"),
    (b"", r"metrics.jsonl: no loss recorded yet"),
])
def test_bad_metrics_are_one_line_and_write_nothing(tmp_path, capsys, content, message):
    (tmp_path / "metrics.jsonl").write_bytes(content)
    assert main(["plot", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(message, err), err
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.jsonl"]


@pytest.mark.parametrize("output, message", [
    ("missing/loss.png", "no such directory"),
    ("run/metrics.jsonl/loss.png", "is not a directory"),
    ("run", "a directory; give an image file name"),
    ("curves.txt", "suffix '.txt'; name the format"),
    ("curves", "no suffix; name the format"),
])
def test_bad_outputs_are_refused_before_drawing(run_dir, tmp_path, capsys, output, message):
    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert main(["plot", str(run_dir), "-o", str(tmp_path / output)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
