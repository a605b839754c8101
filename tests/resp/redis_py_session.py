"""A scripted redis-py session against a MerkleKV node (tests/resp_clients.rs).

Usage: python3 redis_py_session.py PORT PROTOCOL   (PROTOCOL: 2, 3 or default)
Prints "redis-py session OK" at the end; any mismatch raises.
"""
import sys

import redis

port = int(sys.argv[1])
proto = sys.argv[2] if len(sys.argv) > 2 else "default"
kwargs = {} if proto == "default" else {"protocol": int(proto)}
r = redis.Redis(host="127.0.0.1", port=port, **kwargs)
p = "py%s:" % proto  # keys of this run


def eq(got, want, what):
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (what, got, want))


eq(r.ping(), True, "ping")
eq(r.echo("hi there"), b"hi there", "echo")

# Binary-safe keys and values: CR, LF and NUL inside.
binary = b"a\r\nb\x00c\r\n\x00\xff"
eq(r.set(p + "bin", binary), True, "set binary")
eq(r.get(p + "bin"), binary, "get binary")
bkey = p.encode() + b"k\r\n\x00"
eq(r.set(bkey, b"v"), True, "set binary key")
eq(r.get(bkey), b"v", "get binary key")
eq(r.get(p + "missing"), None, "get missing")

# Strings and numbers.
eq(r.mset({p + "a": "1", p + "b": "2"}), True, "mset")
eq(r.mget(p + "a", p + "missing", p + "b"), [b"1", None, b"2"], "mget")
eq(r.incr(p + "n"), 1, "incr")
eq(r.incrby(p + "n", 10), 11, "incrby")
eq(r.decr(p + "n"), 10, "decr")
eq(r.decrby(p + "n", 15), -5, "decrby")
eq(r.append(p + "s", "abc"), 3, "append to missing")
eq(r.append(p + "s", "de"), 5, "append")
eq(r.get(p + "s"), b"abcde", "get appended")
eq(r.exists(p + "a", p + "b", p + "missing"), 2, "exists")
eq(r.delete(p + "a", p + "missing"), 1, "delete")
eq(r.exists(p + "a"), 0, "exists after delete")

# Errors.
try:
    r.execute_command("GET")
    raise AssertionError("GET without a key must fail")
except redis.exceptions.ResponseError as e:
    eq(str(e), "wrong number of arguments for 'get' command", "arity error")
r.set(p + "word", "abc")
try:
    r.incr(p + "word")
    raise AssertionError("INCR on a non-number must fail")
except redis.exceptions.ResponseError as e:
    eq(str(e), "value is not an integer or out of range", "incr error")
try:
    r.execute_command("NOSUCHCOMMAND", "x")
    raise AssertionError("unknown command must fail")
except redis.exceptions.ResponseError as e:
    if not str(e).startswith("unknown command 'NOSUCHCOMMAND'"):
        raise
# The connection is still usable after errors.
eq(r.get(p + "word"), b"abc", "after errors")

# A pipeline of 100 commands (no transaction).
pipe = r.pipeline(transaction=False)
for i in range(50):
    pipe.set("%sp%d" % (p, i), i)
for i in range(50):
    pipe.get("%sp%d" % (p, i))
out = pipe.execute()
eq(len(out), 100, "pipeline length")
eq(out[:50], [True] * 50, "pipeline sets")
eq(out[50:], [str(i).encode() for i in range(50)], "pipeline gets")

# redis-py's default pipeline is a MULTI/EXEC transaction.
pipe = r.pipeline()
pipe.set(p + "t", "1").incr(p + "t").get(p + "t").get(p + "missing")
eq(pipe.execute(), [True, 2, b"2", None], "transaction")
pipe = r.pipeline()
pipe.set(p + "t", "9").execute_command("NOSUCHCOMMAND")
try:
    pipe.execute()
    raise AssertionError("a transaction with a bad command must fail")
except redis.exceptions.ResponseError:
    pass
eq(r.get(p + "t"), b"2", "aborted transaction changed nothing")

# Keys, scan, client, info, dbsize, flushdb.
eq(sorted(r.keys(p + "p1*")), sorted(("%sp%d" % (p, i)).encode() for i in [1] + list(range(10, 20))), "keys")
eq(sorted(r.scan_iter(match=p + "p4*")), sorted(("%sp%d" % (p, i)).encode() for i in [4] + list(range(40, 50))), "scan_iter")
eq(r.client_setname("tester"), True, "client setname")
eq(r.client_getname() in ("tester", b"tester"), True, "client getname")
eq(any(c.get("name") == "tester" for c in r.client_list()), True, "client list")
info = r.info()
for field in ("version", "uptime_seconds", "db_keys"):
    if field not in info:
        raise AssertionError("info lacks %s: %r" % (field, info))
eq(info["db_keys"], r.dbsize(), "info db_keys")
eq(r.config_get("save"), {"save": ""}, "config get")
eq(r.execute_command("SELECT", 0) in (True, b"OK", "OK"), True, "select 0")
eq(r.flushdb(), True, "flushdb")
eq(r.dbsize(), 0, "dbsize after flushdb")
eq(r.get(p + "bin"), None, "get after flushdb")
print("redis-py session OK")
