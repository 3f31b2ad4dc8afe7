#!/usr/bin/env python3
"""Call cycles between the files of one directory, from the objects the build made.

    callgraph.py BUILD/registry [BUILD/shared ...]

For each directory, every object's undefined symbols (nm -u) are resolved to the object of the
same directory that defines them (nm --defined-only); that gives a graph of file -> file. Every
strongly connected component of more than one file is a circle: those files call each other and
none of them can be tested or changed alone. Each is printed with one symbol per edge, e.g.

    registry: cycle evict.c prewarm.c
      evict.c -> prewarm.c (prewarm_images)
      prewarm.c -> evict.c (evict_serving)

Exit 0: no cycle anywhere; 1: at least one; 2: usage or nm failed."""
import os
import subprocess
import sys


def symbols(obj, *flags):
    out = subprocess.run(["nm", *flags, obj], check=True, capture_output=True, text=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.strip()}


def graph(directory):
    objs = sorted(os.path.join(directory, f) for f in os.listdir(directory) if f.endswith(".o"))
    name = {o: os.path.basename(o)[:-2] + ".c" for o in objs}
    defined = {}
    for o in objs:
        for s in symbols(o, "--defined-only", "-g"):
            defined.setdefault(s, name[o])
    edges = {name[o]: {} for o in objs}
    for o in objs:
        for s in sorted(symbols(o, "-u")):
            to = defined.get(s)
            if to and to != name[o]:
                edges[name[o]].setdefault(to, s)
    return edges


def components(edges):
    """Tarjan's strongly connected components, iteratively (no recursion limit to meet)."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        x = stack.pop()
                        on_stack.discard(x)
                        comp.append(x)
                        if x == v:
                            break
                    out.append(sorted(comp))
            elif w not in index:
                index[w] = low[w] = len(index)
                stack.append(w)
                on_stack.add(w)
                work.append((w, iter(sorted(edges[w]))))
            elif w in on_stack:
                low[v] = min(low[v], index[w])
    return out


def main(dirs):
    if not dirs:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    found = 0
    for d in dirs:
        label = os.path.basename(os.path.normpath(d))
        try:
            edges = graph(d)
        except (OSError, subprocess.CalledProcessError) as e:
            print(f"callgraph: {d}: {e}", file=sys.stderr)
            return 2
        for comp in components(edges):
            if len(comp) < 2:
                continue
            found += 1
            print(f"{label}: cycle {' '.join(comp)}")
            for a in comp:
                for b, sym in sorted(edges[a].items()):
                    if b in comp:
                        print(f"  {a} -> {b} ({sym})")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
