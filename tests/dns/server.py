"""A DNS server for tests, stdlib only: answers A queries on UDP from a JSON table
{"name": "address" or ["address", ...]} that it re-reads for every query (so a test can move
a name to another address); a list is answered one address per query, in turn (a name
whose address changes while the tree runs). A short TTL; other names get NXDOMAIN. It also accepts TCP
connections on the --listen addresses, so that connecting to an answer succeeds.

    server.py --dns 127.0.0.153 --table names.json --ttl 1 --listen 127.0.0.21:18090 ...
"""
import argparse
import json
import socket
import struct
import threading


def qname(msg, off):
    labels = []
    while msg[off]:
        n = msg[off]
        labels.append(msg[off + 1:off + 1 + n].decode().lower())
        off += n + 1
    return ".".join(labels), off + 1


turns = {}


def answer(msg, table, ttl):
    ident, flags, qd = struct.unpack("!HHH", msg[:6])
    name, end = qname(msg, 12)
    qtype, _ = struct.unpack("!HH", msg[end:end + 4])
    question = msg[12:end + 4]
    addrs = table.get(name)
    if isinstance(addrs, str):
        addrs = [addrs]
    elif isinstance(addrs, list) and addrs and qtype == 1:
        i = turns.get(name, 0)
        turns[name] = i + 1
        addrs = [addrs[i % len(addrs)]]
    rcode = 0 if addrs is not None else 3
    records = b""
    if addrs and qtype == 1:
        for a in addrs:
            records += b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, ttl, 4) + socket.inet_aton(a)
    count = len(addrs) if (addrs and qtype == 1) else 0
    head = struct.pack("!HHHHHH", ident, 0x8180 | rcode, 1, count, 0, 0)
    return head + question + records


def serve_dns(addr, table_path, ttl):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, 53))
    while True:
        msg, peer = s.recvfrom(2048)
        try:
            with open(table_path) as f:
                table = json.load(f)
            s.sendto(answer(msg, table, ttl), peer)
        except Exception as e:  # a test helper: say why, keep serving
            print(f"dns: {e}", flush=True)


def serve_tcp(hostport):
    host, port = hostport.rsplit(":", 1)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, int(port)))
    s.listen(16)
    while True:
        c, _ = s.accept()
        c.sendall(b"hello\n")
        c.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dns", required=True)
    ap.add_argument("--table", required=True)
    ap.add_argument("--ttl", type=int, default=1)
    ap.add_argument("--listen", action="append", default=[])
    a = ap.parse_args()
    for hp in a.listen:
        threading.Thread(target=serve_tcp, args=(hp,), daemon=True).start()
    print("ready", flush=True)
    serve_dns(a.dns, a.table, a.ttl)


if __name__ == "__main__":
    main()
