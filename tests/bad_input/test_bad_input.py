"""Every subcommand against a table of bad inputs (the rows: cases_<command>.py).

Each row must give exit code 2 (130 for SIGINT), one stderr line naming the problem, no traceback,
nothing on stdout, and nothing written or deleted (harness.py). A second test fails when an option
of any subcommand appears in no row: a new option needs its bad inputs here.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from pathlib import Path

import pytest

from . import harness

HERE = Path(__file__).parent


def _all_cases() -> list[harness.Case]:
    cases = []
    for module in pkgutil.iter_modules([str(HERE)]):
        if module.name.startswith("cases_"):
            cases += importlib.import_module(f"{__package__}.{module.name}").CASES
    return cases


CASES = _all_cases()


def test_the_table_is_well_formed():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})
    assert len(CASES) >= 150, f"only {len(CASES)} rows"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: harness.Case, assets, tmp_path):
    if case.setup:
        case.setup(tmp_path, assets)
    before = harness.snapshot(tmp_path, assets["root"])
    result = harness.run_case(case, tmp_path, assets)
    harness.check(case, result)
    if not case.may_write:
        after = harness.snapshot(tmp_path, assets["root"])
        changed = sorted(set(before.items()) ^ set(after.items()))
        assert not changed, f"[{case.id}] files written, changed or deleted: {changed[:10]}"


def _options_by_command() -> dict[str, set[str]]:
    from gpt2.cli.main import build_parser

    found: dict[str, set[str]] = {}

    def walk(parser: argparse.ArgumentParser, name: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub_name, sub in action.choices.items():
                    walk(sub, f"{name} {sub_name}".strip())
            elif action.option_strings and not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
                found.setdefault(name, set()).add(max(action.option_strings, key=len))
        found.setdefault(name, set())

    walk(build_parser(), "")
    found.pop("", None)
    return found


def test_every_option_has_a_row():
    used: dict[str, set[str]] = {}
    for case in CASES:
        for arg in case.argv:
            if arg.startswith("-"):
                used.setdefault(case.command, set()).add(arg.split("=", 1)[0])
    missing = {cmd: sorted(opts - used.get(cmd, set())) for cmd, opts in _options_by_command().items()}
    missing = {cmd: opts for cmd, opts in missing.items() if opts}
    assert not missing, f"options with no bad-input row: {missing}"
    commands = {c.command for c in CASES}
    assert set(_options_by_command()) <= commands, sorted(set(_options_by_command()) - commands)
