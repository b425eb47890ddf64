"""Release names: what users may ask for and how the download API is asked."""
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
