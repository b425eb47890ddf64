"""The NFS backend on running hosts, as far as this kernel allows.

nfs-ganesha serves the export; libnfs' userspace client (nfs-ls, nfs-cat, nfs-cp) proves that the
allowed Looker node gets in and a host outside the export list does not. The kernel has no NFS
client, so the node's mount is checked as configured (fstab, systemd units), not mounted.
"""
import time
import uuid

import testinfra

SERVER = "lkr-nfs-server"
NODE = "lkr-nfs-node1"
OUTSIDER = "lkr-nfs-outsider"
EXPORT = "/srv/looker-share"
SHARE = "/mnt/looker-share"
URL = f"nfs://{SERVER}{EXPORT}"


def host(name):
    return testinfra.get_host(f"podman://{name}")


def test_ganesha_serves_the_export_to_the_nodes_only():
    server = host(SERVER)
    assert server.service("nfs-ganesha").is_running
    assert server.service("nfs-ganesha").is_enabled
    conf = server.file("/etc/ganesha/ganesha.conf").content_string
    assert f"Path = {EXPORT};" in conf
    assert "Access_Type = None;" in conf
    assert f"Clients = {NODE};" in conf


def test_export_layout_on_the_server():
    server = host(SERVER)
    root = server.file(EXPORT)
    assert root.uid == 9000 and root.gid == 9000 and root.mode == 0o755
    for name in ("models", "deploy_keys", "plugins"):
        d = server.file(f"{EXPORT}/{name}")
        assert d.is_directory and d.uid == 9000 and d.mode == 0o755
    ssh = server.file(f"{EXPORT}/ssh-share")
    assert ssh.is_directory and ssh.uid == 9000 and ssh.mode == 0o700


def test_allowed_node_lists_reads_and_writes_over_nfsv3_and_nfsv4():
    node = host(NODE)
    for version in (3, 4):
        listing = node.run(f"nfs-ls '{URL}?version={version}'")
        assert listing.rc == 0, listing.stderr
        for name in ("models", "deploy_keys", "plugins", "ssh-share"):
            assert name in listing.stdout
    token = uuid.uuid4().hex
    node.run_expect([0], f"echo {token} > /tmp/{token}")
    # As the looker user's ids: the server stores them as they are (same uid/gid everywhere).
    # Right after nfs-ganesha (re)starts, NFSv4 opens get NFS4ERR_GRACE for its grace period (90 s).
    copy = f"nfs-cp /tmp/{token} '{URL}/models/{token}?version=4&uid=9000&gid=9000'"
    deadline = time.monotonic() + 150
    while (result := node.run(copy)).rc != 0 and "NFS4ERR_GRACE" in result.stderr and time.monotonic() < deadline:
        time.sleep(5)
    assert result.rc == 0, result.stderr
    assert node.check_output(f"nfs-cat '{URL}/models/{token}?version=3&uid=9000&gid=9000'").strip() == token
    # root on the node is squashed to nobody, who may not read the looker user's file.
    squashed = node.run(f"nfs-cat '{URL}/models/{token}?version=3'")
    assert squashed.rc != 0 and "ACCESS denied" in squashed.stderr
    written = host(SERVER).file(f"{EXPORT}/models/{token}")
    assert written.uid == 9000 and written.gid == 9000


def test_host_outside_the_export_list_is_refused():
    outsider = host(OUTSIDER)
    v3 = outsider.run(f"nfs-ls '{URL}?version=3'")
    assert v3.rc != 0 and "MNT3ERR_ACCES" in v3.stderr + v3.stdout
    v4 = outsider.run(f"nfs-ls '{URL}/models?version=4'")
    assert v4.rc != 0
    assert outsider.run(f"nfs-cat '{URL}/models?version=4'").rc != 0


def test_fixed_nfsv3_ports_on_the_server():
    # rpcbind on the server lists what nfs-ganesha and rpc.statd registered. (rpcinfo cannot name
    # a remote host in these containers - "RPC: Unknown host" even for localhost - so it runs there;
    # the nfs-ls calls above reach these ports from the node through the portmapper.)
    rpc = host(SERVER).check_output("rpcinfo -p")
    # program vers proto port [service]; the service name column is missing for some programs here.
    ports = {(int(f[0]), f[2]): int(f[3]) for f in (line.split() for line in rpc.splitlines()[1:]) if len(f) >= 4}
    assert ports[(100005, "tcp")] == 20048  # mountd
    assert ports[(100021, "tcp")] == 32803  # nlockmgr (lockd)
    assert ports[(100024, "tcp")] == 662  # status (rpc.statd)
    assert ports[(100003, "tcp")] == 2049  # nfs


def test_client_mount_configuration_as_rendered():
    node = host(NODE)
    fstab = [line.split() for line in node.file("/etc/fstab").content_string.splitlines() if SHARE in line]
    assert fstab == [[
        f"{SERVER}:{EXPORT}", SHARE, "nfs",
        "defaults,_netdev,nfsvers=3,hard,proto=tcp,timeo=600,retrans=2,noresvport,x-systemd.automount,x-systemd.mount-timeout=30",
        "0", "0",
    ]]
    # systemd's fstab generator turned it into an automount unit (running) and a mount unit.
    assert node.check_output("systemctl is-active 'mnt-looker\\x2dshare.automount'") == "active"
    mount = node.check_output("systemctl show 'mnt-looker\\x2dshare.mount' -p What -p Type -p Options -p TimeoutUSec")
    assert f"What={SERVER}:{EXPORT}" in mount
    assert "Type=nfs" in mount
    assert "TimeoutUSec=30s" in mount
    unit = node.check_output("systemctl cat 'mnt-looker\\x2dshare.mount'")
    assert "Before=remote-fs.target" in unit
    automount = node.check_output("systemctl cat 'mnt-looker\\x2dshare.automount'")
    assert f"Where={SHARE}" in automount
    # The NFSv3 side-band ports as nfs-utils itself reads its configuration.
    assert node.check_output("nfsconf --get statd port") == "662"
    assert node.check_output("nfsconf --get statd outgoing-port") == "2020"
    assert node.check_output("nfsconf --get lockd port") == "32803"
    assert node.check_output("nfsconf --get lockd udp-port") == "32769"
    looker = node.user("looker")
    assert (looker.uid, looker.gid) == (9000, 9000)
