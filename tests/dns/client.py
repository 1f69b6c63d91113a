"""Resolves each NAME:PORT through the system resolver (getaddrinfo, so resolv.conf) and
connects to the first address; prints one line per name: "NAME ADDR ok" or "NAME ADDR
error ..." (ADDR "-" when the name did not resolve). Exit 0 when every connect worked.

    client.py api.test:18090 other.test:18090

A NAME written recvmsg:NAME is resolved by hand instead: one A query to resolv.conf's
first nameserver, its answer read with recvmsg (the C resolvers use recvfrom).
"""
import socket
import struct
import sys


def resolve_recvmsg(name):
    server = next(
        l.split()[1] for l in open("/etc/resolv.conf") if l.startswith("nameserver")
    )
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    query = struct.pack(">HHHHHH", 0x4147, 0x0100, 1, 0, 0, 0) + qname + b"\0\1\0\1"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(query, (server, 53))
        data, _, _, _ = s.recvmsg(512)
    # Past the header and the question: the first answer's A record (a name pointer).
    at = 12 + len(qname) + 4
    if struct.unpack(">H", data[6:8])[0] == 0:
        raise OSError("no answer")
    rtype, _, _, rdlen = struct.unpack(">HHIH", data[at + 2 : at + 12])
    if rtype != 1 or rdlen != 4:
        raise OSError("not an A record")
    return socket.inet_ntoa(data[at + 12 : at + 16])


status = 0
for arg in sys.argv[1:]:
    name, port = arg.rsplit(":", 1)
    try:
        if name.startswith("recvmsg:"):
            name = name[len("recvmsg:"):]
            addr = resolve_recvmsg(name)
        else:
            addr = socket.getaddrinfo(name, int(port), socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
    except OSError as e:
        print(f"{name} - error {e}", flush=True)
        status = 1
        continue
    try:
        with socket.create_connection((addr, int(port)), timeout=5) as s:
            s.recv(16)
        print(f"{name} {addr} ok", flush=True)
    except OSError as e:
        print(f"{name} {addr} error {e}", flush=True)
        status = 1
sys.exit(status)
