//! Sibling convs — convs that read the same input with the same kernel, stride, padding and
//! group shape (the head block's shortcut and first separable conv, the three grouped convs
//! at the start of a down-sampling block) — run as one grouped conv with the members'
//! outputs side by side in each group. The input is loaded once instead of once per member,
//! and groups with fewer outputs than the array has columns (the head block's 8) fill them.
//!
//! The merged conv writes one tensor whose chunks interleave the members': its chunk
//! `j·M + m` is member `m`'s chunk `j` (M members). Each member's tensor is a view of it
//! with a chunk stride of M chunks, which every DMA instruction walks with its DRAM stride,
//! so the members' consumers read them unchanged.

use int8::ir::{QConv, QModel, QOp, QTensorInfo, TensorId};

/// A merged conv: its index in the rewritten model's ops, and the member convs' output
/// tensors in the order their chunks interleave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Merge {
    pub op: usize,
    pub output: TensorId,
    pub members: Vec<TensorId>,
}

/// The model with every set of sibling convs replaced by one conv (placed where the first
/// sibling was; the others' ops are dropped), and the merges made. Tensors keep their ids;
/// each merged conv's output is a new tensor appended to `tensors`.
pub fn merge_siblings(model: &QModel, g: usize) -> (QModel, Vec<Merge>) {
    let convs: Vec<Option<&QConv>> = model
        .ops
        .iter()
        .map(|op| match op {
            QOp::Conv(c) if mergeable(model, c, g) => Some(c),
            _ => None,
        })
        .collect();
    let mut taken = vec![false; model.ops.len()];
    let mut out = QModel {
        name: model.name.clone(),
        tensors: model.tensors.clone(),
        ops: Vec::with_capacity(model.ops.len()),
        input: model.input,
        embedding: model.embedding,
    };
    let mut merges = Vec::new();
    for (i, op) in model.ops.iter().enumerate() {
        if taken[i] {
            continue;
        }
        let Some(first) = convs[i] else {
            out.ops.push(op.clone());
            continue;
        };
        let mut members = vec![first];
        for j in i + 1..model.ops.len() {
            if let Some(c) = convs[j].filter(|c| !taken[j] && siblings(model, first, c)) {
                taken[j] = true;
                members.push(c);
            }
        }
        if members.len() == 1 {
            out.ops.push(op.clone());
            continue;
        }
        let output = out.tensors.len();
        let o = &model.tensors[first.output];
        out.tensors.push(QTensorInfo {
            name: members
                .iter()
                .map(|c| model.tensors[c.output].name.as_str())
                .collect::<Vec<_>>()
                .join("+"),
            channels: o.channels * members.len(),
            ..o.clone()
        });
        merges.push(Merge {
            op: out.ops.len(),
            output,
            members: members.iter().map(|c| c.output).collect(),
        });
        out.ops.push(QOp::Conv(merged(model, &members, output, g)));
    }
    (out, merges)
}

/// A conv that can share its input: its outputs per group are whole chunks.
fn mergeable(model: &QModel, c: &QConv, g: usize) -> bool {
    let cout = model.tensors[c.output].channels;
    cout.is_multiple_of(c.groups) && (cout / c.groups).is_multiple_of(g)
}

fn siblings(model: &QModel, a: &QConv, b: &QConv) -> bool {
    let (ta, tb) = (&model.tensors[a.output], &model.tensors[b.output]);
    (a.input, a.kernel, a.stride, a.pad, a.groups) == (b.input, b.kernel, b.stride, b.pad, b.groups)
        && (ta.channels, ta.height, ta.width) == (tb.channels, tb.height, tb.width)
}

/// The members as one grouped conv: output channel `(j·M + m)·G + l` is member `m`'s
/// channel `j·G + l`, so each group's outputs stay contiguous.
fn merged(model: &QModel, members: &[&QConv], output: TensorId, g: usize) -> QConv {
    let first = members[0];
    let m = members.len();
    let cout = model.tensors[first.output].channels;
    let fan_in = first.weights.len() / cout;
    let mut weights = Vec::with_capacity(first.weights.len() * m);
    let mut requant = Vec::with_capacity(cout * m);
    for o in 0..cout * m {
        let (v, l) = (o / g, o % g);
        let (c, ch) = (members[v % m], (v / m) * g + l);
        weights.extend_from_slice(&c.weights[ch * fan_in..(ch + 1) * fan_in]);
        requant.push(c.requant[ch]);
    }
    QConv {
        name: merged_name(members.iter().map(|c| c.name.as_str())),
        input: first.input,
        output,
        weights,
        requant,
        ..first.clone()
    }
}

/// `a.x.b` and `a.y.b` → `a.{x,y}.b` (on `.` boundaries).
fn merged_name<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let parts: Vec<Vec<&str>> = names.map(|n| n.split('.').collect()).collect();
    let first = &parts[0];
    let min = parts.iter().map(Vec::len).min().unwrap_or(0);
    let pre = (0..min)
        .take_while(|&i| parts.iter().all(|p| p[i] == first[i]))
        .count();
    let suf = (0..min - pre)
        .take_while(|&i| {
            let last = first[first.len() - 1 - i];
            parts.iter().all(|p| p[p.len() - 1 - i] == last)
        })
        .count();
    let middles: Vec<String> = parts
        .iter()
        .map(|p| p[pre..p.len() - suf].join("."))
        .collect();
    let mut name: Vec<String> = first[..pre].iter().map(|s| s.to_string()).collect();
    name.push(format!("{{{}}}", middles.join(",")));
    name.extend(first[first.len() - suf..].iter().map(|s| s.to_string()));
    name.join(".")
}

/// The names a merged conv's name stands for (`a.{x,y}.b` → `a.x.b`, `a.y.b`: the inverse
/// of `merged_name`); any other name stands for itself.
pub fn member_names(name: &str) -> Vec<String> {
    let (Some(open), Some(close)) = (name.find('{'), name.rfind('}')) else {
        return vec![name.to_string()];
    };
    if close < open {
        return vec![name.to_string()];
    }
    let (pre, post) = (&name[..open], &name[close + 1..]);
    name[open + 1..close]
        .split(',')
        .map(|m| {
            [pre.trim_end_matches('.'), m, post.trim_start_matches('.')]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(".")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_share_prefix_and_suffix() {
        let members = [
            "body.down.short_cut.dw_conv",
            "body.down.part_1_branch_1.dw_conv",
            "body.down.part_1_branch_2.dw_conv",
        ];
        let n = merged_name(members.into_iter());
        assert_eq!(
            n,
            "body.down.{short_cut,part_1_branch_1,part_1_branch_2}.dw_conv"
        );
        assert_eq!(member_names(&n), members);
        // a member that is a prefix of another, and a name that merges nothing
        let members = ["a.b", "a.x.b"];
        assert_eq!(member_names(&merged_name(members.into_iter())), members);
        assert_eq!(member_names("head.conv1"), ["head.conv1"]);
    }
}
