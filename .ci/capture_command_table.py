#!/usr/bin/env python3
"""Writes src/server/commands/redis_command_table.rs: the COMMAND INFO and
COMMAND DOCS entries of every Redis command MerkleKV answers, byte for byte
as the installed redis-server (7.x) sends them over RESP2.

    python3 .ci/capture_command_table.py            # regenerate
    python3 .ci/capture_command_table.py --check    # fail if it would change

MerkleKV's `COMMAND` replies with these entries (and its own commands'),
so redis-cli's hints and client libraries that read the table see what
Redis would tell them about each command.
"""
import os
import socket
import subprocess
import sys
import tempfile
import time

# The Redis commands MerkleKV implements (lower case, as Redis names them).
COMMANDS = """
append auth client command config dbsize decr decrby del discard echo exec
exists expire expireat expiretime flushall flushdb get getdel getex getrange
getset hello incr incrby incrbyfloat info keys lastsave mget mset msetnx multi
persist pexpire pexpireat pexpiretime ping psetex pttl quit randomkey rename
renamenx scan select set setex setnx setrange shutdown strlen substr time
touch ttl type unlink
""".split()

OUT = os.path.join(os.path.dirname(__file__), "..", "src", "server", "commands",
                   "redis_command_table.rs")


def read_reply(sock, buf):
    """Reads one whole RESP reply; returns (raw bytes, rest of buffer)."""
    def need(n):
        nonlocal buf
        while len(buf) < n:
            chunk = sock.recv(65536)
            if not chunk:
                raise RuntimeError("redis-server closed the connection")
            buf += chunk

    def skip(pos):
        while True:
            end = buf.find(b"\r\n", pos)
            if end >= 0:
                break
            need(len(buf) + 1)
        kind, body = buf[pos:pos + 1], buf[pos + 1:end]
        after = end + 2
        if kind in (b"+", b"-", b":"):
            return after
        n = int(body)
        if kind == b"$":
            if n < 0:
                return after
            need(after + n + 2)
            return after + n + 2
        if kind == b"*":
            for _ in range(max(n, 0)):
                after = skip(after)
            return after
        raise RuntimeError(f"unexpected RESP type {kind!r}")

    need(1)
    end = skip(0)
    return buf[:end], buf[end:]


def request(sock, *args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    sock.sendall(out)
    raw, rest = read_reply(sock, b"")
    assert not rest, "one reply expected"
    return raw


def strip_array_header(raw, expected):
    header, _, body = raw.partition(b"\r\n")
    assert header == b"*%d" % expected, (header, expected)
    return body


def after_name(body, name):
    prefix = b"$%d\r\n%s\r\n" % (len(name), name.encode())
    assert body.startswith(prefix), (body[:40], name)
    return body[len(prefix):]


def parse(raw, pos=0):
    """RESP bytes into nested lists (bulks and simple values kept raw)."""
    end = raw.index(b"\r\n", pos)
    kind, body, after = raw[pos:pos + 1], raw[pos + 1:end], end + 2
    if kind == b"*" and int(body) >= 0:
        items = []
        for _ in range(int(body)):
            item, after = parse(raw, after)
            items.append(item)
        return items, after
    if kind == b"$" and int(body) >= 0:
        after += int(body) + 2
    return raw[pos:after], after


def serialize(value):
    if isinstance(value, list):
        return b"*%d\r\n" % len(value) + b"".join(serialize(v) for v in value)
    return value


def sorted_subcommands(info, docs):
    """Redis lists a container's subcommands in hash order (it differs
    between runs); the table keeps them by name."""
    entry, _ = parse(info)
    entry[9].sort(key=lambda sub: sub[0])
    fields, _ = parse(docs)
    for i in range(0, len(fields), 2):
        if fields[i].endswith(b"subcommands\r\n"):
            pairs = [fields[i + 1][j:j + 2] for j in range(0, len(fields[i + 1]), 2)]
            pairs.sort(key=lambda pair: pair[0])
            fields[i + 1] = [x for pair in pairs for x in pair]
    return serialize(entry), serialize(fields)


def rust_bytes(raw):
    text = raw.decode("latin-1")
    escaped = "".join(
        c if 32 <= ord(c) < 127 and c not in '"\\' else
        {"\\": "\\\\", '"': '\\"', "\r": "\\r", "\n": "\\n"}.get(c, "\\x%02x" % ord(c))
        for c in text)
    return 'b"' + escaped + '"'


def capture():
    with tempfile.TemporaryDirectory() as tmp:
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        server = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", tmp],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                try:
                    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                    break
                except OSError:
                    time.sleep(0.05)
            else:
                raise RuntimeError("redis-server did not start")
            version = request(sock, "INFO", "server").decode()
            version = next(l.split(":", 1)[1].strip() for l in version.splitlines()
                           if l.startswith("redis_version:"))
            rows = []
            for name in sorted(COMMANDS):
                info = strip_array_header(request(sock, "COMMAND", "INFO", name), 1)
                docs = after_name(strip_array_header(request(sock, "COMMAND", "DOCS", name), 2),
                                  name)
                rows.append((name, *sorted_subcommands(info, docs)))
            return version, rows
        finally:
            server.terminate()
            server.wait()


def render(version, rows):
    lines = [
        "//! Generated by `.ci/capture_command_table.py` from redis-server "
        f"{version}: do not edit.",
        "//! Each Redis command MerkleKV answers, with the `COMMAND INFO` and",
        "//! `COMMAND DOCS` entries Redis gives for it over RESP2, byte for byte.",
        "",
        "/// `(name, COMMAND INFO entry, COMMAND DOCS entry without the name)`, by name.",
        "pub const REDIS_COMMANDS: &[(&str, &[u8], &[u8])] = &[",
    ]
    for name, info, docs in rows:
        lines.append(f'    (\n        "{name}",\n        {rust_bytes(info)},\n'
                     f'        {rust_bytes(docs)},\n    ),')
    lines.append("];")
    return "\n".join(lines) + "\n"


def main():
    text = render(*capture())
    if "--check" in sys.argv:
        with open(OUT) as f:
            if f.read() != text:
                sys.exit(f"{OUT} differs from what redis-server answers: regenerate it")
        return
    with open(OUT, "w") as f:
        f.write(text)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
