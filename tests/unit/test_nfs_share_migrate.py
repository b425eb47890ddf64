"""The nfs_share role moves an existing node's directories onto the share without losing data.

move_onto_share.yml runs on the controller against temporary directories (the looker user is root
here): the copy is verified before the original is moved aside, conflicting content on the share
stops the run before anything changes, nothing is ever deleted, and a second run changes nothing.
"""
import os
import sys

ROLE = "lookerops.cluster.nfs_share"


def move_play(src, dst, copy=True):
    return [{
        "name": "Move onto the share",
        "hosts": "localhost",
        "gather_facts": False,
        "vars": {
            "ansible_python_interpreter": sys.executable,
            "nfs_share_looker_user": "root",
            "nfs_share_looker_group": "root",
            "nfs_share_looker_uid": 0,
            "nfs_share_looker_gid": 0,
        },
        "tasks": [{
            "name": "Move one directory",
            "ansible.builtin.include_role": {"name": ROLE, "tasks_from": "move_onto_share.yml"},
            "vars": {"__nfs_share_move_src": str(src), "__nfs_share_move_dst": str(dst), "__nfs_share_move_copy": copy},
        }],
    }]


def tree(root):
    """Every entry under root: directories, symlinks (with target) and files (with content)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            if os.path.islink(path):
                out[rel] = ("link", os.readlink(path))
            elif os.path.isdir(path):
                out[rel] = ("dir",)
            else:
                with open(path, "rb") as f:
                    out[rel] = ("file", f.read())
    return out


def make_node(tmp_path):
    src = tmp_path / "looker" / "models"
    (src / "proj" / ".git" / "objects").mkdir(parents=True)
    (src / "proj" / "a.view.lkml").write_text("view: a {}\n")
    (src / "proj" / ".git" / "objects" / "ab").write_bytes(os.urandom(4096))
    (src / "proj" / "name with space.lkml").write_text("x\n")
    (src / "empty").mkdir()
    (src / "proj" / "link").symlink_to("a.view.lkml")
    share = tmp_path / "share"
    share.mkdir()
    return src, share / "models"


def test_copy_verify_move_aside_and_link(run_play, tmp_path):
    src, dst = make_node(tmp_path)
    before = tree(src)
    result = run_play(move_play(src, dst))
    assert not result.failed, result.output
    assert os.path.islink(src) and os.readlink(src) == str(dst)
    assert tree(dst) == before
    backup = tmp_path / "looker" / "models.pre-share"
    assert tree(backup) == before, "the original is kept, unchanged, next to the link"
    again = run_play(move_play(src, dst))
    assert not again.failed, again.output
    assert "changed=0" in again.output


def test_conflict_on_the_share_stops_before_any_change(run_play, tmp_path):
    src, dst = make_node(tmp_path)
    (dst / "proj").mkdir(parents=True)
    (dst / "proj" / "a.view.lkml").write_text("view: a { newer }\n")
    before_src, before_dst = tree(src), tree(dst)
    result = run_play(move_play(src, dst))
    assert result.failed
    assert "already holds other content" in result.output
    assert "CONFLICT ./proj/a.view.lkml" in result.output
    assert "Nothing was copied, moved or deleted" in result.output
    assert not os.path.islink(src) and tree(src) == before_src
    assert tree(dst) == before_dst
    assert not (tmp_path / "looker" / "models.pre-share").exists()


def test_partial_copy_is_completed(run_play, tmp_path):
    src, dst = make_node(tmp_path)
    (dst / "proj").mkdir(parents=True)
    (dst / "proj" / "a.view.lkml").write_text("view: a {}\n")  # same content: an earlier, interrupted run
    (dst / "other-file").write_text("already on the share\n")
    before = tree(src)
    result = run_play(move_play(src, dst))
    assert not result.failed, result.output
    after = tree(dst)
    assert after.pop("other-file") == ("file", b"already on the share\n")
    assert after == before


def test_unsupported_entry_stops_before_any_change(run_play, tmp_path):
    src, dst = make_node(tmp_path)
    os.mkfifo(src / "proj" / "pipe")
    result = run_play(move_play(src, dst))
    assert result.failed
    assert "UNSUPPORTED ./proj/pipe" in result.output
    assert not os.path.islink(src) and not dst.exists()


def test_check_mode_changes_nothing(run_play, tmp_path):
    src, dst = make_node(tmp_path)
    before = tree(src)
    result = run_play(move_play(src, dst), extra_args=["--check"])
    assert not result.failed, result.output
    assert not os.path.islink(src) and tree(src) == before and not dst.exists()


def test_backup_path_taken_stops(run_play, tmp_path):
    src, dst = make_node(tmp_path)
    (tmp_path / "looker" / "models.pre-share").mkdir()
    result = run_play(move_play(src, dst))
    assert result.failed
    assert "models.pre-share already exists" in result.output
    assert not os.path.islink(src) and not dst.exists()


def test_existing_destination_keeps_its_owner_and_mode(run_play, tmp_path):
    src, dst = make_node(tmp_path)
    src.chmod(0o750)
    dst.mkdir(mode=0o700)  # as the layout made it (ssh-share)
    dst.chmod(0o700)
    result = run_play(move_play(src, dst))
    assert not result.failed, result.output
    assert oct(dst.stat().st_mode & 0o7777) == oct(0o700)
    assert (dst / "proj" / "a.view.lkml").read_text() == "view: a {}\n"


def migrate_play(looker_dir, share):
    return [{
        "name": "Move an existing node onto the share",
        "hosts": "localhost",
        "gather_facts": False,
        "vars": {
            "ansible_python_interpreter": sys.executable,
            "nfs_share_looker_user": "root",
            "nfs_share_looker_group": "root",
            "nfs_share_looker_uid": 0,
            "nfs_share_looker_gid": 0,
            "nfs_share_migrate_from": str(looker_dir),
            "nfs_share_mount_point": str(share),
        },
        "tasks": [{"name": "Migrate", "ansible.builtin.include_role": {"name": ROLE, "tasks_from": "migrate.yml"}}],
    }]


def test_migration_moves_models_user_dirs_keys_plugins_but_not_logs_and_runs_once(run_play, tmp_path):
    src = make_node(tmp_path)[0]
    looker = src.parent
    for name in ("models-user-7", "models-user-12", "deploy_keys", "plugins", "log"):
        (looker / name).mkdir()
        (looker / name / "f").write_text(name)
    share = tmp_path / "share"
    result = run_play(migrate_play(looker, share))
    assert not result.failed, result.output
    moved = ["deploy_keys", "models", "models-user-12", "models-user-7", "plugins"]
    assert sorted(p.name for p in share.iterdir()) == moved
    for name in moved:
        assert os.readlink(looker / name) == str(share / name)
        assert (looker / f"{name}.pre-share").is_dir()
    assert (looker / "log").is_dir() and not (looker / "log").is_symlink()
    again = run_play(migrate_play(looker, share))
    assert not again.failed, again.output
    assert "changed=0" in again.output
    # Backups are never taken for something to move.
    assert sorted(p.name for p in share.iterdir()) == moved
    assert not list(looker.glob("*.pre-share.pre-share"))
