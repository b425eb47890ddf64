"""Marker files that prove the nodes of a cluster share one directory (tasks/shared_storage.yml).

    looker_share_marker.py write  DIR UID GID          prints the token of a new marker
    looker_share_marker.py read   DIR UID GID TOKEN    exits 0 when DIR holds that marker
    looker_share_marker.py remove DIR UID GID TOKEN

Runs as UID:GID (the looker user), which is who writes the share when Looker runs. An error exits
non-zero with the path and the reason on stderr.
"""
import os
import sys

PREFIX = ".lookerops-shared-storage-check-"


def main(argv):
    action, directory, uid, gid = argv[0], argv[1], int(argv[2]), int(argv[3])
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    token = os.urandom(12).hex() if action == "write" else argv[4]
    path = os.path.join(directory, PREFIX + token)
    try:
        if action == "write":
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, token.encode() + b"\n")
            os.close(fd)
            print(token)
        elif action == "read":
            fd = os.open(path, os.O_RDONLY)
            found = os.read(fd, 100).strip()
            os.close(fd)
            if found != token.encode():
                return path + ": another marker"
        elif action == "remove":
            os.remove(path)
        else:
            return "unknown action " + action
    except OSError as err:
        return "%s: %s" % (err.filename or path, err.strerror)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
