"""Every role's meta/argument_specs.yml and defaults/main.yml must agree.

A user reads argument_specs (ansible-doc, validation) while the play runs with defaults/main.yml:
an option missing from one of them, or a different default, is a documentation lie.
"""
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = sorted(p.parent.parent for p in ROOT.glob("roles/*/meta/argument_specs.yml"))


def spec_disagreements(role_dir):
    """Return a list of human-readable disagreements between argument_specs and defaults."""
    specs = yaml.safe_load((role_dir / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    defaults_file = role_dir / "defaults" / "main.yml"
    defaults = yaml.safe_load(defaults_file.read_text()) if defaults_file.exists() else {}
    defaults = defaults or {}
    problems = []
    options = specs.get("main", {}).get("options", {})
    for name, option in options.items():
        if "default" in option:
            if name not in defaults:
                problems.append(f"{name}: default in argument_specs but not in defaults/main.yml")
            elif defaults[name] != option["default"]:
                problems.append(f"{name}: argument_specs default {option['default']!r} != defaults/main.yml {defaults[name]!r}")
        elif name in defaults and not option.get("required"):
            problems.append(f"{name}: defaults/main.yml sets {defaults[name]!r} but argument_specs has no default")
        if option.get("required") and name in defaults:
            problems.append(f"{name}: required in argument_specs yet defaulted in defaults/main.yml")
    for name in defaults:
        if name not in options:
            problems.append(f"{name}: in defaults/main.yml but not documented in argument_specs")
    return problems


@pytest.mark.parametrize("role_dir", ROLES, ids=[r.name for r in ROLES])
def test_role_specs_match_defaults(role_dir):
    assert spec_disagreements(role_dir) == []


def test_every_role_has_argument_specs():
    roles = sorted(p for p in (ROOT / "roles").iterdir() if p.is_dir()) if (ROOT / "roles").is_dir() else []
    missing = [r.name for r in roles if not (r / "meta" / "argument_specs.yml").exists()]
    assert missing == []


def _role(tmp_path, spec, defaults):
    (tmp_path / "meta").mkdir()
    (tmp_path / "defaults").mkdir()
    (tmp_path / "meta" / "argument_specs.yml").write_text(yaml.safe_dump({"argument_specs": {"main": {"options": spec}}}))
    (tmp_path / "defaults" / "main.yml").write_text(yaml.safe_dump(defaults))
    return tmp_path


def test_checker_accepts_agreeing_role(tmp_path):
    role = _role(tmp_path, {"x_port": {"type": "int", "default": 1}, "x_password": {"type": "str", "required": True}}, {"x_port": 1})
    assert spec_disagreements(role) == []


@pytest.mark.parametrize(
    "spec, defaults, expected",
    [
        ({"x_port": {"type": "int", "default": 1}}, {"x_port": 2}, "argument_specs default 1 != defaults/main.yml 2"),
        ({"x_port": {"type": "int", "default": 1}}, {}, "default in argument_specs but not in defaults"),
        ({}, {"x_port": 1}, "not documented in argument_specs"),
        ({"x_port": {"type": "int"}}, {"x_port": 1}, "argument_specs has no default"),
        ({"x_pw": {"type": "str", "required": True}}, {"x_pw": "s"}, "required in argument_specs yet defaulted"),
    ],
)
def test_checker_reports_each_disagreement(tmp_path, spec, defaults, expected):
    problems = spec_disagreements(_role(tmp_path, spec, defaults))
    assert any(expected in p for p in problems), problems
