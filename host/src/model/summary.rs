//! Per-layer summary of a model: a text table and JSON.
//!
//! Rows are the conv/linear layers (the ones with MACs and weights); BN, PReLU and the
//! element-wise ops are folded or free on the engine and only appear in the totals.

use serde::Serialize;
use serde_json::json;

use crate::model::{Model, Node, Op};

/// One conv/linear layer of the summary.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerRow {
    pub name: String,
    pub op: &'static str,
    pub kind: &'static str,
    pub in_ch: usize,
    pub out_ch: usize,
    pub kernel: usize,
    pub stride: usize,
    pub pad: usize,
    pub groups: usize,
    pub in_hw: [usize; 2],
    pub out_hw: [usize; 2],
    pub macs: u64,
    pub params: u64,
}

fn row(model: &Model, node: &Node) -> Option<LayerRow> {
    let (i, o) = (model.input_shape(node), model.output_shape(node));
    let (kernel, stride, pad, groups) = match &node.op {
        Op::Conv2d(c) => (c.kernel, c.stride, c.pad, c.groups),
        Op::Linear(_) => (1, 1, 0, 1),
        _ => return None,
    };
    Some(LayerRow {
        name: node.name.clone(),
        op: node.op.name(),
        kind: model.layer_kind(node)?.as_str(),
        in_ch: i.c,
        out_ch: o.c,
        kernel,
        stride,
        pad,
        groups,
        in_hw: [i.h, i.w],
        out_hw: [o.h, o.w],
        macs: model.macs(node),
        params: node.op.params(),
    })
}

/// The conv/linear layers in execution order.
pub fn layer_rows(model: &Model) -> Vec<LayerRow> {
    model.nodes.iter().filter_map(|n| row(model, n)).collect()
}

/// Thousands separators: 517068320 → "517 068 320".
fn group_digits(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(ch);
    }
    out
}

/// A fixed-width text table of the layers, then totals.
pub fn summary_table(model: &Model) -> String {
    let rows = layer_rows(model);
    let name_w = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    let mut s = format!(
        "{:<name_w$}  {:<7} {:>5} {:>5} {:>2} {:>2} {:>4} {:>8} {:>8} {:>12} {:>9}\n",
        "name", "op", "c_in", "c_out", "k", "s", "grp", "hw_in", "hw_out", "MACs", "params"
    );
    for r in &rows {
        s += &format!(
            "{:<name_w$}  {:<7} {:>5} {:>5} {:>2} {:>2} {:>4} {:>8} {:>8} {:>12} {:>9}\n",
            r.name,
            r.op,
            r.in_ch,
            r.out_ch,
            r.kernel,
            r.stride,
            r.groups,
            format!("{}x{}", r.in_hw[0], r.in_hw[1]),
            format!("{}x{}", r.out_hw[0], r.out_hw[1]),
            group_digits(r.macs),
            group_digits(r.params),
        );
    }
    let input = model.shape(model.input);
    s += &format!(
        "\n{}: input 1x{}x{}x{}, {} conv/linear layers ({} ops)\n\
         total MACs           {:>15}\n\
         conv/FC weights      {:>15}\n\
         all learnable params {:>15}  (incl. BN gamma/beta and PReLU slopes)\n",
        model.name,
        input.c,
        input.h,
        input.w,
        rows.len(),
        model.nodes.len(),
        group_digits(model.total_macs()),
        group_digits(model.total_weights()),
        group_digits(model.total_params()),
    );
    s
}

/// `{ "model", "input", "layers": [...], "total_macs", "total_weights", "total_params" }`.
pub fn summary_json(model: &Model) -> serde_json::Value {
    let input = model.shape(model.input);
    json!({
        "model": model.name,
        "input": [1, input.c, input.h, input.w],
        "layers": layer_rows(model),
        "total_macs": model.total_macs(),
        "total_weights": model.total_weights(),
        "total_params": model.total_params(),
    })
}
