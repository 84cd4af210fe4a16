//! The Pareto plot: validation accuracy (measured where measured, else predicted) vs MACs and
//! vs predicted latency on the reference device, every evaluated sub-net as a grey dot, the front as a line, the chosen tiers marked. SVG
//! written by hand; the PNG drawn with plotters and real text ([`crate::plot`]).

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;

use crate::error::{Result, write_atomic};
use crate::plot::{Area, Drawn, FONT, png_bytes, render, rgb};
use crate::search::{Candidate, SearchResult};

const W: f64 = 520.0;
const H: f64 = 380.0;
const ML: f64 = 62.0;
const MR: f64 = 18.0;
const MT: f64 = 34.0;
const MB: f64 = 48.0;

const TIER_RGB: [[u8; 3]; 6] = [
    [214, 39, 40],
    [255, 127, 14],
    [44, 160, 44],
    [31, 119, 180],
    [148, 103, 189],
    [140, 86, 75],
];

struct Panel<'a> {
    title: &'a str,
    x_label: &'a str,
    x: fn(&Candidate) -> f64,
}

const PANELS: [Panel<'static>; 2] = [
    Panel {
        title: "accuracy vs MACs",
        x_label: "MACs (millions)",
        x: |c| c.costs.macs as f64 / 1e6,
    },
    Panel {
        title: "accuracy vs latency",
        x_label: "predicted latency on the reference device (ms)",
        x: |c| c.reference_latency_ms,
    },
];

struct Scale {
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
}

impl Scale {
    fn of(points: &[(f64, f64)]) -> Self {
        let (mut x0, mut x1, mut y0, mut y1) = (
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
        );
        for &(x, y) in points {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
        if !x0.is_finite() {
            (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
        }
        let px = ((x1 - x0) * 0.05).max(1e-6);
        let py = ((y1 - y0) * 0.08).max(1e-4);
        Scale {
            x0: x0 - px,
            x1: x1 + px,
            y0: y0 - py,
            y1: y1 + py,
        }
    }
    fn px(&self, x: f64, y: f64) -> (f64, f64) {
        (
            ML + (x - self.x0) / (self.x1 - self.x0) * (W - ML - MR),
            MT + (1.0 - (y - self.y0) / (self.y1 - self.y0)) * (H - MT - MB),
        )
    }
}

fn front_of(r: &SearchResult, i: usize) -> &[Candidate] {
    if i == 0 {
        &r.pareto_macs
    } else {
        &r.pareto_latency
    }
}

/// The plot as SVG text. `archive` is every evaluated sub-net (may be empty: then only the
/// fronts and the tiers are drawn).
pub fn svg(r: &SearchResult, archive: &[Candidate]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif" font-size="11">"#,
        2.0 * W,
        H + 24.0
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    for (i, p) in PANELS.iter().enumerate() {
        let front = front_of(r, i);
        let sc = Scale::of(&panel_points(p, r, archive, front));
        let _ = writeln!(s, r#"<g transform="translate({},0)">"#, i as f64 * W);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="20" text-anchor="middle" font-size="14">{}</text>"#,
            W / 2.0,
            p.title
        );
        let _ = writeln!(
            s,
            r##"<rect x="{ML}" y="{MT}" width="{}" height="{}" fill="none" stroke="#444"/>"##,
            W - ML - MR,
            H - MT - MB
        );
        for k in 0..=4 {
            let fx = sc.x0 + (sc.x1 - sc.x0) * k as f64 / 4.0;
            let fy = sc.y0 + (sc.y1 - sc.y0) * k as f64 / 4.0;
            let (x, _) = sc.px(fx, sc.y0);
            let (_, y) = sc.px(sc.x0, fy);
            let _ = writeln!(
                s,
                r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#ddd"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{fx:.2}</text>"##,
                MT,
                H - MB,
                H - MB + 15.0
            );
            let _ = writeln!(
                s,
                r##"<line x1="{ML}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{fy:.1}%</text>"##,
                W - MR,
                ML - 4.0,
                y + 4.0
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            (ML + W - MR) / 2.0,
            H - 12.0,
            p.x_label
        );
        let _ = writeln!(
            s,
            r#"<text transform="translate(14,{:.1}) rotate(-90)" text-anchor="middle">val. top-1, measured or predicted (%)</text>"#,
            (MT + H - MB) / 2.0
        );
        for c in archive {
            let (x, y) = sc.px((p.x)(c), 100.0 * c.fitness());
            let _ = writeln!(
                s,
                r##"<circle cx="{x:.1}" cy="{y:.1}" r="1.6" fill="#bbb"/>"##
            );
        }
        let line: Vec<String> = front
            .iter()
            .map(|c| {
                let (x, y) = sc.px((p.x)(c), 100.0 * c.fitness());
                format!("{x:.1},{y:.1}")
            })
            .collect();
        let _ = writeln!(
            s,
            r##"<polyline points="{}" fill="none" stroke="#333" stroke-width="1.5"/>"##,
            line.join(" ")
        );
        for (t, choice) in r.tiers.iter().enumerate() {
            let (x, y) = sc.px((p.x)(&choice.candidate), 100.0 * choice.candidate.fitness());
            let [cr, cg, cb] = TIER_RGB[t % TIER_RGB.len()];
            let col = format!("#{cr:02x}{cg:02x}{cb:02x}");
            let _ = writeln!(
                s,
                r#"<circle cx="{x:.1}" cy="{y:.1}" r="5" fill="{col}" stroke="black"/><text x="{:.1}" y="{:.1}" fill="{col}">{}</text>"#,
                x + 7.0,
                y - 6.0 - 11.0 * (t % 2) as f64,
                escape(&choice.tier.name)
            );
        }
        let _ = writeln!(s, "</g>");
    }
    let _ = writeln!(
        s,
        r##"<text x="10" y="{:.1}" fill="#555">reference device: {} (score {:.0}); grey: sub-nets evaluated by the search; line: Pareto front; dots: chosen tiers</text>"##,
        H + 16.0,
        escape(&r.reference.id),
        r.reference.score
    );
    s.push_str("</svg>\n");
    s
}

/// Escapes text for SVG.
pub(crate) fn escape(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Every point a panel draws (archive, front, tier markers): what its scale must cover.
fn panel_points(
    p: &Panel<'_>,
    r: &SearchResult,
    archive: &[Candidate],
    front: &[Candidate],
) -> Vec<(f64, f64)> {
    archive
        .iter()
        .chain(front)
        .chain(r.tiers.iter().map(|t| &t.candidate))
        .map(|c| ((p.x)(c), 100.0 * c.fitness()))
        .collect()
}

/// The plot as an RGB image: the SVG's two panels with axes, tick labels, titles and a legend
/// in real text (plotters, embedded DejaVu Sans).
///
/// # Errors
/// [`Error::Draw`] when drawing fails.
pub fn png_image(r: &SearchResult, archive: &[Candidate]) -> Result<image::RgbImage> {
    let (w, h) = ((2.0 * W) as u32, (H + 24.0) as u32);
    render(w, h, "the Pareto plot", |root| {
        root.fill(&WHITE)?;
        for (i, (p, area)) in PANELS.iter().zip(root.split_evenly((1, 2))).enumerate() {
            draw_panel(&area, p, r, archive, front_of(r, i))?;
        }
        Ok(())
    })
}

/// One panel: the archive as grey dots, the front as a line, each tier's choice as a coloured
/// disc, with a legend.
fn draw_panel(
    area: &Area<'_>,
    p: &Panel<'_>,
    r: &SearchResult,
    archive: &[Candidate],
    front: &[Candidate],
) -> Drawn {
    let sc = Scale::of(&panel_points(p, r, archive, front));
    let xy = |c: &Candidate| ((p.x)(c), 100.0 * c.fitness());
    let mut chart = ChartBuilder::on(area)
        .caption(p.title, (FONT, 16))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(sc.x0..sc.x1, sc.y0..sc.y1)?;
    chart
        .configure_mesh()
        .x_desc(p.x_label)
        .y_desc("val. accuracy, measured or predicted (%)")
        .label_style((FONT, 12))
        .axis_desc_style((FONT, 13))
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(222, 222, 222))
        .draw()?;
    let grey = RGBColor(175, 175, 175);
    chart
        .draw_series(archive.iter().map(|c| Circle::new(xy(c), 1, grey.filled())))?
        .label(format!("evaluated sub-nets ({})", archive.len()))
        .legend(move |(x, y)| Circle::new((x + 8, y), 3, grey.filled()));
    chart
        .draw_series(LineSeries::new(front.iter().map(xy), BLACK.stroke_width(1)))?
        .label("Pareto front")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK));
    // tiers that chose the same sub-net show as concentric rings: the first tier largest
    let n = r.tiers.len() as i32;
    for (k, choice) in r.tiers.iter().enumerate() {
        let color = rgb(TIER_RGB[k % TIER_RGB.len()]);
        let at = xy(&choice.candidate);
        let radius = 4 + 2 * (n - 1 - k as i32);
        chart
            .draw_series([
                Circle::new(at, radius + 1, BLACK.filled()),
                Circle::new(at, radius, color.filled()),
            ])?
            .label(choice.tier.name.as_str())
            .legend(move |(x, y)| Circle::new((x + 8, y), 5, color.filled()));
    }
    chart
        .configure_series_labels()
        // above the front at low cost: the one corner a Pareto plot leaves empty
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FONT, 12))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(120, 120, 120))
        .draw()?;
    Ok(())
}

/// Writes `pareto.svg` and `pareto.png` into `dir`.
///
/// # Errors
/// I/O or PNG encoding errors, naming the file.
pub fn write_plots(dir: &Path, r: &SearchResult, archive: &[Candidate]) -> Result<()> {
    write_atomic(&dir.join("pareto.svg"), svg(r, archive).as_bytes())?;
    let png = dir.join("pareto.png");
    write_atomic(&png, &png_bytes(&png_image(r, archive)?, &png)?)
}
