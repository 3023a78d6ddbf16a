#!/usr/bin/env python3
"""Import cycles per crate, at two granularities: top-level modules and files.

Edges come from `crate::a::b` and `super::x` paths in a file (comments and the
file's unit-test module stripped; a module using its own children is not an
edge back). Prints the strongly connected components (groups of units that
reach each other) and exits 1 when there is any.

Usage: scripts/cycles.py [REPO_ROOT]"""
import os, re, sys
root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
def files_of(crate):
    src = os.path.join(root, 'crates', crate, 'src'); out = {}
    for d, _, fs in os.walk(src):
        for f in fs:
            if f.endswith('.rs'):
                p = os.path.relpath(os.path.join(d, f), src)[:-3].split('/')
                if p[-1] == 'mod': p = p[:-1]
                if p in (['lib'], ['main']) or not p: continue
                out[os.path.join(d, f)] = tuple(p)
    return out
def paths(text, me, is_mod):
    text = re.sub(r'//.*', '', text)
    t = re.search(r'#\[cfg\(test\)\]\s*mod tests', text)  # unit tests may use anything
    if t: text = text[:t.start()]
    res = []
    def add(base, rest):
        res.append(tuple(base) + tuple(x for x in rest if x))
    for m in re.finditer(r'\b(crate|super)::\{([^;]*?)\}\s*;', text, re.S):
        base = [] if m.group(1) == 'crate' else list(me[:-1])
        depth = 0; cur = ''
        for ch in m.group(2) + ',':
            if ch in '{': depth += 1
            if ch in '}': depth -= 1
            if ch == ',' and depth == 0:
                add(base, [x.strip('{} \n') for x in cur.strip().split('::')][:3]); cur = ''
            else: cur += ch
    for m in re.finditer(r'\b(crate|super)((?:::\w+)+)', text):
        base = [] if m.group(1) == 'crate' else list(me[:-1])
        add(base, m.group(2).split('::')[1:4])
    return res
def sccs(nodes, edges):
    idx, low, st, on, res, c = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(100000)
    def go(v):
        idx[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in idx: go(w); low[v] = min(low[v], low[w])
            elif w in on: low[v] = min(low[v], idx[w])
        if low[v] == idx[v]:
            comp = []
            while True:
                w = st.pop(); on.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1: res.append(sorted(comp))
    for v in sorted(nodes):
        if v not in idx: go(v)
    return res
total = {'modules': 0, 'files': 0}
for crate in sorted(os.listdir(os.path.join(root, 'crates'))):
    files = files_of(crate)
    units = set(files.values())
    for gran in ('modules', 'files'):
        def unit(p):
            if gran == 'modules': return p[0]
            for k in range(len(p), 0, -1):
                if tuple(p[:k]) in units: return '/'.join(p[:k])
            return None
        nodes = {unit(p) for p in units}; edges = {}
        for f, me in files.items():
            a = unit(me); is_mod = f.endswith('mod.rs')
            for p in paths(open(f).read(), me, is_mod):
                b = unit(p) if p else None
                if b and b in nodes and b != a and not (gran == 'files' and (a.startswith(b + '/'))):
                    edges.setdefault(a, set()).add(b)
        comps = sccs(nodes, edges); total[gran] += len(comps)
        print(f'{crate} [{gran}]: {len(comps)} cyclic groups' + ''.join(f'\n    {" ".join(c)}' for c in comps))
print(f'TOTAL: {total["modules"]} cyclic groups of top-level modules, {total["files"]} of files')
sys.exit(1 if total["modules"] or total["files"] else 0)
