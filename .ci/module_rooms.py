#!/usr/bin/env python3
"""Module dependency rooms and circles of src/ (what `farm-studio look` reports).

A *room* is a top-level module of the crate (`src/X.rs` or `src/X/`); inside
one room, each file is a room of its own for the second report. An edge A -> B
means a file of A names `crate::B` (or, inside a room, `super::B`). A *circle*
is a strongly connected component with more than one room.

    python3 .ci/module_rooms.py [src] [-v] [--check]

`-v` also prints every top-level edge; `--check` exits 1 when any circle is
found (`.ci/run` runs it so), so the layering documented in docs/design.md
stays true. It reads `use`/path text, not the compiler's name resolution:
a rough but cheap view, enough to keep the rooms one-way.
"""
import os, re, sys
from collections import defaultdict

args = [a for a in sys.argv[1:] if not a.startswith("-")]
root = args[0] if args else "src"
files = []
for d, _, fs in os.walk(root):
    for f in fs:
        if f.endswith(".rs"):
            files.append(os.path.join(d, f))

def modpath(path):
    rel = os.path.relpath(path, root)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return rel

CRATE = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)(?:::([a-z_][a-z0-9_]*))?")
SUPER = re.compile(r"\b((?:super::)+)([a-z_][a-z0-9_]*)")
COMMENT = re.compile(r"//[^\n]*")
USE_GROUP = re.compile(r"use\s+crate::\{([^;]*)\};", re.S)

def strip_tests(text):
    # drop `#[cfg(test)] mod x { ... }` blocks roughly: everything after the first
    # `#[cfg(test)]\nmod` at top level of the file
    m = re.search(r"^#\[cfg\(test\)\]\s*\n\s*mod\s+\w+\s*\{", text, re.M)
    return text[: m.start()] if m else text

def is_test_file(p):
    parts = os.path.relpath(p, root).split(os.sep)
    return "tests" in parts or parts[-1] == "tests.rs"

top_edges = defaultdict(set)
inner_edges = defaultdict(lambda: defaultdict(set))
for p in files:
    if is_test_file(p):
        continue
    mp = modpath(p)
    if not mp:
        continue
    # Comments (doc links included) are not dependencies.
    text = COMMENT.sub("", strip_tests(open(p, encoding="utf-8").read()))
    room = mp[0]
    names = []
    for m in CRATE.finditer(text):
        names.append((m.group(1), m.group(2)))
    for m in USE_GROUP.finditer(text):
        for part in re.split(r",\s*(?![^{]*\})", m.group(1)):
            part = part.strip()
            if not part:
                continue
            head = re.match(r"([a-z_][a-z0-9_]*)(?:::(?:\{([^}]*)\}|([a-z_][a-z0-9_]*)))?", part)
            if head:
                subs = []
                if head.group(2):
                    subs = [s.strip().split("::")[0] for s in head.group(2).split(",")]
                elif head.group(3):
                    subs = [head.group(3)]
                if subs:
                    for s in subs:
                        names.append((head.group(1), s))
                else:
                    names.append((head.group(1), None))
    for top, sub in names:
        if top in ("proto",):
            continue
        if top != room:
            top_edges[room].add(top)
        elif sub and len(mp) >= 2 and sub != mp[1]:
            inner_edges[room][mp[1]].add(sub)
    if len(mp) >= 2:
        # `super::` is the parent module of the file's module; each further
        # `super::` goes one level up. Inside a room, an edge joins two of
        # its second-level modules.
        for m in SUPER.finditer(text):
            ups = m.group(1).count("super::")
            base = mp[: len(mp) - ups]
            target = base + [m.group(2)]
            if len(target) >= 2 and target[0] == room and target[1] != mp[1]:
                inner_edges[room][mp[1]].add(target[1])

def sccs(graph):
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]
    nodes = set(graph) | {v for vs in graph.values() for v in vs}
    def strong(v):
        index[v] = low[v] = counter[0]; counter[0] += 1
        stack.append(v); on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))
    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            strong(v)
    return [c for c in out if len(c) > 1]

rooms = sorted({modpath(p)[0] for p in files if modpath(p)})
print(f"top-level rooms: {len(rooms)}, edges: {sum(len(v) for v in top_edges.values())}")
circ = sccs(top_edges)
print(f"top-level circles: {len(circ)}")
for c in circ:
    print("  circle:", " <-> ".join(c))
for room in sorted(inner_edges):
    g = inner_edges[room]
    c = sccs(g)
    if c:
        print(f"circles inside {room}/: {len(c)}")
        for comp in c:
            print("  circle:", " <-> ".join(comp))
total = len(circ)
for room in inner_edges:
    total += len(sccs(inner_edges[room]))
if "-v" in sys.argv:
    for a in sorted(top_edges):
        print(a, "->", ", ".join(sorted(top_edges[a])))
if "--check" in sys.argv and total:
    print(f"{total} module circle(s): keep dependencies one-way (docs/design.md)")
    sys.exit(1)
