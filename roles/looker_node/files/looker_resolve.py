"""Resolve host names as this host does (its resolver, /etc/hosts, DNS) and print JSON
{name: [addresses]}; a name that does not resolve maps to []. Used by the role's preflight: a Looker
node must resolve the -H address of every other node and the database host itself, not only the
controller."""
import json
import socket
import sys


def resolve(name):
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return []
    return sorted({info[4][0] for info in infos})


def main(names):
    print(json.dumps({name: resolve(name) for name in names}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
