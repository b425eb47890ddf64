"""lookerops.cluster.looker_jar run through ansible-playbook against the download-API stand-in.

The stand-in (tests/standin/download_api.py) serves small generated jars as releases: a manifest
naming the release (Implementation-Version, as tests/standin/build.sh writes it) and filler. These
tests are about the module's protocol, checksums, manifests, atomicity and messages.
"""
import functools
import hashlib
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[2]
LICENSE = "LKR-TEST-LICENSE-7f3a9c"
EMAIL = "ops-7f3a9c@example.com"
RELEASES = ("25.6.3", "25.6.12", "25.8.3")


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def jars_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("releases")
    for release in RELEASES:
        (root / release).mkdir()
        for name in ("looker.jar", "looker-dependencies.jar"):
            make_jar(root / release / name, release, filler=f"{release}/{name}")
    return root


def make_jar(path, implementation_version, filler="x"):
    """A jar (zip) whose manifest names implementation_version (None: no such line), with distinct
    filler big enough that a cut transfer is visible."""
    manifest = "Manifest-Version: 1.0\r\nImplementation-Title: looker_jar test jar\r\n"
    if implementation_version is not None:
        manifest += f"Implementation-Version: {implementation_version}\r\n"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as jar:
        jar.writestr("META-INF/MANIFEST.MF", manifest + "\r\n")
        jar.writestr("filler.bin", hashlib.sha512(filler.encode()).digest() * 4096)
    return path


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class DownloadApi:
    def __init__(self, jars_dir):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tests/standin/download_api.py"), "--jars-dir", str(jars_dir),
             "--license", LICENSE, "--email", EMAIL, "--port", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for attempt in range(100):  # pylint: disable=unused-variable
            try:
                self.control(mode="ok")
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("download API stand-in did not start")

    def control(self, **body):
        request = urllib.request.Request(f"{self.url}/_control", data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def api(jars_dir):
    server = DownloadApi(jars_dir)
    yield server
    server.stop()


@pytest.fixture
def fresh_api(api):
    api.control(mode="ok", ttl=600, reset=True)
    return api


@pytest.fixture
def looker_jar(tmp_path):
    """Run the module once, as Ansible runs it (a child python given its arguments as JSON).

    Returns .result (what the module returned) and .output (everything it printed)."""

    def _run(check=False, diff=False, **args):
        args_file = tmp_path / "args.json"
        args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": dict(args, _ansible_check_mode=check, _ansible_diff=diff)}))
        proc = subprocess.run([sys.executable, str(ROOT / "plugins/modules/looker_jar.py"), str(args_file)],
                              env=dict(os.environ, PYTHONPATH=str(ROOT / ".collections")), capture_output=True, text=True, check=False)
        return SimpleNamespace(result=json.loads(proc.stdout), output=proc.stdout + proc.stderr)

    return _run


@pytest.fixture
def looker_jar_play(run_play, tmp_path):
    """Run the module in a play with -vvv; return everything ansible-playbook printed."""

    def _run(**args):
        play = [{"name": "looker_jar", "hosts": "localhost", "gather_facts": False,
                 "tasks": [{"name": "Run looker_jar", "lookerops.cluster.looker_jar": args, "ignore_errors": True}]}]
        return run_play(play, extra_args=["-vvv"]).output

    return _run


@pytest.fixture
def dest(tmp_path):
    path = tmp_path / "looker"
    path.mkdir()
    return path


def api_args(api, dest, version="latest", **extra):
    return dict(dest=str(dest), version=version, license_key=LICENSE, license_email=EMAIL, api_url=f"{api.url}/download",
                attempts=2, retry_delay=0.1, **extra)


def installed(dest):
    return {name: sha256(dest / name) for name in ("looker.jar", "looker-dependencies.jar") if (dest / name).exists()}


def release_sums(jars_dir, release):
    return {name: sha256(jars_dir / release / name) for name in ("looker.jar", "looker-dependencies.jar")}


def test_latest_installs_both_jars_verified(fresh_api, looker_jar, dest, jars_dir):
    result = looker_jar(**api_args(fresh_api, dest)).result
    assert result["changed"] and result["downloaded"] and result["version"] == "25.8.3"
    # Both jars, each from its own link: the dependencies jar must not be the core jar again.
    assert installed(dest) == release_sums(jars_dir, "25.8.3")
    assert sorted(fresh_api.control()["fetched"]) == ["looker-25.8.3.jar", "looker-dependencies-25.8.3.jar"]
    assert json.loads((dest / ".looker-jars.json").read_text())["version"] == "25.8.3"


def test_minor_release_means_its_newest_patch(fresh_api, looker_jar, dest, jars_dir):
    result = looker_jar(**api_args(fresh_api, dest, "25.6")).result
    assert result["version"] == "25.6.12"
    assert installed(dest) == release_sums(jars_dir, "25.6.12")


def test_second_run_downloads_nothing(fresh_api, looker_jar, dest):
    looker_jar(**api_args(fresh_api, dest, "25.6"))
    fresh_api.control(reset=True)
    again = looker_jar(**api_args(fresh_api, dest, "25.6")).result
    assert not again["changed"] and not again["downloaded"]
    assert fresh_api.control()["requests"]["files"] == 0


def test_exact_release_already_installed_asks_no_api(fresh_api, looker_jar, dest):
    looker_jar(**api_args(fresh_api, dest, "25.6.12"))
    fresh_api.control(mode="down", reset=True)  # the API being down must not matter now
    again = looker_jar(**api_args(fresh_api, dest, "25.6.12")).result
    assert not again["changed"] and not again["api_called"] and again["version"] == "25.6.12"
    assert fresh_api.control()["requests"] == {"download": 0, "files": 0}


def test_check_mode_reports_without_downloading_and_diff_shows_versions(fresh_api, looker_jar, dest):
    looker_jar(**api_args(fresh_api, dest, "25.6.3"))
    fresh_api.control(reset=True)
    result = looker_jar(check=True, diff=True, **api_args(fresh_api, dest, "25.8.3")).result
    assert result["changed"] and result["version"] == "25.8.3" and result["previous_version"] == "25.6.3"
    assert fresh_api.control()["requests"]["files"] == 0
    assert json.loads((dest / ".looker-jars.json").read_text())["version"] == "25.6.3"
    assert (result["diff"]["before"], result["diff"]["after"]) == ("version: 25.6.3\n", "version: 25.8.3\n")


def test_upgrade_keeps_the_previous_pair_for_rollback(fresh_api, looker_jar, dest, jars_dir):
    looker_jar(**api_args(fresh_api, dest, "25.6.12"))
    result = looker_jar(**api_args(fresh_api, dest, "25.8.3")).result
    assert result["previous_version"] == "25.6.12"
    assert sha256(dest / "looker.jar.previous") == release_sums(jars_dir, "25.6.12")["looker.jar"]
    assert installed(dest) == release_sums(jars_dir, "25.8.3")


@pytest.mark.parametrize("mode, message", [
    ("eula", "EULA has not been accepted"),
    ("bad_license", "refused the license (HTTP 403"),
    ("expired_link", "expire about 10 minutes after the API call"),
    ("truncated", "was cut"),
    ("bad_checksum", "but "),
    ("down", "did not answer"),
    ("closed", "did not answer"),
])
def test_each_failure_is_clear_and_leaves_installed_jars_untouched(fresh_api, looker_jar, dest, mode, message):
    looker_jar(**api_args(fresh_api, dest, "25.6.3"))
    before = installed(dest)
    fresh_api.control(mode=mode)
    result = looker_jar(**api_args(fresh_api, dest, "25.8.3")).result
    assert result["failed"], result
    assert message in result["msg"], result["msg"]
    assert installed(dest) == before
    assert not [p.name for p in dest.iterdir() if p.name.endswith(".part")]
    # Nothing was installed: no change, and no claim of the release that was not installed.
    assert result["changed"] is False, result
    assert not {"version", "sha256", "dependencies_sha256"} & set(result), result
    assert result["previous_version"] == "25.6.3" and result["downloaded"] is False
    # The API was asked (or tried) in every one of these failures.
    assert result["api_called"] is True, result


def test_api_called_is_true_whenever_the_api_was_asked(fresh_api, looker_jar, dest):
    asked = looker_jar(**api_args(fresh_api, dest, "25.6")).result
    assert asked["api_called"] is True and asked["changed"]
    fresh_api.control(mode="bad_license", reset=True)
    refused = looker_jar(**api_args(fresh_api, dest, "25.8.3")).result
    assert fresh_api.control()["requests"]["download"] == 1
    assert refused["failed"] and refused["api_called"] is True, refused


def test_eula_failure_names_the_page_to_visit(fresh_api, looker_jar, dest):
    fresh_api.control(mode="eula")
    result = looker_jar(**api_args(fresh_api, dest)).result
    assert "https://download.looker.com/validate" in result["msg"]


def test_checksum_mismatch_names_both_sums(fresh_api, looker_jar, dest, jars_dir):
    fresh_api.control(mode="bad_checksum")
    result = looker_jar(**api_args(fresh_api, dest, "25.8.3")).result
    assert release_sums(jars_dir, "25.8.3")["looker.jar"] in result["msg"] and "SHA-256" in result["msg"]


def test_broken_transfer_is_retried(fresh_api, looker_jar, dest):
    fresh_api.control(mode="truncated")
    looker_jar(**api_args(fresh_api, dest, "25.8.3"))
    # attempts=2: the core jar was fetched twice before giving up.
    assert fresh_api.control()["fetched"].count("looker-25.8.3.jar") == 2


def test_secrets_never_reach_the_output(fresh_api, looker_jar_play, dest):
    for mode in ("ok", "bad_license"):
        fresh_api.control(mode=mode)
        output = looker_jar_play(**api_args(fresh_api, dest, "25.6.3"))
        assert "Run looker_jar" in output
        assert LICENSE not in output and EMAIL not in output


def test_offline_files_are_verified_before_install(looker_jar, dest, jars_dir):
    sums = release_sums(jars_dir, "25.6.12")
    args = dict(dest=str(dest), source="file", version="25.6.12",
                jar_src=str(jars_dir / "25.6.12/looker.jar"), dependencies_src=str(jars_dir / "25.6.12/looker-dependencies.jar"),
                jar_sha256=sums["looker.jar"], dependencies_sha256=sums["looker-dependencies.jar"])
    result = looker_jar(**args).result
    assert result["changed"] and not result["api_called"] and installed(dest) == sums
    assert not looker_jar(**args).result["changed"]
    corrupt = dict(args, version="25.8.3", jar_src=str(jars_dir / "25.8.3/looker.jar"), jar_sha256="0" * 64)
    failed = looker_jar(**corrupt).result
    assert failed["failed"] and "has SHA-256" in failed["msg"] and installed(dest) == sums
    mislabelled = looker_jar(**dict(args, version="25.8.3")).result
    assert mislabelled["failed"] and "25.8.3 was asked for" in mislabelled["msg"] and "25.6.12" in mislabelled["msg"]
    assert json.loads((dest / ".looker-jars.json").read_text())["version"] == "25.6.12"


def file_args(dest, jars, version, jar_name="looker.jar", dependencies_name="looker-dependencies.jar"):
    return dict(dest=str(dest), source="file", version=version,
                jar_src=str(jars / jar_name), dependencies_src=str(jars / dependencies_name),
                jar_sha256=sha256(jars / jar_name), dependencies_sha256=sha256(jars / dependencies_name))


@pytest.mark.parametrize("check", [False, True])
def test_offline_files_of_another_release_are_refused(looker_jar, dest, jars_dir, check):
    # The files are 25.8.3 (their manifest says so) and the checksums given are theirs: the label
    # 25.6.12 is wrong, and the release is read from the jar, not taken from the label.
    result = looker_jar(check=check, **file_args(dest, jars_dir / "25.8.3", "25.6.12")).result
    assert result["failed"], result
    msg = result["msg"]
    assert "25.6.12 was asked for" in msg and "Implementation-Version 25.8.3" in msg, msg
    assert str(jars_dir / "25.8.3/looker.jar") in msg and str(jars_dir / "25.8.3/looker-dependencies.jar") in msg, msg
    assert result["changed"] is False and "version" not in result, result
    assert installed(dest) == {} and not (dest / ".looker-jars.json").exists()
    assert not list(dest.iterdir())


def test_check_mode_ignores_files_not_yet_the_ones_given(looker_jar, dest, jars_dir):
    # A play checks first and copies the files given by checksum afterwards, over whatever an
    # earlier run left there: a leftover of another release predicts a change, not a refusal.
    args = dict(file_args(dest, jars_dir / "25.6.12", "25.6.12"), jar_src=str(jars_dir / "25.8.3/looker.jar"))
    result = looker_jar(check=True, **args).result
    assert not result.get("failed") and result["changed"] and result["version"] == "25.6.12", result


def test_offline_files_whose_manifest_names_no_release_are_refused(looker_jar, dest, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    make_jar(bare / "looker.jar", None)
    make_jar(bare / "looker-dependencies.jar", None, filler="deps")
    (bare / "not-a-jar.jar").write_bytes(b"not a zip" * 100)
    result = looker_jar(**file_args(dest, bare, "25.6.12")).result
    assert result["failed"] and "no Implementation-Version" in result["msg"] and str(bare / "looker.jar") in result["msg"], result
    result = looker_jar(**file_args(dest, bare, "25.6.12", jar_name="not-a-jar.jar")).result
    assert result["failed"] and "not a jar" in result["msg"] and str(bare / "not-a-jar.jar") in result["msg"], result
    assert installed(dest) == {}


def test_a_record_that_contradicts_the_manifest_is_not_trusted(fresh_api, looker_jar, dest, jars_dir):
    # What an earlier looker_jar left behind: jars of 25.8.3 recorded as 25.6.12 because it was told so.
    for name in ("looker.jar", "looker-dependencies.jar"):
        (dest / name).write_bytes((jars_dir / "25.8.3" / name).read_bytes())
    sums = release_sums(jars_dir, "25.8.3")
    (dest / ".looker-jars.json").write_text(json.dumps(
        {"version": "25.6.12", "sha256": sums["looker.jar"], "dependencies_sha256": sums["looker-dependencies.jar"]}))
    result = looker_jar(**api_args(fresh_api, dest, "25.6.12")).result
    assert result["api_called"] and result["changed"] and result["version"] == "25.6.12", result
    assert result["previous_version"] == "25.8.3", result
    assert installed(dest) == release_sums(jars_dir, "25.6.12")
    assert json.loads((dest / ".looker-jars.json").read_text())["version"] == "25.6.12"


def test_a_wrong_record_is_corrected_from_the_manifest(looker_jar, dest, jars_dir):
    for name in ("looker.jar", "looker-dependencies.jar"):
        (dest / name).write_bytes((jars_dir / "25.8.3" / name).read_bytes())
    sums = release_sums(jars_dir, "25.8.3")
    (dest / ".looker-jars.json").write_text(json.dumps(
        {"version": "25.6.12", "sha256": sums["looker.jar"], "dependencies_sha256": sums["looker-dependencies.jar"]}))
    result = looker_jar(**file_args(dest, jars_dir / "25.8.3", "25.8.3")).result
    assert not result.get("failed") and result["changed"] and result["version"] == "25.8.3", result
    assert json.loads((dest / ".looker-jars.json").read_text())["version"] == "25.8.3"


class MirrorHandler(http.server.SimpleHTTPRequestHandler):
    """A plain web server over the releases; everything under /private/ is forbidden."""

    def do_GET(self):  # noqa: N802 (http.server naming)
        if self.path.startswith("/private/"):
            self.send_error(403, "Forbidden")
        else:
            super().do_GET()

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass


@pytest.fixture(scope="module")
def mirror(jars_dir):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(MirrorHandler, directory=str(jars_dir)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def mirror_args(dest, base, sums, version="25.8.3"):
    return dict(dest=str(dest), source="url", version=version, jar_src=f"{base}/looker.jar",
                dependencies_src=f"{base}/looker-dependencies.jar", jar_sha256=sums["looker.jar"],
                dependencies_sha256=sums["looker-dependencies.jar"], attempts=1)


def test_offline_mirror_url(looker_jar, dest, jars_dir, mirror):
    sums = release_sums(jars_dir, "25.8.3")
    result = looker_jar(**mirror_args(dest, f"{mirror}/25.8.3", sums)).result
    assert result["changed"] and result["downloaded"] and installed(dest) == sums


def test_mirror_files_of_another_release_are_refused(looker_jar, dest, jars_dir, mirror):
    result = looker_jar(**mirror_args(dest, f"{mirror}/25.8.3", release_sums(jars_dir, "25.8.3"), version="25.6.12")).result
    assert result["failed"] and "25.6.12 was asked for" in result["msg"] and "Implementation-Version 25.8.3" in result["msg"]
    assert f"{mirror}/25.8.3/looker.jar" in result["msg"], result["msg"]
    assert result["changed"] is False and installed(dest) == {} and not list(dest.iterdir())


def test_a_mirror_404_says_the_file_is_not_there(looker_jar, dest, jars_dir, mirror):
    result = looker_jar(**mirror_args(dest, f"{mirror}/25.9.9", release_sums(jars_dir, "25.8.3"))).result
    msg = result["msg"]
    assert result["failed"] and "HTTP 404" in msg and f"{mirror}/25.9.9/looker.jar" in msg and "not at that URL" in msg, msg
    assert "expire" not in msg and "licen" not in msg, msg
    assert result["changed"] is False and result["api_called"] is False


def test_a_mirror_403_says_the_mirror_refused_access(looker_jar, dest, jars_dir, mirror):
    result = looker_jar(**mirror_args(dest, f"{mirror}/private/25.8.3", release_sums(jars_dir, "25.8.3"))).result
    msg = result["msg"]
    assert result["failed"] and "HTTP 403" in msg and "the mirror refused" in msg, msg
    assert "expire" not in msg and "licen" not in msg, msg


@pytest.mark.parametrize("version, suggestion", [("25.6.99", '"25.6"'), ("25.7", '"latest"')])
def test_an_unknown_release_is_named_with_what_to_ask_instead(fresh_api, looker_jar, dest, version, suggestion):
    result = looker_jar(**api_args(fresh_api, dest, version)).result
    msg = result["msg"]
    assert result["failed"] and f"no release {version}" in msg and suggestion in msg and '"latest"' in msg, msg
    assert "expire" not in msg and "licen" not in msg, msg
    assert result["api_called"] is True and result["changed"] is False


def test_a_refused_license_names_the_license_key_and_email(fresh_api, looker_jar, dest):
    fresh_api.control(mode="bad_license")
    msg = looker_jar(**api_args(fresh_api, dest, "25.8.3")).result["msg"]
    assert "HTTP 403" in msg and "license_key" in msg and "license_email" in msg and "expire" not in msg, msg


def test_an_expired_link_says_to_run_again(fresh_api, looker_jar, dest):
    fresh_api.control(mode="expired_link")
    msg = looker_jar(**api_args(fresh_api, dest, "25.8.3")).result["msg"]
    assert "Request has expired" in msg and "run again" in msg and "licen" not in msg, msg
    assert "Signature" not in msg, msg


@pytest.mark.parametrize("args, message", [
    ({"version": "25.x"}, "is not a Looker release"),
    ({"license_key": None}, "source=api needs license_key"),
    ({"source": "file", "version": "25.6"}, "source=file needs jar_src"),
])
def test_bad_input_is_refused_before_any_request(fresh_api, looker_jar, dest, args, message):
    merged = {k: v for k, v in dict(api_args(fresh_api, dest), **args).items() if v is not None}
    fresh_api.control(reset=True)
    result = looker_jar(**merged).result
    assert result["failed"] and message in result["msg"]
    assert fresh_api.control()["requests"]["download"] == 0
