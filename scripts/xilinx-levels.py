#!/usr/bin/env python3
"""Logic levels of the longest register-to-register paths in a Yosys synth_xilinx netlist.

Usage: scripts/xilinx-levels.py NETLIST.json [--top N] [--by levels|lut]
       (NETLIST: write_json after synth_xilinx -flatten; --by lut ranks by LUTs on the path)

A path starts at a register output (FD*, SRL*, a block/Ultra RAM's read data, a DSP48E2 whose
output register PREG is on, or a primary input) and ends at a register input. Each LUT is one
level, as are MUXF7/8/9, each carry cell (CARRY4 or CARRY8, as Yosys maps them) and a DSP48E2 the path crosses without a register;
LUTRAM reads are LUT levels. Yosys `ltp` counts every cell and runs through the RAMs and
DSPs as if they were combinational; this count is the one Vivado's "logic levels" means.
Prints the deepest paths with their cells and the engine block each belongs to (the first
component of the flattened cell name, e.g. `engine.lanes$1`), and writes them as JSON to
stdout's last line.
"""
import json
import re
import sys
from collections import defaultdict

SEQ = re.compile(r"FD[CPRS]E(_1)?|SRL16E|SRLC32E|RAMB(18|36)E2|URAM288(_BASE)?")
LUTRAM = re.compile(r"RAM(32|64|128|256)[XM]\w*")


def param(cell, k):
    """An integer parameter: Yosys writes them as binary strings."""
    v = str(cell["parameters"].get(k, "0"))
    return int(v, 2) if v and set(v) <= {"0", "1"} else 0


def dsp_registered_out(cell):
    return param(cell, "PREG") != 0


def dsp_registered_in(cell):
    return any(param(cell, k) for k in ("AREG", "BREG", "MREG", "CREG", "ADREG"))


def weight(t):
    if t.startswith("LUT") or LUTRAM.fullmatch(t):
        return "lut"
    if t.startswith("MUXF"):
        return "muxf"
    if t.startswith("CARRY"):
        return "carry"
    if t.startswith("DSP48"):
        return "dsp"
    return None  # buffers, constants: no level


def block_of(net):
    """The engine block a net belongs to: its instance path without the signal name
    (`vec.lanes$1.q` -> `vec.lanes$1`; a parent's wire `ppu$3$q` -> `ppu$3`)."""
    if "." in net:
        return net.rsplit(".", 1)[0]
    return net.rsplit("$", 1)[0] if "$" in net else "(top)"


def main():
    args = sys.argv[1:]
    top_n, by = 5, "levels"
    if "--top" in args:
        k = args.index("--top")
        top_n = int(args[k + 1])
        del args[k : k + 2]
    if "--by" in args:
        k = args.index("--by")
        by = args[k + 1]
        del args[k : k + 2]
    # what "deepest" means: all levels, or LUTs first
    rank = (lambda t: (t[1], t[0], t[2])) if by == "lut" else (lambda t: t[:3])
    net = json.load(open(args[0]))
    mod = next(m for m in net["modules"].values() if m.get("attributes", {}).get("top")) \
        if any(m.get("attributes", {}).get("top") for m in net["modules"].values()) \
        else max(net["modules"].values(), key=lambda m: len(m.get("cells", {})))
    cells = mod["cells"]
    # bit -> the most specific visible net name (the deepest instance path)
    bitname = {}
    for nname, nv in mod["netnames"].items():
        if nv.get("hide_name") or nname.startswith("$"):
            continue
        for i, b in enumerate(nv["bits"]):
            if isinstance(b, str):
                continue
            label = nname if len(nv["bits"]) == 1 else f"{nname}[{i}]"
            old = bitname.get(b)
            if old is None or (label.count("."), -len(label)) > (old.count("."), -len(old)):
                bitname[b] = label
    ports = {b: pn for pn, pv in mod["ports"].items() for b in pv["bits"] if not isinstance(b, str)}
    driver = {}  # bit -> cell name
    outbit = {}  # cell -> its first output bit
    sinks = defaultdict(list)  # cell -> list of input bits
    for name, c in cells.items():
        dirs = c.get("port_directions", {})
        for port, bits in c["connections"].items():
            d = dirs.get(port, "input")
            for b in bits:
                if isinstance(b, str):
                    continue
                if d == "output":
                    driver[b] = name
                    outbit.setdefault(name, b)
                else:
                    sinks[name].append(b)

    def is_start(c):
        t = c["type"]
        return bool(SEQ.fullmatch(t)) or (t.startswith("DSP48") and dsp_registered_out(c))

    def is_end(c):
        t = c["type"]
        return bool(SEQ.fullmatch(t)) or (
            t.startswith("DSP48") and (dsp_registered_in(c) or dsp_registered_out(c))
        )

    # depth[cell] = (levels, luts, carries, pred) of the deepest path ending at its output
    memo = {}
    sys.setrecursionlimit(1_000_000)

    def depth(name):
        if name in memo:
            return memo[name]
        c = cells[name]
        if is_start(c):
            memo[name] = (0, 0, 0, None)
            return memo[name]
        if c["type"].startswith("DSP48") and dsp_registered_in(c):
            # registered inputs, combinational output: the path starts with its multiplier
            memo[name] = (1, 0, 0, None)
            return memo[name]
        memo[name] = (0, 0, 0, None)  # breaks a combinational cycle, if any
        best = None
        for b in sinks[name]:
            d = driver.get(b)
            if d is None:
                if b in ports and best is None:
                    best = (0, 0, 0, ("port", b))
                continue
            got = depth(d)
            if best is None or rank(got) > rank(best):
                best = (got[0], got[1], got[2], d)
        best = best or (0, 0, 0, None)
        w = weight(c["type"])
        lv, lut, car = best[0], best[1], best[2]
        if w is not None:
            lv += 1
            lut += w == "lut"
            car += w == "carry"
        memo[name] = (lv, lut, car, best[3])
        return memo[name]

    ends = []
    for name, c in cells.items():
        if not is_end(c):
            continue
        best = None
        for b in sinks[name]:
            d = driver.get(b)
            if d is None:
                continue
            got = depth(d)
            if best is None or rank(got) > rank(best):
                best = (got[0], got[1], got[2], d)
        if best is None:
            continue
        if c["type"].startswith("DSP48") and not dsp_registered_in(c):
            best = (best[0] + 1, best[1], best[2], best[3])  # through its multiplier to PREG
        ends.append((best[0], best[1], best[2], name, best[3]))
    ends.sort(key=rank, reverse=True)
    seen_blocks = set()
    report = []
    for lv, lut, car, end, last in ends:
        path = []
        n = last
        while isinstance(n, str) and not is_start(cells[n]):
            path.append(n)
            n = memo[n][3]
        path.reverse()
        if isinstance(n, tuple):  # a primary input
            start, start_type = ports[n[1]], "input"
        elif n is None:
            start, start_type = "?", "?"
        else:
            start, start_type = bitname.get(outbit.get(n), n), cells[n]["type"]
        nets = [bitname[outbit[p]] for p in path if outbit.get(p) in bitname]
        # a register is named by its output net (the names on its inputs are the clock's)
        end_name = bitname.get(outbit.get(end), end)
        blocks = [block_of(x) for x in [start, *nets, end_name]]
        key = (block_of(start), block_of(end_name))
        if key in seen_blocks:
            continue
        seen_blocks.add(key)
        kinds = defaultdict(int)
        carry_types = set()
        for p in path:
            w = weight(cells[p]["type"])
            if w:
                kinds[w] += 1
            if w == "carry":
                carry_types.add(cells[p]["type"])
        report.append({
            "levels": lv, "lut": kinds["lut"], "carry": kinds["carry"], "muxf": kinds["muxf"],
            "carry_cell": "/".join(sorted(carry_types)) or "CARRY",
            "dsp": kinds["dsp"],
            "from": start, "from_type": start_type,
            "to": end_name, "to_type": cells[end]["type"],
            "blocks": [b for i, b in enumerate(blocks) if i == 0 or blocks[i - 1] != b],
        })
        if len(report) == top_n:
            break
    for r in report:
        print(f"{r['levels']:3} levels ({r['lut']} LUT, {r['carry']} {r['carry_cell']}, {r['muxf']} MUXF, "
              f"{r['dsp']} DSP)  {r['from_type']} {r['from']}  ->  {r['to_type']} {r['to']}")
        print(f"      through {' > '.join(r['blocks'])}")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
