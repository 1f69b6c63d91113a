"""Resolves each NAME:PORT through the system resolver (getaddrinfo, so resolv.conf) and
connects to the first address; prints one line per name: "NAME ADDR ok" or "NAME ADDR
error ..." (ADDR "-" when the name did not resolve). Exit 0 when every connect worked.

    client.py api.test:18090 other.test:18090
"""
import socket
import sys

status = 0
for arg in sys.argv[1:]:
    name, port = arg.rsplit(":", 1)
    try:
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
