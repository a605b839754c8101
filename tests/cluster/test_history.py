"""Unit tests of the history checker (no Docker needed):
python3 -m unittest discover -s tests/cluster -p 'test_*.py'"""

import unittest

from history import ORDER_MARGIN, History

GAP = ORDER_MARGIN * 4


def history_of(*writes):
    """writes: (key, value or None, node, started, finished, outcome)."""
    h = History()
    for w in writes:
        h.record(*w)
    return h


def same_everywhere(state):
    return {n: dict(state) for n in ("node1", "node2", "node3")}


class CheckerTest(unittest.TestCase):
    def test_later_write_must_win(self):
        h = history_of(("k", "old", "node1", 0.0, 0.01, "ok"),
                       ("k", "new", "node3", 0.01 + GAP, 0.02 + GAP, "ok"))
        self.assertTrue(h.check(same_everywhere({"k": "new"})).ok)
        verdict = h.check(same_everywhere({"k": "old"}))
        self.assertFalse(verdict.ok)
        self.assertIn("not the LWW winner", verdict.violations[0])
        self.assertEqual(verdict.unique_winner_keys, 1)

    def test_concurrent_writes_may_both_win(self):
        h = history_of(("k", "a", "node1", 0.0, 0.02, "ok"),
                       ("k", "b", "node2", 0.01, 0.03, "ok"))
        self.assertTrue(h.check(same_everywhere({"k": "a"})).ok)
        self.assertTrue(h.check(same_everywhere({"k": "b"})).ok)
        self.assertEqual(h.check(same_everywhere({"k": "b"})).ambiguous_keys, 1)
        self.assertFalse(h.check(same_everywhere({})).ok)

    def test_lost_acknowledged_write(self):
        h = history_of(("k", "v", "node2", 0.0, 0.01, "ok"))
        verdict = h.check(same_everywhere({}))
        self.assertFalse(verdict.ok)
        self.assertIn("lost an acknowledged write", verdict.violations[0])

    def test_deleted_key_must_not_come_back(self):
        h = history_of(("k", "v", "node1", 0.0, 0.01, "ok"),
                       ("k", None, "node1", 0.01 + GAP, 0.02 + GAP, "ok"))
        self.assertTrue(h.check(same_everywhere({})).ok)
        verdict = h.check(same_everywhere({"k": "v"}))
        self.assertFalse(verdict.ok)
        self.assertIn("came back after its delete", verdict.violations[0])

    def test_unknown_write_may_or_may_not_apply(self):
        h = history_of(("k", "v", "node1", 0.0, 0.01, "ok"),
                       ("k", "maybe", "node2", 0.01 + GAP, 0.02 + GAP, "unknown"))
        self.assertTrue(h.check(same_everywhere({"k": "v"})).ok)
        self.assertTrue(h.check(same_everywhere({"k": "maybe"})).ok)
        self.assertFalse(h.check(same_everywhere({})).ok)

    def test_only_unknown_writes_allow_absence(self):
        h = history_of(("k", "maybe", "node2", 0.0, 0.01, "unknown"))
        self.assertTrue(h.check(same_everywhere({})).ok)
        self.assertTrue(h.check(same_everywhere({"k": "maybe"})).ok)

    def test_noop_delete_changes_nothing(self):
        h = history_of(("k", "v", "node1", 0.0, 0.01, "ok"),
                       ("k", None, "node3", 0.01 + GAP, 0.02 + GAP, "noop"))
        self.assertTrue(h.check(same_everywhere({"k": "v"})).ok)
        self.assertFalse(h.check(same_everywhere({})).ok)

    def test_disagreeing_nodes(self):
        h = history_of(("k", "v", "node1", 0.0, 0.01, "ok"))
        states = same_everywhere({"k": "v"})
        states["node2"] = {}
        verdict = h.check(states)
        self.assertFalse(verdict.ok)
        self.assertIn("nodes disagree", verdict.violations[0])

    def test_key_nobody_wrote(self):
        h = history_of(("k", "v", "node1", 0.0, 0.01, "ok"))
        verdict = h.check(same_everywhere({"k": "v", "ghost": "x"}))
        self.assertFalse(verdict.ok)
        self.assertIn("never written", verdict.violations[0])

    def test_prefix_limits_the_check(self):
        h = history_of(("a:k", "v", "node1", 0.0, 0.01, "ok"))
        self.assertTrue(h.check(same_everywhere({"a:k": "v", "b:other": "x"}), prefix="a:").ok)

    def test_keys_acked_between(self):
        h = history_of(("k1", "v", "node1", 1.0, 1.1, "ok"),
                       ("k2", "v", "node1", 2.0, 2.1, "ok"),
                       ("k3", "v", "node1", 2.5, 2.6, "unknown"))
        self.assertEqual(h.keys_acked_between(1.5, 3.0), {"k2"})


if __name__ == "__main__":
    unittest.main()
