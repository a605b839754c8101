"""A small client for the MerkleKV text protocol (client port, default 7379).

Requests are lines ending in "\\r\\n"; every reply line ends in "\\r\\n".
Only what the cluster tests need: single commands, pipelined batches, and
the multi-line replies of SCAN and MGET. Every socket operation has a
timeout, and TCP_NODELAY is set (Nagle would add ~40 ms stalls).
"""

import socket

# Longest reply line accepted (values in these tests are short).
MAX_LINE = 1 << 20


class ProtocolError(Exception):
    """The server answered something this client did not expect."""


class KvClient:
    """One connection to a node's client port."""

    def __init__(self, host, port, timeout=3.0):
        self.address = (host, port)
        self.sock = socket.create_connection(self.address, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(timeout)
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _read_line(self):
        while True:
            end = self.buf.find(b"\r\n")
            if end >= 0:
                line, self.buf = self.buf[:end], self.buf[end + 2:]
                return line.decode("utf-8")
            if len(self.buf) > MAX_LINE:
                raise ProtocolError("reply line too long")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed by the server")
            self.buf += chunk

    def command(self, line):
        """Sends one command line and returns its one-line reply."""
        self.sock.sendall(line.encode("utf-8") + b"\r\n")
        return self._read_line()

    def pipeline(self, lines):
        """Sends several one-line-reply commands in one write; returns the replies."""
        if not lines:
            return []
        self.sock.sendall(b"".join(l.encode("utf-8") + b"\r\n" for l in lines))
        return [self._read_line() for _ in lines]

    # -- typed helpers -----------------------------------------------------

    def set(self, key, value):
        return self.command(f"SET {key} {value}")

    def delete(self, key):
        return self.command(f"DEL {key}")

    def get(self, key):
        """The value, or None when the key is absent."""
        reply = self.command(f"GET {key}")
        if reply == "NOT_FOUND":
            return None
        if reply.startswith("VALUE "):
            return reply[len("VALUE "):]
        raise ProtocolError(f"GET {key}: {reply!r}")

    def root_hash(self):
        """The node's Merkle root as hex (the HASH command)."""
        reply = self.command("HASH")
        parts = reply.split()
        if len(parts) != 2 or parts[0] != "HASH":
            raise ProtocolError(f"HASH: {reply!r}")
        return parts[1]

    def dbsize(self):
        reply = self.command("DBSIZE")
        parts = reply.split()
        if len(parts) != 2 or parts[0] != "DBSIZE":
            raise ProtocolError(f"DBSIZE: {reply!r}")
        return int(parts[1])

    def scan(self, prefix=""):
        """Every live key (optionally under a prefix), sorted."""
        header = self.command(f"SCAN {prefix}".rstrip())
        parts = header.split()
        if len(parts) != 2 or parts[0] != "KEYS":
            raise ProtocolError(f"SCAN: {header!r}")
        return [self._read_line() for _ in range(int(parts[1]))]

    def mget(self, keys):
        """Values of the given keys as a dict (None for absent keys)."""
        if not keys:
            return {}
        header = self.command("MGET " + " ".join(keys))
        if header == "NOT_FOUND":
            return {k: None for k in keys}
        parts = header.split()
        if len(parts) != 2 or parts[0] != "VALUES":
            raise ProtocolError(f"MGET: {header!r}")
        values = {}
        for key in keys:
            line = self._read_line()
            got, _, rest = line.partition(" ")
            if got != key:
                raise ProtocolError(f"MGET: expected key {key!r}, got {line!r}")
            values[key] = None if rest == "NOT_FOUND" else rest
        return values

    def dump(self, prefix="", chunk=200):
        """The node's whole live state (under a prefix) as {key: value}."""
        keys = self.scan(prefix)
        state = {}
        for i in range(0, len(keys), chunk):
            for key, value in self.mget(keys[i:i + chunk]).items():
                if value is not None:
                    state[key] = value
        return state
