//! No zero-delay loops in the emitted Verilog (docs/rust-hdl.md#loops), checked on the text
//! for every config the RTL tests use, so that no program has to trigger one to find it.
//!
//! An `always @(*)` block that assigns a signal twice on one path (a default, then an
//! override) makes it change twice whenever the block runs, even if its final value is
//! the old one. Icarus Verilog wakes every block that reads the signal on each change;
//! Verilator does not care. If that block in turn assigns twice a signal that the first
//! one reads, the two wake each other forever and simulated time stops. The check: a
//! graph of combinational blocks with an edge from A to B when A assigns twice a signal
//! that B reads (through ports and continuous assignments, which pass every change on);
//! it must have no cycle. A block that assigns a signal once is where changes stop: it
//! runs with the final values and assigns what it assigned before.
mod common;
use common::programs::{lane_groups, two_column_groups, wide_bus};
use contract::EngineConfig;
use std::collections::{BTreeSet, HashMap, HashSet};

fn strip_comments(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut rest = v;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("//") {
            rest = r.find('\n').map_or("", |n| &r[n..]);
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.find("*/").map_or("", |n| &r[n + 2..]);
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// Identifiers (with `$`), numbers and sized literals, `` `directives ``, two- and
/// three-character operators, single characters.
fn tokens(v: &str) -> Vec<String> {
    let b = v.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$';
    let (mut out, mut i) = (Vec::new(), 0);
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        } else if word(c) || c == b'`' {
            i += 1;
            while i < b.len() && (word(b[i]) || b[i] == b'\'') {
                // a sized literal (8'hff) is one token
                if b[i] == b'\'' {
                    i += 1;
                    while i < b.len() && (word(b[i]) || b[i] == b'?') {
                        i += 1;
                    }
                    break;
                }
                i += 1;
            }
        } else {
            let ops = [
                "<<<", ">>>", "==", "!=", "<=", ">=", "<<", ">>", "&&", "||", "+:", "-:",
            ];
            i += ops
                .iter()
                .find(|op| v[i..].starts_with(*op))
                .map_or(1, |op| op.len());
        }
        out.push(v[start..i].to_string());
    }
    out
}

fn is_ident(t: &str) -> bool {
    const KEYWORDS: &[&str] = &[
        "begin", "end", "if", "else", "case", "endcase", "default", "posedge", "negedge", "or",
        "signed", "integer",
    ];
    t.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') && !KEYWORDS.contains(&t)
}

/// Assignment counts (the most on any one path, per left-hand side as written) and the
/// identifiers read, of one statement.
#[derive(Default)]
struct Effect {
    counts: HashMap<String, usize>,
    reads: HashSet<String>,
}

struct Parser<'a> {
    t: &'a [String],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &str {
        self.t.get(self.i).map_or("", |s| s.as_str())
    }
    fn take(&mut self) -> &str {
        self.i += 1;
        &self.t[self.i - 1]
    }
    /// A parenthesised expression's identifiers.
    fn paren(&mut self, reads: &mut HashSet<String>) {
        assert_eq!(self.take(), "(");
        let mut depth = 1;
        while depth > 0 {
            let t = self.take().to_string();
            depth += (t == "(") as i32 - (t == ")") as i32;
            if is_ident(&t) {
                reads.insert(t);
            }
        }
    }
    fn stmt(&mut self) -> Effect {
        let mut e = Effect::default();
        match self.peek() {
            "begin" => {
                self.take();
                if self.peek() == ":" {
                    self.take();
                    self.take();
                }
                while self.peek() != "end" {
                    let s = self.stmt();
                    for (k, v) in s.counts {
                        *e.counts.entry(k).or_default() += v;
                    }
                    e.reads.extend(s.reads);
                }
                self.take();
            }
            "if" => {
                self.take();
                self.paren(&mut e.reads);
                let mut branches = vec![self.stmt()];
                if self.peek() == "else" {
                    self.take();
                    branches.push(self.stmt());
                }
                e.alternatives(branches);
            }
            "for" => {
                self.take();
                self.paren(&mut e.reads);
                let body = self.stmt();
                // a loop may assign its targets many times
                e.counts = body.counts.into_keys().map(|k| (k, 2)).collect();
                e.reads.extend(body.reads);
            }
            "case" => {
                self.take();
                self.paren(&mut e.reads);
                let mut branches = Vec::new();
                while self.peek() != "endcase" {
                    while self.peek() != ":" {
                        let t = self.take().to_string();
                        if is_ident(&t) {
                            e.reads.insert(t);
                        }
                    }
                    self.take();
                    branches.push(self.stmt());
                }
                self.take();
                e.alternatives(branches);
            }
            _ => {
                let mut lhs = Vec::new();
                while !matches!(self.peek(), "=" | "<=") {
                    lhs.push(self.take().to_string());
                }
                self.take();
                while self.peek() != ";" {
                    let t = self.take().to_string();
                    if is_ident(&t) {
                        e.reads.insert(t);
                    }
                }
                self.take();
                e.reads
                    .extend(lhs[1..].iter().filter(|t| is_ident(t)).cloned());
                e.counts.insert(lhs.concat(), 1);
            }
        }
        e
    }
}

impl Effect {
    fn alternatives(&mut self, branches: Vec<Effect>) {
        for b in branches {
            for (k, v) in b.counts {
                let c = self.counts.entry(k).or_default();
                *c = (*c).max(v);
            }
            self.reads.extend(b.reads);
        }
    }
    /// Signals that may change twice in one run: assigned twice on a path, or assigned
    /// whole and in part.
    fn glitchy(&self) -> BTreeSet<String> {
        let base = |k: &str| k.split('[').next().unwrap().to_string();
        let whole: HashSet<String> = self
            .counts
            .keys()
            .filter(|k| !k.contains('['))
            .cloned()
            .collect();
        self.counts
            .iter()
            .filter(|(k, &v)| v >= 2 || (k.contains('[') && whole.contains(&base(k))))
            .map(|(k, _)| base(k))
            .collect()
    }
}

/// A combinational block: its module, the signals it may change twice, the ones it reads.
struct Block {
    module: String,
    glitchy: BTreeSet<String>,
    reads: HashSet<String>,
}

/// The blocks of each zero-delay loop: the strongly connected components of more than one
/// block, each with the signals on its edges.
fn glitch_loops(verilog: &str) -> Vec<Vec<(String, String, Vec<String>)>> {
    let toks = tokens(&strip_comments(verilog));
    let modules: HashSet<&str> = toks
        .windows(2)
        .filter(|w| w[0] == "module")
        .map(|w| w[1].as_str())
        .collect();
    let mut nets = Nets::default();
    let mut deps: Vec<(String, String)> = Vec::new(); // (source, target) signals
    let mut blocks: Vec<Block> = Vec::new();
    let mut i = 0;
    let mut module = String::new();
    while i < toks.len() {
        let t = toks[i].as_str();
        if t == "module" {
            module = toks[i + 1].clone();
            i += 2;
            continue;
        }
        let q = |s: &str| format!("{module}.{s}");
        if t == "function" {
            while toks[i] != "endfunction" {
                i += 1;
            }
        } else if t == "always" || t == "initial" {
            let comb = toks.get(i + 2).is_some_and(|t| t == "(") && toks[i + 3] == "*";
            i += if t == "always" {
                toks[i + 1..].iter().position(|t| t == ")").unwrap() + 2
            } else {
                1
            };
            let mut p = Parser { t: &toks, i };
            let e = p.stmt();
            i = p.i;
            if comb {
                blocks.push(Block {
                    glitchy: e.glitchy().iter().map(|s| q(s)).collect(),
                    reads: e.reads.iter().map(|s| q(s)).collect(),
                    module: module.clone(),
                });
            }
            continue;
        } else if t == "assign" || (t == "wire" && continuous_wire(&toks[i..])) {
            // `assign x = e;`, `wire [..] x = e;`: the first identifier after is the target
            let mut j = i + 1;
            while toks[j] == "[" {
                j += toks[j..].iter().position(|t| t == "]").unwrap() + 1;
            }
            let target = q(&toks[j]);
            while toks[j] != "=" {
                j += 1;
            }
            while toks[j] != ";" {
                if is_ident(&toks[j]) {
                    deps.push((q(&toks[j]), target.clone()));
                }
                j += 1;
            }
            i = j;
        } else if modules.contains(t) && toks.get(i + 2).is_some_and(|t| t == "(") {
            // an instance: `.port(arg)` joins the child's port and the parent's signal
            let child = t.to_string();
            let mut j = i + 3;
            while toks[j] != ";" {
                if toks[j] == "." && toks[j + 2] == "(" && toks[j + 4] == ")" {
                    nets.join(&format!("{child}.{}", toks[j + 1]), &q(&toks[j + 3]));
                }
                j += 1;
            }
            i = j;
        }
        i += 1;
    }
    // a change of net n reaches every net computed from it by continuous assignments
    let mut fanout: HashMap<String, Vec<String>> = HashMap::new();
    for (s, t) in &deps {
        let (s, t) = (nets.find(s), nets.find(t));
        fanout.entry(s).or_default().push(t);
    }
    let mut readers: HashMap<String, Vec<usize>> = HashMap::new();
    for (b, block) in blocks.iter().enumerate() {
        for r in &block.reads {
            readers.entry(nets.find(r)).or_default().push(b);
        }
    }
    let mut edges: Vec<HashMap<usize, BTreeSet<String>>> = vec![HashMap::new(); blocks.len()];
    for (a, block) in blocks.iter().enumerate() {
        for g in &block.glitchy {
            let mut seen = HashSet::from([nets.find(g)]);
            let mut stack: Vec<String> = seen.iter().cloned().collect();
            while let Some(n) = stack.pop() {
                for &b in readers.get(&n).into_iter().flatten() {
                    if b != a {
                        edges[a].entry(b).or_default().insert(g.clone());
                    }
                }
                for m in fanout.get(&n).into_iter().flatten() {
                    if seen.insert(m.clone()) {
                        stack.push(m.clone());
                    }
                }
            }
        }
    }
    strongly_connected(&edges)
        .into_iter()
        .filter(|c| c.len() > 1)
        .map(|c| {
            let set: HashSet<usize> = c.iter().copied().collect();
            c.iter()
                .flat_map(|&a| {
                    let (edges, blocks, set) = (&edges, &blocks, &set);
                    edges[a]
                        .iter()
                        .filter(|(b, _)| set.contains(b))
                        .map(move |(&b, s)| {
                            let short = |g: &String| g.rsplit('.').next().unwrap().to_string();
                            (
                                blocks[a].module.clone(),
                                blocks[b].module.clone(),
                                s.iter().map(short).collect(),
                            )
                        })
                })
                .collect()
        })
        .collect()
}

/// `wire [..] name = expr;` (a declaration with a continuous assignment).
fn continuous_wire(t: &[String]) -> bool {
    t.iter().take_while(|t| *t != ";").any(|t| t == "=")
}

#[derive(Default)]
struct Nets {
    parent: HashMap<String, String>,
}

impl Nets {
    fn find(&mut self, x: &str) -> String {
        let mut x = x.to_string();
        while let Some(p) = self.parent.get(&x).filter(|p| **p != x).cloned() {
            x = p;
        }
        x
    }
    fn join(&mut self, a: &str, b: &str) {
        let (a, b) = (self.find(a), self.find(b));
        if a != b {
            self.parent.insert(a, b);
        }
    }
}

/// Tarjan's strongly connected components, iteratively.
fn strongly_connected(edges: &[HashMap<usize, BTreeSet<String>>]) -> Vec<Vec<usize>> {
    let n = edges.len();
    let (mut index, mut low) = (vec![usize::MAX; n], vec![0; n]);
    let (mut on, mut stack, mut out, mut next) = (vec![false; n], Vec::new(), Vec::new(), 0);
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        let mut work: Vec<(usize, Vec<usize>)> =
            vec![(root, edges[root].keys().copied().collect())];
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on[root] = true;
        while let Some((v, todo)) = work.last_mut() {
            let v = *v;
            if let Some(w) = todo.pop() {
                if index[w] == usize::MAX {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on[w] = true;
                    work.push((w, edges[w].keys().copied().collect()));
                } else if on[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some((u, _)) = work.last() {
                low[*u] = low[*u].min(low[v]);
            }
            if low[v] == index[v] {
                let mut comp = Vec::new();
                while let Some(w) = stack.pop() {
                    on[w] = false;
                    comp.push(w);
                    if w == v {
                        break;
                    }
                }
                out.push(comp);
            }
        }
    }
    out
}

/// The checker finds the loop of two blocks that each override a default the other reads,
/// also through a continuous assignment, and none when one side assigns once.
#[test]
fn the_check_finds_a_default_then_override_loop() {
    let child = "module c(x, s, y);\n input wire [7:0] x; input wire s; output reg [7:0] y;\n\
                 always @(*) begin y = 8'd0; if (s) y = x; end\nendmodule\n";
    let top = |body: &str| {
        format!(
            "{child}module t(s);\n input wire s; reg [7:0] a; wire [7:0] b; wire [7:0] w = b + 1; reg [7:0] o;\n\
             c c(\n .x(a),\n .s(s),\n .y(b)\n);\n always @(*) begin {body} end\nendmodule\n"
        )
    };
    let looped = glitch_loops(&top("a = 8'd5; if (s) a = 8'd7; o = b;"));
    assert_eq!(looped.len(), 1, "{looped:?}");
    assert_eq!(glitch_loops(&top("a = 8'd0; if (s) a = w;")).len(), 1);
    assert!(glitch_loops(&top("a = 8'd5; o = b;")).is_empty());
    assert!(glitch_loops(&top("case (s) 1'b0: a = 8'd5; default: a = w; endcase")).is_empty());
}

/// The presets and every config the lockstep tests use.
fn configs() -> Vec<EngineConfig> {
    let [groups, one_row] = lane_groups();
    let (tiny, default) = (EngineConfig::tiny(), EngineConfig::default());
    vec![
        tiny,
        default,
        wide_bus(),
        groups,
        one_row,
        two_column_groups(),
    ]
}

#[test]
fn emitted_designs_have_no_zero_delay_loops() {
    for cfg in configs() {
        let v = hdl::emit::verilog(&cfg).expect("emit");
        let loops = glitch_loops(&v);
        assert!(
            loops.is_empty(),
            "R {} C {} B {}: blocks that re-trigger each other (A -> B: the signals A overrides \
             and B reads):\n{}",
            cfg.rows,
            cfg.cols,
            cfg.dram_bus_bytes,
            loops
                .iter()
                .flatten()
                .map(|(a, b, s)| format!("  {a} -> {b}: {s:?}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
