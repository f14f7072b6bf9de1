#!/usr/bin/env python3
"""The summary of scripts/pnr-ecp5: DIR/ecp5.json and a short table.

Reads DIR/stat.json (flat yosys netlist), DIR/hier_stat.json (the same synthesised without
flattening, one emitted module per instance), DIR/nextpnr.log (time-stamped lines),
DIR/report.json (nextpnr --report) and DIR/routed.sdf (nextpnr --sdf) when they exist, or
DIR/placed.sdf after --no-route (the same format, nets at nextpnr's placed estimates), and
router2's last heatmap DIR/heat/h_congestion_by_net_N.csv (--heatmap).
Critical paths: nextpnr's report holds the worst path per clock pair; the top paths by
endpoint come from a static timing pass over the SDF (cell IOPATH + INTERCONNECT
delays, setup included), each path's cells mapped to the engine block they belong to.
"""
import csv
import glob
import json
import os
import re
import sys
from collections import defaultdict

AVAILABLE = {  # LFE5U-85F
    "lut4": 83640, "ff": 83640, "ccu2c": 41820, "dp16kd": 208, "mult18x18d": 156,
    "alu54b": 78, "dpr16x4": 20910,
}


def load_stat(path):
    text = open(path).read()
    return json.loads(text[text.index("{"):])


def flat_counts(stat):
    mods = stat["modules"]
    if len(mods) == 1:
        cells = next(iter(mods.values()))["num_cells_by_type"]
    else:
        cells = stat["design"]["num_cells_by_type"]
    return {
        "lut4": cells.get("LUT4", 0),
        "ff": sum(v for k, v in cells.items() if k.startswith("TRELLIS_FF")),
        "ccu2c": cells.get("CCU2C", 0),
        "dp16kd": cells.get("DP16KD", 0),
        "mult18x18d": cells.get("MULT18X18D", 0),
        "alu54b": cells.get("ALU54B", 0),
        "dpr16x4": cells.get("TRELLIS_DPR16X4", 0),
        "pfumx": cells.get("PFUMX", 0),
        "l6mux21": cells.get("L6MUX21", 0),
    }


def strip(name):
    return name[1:] if name.startswith("\\") else name


def breakdown(stat):
    """Per emitted module, its own cells and its subtree's, keyed by instance path."""
    mods = {strip(k): v.get("num_cells_by_type", {}) for k, v in stat["modules"].items()}
    kinds = {"LUT4": "lut4", "CCU2C": "ccu2c", "MULT18X18D": "mult18x18d", "DP16KD": "dp16kd"}

    def own(m):
        c = mods[m]
        r = {v: c.get(k, 0) for k, v in kinds.items()}
        r["ff"] = sum(n for k, n in c.items() if k.startswith("TRELLIS_FF"))
        return r

    memo = {}

    def total(m):
        if m in memo:
            return memo[m]
        r = dict(own(m))
        for child, n in mods[m].items():
            child = strip(child)
            if child in mods:
                t = total(child)
                for k in r:
                    r[k] += n * t[k]
        memo[m] = r
        return r

    top = "vargnet_engine"
    if top not in mods:
        return None
    rows = []

    def walk(m, path, depth):
        children = [strip(c) for c in mods[m] if strip(c) in mods]
        for child in sorted(children):
            t = total(child)
            if t["lut4"] + t["mult18x18d"] + t["dp16kd"] + t["ccu2c"] == 0:
                continue
            name = child[len(m) + 1:] if child.startswith(m + "$") else child
            p = f"{path}.{name}" if path else name
            rows.append({"block": p, "depth": depth, **t})
            # the second level where it says something: units with multipliers or > 1 k LUT4
            if depth == 0 and (t["mult18x18d"] > 0 or t["lut4"] > 1000):
                walk(child, p, depth + 1)

    walk(top, "", 0)
    own_top = own(top)
    rows.append({"block": "(engine top itself)", "depth": 0, **own_top})
    return {"engine": total(top), "blocks": rows}


# --- the block a routed cell belongs to -------------------------------------------------

class Blocks:
    """Maps a placed cell to the engine block its logic came from: the cell's yosys `src`
    attribute (synth.json) names lines of the emitted engine.v, whose module ranges and
    instantiations give the instance path (engine.lanes$0, engine.post.ppu$3, ...).
    Cells without a usable src fall back to their name (flattened names start `engine.`)."""

    def __init__(self, verilog, netlist):
        self.starts, self.mods, self.path = [], [], {}
        children = defaultdict(list)
        cur = None
        inst = re.compile(r"^\s+(vargnet_engine\S*)\s+(\S+)\(")
        for i, line in enumerate(open(verilog), 1):
            if line.startswith("module "):
                cur = line[7:].split("(")[0].strip()
                self.starts.append(i)
                self.mods.append(cur)
            else:
                m = inst.match(line)
                if m and cur:
                    children[cur].append((m.group(1), m.group(2)))
        stack = [("vargnet_engine", [])]
        while stack:
            mod, p = stack.pop()
            self.path[mod] = p
            for child, name in children.get(mod, []):
                stack.append((child, p + [name]))
        self.src, self.type = {}, {}
        if netlist:
            d = json.load(open(netlist))
            for m in d["modules"].values():
                for name, c in m.get("cells", {}).items():
                    self.type[name] = c.get("type")
                    src = c.get("attributes", {}).get("src")
                    if src:
                        self.src[name] = src
        self.verilog = verilog.rsplit("/", 1)[-1]

    def module_at(self, line):
        import bisect
        i = bisect.bisect_right(self.starts, line) - 1
        return self.mods[i] if i >= 0 else None

    def __call__(self, cell):
        cell = strip(cell)
        src, name = None, cell
        for _ in range(3):
            if name in self.src:
                src = self.src[name]
                break
            if "$" not in name:
                break
            name = name.rsplit("$", 1)[0]
        if src:
            shell = False
            for part in src.split("|"):
                f, _, pos = part.rpartition(":")
                if f.endswith(self.verilog):
                    mod = self.module_at(int(pos.split(".")[0]))
                    if mod in self.path:
                        return reduce_path(self.path[mod])
                elif "shell" in f:
                    shell = True
            if shell:
                return "shell"
        return block_of(cell)


def flat_breakdown(block):
    """The placed (flat) netlist's cells per block, by each cell's first engine.v source;
    blocks that differ only in an index (post.ppu$0..7) are summed into one row."""
    kinds = {"LUT4": "lut4", "CCU2C": "ccu2c", "MULT18X18D": "mult18x18d", "DP16KD": "dp16kd",
             "TRELLIS_FF": "ff"}
    per = defaultdict(lambda: defaultdict(int))
    for name, t in block.type.items():
        k = kinds.get(t)
        if k:
            per[block(name) or "?"][k] += 1
    groups = defaultdict(lambda: {"n": 0, **{k: 0 for k in kinds.values()}})
    first = {}
    for b, c in per.items():
        g = re.sub(r"\$\d+$", "$*", b)
        first.setdefault(g, b)
        groups[g]["n"] += 1
        for k, v in c.items():
            groups[g][k] += v
    rows = [{"block": g if v["n"] > 1 else first[g], **v} for g, v in groups.items()]
    rows.sort(key=lambda r: (-r["mult18x18d"], -r["lut4"]))
    return rows


def reduce_path(p):
    if not p:
        return "top"
    if len(p) >= 2 and (p[0] in ("post", "array", "pool") or (p[0] == "ctrl" and p[1] == "check")):
        return ".".join(p[:2])
    return p[0]


def block_of(name):
    """By name: 'engine.lanes$0.q_TRELLIS_FF_Q' -> 'lanes$0'."""
    name = strip(name)
    if not name.startswith("engine."):
        if name.startswith(("chain", "in_r", "out_r")):
            return "shell"
        return None
    return reduce_path(name[len("engine."):].split(".")[:-1])


def congestion(out, n=12):
    """router2's last heatmap (`--router2-heatmap DIR/heat/h`): each net's count of
    congested wires, summed per engine block (like blocks, post.ppu$0..7, together)."""
    it = lambda f: int(re.search(r"_(\d+)\.csv$", f).group(1))
    files = sorted(glob.glob(f"{out}/heat/h_congestion_by_net_*.csv"), key=it)
    if not files:
        return None
    per = defaultdict(int)
    for row in csv.reader(open(files[-1])):
        if len(row) >= 2 and row[1].strip().isdigit():
            b = block_of(row[0])
            per[re.sub(r"\$\d+", "", b) if b else "(other)"] += int(row[1])
    total = sum(per.values()) or 1
    top = sorted(per.items(), key=lambda kv: -kv[1])[:n]
    return {"iteration": it(files[-1]), "total": total,
            "blocks": [{"block": b, "congested": c, "share": round(c / total, 3)} for b, c in top]}


def fill_blocks(items):
    """Each item is (block or None, ...); unnamed cells take the block of the nearest named."""
    blocks = [b for b, *_ in items]
    known = [i for i, b in enumerate(blocks) if b]
    if not known:
        return blocks
    for i, b in enumerate(blocks):
        if not b:
            j = min(known, key=lambda k: (abs(k - i), k))
            blocks[i] = blocks[j] + "?"
    return blocks


# --- nextpnr's own worst paths ----------------------------------------------------------

def nextpnr_paths(rep, block=block_of):
    paths = []
    for cp in rep.get("critical_paths", []):
        segs = cp.get("path", [])
        if not segs:
            continue
        total = sum(s.get("delay", 0.0) for s in segs)
        cells, items = [], []
        for s in segs:
            for end in ("from", "to"):
                c = s.get(end, {}).get("cell")
                if c and (not cells or cells[-1] != c):
                    cells.append(c)
        for c in cells:
            items.append((block(c), c))
        blocks = fill_blocks(items)
        paths.append({
            "clocks": f"{cp.get('from')} -> {cp.get('to')}",
            "delay_ns": round(total, 2),
            "start": segs[0]["from"]["cell"],
            "end": segs[-1]["to"]["cell"],
            "cells": len(cells),
            "logic_ns": round(sum(s["delay"] for s in segs if s.get("type") in ("logic", "clk-to-q", "setup", "source")), 2),
            "routing_ns": round(sum(s["delay"] for s in segs if s.get("type") == "routing"), 2),
            "blocks": runs(blocks),
        })
    return paths


def runs(blocks):
    """['a','a','b?','b'] -> 'a ×2 → b ×2' (the path's blocks in order, with cell counts)."""
    out = []
    for b in blocks:
        base = (b or "?").rstrip("?") or "?"
        if out and out[-1][0] == base:
            out[-1][1] += 1
        else:
            out.append([base, 1])
    return " → ".join(f"{b} ×{n}" if n > 1 else b for b, n in out)


# --- static timing over the routed SDF --------------------------------------------------

def parse_sdf(path):
    """nextpnr's SDF (TIMESCALE 1ps, DIVIDER /), line by line. Returns the cell arcs
    {cell: [(from_pin, to_pin, ns, launch)]} (launch: a CLK* pin, i.e. clock-to-output),
    the nets [(from_cell, from_pin, to_cell, to_pin, ns)], the setup times {(cell, pin): ns}
    and {cell: type}. Delays are the max of each (min:typ:max) triple."""
    tri = re.compile(r"\(([-\d.]*):([-\d.]*):([-\d.]*)\)")

    def dmax(text):
        vals = [float(v) for t in tri.findall(text) for v in t if v != ""]
        return max(vals) / 1000.0 if vals else 0.0

    def unesc(x):
        return x.replace("\\", "")

    def pin(x):
        c, _, p = unesc(x).rpartition("/")
        return c, p

    iopath, inter, setup, celltype = defaultdict(list), [], {}, {}
    cell = None
    with open(path) as f:
        for line in f:
            t = line.strip()
            if t.startswith("(INSTANCE"):
                cell = unesc(t[len("(INSTANCE"):].rstrip(")").strip())
                celltype[cell] = ctype
            elif t.startswith("(CELLTYPE"):
                ctype = t.split('"')[1]
            elif t.startswith("(IOPATH"):
                f_, t_ = t.split()[1:3]
                iopath[cell].append((unesc(f_), unesc(t_), dmax(t), unesc(f_).startswith("CLK")))
            elif t.startswith("(INTERCONNECT"):
                a, b = t.split()[1:3]
                inter.append((*pin(a), *pin(b), dmax(t)))
            elif t.startswith("(SETUPHOLD") or t.startswith("(SETUP "):
                m = re.match(r"\((?:SETUPHOLD|SETUP)\s+\((?:posedge|negedge)\s+([^)\s]+)\)|\((?:SETUPHOLD|SETUP)\s+([^\s(]+)", t)
                p = unesc(m.group(1) or m.group(2))
                rest = t[t.index("CLK"):] if "CLK" in t else t
                vals = tri.findall(rest)
                d = max(float(v) for v in vals[0] if v != "") / 1000.0 if vals else 0.0
                setup[(cell, p)] = max(setup.get((cell, p), 0.0), d)
    return iopath, inter, setup, celltype


def sta_paths(sdf, n=8, block=block_of):
    iopath, inter, setup, celltype = parse_sdf(sdf)
    clocked = {(c, dst) for c, arcs in iopath.items() for src, dst, d, launch in arcs if launch}
    # graph on pins (cell, pin): edges within cells (combinational IOPATHs) and nets
    succ = defaultdict(list)
    indeg = defaultdict(int)
    nodes = set()
    for cell, arcs in iopath.items():
        for src, dst, d, edge in arcs:
            if edge:
                continue
            succ[(cell, src)].append(((cell, dst), d, "cell"))
            indeg[(cell, dst)] += 1
            nodes.update([(cell, src), (cell, dst)])
    for ac, ap, bc, bp, d in inter:
        succ[(ac, ap)].append(((bc, bp), d, "net"))
        indeg[(bc, bp)] += 1
        nodes.update([(ac, ap), (bc, bp)])
    # launch: clock-to-Q outputs
    arr, prev = {}, {}
    for cell, arcs in iopath.items():
        for src, dst, d, edge in arcs:
            if edge:
                k = (cell, dst)
                if d > arr.get(k, -1):
                    arr[k] = d
                    prev[k] = None
    # a sequential cell's data input must not propagate to its Q: drop comb arcs into clocked outputs
    order, stack = [], [k for k in nodes if indeg[k] == 0]
    deg = dict(indeg)
    while stack:
        k = stack.pop()
        order.append(k)
        for nxt, d, _ in succ[k]:
            deg[nxt] -= 1
            if deg[nxt] == 0:
                stack.append(nxt)
    for k in order:
        if k not in arr:
            continue
        for nxt, d, _ in succ[k]:
            if nxt in clocked:
                continue
            t = arr[k] + d
            if t > arr.get(nxt, -1):
                arr[nxt] = t
                prev[nxt] = k
    ends = []
    for (cell, pin), s in setup.items():
        if (cell, pin) in arr:
            ends.append((arr[(cell, pin)] + s, cell, pin))
    ends.sort(reverse=True)
    paths, seen = [], set()
    for total, cell, pin in ends:
        # distinct paths: one per (start block, end block), so the list spans the engine
        chain = []
        k = (cell, pin)
        while k is not None:
            chain.append(k)
            k = prev.get(k)
        chain.reverse()
        cells = []
        for c, _ in chain:
            if not cells or cells[-1] != c:
                cells.append(c)
        # (like blocks together: every PE is one block here)
        key = tuple(re.sub(r"\$\d+", "", block(c)) for c in (cells[0], cells[-1]))
        if key in seen:
            continue
        seen.add(key)
        blocks = fill_blocks([(block(c), c) for c in cells])
        paths.append({
            "delay_ns": round(total, 2),
            "fmax_mhz": round(1000.0 / total, 2) if total > 0 else None,
            "start": cells[0], "end": f"{cell}.{pin}",
            "cells": len(cells),
            "cell_types": dict(sorted(count_types(cells, celltype).items())),
            "blocks": runs(blocks),
        })
        if len(paths) >= n:
            break
    return paths


def count_types(cells, celltype):
    c = defaultdict(int)
    for x in cells:
        c[celltype.get(x, "?")] += 1
    return c


# --- main -------------------------------------------------------------------------------

def main():
    out, name, rc, bus, freq, router, route = sys.argv[1:8]
    t0, t1, t2, t3 = map(float, sys.argv[8:12])
    rc, bus, route = int(rc), int(bus), route == "1"
    dw = 8 * bus
    iw = 1 + 32 + 32 + 1 + 1 + dw + 1 + 1 + dw
    ow = 2 + 32 + 1 + 32 + 1 + 1 + 32 + dw + bus
    synth = flat_counts(load_stat(f"{out}/stat.json"))
    synth["shell_ff"] = 2 * iw + ow
    res = {
        "name": name, "device": "LFE5U-85F-CABGA381 (ULX3S 85F, constraints/ulx3s.lpf)",
        "top": "vargnet_shell (constraints/shell.v)",
        "target_mhz": float(freq), "router": router,
        "synth": synth,
        "available": AVAILABLE,
        "placed": False, "routed": False,
        "fmax_placed_mhz": None, "fmax_routed_mhz": None,
        "seconds": {"synth": round(t1 - t0, 1) if t1 - t0 > 1 else "reused",
                    "synth_hier": round(t2 - t1, 1) if t2 - t1 > 1 else None},
    }
    try:
        res["breakdown"] = breakdown(load_stat(f"{out}/hier_stat.json"))
    except FileNotFoundError:
        res["breakdown"] = None

    log = open(f"{out}/nextpnr.log").read().splitlines()
    stamp = lambda l: float(l[:9]) if l[:9].strip() else 0.0
    t_place_start = t_route_start = t_end = None
    fmax = []
    for l in log:
        body = l[10:]
        if t_place_start is None and ("Running main analytical placer" in body or "Running placer" in body or "Creating initial analytic placement" in body or "Running simulated annealing placer" in body):
            t_place_start = stamp(l)
        if t_route_start is None and ("Routing.." in body or "Running router2" in body or "Routing globals" in body):
            t_route_start = stamp(l)
        m = re.search(r"Max frequency for clock\s+'([^']*)':\s+([\d.]+) MHz \((PASS|FAIL) at ([\d.]+) MHz\)", body)
        if m:
            fmax.append((stamp(l), m.group(1), float(m.group(2)), t_route_start is not None))
        t_end = stamp(l)
    if t_place_start is not None:
        res["placed"] = True
    placed = [f for f in fmax if not f[3]]
    routed = [f for f in fmax if f[3]]
    if placed:
        res["fmax_placed_mhz"] = {c: mhz for _, c, mhz, _ in placed[-1:]} | {c: mhz for _, c, mhz, _ in placed if c == placed[-1][1]}
    if rc == 0 and route and routed:
        res["routed"] = True
        res["fmax_routed_mhz"] = {c: mhz for _, c, mhz, _ in routed}
    res["seconds"]["pack"] = round(t_place_start, 1) if t_place_start is not None else None
    if t_place_start is not None:
        res["seconds"]["place"] = round((t_route_start if t_route_start is not None else t_end) - t_place_start, 1)
    if t_route_start is not None:
        res["seconds"]["route"] = round(t_end - t_route_start, 1)
    res["seconds"]["nextpnr_total"] = round(t3 - t2, 1)
    util = {}
    for l in log:
        m = re.search(r"Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+(\d+)%", l)
        if m and int(m.group(2)) > 0:
            util[m.group(1)] = {"used": int(m.group(2)), "available": int(m.group(3))}
    res["nextpnr_utilisation"] = util
    prog = []
    for l in log:  # router2: "iter=N wires=W overused=O overuse=U"; router1: "NNNN | ... overused ..."
        m = re.search(r"iter=(\d+) wires=(\d+) overused=(\d+)", l)
        if m:
            prog.append({"t": stamp(l), "iter": int(m.group(1)), "overused": int(m.group(3))})
    if prog:
        res["router2_iterations"] = prog
    res["congestion"] = congestion(out)
    try:
        rep = json.load(open(f"{out}/report.json"))
        res["nextpnr_utilisation"] = {k: v for k, v in rep.get("utilization", {}).items() if v["used"] > 0}
        res["fmax_report"] = {k: {kk: round(vv, 2) for kk, vv in v.items()} for k, v in rep.get("fmax", {}).items()}
    except FileNotFoundError:
        pass
    try:
        block = Blocks(f"{out}/rtl/engine.v", f"{out}/synth.json" if os.path.exists(f"{out}/synth.json") else None)
    except FileNotFoundError:
        block = block_of
    if isinstance(block, Blocks) and block.type:
        res["breakdown_flat"] = flat_breakdown(block)
    sdf = f"{out}/routed.sdf" if route else f"{out}/placed.sdf"
    try:
        res["critical_paths"] = sta_paths(sdf, block=block)
        res["critical_paths_sdf"] = os.path.basename(sdf)
    except FileNotFoundError:
        res["critical_paths"] = None
    try:
        res["critical_paths_nextpnr"] = nextpnr_paths(json.load(open(f"{out}/report.json")), block=block)
    except FileNotFoundError:
        res["critical_paths_nextpnr"] = None
    if rc != 0:
        err = [l[10:] for l in log if "ERROR" in l]
        res["error"] = err[-1] if err else (log[-1][10:] if log else "nextpnr did not run")
        over = {k: v for k, v in util.items() if v["used"] > v["available"]}
        if over:
            res["does_not_fit"] = over
    json.dump(res, open(f"{out}/ecp5.json", "w"), indent=2)
    print_table(res)


def print_table(res):
    s, a = res["synth"], res["available"]
    print(f"pnr-ecp5: {res['name']} on {res['device']}, top {res['top']}")
    print(f"{'resource':<12} {'used':>8} {'available':>10} {'%':>6}")
    for k, label in [("lut4", "LUT4"), ("ff", "FF"), ("ccu2c", "CCU2C"), ("dp16kd", "DP16KD"),
                     ("mult18x18d", "MULT18X18D"), ("alu54b", "ALU54B"), ("dpr16x4", "DPR16X4")]:
        print(f"{label:<12} {s[k]:>8} {a[k]:>10} {100.0 * s[k] / a[k]:>5.1f}%")
    print(f"(FF includes the shell's {s['shell_ff']}; LUT4 excludes the CCU2C carry cells, 2 LUT4 each)")
    b = res.get("breakdown")
    if b:
        print("\nper block (synth_ecp5 -noflatten; one emitted module per instance):")
        print(f"{'block':<28} {'LUT4':>7} {'CCU2C':>6} {'FF':>6} {'MULT18':>6} {'DP16KD':>6}")
        for r in b["blocks"]:
            ind = "  " * r["depth"]
            print(f"{ind + r['block']:<28} {r['lut4']:>7} {r['ccu2c']:>6} {r['ff']:>6} {r['mult18x18d']:>6} {r['dp16kd']:>6}")
        e = b["engine"]
        print(f"{'vargnet_engine total':<28} {e['lut4']:>7} {e['ccu2c']:>6} {e['ff']:>6} {e['mult18x18d']:>6} {e['dp16kd']:>6}")
    fb = res.get("breakdown_flat")
    if fb:
        print("\nper block in the placed (flat) netlist, by each cell's engine.v source (×n: n like blocks summed):")
        print(f"{'block':<28} {'LUT4':>7} {'CCU2C':>6} {'FF':>6} {'MULT18':>6} {'DP16KD':>6}")
        for r in fb:
            if r["lut4"] + r["ccu2c"] + r["mult18x18d"] + r["dp16kd"] < 100 and r["mult18x18d"] == 0 and r["dp16kd"] == 0:
                continue
            label = r["block"] + (f" ×{r['n']}" if r["n"] > 1 else "")
            print(f"{label:<28} {r['lut4']:>7} {r['ccu2c']:>6} {r['ff']:>6} {r['mult18x18d']:>6} {r['dp16kd']:>6}")
        print("(blocks under 100 LUT4+CCU2C with no MULT18/DP16KD left out; all in ecp5.json)")
    routed = res["fmax_routed_mhz"] if res["routed"] else "not routed"
    print(f"\ntarget {res['target_mhz']} MHz, router {res['router']}; placed estimate {res['fmax_placed_mhz']}, routed {routed}")
    print("seconds: " + ", ".join(f"{k} {v}" for k, v in res["seconds"].items() if v is not None))
    over = "the routed SDF" if res["routed"] else "the placed SDF: estimated nets"
    for title, key in [(f"critical paths (static timing over {over}, one per start and end block)", "critical_paths"),
                       ("nextpnr's worst path per clock pair" + ("" if res["routed"] else " (placed estimate)"),
                        "critical_paths_nextpnr")]:
        ps = res.get(key)
        if not ps:
            continue
        print(f"\n{title}:")
        for i, p in enumerate(ps, 1):
            print(f"{i}. {p['delay_ns']} ns, {p['cells']} cells: {p['start']} -> {p['end']}")
            print(f"   {p['blocks']}")
    prog = res.get("router2_iterations")
    if prog and not res["routed"]:
        print("router2 stopped at iteration " + ", ".join(f"{p['iter']}: {p['overused']} overused wires at {p['t']:.0f} s" for p in prog[-3:]))
    cong = res.get("congestion")
    if cong:
        print(f"\ncongested wires by block, router2 iteration {cong['iteration']} ({cong['total']} in all):")
        print("  " + ", ".join(f"{b['block']} {100 * b['share']:.1f} %" for b in cong["blocks"]))
    if res.get("does_not_fit"):
        print("\ndoes not fit: " + ", ".join(f"{k} needs {v['used']}, the part has {v['available']}"
                                           for k, v in res["does_not_fit"].items()))
    if res.get("error"):
        print(f"\nerror: {res['error']}")


if __name__ == "__main__":
    main()
