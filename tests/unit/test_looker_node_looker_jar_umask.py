"""looker_jar without `mode` gives the installed jars the umask's default mode, as the files options
it documents promise (not the 0600 of its private temporary files), so the user Looker runs as can
read jars installed by root."""
import hashlib
import os
import zipfile


def test_jars_installed_without_mode_follow_the_umask(run_play, tmp_path):
    src = tmp_path / "src"
    dest = tmp_path / "dest"
    src.mkdir()
    dest.mkdir()
    sums = {}
    for name in ("looker.jar", "looker-dependencies.jar"):
        # A jar whose manifest names the release: looker_jar reads the release from looker.jar.
        with zipfile.ZipFile(src / name, "w") as jar:
            jar.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\nImplementation-Version: 25.6.12\r\n\r\n")
            jar.writestr("filler", name.encode() * 1000)
        sums[name] = hashlib.sha256((src / name).read_bytes()).hexdigest()
    play = [{
        "name": "Install a pair of jars without mode",
        "hosts": "localhost",
        "gather_facts": False,
        "tasks": [{
            "name": "Install",
            "lookerops.cluster.looker_jar": {
                "dest": str(dest), "source": "file", "version": "25.6.12",
                "jar_src": str(src / "looker.jar"), "dependencies_src": str(src / "looker-dependencies.jar"),
                "jar_sha256": sums["looker.jar"], "dependencies_sha256": sums["looker-dependencies.jar"],
            },
        }],
    }]
    umask = os.umask(0o022)
    os.umask(umask)
    result = run_play(play)
    assert not result.failed, result.output
    for name in ("looker.jar", "looker-dependencies.jar"):
        assert (dest / name).stat().st_mode & 0o777 == 0o666 & ~umask, oct((dest / name).stat().st_mode)
