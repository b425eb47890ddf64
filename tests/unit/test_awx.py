"""AWX / Automation Platform readiness: the execution environment definition (checked by
ansible-builder itself) and the job templates' survey specs (docs/awx.md, awx/surveys/*.json)."""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SURVEYS = sorted((ROOT / "awx" / "surveys").glob("*.json"))
DOCS = (ROOT / "docs" / "awx.md").read_text()
BIN = Path(sys.executable).parent
# The question types and fields AWX's survey_spec endpoint accepts.
TYPES = {"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}
FIELDS = {"question_name", "question_description", "required", "type", "variable", "min", "max", "default",
          "choices", "new_question"}


def role_options():
    """Every option of every entry point of every role (meta/argument_specs.yml)."""
    options = set()
    for spec in ROOT.glob("roles/*/meta/argument_specs.yml"):
        for entry in yaml.safe_load(spec.read_text())["argument_specs"].values():
            options.update(entry.get("options", {}))
    return options


def templates():
    """{survey file: playbook} from the job template table of docs/awx.md."""
    rows = re.findall(r"^\|[^|\n]*\|\s*`([^`]+\.yml)`\s*\|.*?`(awx/surveys/[^`]+\.json)`", DOCS, re.MULTILINE)
    return {survey: playbook for playbook, survey in rows}


def test_there_is_a_survey_per_template_and_a_template_per_survey():
    documented = templates()
    assert documented, "docs/awx.md has no job template table"
    assert sorted(documented) == sorted(f"awx/surveys/{p.name}" for p in SURVEYS)
    for playbook in documented.values():
        assert (ROOT / playbook).is_file(), playbook


@pytest.mark.parametrize("path", SURVEYS, ids=lambda p: p.name)
def test_survey_spec_is_valid_for_awx(path):
    survey = json.loads(path.read_text())
    assert set(survey) == {"name", "description", "spec"}
    assert survey["name"] and isinstance(survey["description"], str)
    assert isinstance(survey["spec"], list) and survey["spec"]
    variables = [q["variable"] for q in survey["spec"]]
    assert len(variables) == len(set(variables)), "a variable is asked twice"
    for question in survey["spec"]:
        assert set(question) <= FIELDS, set(question) - FIELDS
        assert {"question_name", "required", "type", "variable"} <= set(question)
        assert question["type"] in TYPES
        assert isinstance(question["required"], bool)
        assert re.match(r"^[a-zA-Z_][a-zA-Z0-9_]*$", question["variable"])
        default = question.get("default")
        if question["type"] in ("integer", "float"):
            assert isinstance(question["min"], int) and isinstance(question["max"], int)
            assert question["min"] <= default <= question["max"]
        if question["type"] in ("text", "textarea", "password"):
            assert isinstance(default, str) and len(default) <= question["max"]
            assert question.get("min", 0) <= question["max"]
        if question["type"] in ("multiplechoice", "multiselect"):
            assert isinstance(question["choices"], list) and len(question["choices"]) >= 2
            assert default in question["choices"]
        # Secrets belong in credentials: a survey asks for none, not even as a password.
        assert not re.search(r"password|secret|license_key|master_key", question["variable"])


@pytest.mark.parametrize("path", SURVEYS, ids=lambda p: p.name)
def test_survey_variables_are_options_of_the_roles_or_of_the_playbook(path):
    playbook = (ROOT / templates()[f"awx/surveys/{path.name}"]).read_text()
    options = role_options()
    for question in json.loads(path.read_text())["spec"]:
        variable = question["variable"]
        assert variable in options or re.search(rf"\b{variable}\b", playbook), (
            f"{path.name}: {variable} is neither a role option (meta/argument_specs.yml) nor used by the playbook")


def test_execution_environment_definition():
    ee = yaml.safe_load((ROOT / "execution-environment.yml").read_text())
    assert ee["version"] == 3
    base = ee["images"]["base_image"]["name"]
    # A local image name, never a registry host (a first component with a dot or a port).
    first = base.split("/")[0]
    assert first == "localhost" or ("." not in first and ":" not in first), base
    deps = ee["dependencies"]
    for key in ("python", "galaxy", "system"):
        assert (ROOT / deps[key]).is_file(), deps[key]
    # The galaxy requirements are the collection's own dependencies, with the same ranges.
    wanted = yaml.safe_load((ROOT / "galaxy.yml").read_text())["dependencies"]
    listed = {c["name"]: c["version"] for c in yaml.safe_load((ROOT / deps["galaxy"]).read_text())["collections"]}
    assert listed == wanted


def test_ansible_builder_creates_the_build_context(tmp_path):
    """`ansible-builder create` on a copy of the definition, with the collection built from this checkout."""
    work = tmp_path / "ee"
    work.mkdir()
    ee = yaml.safe_load((ROOT / "execution-environment.yml").read_text())
    shutil.copy(ROOT / "execution-environment.yml", work)
    for key in ("python", "galaxy", "system"):
        shutil.copy(ROOT / ee["dependencies"][key], work)
    built = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(work / ".build"), str(ROOT)],
                           capture_output=True, text=True, check=False)
    assert built.returncode == 0, built.stdout + built.stderr
    version = yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]
    created = subprocess.run([str(BIN / "ansible-builder"), "create", "--file", "execution-environment.yml",
                              "--context", str(work / "context"), "--output-filename", "Containerfile"],
                             cwd=work, capture_output=True, text=True, check=False)
    assert created.returncode == 0, created.stdout + created.stderr
    containerfile = (work / "context" / "Containerfile").read_text()
    assert 'ARG EE_BASE_IMAGE="localhost/lookerops-ee-base:latest"' in containerfile
    assert 'ARG ANSIBLE_INSTALL_REFS="ansible-core==2.19.14 ansible-runner==2.4.3"' in containerfile
    assert "-r requirements.yml" in containerfile and "--user-bindep=bindep.txt" in containerfile
    assert "/tmp/lookerops-collection/lookerops-cluster-*.tar.gz" in containerfile
    build = work / "context" / "_build"
    assert (build / "collection" / f"lookerops-cluster-{version}.tar.gz").is_file()
    for key in ("python", "galaxy", "system"):
        assert (build / ee["dependencies"][key]).read_text() == (ROOT / ee["dependencies"][key]).read_text()
