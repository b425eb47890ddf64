"""build.sh: the two jars, their manifests, the baked-in timings and profiles, reproducibility, and
start-up with a broken jar pair."""
import hashlib
import shutil
import subprocess
import zipfile

from standin_helpers import BUILD, run_jar


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def release_properties(jar_dir):
    with zipfile.ZipFile(jar_dir / "looker.jar") as z:
        text = z.read("standin/release.properties").decode()
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def manifest(jar):
    with zipfile.ZipFile(jar) as z:
        text = z.read("META-INF/MANIFEST.MF").decode()
    return dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)


def test_two_jars_like_looker(jars):
    d = jars["25.6.12"]
    core = manifest(d / "looker.jar")
    assert core["Main-Class"] == "standin.Main"
    assert core["Class-Path"] == "looker-dependencies.jar"
    assert core["Implementation-Version"] == "25.6.12"
    assert "stand-in" in core["Implementation-Title"]
    with zipfile.ZipFile(d / "looker-dependencies.jar") as z:
        names = set(z.namelist())
        props = z.read("standin/dependencies.properties").decode()
    assert "org/mariadb/jdbc/Driver.class" in names
    assert "META-INF/services/java.sql.Driver" in names
    assert "standin/shared/Json.class" in names
    assert "version=25.6.12" in props
    with zipfile.ZipFile(d / "looker.jar") as z:
        assert not any(n.startswith("org/mariadb") for n in z.namelist())
    assert release_properties(jars["25.9.0"])["migration_fail"] == "true"


def test_default_timings_are_several_seconds(jars):
    """What the suite runs with unless a test overrides it: not instant, like Looker."""
    release = release_properties(jars["25.6.12"])
    assert (release["startup_seconds"], release["migration_seconds"], release["migration_fail"]) == ("5", "8", "false")
    assert release_properties(jars["25.8.3"])["migration_seconds"] == "3"


def test_realistic_profile_and_explicit_overrides(tmp_path):
    def build(name, *opts):
        subprocess.run([str(BUILD), "25.6.12", str(tmp_path / name), *opts], check=True, capture_output=True)
        props = release_properties(tmp_path / name)
        return int(props["startup_seconds"]), int(props["migration_seconds"])

    assert build("realistic", "--profile", "realistic") == (60, 120)
    assert build("start-override", "--profile=realistic", "--startup-seconds", "90") == (90, 120)
    assert build("migration-override", "--migration-seconds=30", "--profile", "realistic") == (60, 30)
    assert build("suite", "--profile", "suite", "--startup-seconds=0") == (0, 8)


def test_build_is_reproducible(jars, tmp_path):
    subprocess.run([str(BUILD), "25.6.12", str(tmp_path / "again")], check=True, capture_output=True)
    for name in ("looker.jar", "looker-dependencies.jar"):
        assert sha(tmp_path / "again" / name) == sha(jars["25.6.12"] / name)
    # Another version gives other jars.
    assert sha(jars["25.6.10"] / "looker.jar") != sha(jars["25.6.12"] / "looker.jar")


def test_build_refuses_bad_arguments(tmp_path):
    bad_version = subprocess.run([str(BUILD), "25.6", str(tmp_path / "x")], capture_output=True, text=True, check=False)
    assert bad_version.returncode != 0 and "VERSION must look like 25.6.12" in bad_version.stderr
    bad_option = subprocess.run([str(BUILD), "25.6.1", str(tmp_path / "x"), "--bogus"], capture_output=True, text=True, check=False)
    assert bad_option.returncode != 0 and "unknown option" in bad_option.stderr
    bad_profile = subprocess.run([str(BUILD), "25.6.1", str(tmp_path / "x"), "--profile", "fast"], capture_output=True, text=True,
                                 check=False)
    assert bad_profile.returncode != 0 and "--profile must be 'suite' or 'realistic'" in bad_profile.stderr
    bad_seconds = subprocess.run([str(BUILD), "25.6.1", str(tmp_path / "x"), "--startup-seconds", "soon"], capture_output=True,
                                 text=True, check=False)
    assert bad_seconds.returncode != 0 and "--startup-seconds must be a whole number" in bad_seconds.stderr


def test_missing_dependencies_jar_fails_start(jars, tmp_path):
    shutil.copy(jars["25.6.12"] / "looker.jar", tmp_path / "looker.jar")
    rc, out = run_jar(tmp_path, ["start", "--no-daemonize"], cwd=tmp_path)
    assert rc != 0
    assert "looker-dependencies.jar is missing" in out
    assert not (tmp_path / "log").exists()


def test_mismatched_dependencies_jar_fails_start(jars, tmp_path):
    shutil.copy(jars["25.6.12"] / "looker.jar", tmp_path / "looker.jar")
    shutil.copy(jars["25.8.3"] / "looker-dependencies.jar", tmp_path / "looker-dependencies.jar")
    rc, out = run_jar(tmp_path, ["start", "--no-daemonize"], cwd=tmp_path)
    assert rc != 0
    assert "looker-dependencies.jar is release 25.8.3" in out and "looker.jar is release 25.6.12" in out
