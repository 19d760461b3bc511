"""Inside CI's network namespace: `up` brings loopback up without `ip`; `check` fails unless loopback is all there is."""

import fcntl
import socket
import struct
import sys

SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


def loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(s, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | IFF_UP))


def check() -> None:
    interfaces = sorted(name for _, name in socket.if_nameindex())  # this namespace's, unlike /sys
    if interfaces != ["lo"]:
        sys.exit(f"network: expected only the loopback interface, found {interfaces}; the tests must run offline")
    with socket.create_server(("127.0.0.1", 0)) as server:  # loopback itself must work (JupyterLab, torchrun)
        socket.create_connection(server.getsockname(), timeout=5).close()
    print("network: only loopback, and loopback works")


if __name__ == "__main__":
    {"up": loopback_up, "check": check}[sys.argv[1]]()
