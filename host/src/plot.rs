//! Charts, drawn by `plotters` into SVG (its SVG backend only: text is left to the viewer's
//! fonts, so no font library is needed): the sweep's images/s against cost with the Pareto
//! front, and an inference's cycles per layer.

use crate::run::report::Report;
use crate::sweep::{all_synthesized, cost, Point};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

const FONT: &str = "sans-serif";

/// Draws into an SVG document of `size` pixels.
fn svg(
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> anyhow::Result<()>,
) -> anyhow::Result<String> {
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, size).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root)?;
        root.present()?;
    }
    Ok(text)
}

/// The sweep: images/s against DSP slices (or PE lanes without synthesis), every point
/// named, the Pareto points filled and joined.
pub fn sweep(points: &[Point]) -> anyhow::Result<String> {
    let synthesized = all_synthesized(points);
    let ran: Vec<&Point> = points.iter().filter(|p| p.error.is_none()).collect();
    let xy = |p: &Point| (cost(p, synthesized), p.images_per_s);
    let xmax = ran.iter().map(|p| xy(p).0).fold(1.0, f64::max) * 1.15;
    let ymax = ran.iter().map(|p| xy(p).1).fold(1.0, f64::max) * 1.1;
    let xlabel = if synthesized {
        "DSP slices (yosys synth_xilinx)"
    } else {
        "PE lanes = MACs/cycle (no synthesis results)"
    };
    svg((860, 560), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                "Design-space sweep: VarGFaceNet on the cycle model",
                (FONT, 20),
            )
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(64)
            .build_cartesian_2d(0.0..xmax, 0.0..ymax)?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .x_desc(xlabel)
            .y_desc("images/s")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .label_style((FONT, 13))
            .draw()?;
        let mut front: Vec<(f64, f64)> = ran.iter().filter(|p| p.pareto).map(|p| xy(p)).collect();
        front.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart
            .draw_series(LineSeries::new(front, RED.stroke_width(2)))?
            .label("Pareto front")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED.stroke_width(2)));
        // only the front is named: the other points crowd around it (sweep.csv names all)
        chart
            .draw_series(
                ran.iter()
                    .filter(|p| !p.pareto)
                    .map(|p| Circle::new(xy(p), 4, RED.stroke_width(1))),
            )?
            .label("dominated point")
            .legend(|(x, y)| Circle::new((x + 10, y), 4, RED.stroke_width(1)));
        chart.draw_series(ran.iter().filter(|p| p.pareto).map(|p| {
            EmptyElement::at(xy(p))
                + Circle::new((0, 0), 4, RED.filled())
                + Text::new(p.name.clone(), (8, 4), (FONT, 12))
        }))?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .border_style(BLACK)
            .background_style(WHITE)
            .label_font((FONT, 13))
            .draw()?;
        Ok(())
    })
}

/// An inference's layers, in the report's order: each layer's cycles stacked as MAC work
/// (its MACs at the array's peak), array overhead (the rest of the compute unit's busy
/// cycles: drains, padding, EWISE and POOL) and stalls (the array idle), with the PE
/// utilisation as a line on the right-hand axis.
pub fn layers(report: &Report) -> anyhow::Result<String> {
    let rows = &report.layers;
    let n = rows.len().max(1) as f64;
    let parts: Vec<[f64; 3]> = rows
        .iter()
        .map(|l| {
            let mac = l.macs as f64 / report.macs_per_cycle as f64;
            [
                mac,
                (l.compute_busy as f64 - mac).max(0.0),
                l.stall_cycles as f64,
            ]
        })
        .collect();
    let ymax = parts
        .iter()
        .map(|p| p.iter().sum::<f64>())
        .fold(1.0, f64::max)
        * 1.08;
    let colours = [
        ("MAC work (MACs at the peak rate)", RGBColor(46, 125, 50)),
        ("array overhead (busy, no MACs)", RGBColor(249, 168, 37)),
        ("stalls (array idle)", RGBColor(198, 40, 40)),
    ];
    let title = format!(
        "{} on {}: {} cycles, PE utilisation {:.3}",
        report.model, report.backend, report.total_cycles, report.utilization
    );
    svg((1400, 620), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 20))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .right_y_label_area_size(56)
            .build_cartesian_2d(0.0..n, 0.0..ymax)?
            .set_secondary_coord(0.0..n, 0.0..1.0);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(TRANSPARENT)
            .x_desc("layer (row of the report table, from 0)")
            .y_desc("cycles")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .label_style((FONT, 13))
            .draw()?;
        chart
            .configure_secondary_axes()
            .y_desc("PE utilisation")
            .label_style((FONT, 13))
            .draw()?;
        for (k, (label, colour)) in colours.iter().enumerate() {
            let bars = parts.iter().enumerate().map(|(i, p)| {
                let below: f64 = p[..k].iter().sum();
                let x = i as f64;
                Rectangle::new([(x + 0.1, below), (x + 0.9, below + p[k])], colour.filled())
            });
            chart
                .draw_series(bars)?
                .label(*label)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 14, y + 5)], colour.filled())
                });
        }
        let util = rows
            .iter()
            .enumerate()
            .map(|(i, l)| (i as f64 + 0.5, l.utilization));
        chart
            .draw_secondary_series(LineSeries::new(util, BLUE.mix(0.6).stroke_width(1)))?
            .label("PE utilisation (right axis)")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 14, y)], BLUE.stroke_width(2)));
        // the slowest layers by name, where the eye goes first
        let mut slow: Vec<usize> = (0..rows.len()).collect();
        slow.sort_by_key(|&i| std::cmp::Reverse(rows[i].cycles));
        chart.draw_series(slow.iter().take(4).map(|&i| {
            let top = parts[i].iter().sum::<f64>();
            // right of the bar in the left half of the chart, left of it in the right half
            let (dx, h) = if (i as f64) < n / 2.0 {
                (4, HPos::Left)
            } else {
                (-4, HPos::Right)
            };
            let style = TextStyle::from((FONT, 11)).pos(Pos::new(h, VPos::Bottom));
            EmptyElement::at((i as f64 + 0.5, top))
                + Text::new(rows[i].name.clone(), (dx, 0), style)
        }))?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .border_style(BLACK)
            .background_style(WHITE)
            .label_font((FONT, 13))
            .draw()?;
        Ok(())
    })
}
