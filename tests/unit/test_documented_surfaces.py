"""Production code relies only on what Looker documents (issue 15, ../shared/notes/looker-facts.md).

The tests run against a Looker stand-in (tests/standin) that also has test-only helpers: its
/standin/ paths, its standin_* tables, its X-Standin-* headers, the download-API stand-in's
/_control, whoami. Nothing under roles/, playbooks/ or plugins/ (nor the root site.yml) may name
them. Of Looker's health and version endpoints only these are documented: the status code of
/alive and /availability (their bodies have no schema), and the fields of /api/4.0/versions below.
"""
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

TEST_ONLY_HELPERS = {
    "the stand-in's /standin/ paths": re.compile(r"/standin/"),
    "a stand-in table (standin_*)": re.compile(r"\bstandin_\w"),
    "a stand-in header (X-Standin-*)": re.compile(r"x-standin", re.IGNORECASE),
    "the download-API stand-in's /_control": re.compile(r"/_control\b"),
    "the stand-in's whoami": re.compile(r"whoami", re.IGNORECASE),
}
# Looker API 4.0, type ApiVersion (GET /api/4.0/versions).
VERSIONS_FIELDS = {"looker_release_version", "current_version", "supported_versions", "api_server_url", "web_server_url"}
# What a registered uri result says about the response without its body.
RESPONSE_METADATA = {"status", "msg", "url", "elapsed", "redirected", "failed", "changed", "skipped", "attempts"}
URI_MODULES = {"ansible.builtin.uri", "uri"}
# Code other than YAML tasks (modules, scripts, templates) that makes HTTP requests itself.
MAKES_REQUESTS = re.compile(r"urlopen|http\.client|requests\.(?:get|post)|\bcurl\b|\bwget\b")


def production_files():
    files = [ROOT / "site.yml"]
    for top in ("roles", "playbooks", "plugins"):
        files += [p for p in (ROOT / top).rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    return sorted(files)


FILES = {path.relative_to(ROOT).as_posix(): path.read_text(errors="replace") for path in production_files()}
CODE = {name: text for name, text in FILES.items() if not name.endswith(".md")}
YAML = {name: text for name, text in CODE.items() if name.endswith((".yml", ".yaml"))}


def uri_tasks(node):
    """Every task that calls the uri module, anywhere in a YAML document."""
    if isinstance(node, dict):
        if URI_MODULES & set(node):
            yield node
        for value in node.values():
            yield from uri_tasks(value)
    elif isinstance(node, list):
        for item in node:
            yield from uri_tasks(item)


def requests_of(path_fragment):
    """[(file, task)] of the uri tasks whose URL names path_fragment."""
    found = []
    for name, text in YAML.items():
        for task in uri_tasks(yaml.safe_load(text)):
            args = next(task[key] for key in URI_MODULES if key in task)
            if isinstance(args, dict) and path_fragment in str(args.get("url", "")):
                found.append((name, task))
    return found


def reads_of(register):
    """[(file, line number, what is read)] for every `register.<attr>` or `register['attr']` in the code."""
    pattern = re.compile(rf"\b{re.escape(register)}\b((?:\s*(?:\.\w+|\[\s*['\"]\w+['\"]\s*\]))*)")
    found = []
    for name, text in CODE.items():
        for number, line in enumerate(text.splitlines(), 1):
            for match in pattern.finditer(line):
                found.append((name, number, re.findall(r"\w+", match.group(1))))
    return found


def requested_outside_uri_tasks(path_fragment):
    """Code that makes its own HTTP requests (Python, scripts, templates) and names the endpoint: nothing there
    proves which part of the answer is read, so it is refused (ask it from a uri task instead)."""
    return [f"{name}: requests {path_fragment} outside a uri task" for name, text in CODE.items()
            if name not in YAML and path_fragment in text and MAKES_REQUESTS.search(text)]


def test_the_checks_see_the_production_code():
    assert "playbooks/verify.yml" in FILES and "roles/looker_node/tasks/main.yml" in FILES and "site.yml" in FILES
    assert requests_of("/alive"), "no uri task asks /alive: the YAML walk is broken"


@pytest.mark.parametrize("helper", sorted(TEST_ONLY_HELPERS))
def test_no_test_only_helper_of_the_stand_in_is_named(helper):
    pattern = TEST_ONLY_HELPERS[helper]
    hits = [f"{name}:{number}: {line.strip()}"
            for name, text in FILES.items() for number, line in enumerate(text.splitlines(), 1) if pattern.search(line)]
    assert not hits, f"production code names {helper}, which only the tests' stand-in has:\n" + "\n".join(hits)


def test_availability_is_used_for_its_status_code_only():
    problems = []
    for name, task in requests_of("/availability"):
        args = next(task[key] for key in URI_MODULES if key in task)
        if args.get("return_content"):
            problems.append(f"{name}: task {task.get('name')!r} asks for the body of /availability")
        if task.get("register"):
            for file, number, attrs in reads_of(task["register"]):
                if attrs and attrs[0] not in RESPONSE_METADATA:
                    problems.append(f"{file}:{number}: reads {task['register']}.{'.'.join(attrs)} of /availability")
    problems += requested_outside_uri_tasks("/availability")
    assert not problems, "the body of /availability has no documented schema:\n" + "\n".join(problems)


def test_versions_is_read_for_documented_fields_only():
    problems = []
    for name, task in requests_of("/api/4.0/versions"):
        for file, number, attrs in reads_of(task.get("register", "")) if task.get("register") else []:
            if not attrs or attrs[0] in RESPONSE_METADATA:
                continue
            if attrs[0] != "json":
                problems.append(f"{file}:{number}: reads {task['register']}.{attrs[0]} (parse .json fields instead)")
            elif len(attrs) < 2:
                problems.append(f"{file}:{number}: uses the whole body of /api/4.0/versions; read documented fields only")
            elif attrs[1] not in VERSIONS_FIELDS:
                problems.append(f"{file}:{number}: reads {attrs[1]!r} of /api/4.0/versions, not a documented field")
    problems += requested_outside_uri_tasks("/api/4.0/versions")
    assert not problems, f"documented fields of /api/4.0/versions: {sorted(VERSIONS_FIELDS)}\n" + "\n".join(problems)
