"""Release names: what users may ask for, how the download API is asked, and what a jar's manifest says."""
import zipfile

import pytest

from ansible_collections.lookerops.cluster.plugins.module_utils import looker_release as rel


@pytest.mark.parametrize("version, kind", [("latest", "latest"), ("25.6", "minor"), ("25.6.12", "exact"), (" 25.6.12 ", "exact")])
def test_request_kind(version, kind):
    assert rel.request_kind(version) == kind


@pytest.mark.parametrize("version", ["", "25", "25.6.12.1", "v25.6", "25.x", "newest", "25.6-latest"])
def test_unknown_version_formats_are_refused_with_the_fix(version):
    with pytest.raises(rel.ReleaseError) as exc:
        rel.request_kind(version)
    assert repr(version.strip()) in str(exc.value) and '"25.6.12"' in str(exc.value)


def test_api_requests_match_the_documented_bodies():
    assert rel.api_request("latest", "K", "e@x") == {"lic": "K", "email": "e@x", "latest": "latest"}
    assert rel.api_request("25.6", "K", "e@x") == {"lic": "K", "email": "e@x", "latest": "specific", "specific": "looker-25.6-latest.jar"}
    assert rel.api_request("25.6.12", "K", "e@x")["specific"] == "looker-25.6.12.jar"


def test_version_text_and_ordering():
    assert rel.version_from_text("looker-25.6.12.jar") == "25.6.12"
    with pytest.raises(rel.ReleaseError):
        rel.version_from_text("looker-latest.jar")
    assert rel.version_key("25.10.2") > rel.version_key("25.9.30")
    assert rel.schema_of("25.6.12") == "25.6"


@pytest.mark.parametrize("value, release", [
    ("25.6.12", "25.6.12"), ("25.6.12-b3", "25.6.12"), ("25.6.12.20250901", "25.6.12"), (" 25.10.2 ", "25.10.2"),
    ("25.6", None), ("latest", None), ("", None), (None, None), ("25.6.12x", None),
])
def test_the_release_an_implementation_version_names(value, release):
    assert rel.manifest_release(value) == release


def test_manifest_attributes_follow_the_jar_specification():
    manifest = ("Manifest-Version: 1.0\r\nImplementation-Title: Looker with a title long enough to be fol\r\n ded\r\n"
                "implementation-version: 25.8.3\r\n\r\nName: some/Entry.class\r\nImplementation-Version: 1.2.3\r\n")
    assert rel.manifest_attribute(manifest, "Implementation-Version") == "25.8.3"
    assert rel.manifest_attribute(manifest, "Implementation-Title") == "Looker with a title long enough to be folded"
    # Only the main section counts: a per-entry section's attribute is not the jar's.
    assert rel.manifest_attribute("Manifest-Version: 1.0\n\nName: x\nImplementation-Version: 1.2.3\n", "Implementation-Version") is None


def test_jar_release_reads_the_manifest_and_names_the_file(tmp_path):
    jar = tmp_path / "looker.jar"
    with zipfile.ZipFile(jar, "w") as archive:
        archive.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nImplementation-Version: 25.8.3-b1\n")
    assert rel.jar_release(str(jar)) == ("25.8.3", "25.8.3-b1")
    (tmp_path / "plain.jar").write_bytes(b"no zip")
    with pytest.raises(rel.ReleaseError, match="not a jar"):
        rel.jar_release(str(tmp_path / "plain.jar"), shown="looker.jar from the mirror")
    with zipfile.ZipFile(tmp_path / "bare.jar", "w") as archive:
        archive.writestr("a", "b")
    with pytest.raises(rel.ReleaseError, match="bare.jar has no META-INF/MANIFEST.MF"):
        rel.jar_release(str(tmp_path / "bare.jar"))
