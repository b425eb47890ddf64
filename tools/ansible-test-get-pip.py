"""Offline stand-in for the get-pip.py script ansible-test downloads to bootstrap its venvs.

ansible-test runs this file as `python get_pip_X_Y.py [pip options] PACKAGES...` inside a fresh
virtual environment. The public download is unreachable on these machines, so install pip with the
interpreter's own ensurepip and then install what was asked for from the configured index.
"""
import subprocess
import sys

IGNORED = {"--no-setuptools", "--no-wheel"}


def main():
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"])
    args = [arg for arg in sys.argv[1:] if arg not in IGNORED]
    if args:
        subprocess.check_call([sys.executable, "-m", "pip", "install"] + args)


if __name__ == "__main__":
    main()
