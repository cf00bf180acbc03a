"""The task registry: tasks are found from their package (no hand-kept list), each declares its
own settings, and `gpt2 eval --list` / `--help` show exactly what the registry holds."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import gpt2.evaluate.families as families
from gpt2.cli.main import main
from gpt2.errors import UsageError
from gpt2.evaluate import Setting, tasks
from gpt2.evaluate.registry import discover
from gpt2.evaluate.runner import check_settings

TASK_MODULE = '''
from gpt2.evaluate.options import shots
from gpt2.evaluate.types import Metric, Task

TASKS = [Task(name="{name}", family="{name}", description="a task in one file",
              run=lambda ctx, docs: [Metric("acc", 1.0, None, len(docs))],
              read=lambda path: [{{}}], data_format="anything",
              settings={{"shots": shots(3)}})]
'''


def _package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, modules: dict[str, str]):
    """A package `name` of task modules, importable from tmp_path."""
    root = tmp_path / name
    root.mkdir()
    (root / "__init__.py").write_text("")
    for module, text in modules.items():
        (root / f"{module}.py").write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    return importlib.import_module(name)


def test_every_module_of_the_package_is_found():
    files = {p.stem for p in Path(families.__file__).parent.glob("*.py")} - {"__init__"}
    found = {t.run.__module__.rpartition(".")[2] for t in tasks().values()}
    assert found == files


def test_a_module_added_to_the_package_is_found(tmp_path, monkeypatch):
    package = _package(tmp_path, monkeypatch, "some_tasks", {"alpha": TASK_MODULE.format(name="alpha"),
                                                "beta": TASK_MODULE.format(name="beta")})
    found = discover(package)
    assert list(found) == ["alpha", "beta"]
    assert found["alpha"].defaults == {"shots": 3}


def test_a_module_without_tasks_is_an_error_not_skipped(tmp_path, monkeypatch):
    package = _package(tmp_path, monkeypatch, "broken_tasks", {"forgot": "X = 1\n"})
    with pytest.raises(TypeError, match="broken_tasks.forgot declares no TASKS"):
        discover(package)


def test_a_task_name_twice_is_an_error(tmp_path, monkeypatch):
    package = _package(tmp_path, monkeypatch, "twice_tasks", {"a": TASK_MODULE.format(name="same"),
                                                 "b": TASK_MODULE.format(name="same")})
    with pytest.raises(ValueError, match="task 'same' declared twice"):
        discover(package)


def test_each_task_declares_its_settings():
    for task in tasks().values():
        assert all(isinstance(s, Setting) for s in task.settings.values()), task.name
    nq = tasks()["nq_open"]
    check_settings(nq, {"shots": 0})
    with pytest.raises(UsageError, match=r"--shots must be an integer in \[0, 10000\], got 'x'"):
        check_settings(nq, {"shots": "x"})
    with pytest.raises(UsageError, match=r"task nq_open has no setting stride \(its settings: shots, max_new_tokens\)"):
        check_settings(nq, {"stride": 8})


def test_list_is_the_registry(capsys):
    assert main(["eval", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(None, 1) for line in lines] == [[n, t.description] for n, t in tasks().items()]


def test_help_names_every_task(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    out = capsys.readouterr().out
    listed = out.split("tasks (gpt2 eval --list describes them):", 1)[1]
    assert listed.replace("\n", " ").replace(",", " ").split() == list(tasks())
