"""History of client writes and the checker that judges the healed cluster.

Every write a test issues is recorded with the key, the value (None for a
delete), the node it went through, the wall-clock time the request was sent
and the time its reply arrived, and the outcome:

* ``ok``      acknowledged (SET -> OK, DEL -> DELETED);
* ``noop``    DEL -> NOT_FOUND: the node had no live value, nothing written;
* ``unknown`` no reply (connection refused, reset or timed out): the write
              may or may not have taken effect, at any time after it was sent.

Which write must win. Versions are (HLC, node) and the HLC is the node's
wall clock in milliseconds (plus a counter). All containers of the compose
cluster read the same host clock, so a write B that *started* more than
ORDER_MARGIN seconds after a write A was *acknowledged* carries a larger
version than A: B supersedes A. Writes whose intervals overlap (or come
closer than the margin) are concurrent and either may win. For every key:

* candidates = effective writes (ok or unknown) not superseded by an
  acknowledged write; if the key has no acknowledged write at all, "absent"
  is a candidate too (fresh cluster, nothing was there before);
* the final value, which must be the same on every node, must be one of the
  candidates' values (None for a delete). So an acknowledged write that
  nothing superseded cannot be missing, a superseded value cannot come back,
  and a deleted key cannot come back;
* the expected winner is unambiguous when exactly one candidate remains.

Keys a node holds that no write created are reported as well.
"""

import threading
import time
from dataclasses import dataclass, field

# Two writes further apart than this are ordered by their versions
# (the HLC has millisecond resolution; the margin absorbs scheduling).
ORDER_MARGIN = 0.05

ABSENT = object()


@dataclass
class Write:
    key: str
    value: object  # str, or None for a delete
    node: str
    started: float
    finished: float
    outcome: str  # "ok" | "noop" | "unknown"


@dataclass
class Verdict:
    keys_checked: int = 0
    unique_winner_keys: int = 0
    ambiguous_keys: int = 0
    violations: list = field(default_factory=list)

    @property
    def ok(self):
        return not self.violations

    def summary(self):
        text = (
            f"{self.keys_checked} keys checked, {self.unique_winner_keys} with a unique "
            f"expected winner, {self.ambiguous_keys} with concurrent candidates, "
            f"{len(self.violations)} violations"
        )
        for line in self.violations[:20]:
            text += "\n    " + line
        if len(self.violations) > 20:
            text += f"\n    ... and {len(self.violations) - 20} more"
        return text


class History:
    """Thread-safe log of writes."""

    def __init__(self):
        self._lock = threading.Lock()
        self.writes = []

    def record(self, key, value, node, started, finished, outcome):
        with self._lock:
            self.writes.append(Write(key, value, node, started, finished, outcome))

    def set(self, client, node, key, value):
        """SET through a client, recorded. Returns True when acknowledged."""
        started = time.time()
        try:
            reply = client.set(key, value)
        except (OSError, ConnectionError):
            self.record(key, value, node, started, time.time(), "unknown")
            raise
        finished = time.time()
        outcome = "ok" if reply == "OK" else "unknown"
        self.record(key, value, node, started, finished, outcome)
        return outcome == "ok"

    def delete(self, client, node, key):
        """DEL through a client, recorded. Returns the outcome."""
        started = time.time()
        try:
            reply = client.delete(key)
        except (OSError, ConnectionError):
            self.record(key, None, node, started, time.time(), "unknown")
            raise
        finished = time.time()
        outcome = {"DELETED": "ok", "NOT_FOUND": "noop"}.get(reply, "unknown")
        self.record(key, None, node, started, finished, outcome)
        return outcome

    def acknowledged(self):
        with self._lock:
            return [w for w in self.writes if w.outcome == "ok"]

    def keys(self):
        with self._lock:
            return {w.key for w in self.writes}

    def keys_acked_between(self, start, end):
        """Distinct keys with an acknowledged write sent in [start, end]."""
        with self._lock:
            return {
                w.key for w in self.writes
                if w.outcome == "ok" and start <= w.started <= end
            }

    def candidates(self, key):
        """The values (None = deleted, ABSENT = never written) that may win."""
        with self._lock:
            ops = [w for w in self.writes if w.key == key and w.outcome != "noop"]
        acked = [w for w in ops if w.outcome == "ok"]
        result = []
        for w in ops:
            finished = w.finished if w.outcome == "ok" else float("inf")
            superseded = any(b.started > finished + ORDER_MARGIN for b in acked)
            if not superseded:
                result.append(w)
        values = [w.value for w in result]
        if not acked:
            values.append(ABSENT)
        return values

    def check(self, states, prefix=""):
        """Judges the final states ({node: {key: value}}) of every node."""
        verdict = Verdict()
        nodes = sorted(states)
        written = {k for k in self.keys() if k.startswith(prefix)}
        held = set()
        for node in nodes:
            held |= {k for k in states[node] if k.startswith(prefix)}
        for key in sorted(held - written):
            verdict.violations.append(
                f"{key}: held by {[n for n in nodes if key in states[n]]} but never written"
            )
        for key in sorted(written):
            verdict.keys_checked += 1
            finals = {node: states[node].get(key) for node in nodes}
            distinct = set(finals.values())
            if len(distinct) > 1:
                verdict.violations.append(f"{key}: nodes disagree: {finals}")
                continue
            final = distinct.pop()
            allowed = self.candidates(key)
            if len(allowed) == 1:
                verdict.unique_winner_keys += 1
            else:
                verdict.ambiguous_keys += 1
            ok = any(
                (final is None and (c is None or c is ABSENT)) or (c is not ABSENT and c == final)
                for c in allowed
            )
            if not ok:
                shown = ["<absent>" if c is ABSENT else ("<deleted>" if c is None else c)
                         for c in allowed]
                got = "<absent>" if final is None else final
                kind = "came back after its delete" if all(c is None for c in allowed) else (
                    "lost an acknowledged write" if final is None else "is not the LWW winner")
                verdict.violations.append(f"{key}: {kind}: final {got}, expected one of {shown}")
        return verdict
