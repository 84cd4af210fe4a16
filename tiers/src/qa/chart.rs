//! The QA chart: one bar per phone (measured latency, coloured by the variant measured: the runtime's own pick under emulation), the
//! selector's prediction as a black tick on each bar, the latency budget as a dashed red line,
//! failing phones marked, and a legend. SVG written by hand; the PNG drawn with plotters and
//! real text ([`crate::plot`]), as [`crate::pareto`] does.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::report::QaReport;
use crate::error::{Result, write_atomic};
use crate::plot::{Area, Drawn, FONT, png_bytes, render, rgb};

const H: f64 = 500.0;
const ML: f64 = 64.0;
const MR: f64 = 190.0;
const MT: f64 = 40.0;
const MB: f64 = 215.0;
const BAR_PITCH: f64 = 40.0;

const COLORS: [[u8; 3]; 8] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [148, 103, 189],
    [140, 86, 75],
    [23, 190, 207],
    [188, 189, 34],
    [127, 127, 127],
];
const RED: [u8; 3] = [214, 39, 40];

fn hex(c: [u8; 3]) -> String {
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

/// Layout shared by the SVG and the PNG.
struct Layout {
    w: f64,
    y_max: f64,
    /// Variant ids in legend order (size order of the bundle, as they appear).
    variants: Vec<String>,
}

impl Layout {
    fn of(r: &QaReport) -> Self {
        let n = r.phones.len().max(1) as f64;
        let mut y_max = r.latency_budget_ms;
        for p in &r.phones {
            y_max = y_max.max(p.predicted_ms).max(p.emulated_ms.unwrap_or(0.0));
        }
        let mut variants: Vec<String> = Vec::new();
        for p in &r.phones {
            if !variants.iter().any(|v| v == p.measured_variant()) {
                variants.push(p.measured_variant().to_string());
            }
        }
        Layout {
            w: ML + MR + n * BAR_PITCH,
            y_max: nice_ceil(y_max * 1.1),
            variants,
        }
    }
    fn color(&self, variant: &str) -> [u8; 3] {
        let i = self.variants.iter().position(|v| v == variant).unwrap_or(0);
        COLORS[i % COLORS.len()]
    }
    fn y(&self, ms: f64) -> f64 {
        MT + (1.0 - (ms / self.y_max).clamp(0.0, 1.05)) * (H - MT - MB)
    }
    fn bar_x(i: usize) -> f64 {
        ML + i as f64 * BAR_PITCH + BAR_PITCH * 0.2
    }
}

/// The smallest round number (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10^k) at or above `x`.
fn nice_ceil(x: f64) -> f64 {
    if !(x.is_finite() && x > 0.0) {
        return 1.0;
    }
    let p = 10f64.powf(x.log10().floor());
    [1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|v| *v >= x)
        .unwrap_or(10.0 * p)
}

use crate::pareto::escape;

/// The chart as SVG text.
pub fn svg(r: &QaReport) -> String {
    let l = Layout::of(r);
    let bw = BAR_PITCH * 0.6;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{:.0}" height="{H:.0}" font-family="sans-serif" font-size="11">"#,
        l.w
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="22" text-anchor="middle" font-size="14">QA: emulated latency per phone — bundle {} v{} ({})</text>"#,
        (ML + l.w - MR) / 2.0,
        escape(&r.bundle_id),
        escape(&r.bundle_version),
        if r.all_pass() {
            "all pass".to_string()
        } else {
            format!("{} of {} fail", r.failed, r.phones.len())
        }
    );
    let (x0, x1, y0, y1) = (ML, l.w - MR, MT, H - MB);
    for k in 0..=5 {
        let v = l.y_max * k as f64 / 5.0;
        let y = l.y(v);
        let _ = writeln!(
            s,
            r##"<line x1="{x0}" y1="{y:.1}" x2="{x1}" y2="{y:.1}" stroke="#e4e4e4"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            x0 - 4.0,
            y + 4.0,
            fmt_ms(v)
        );
    }
    let _ = writeln!(
        s,
        r##"<rect x="{x0}" y="{y0}" width="{:.1}" height="{:.1}" fill="none" stroke="#444"/>"##,
        x1 - x0,
        y1 - y0
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(16,{:.1}) rotate(-90)" text-anchor="middle">emulated latency per image (ms)</text>"#,
        (y0 + y1) / 2.0
    );
    for (i, p) in r.phones.iter().enumerate() {
        let x = Layout::bar_x(i);
        let col = hex(l.color(p.measured_variant()));
        if let Some(e) = p.emulated_ms {
            let y = l.y(e);
            let _ = writeln!(
                s,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{bw:.1}" height="{:.1}" fill="{col}"{}><title>{}: {} — emulated {:.2} ms, predicted {:.2} ms</title></rect>"#,
                (y1 - y).max(0.5),
                if p.pass {
                    String::new()
                } else {
                    format!(r#" stroke="{}" stroke-width="2""#, hex(RED))
                },
                escape(&p.name),
                escape(p.measured_variant()),
                e,
                p.predicted_ms
            );
        }
        let yp = l.y(p.predicted_ms);
        let _ = writeln!(
            s,
            r#"<line x1="{:.1}" y1="{yp:.1}" x2="{:.1}" y2="{yp:.1}" stroke="black" stroke-width="2"/>"#,
            x - 3.0,
            x + bw + 3.0
        );
        if !p.pass {
            let top = p.emulated_ms.map_or(y1, |e| l.y(e)).min(yp);
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="{}" font-weight="bold">FAIL</text>"#,
                x + bw / 2.0,
                top - 5.0,
                hex(RED)
            );
        }
        let _ = writeln!(
            s,
            r#"<text transform="translate({:.1},{:.1}) rotate(-50)" text-anchor="end">{}</text>"#,
            x + bw / 2.0 + 3.0,
            y1 + 12.0,
            escape(&p.id)
        );
    }
    let yb = l.y(r.latency_budget_ms);
    let _ = writeln!(
        s,
        r#"<line x1="{x0}" y1="{yb:.1}" x2="{x1}" y2="{yb:.1}" stroke="{}" stroke-width="1.5" stroke-dasharray="6,4"/>"#,
        hex(RED)
    );
    // Legend.
    let lx = x1 + 14.0;
    let mut ly = y0 + 6.0;
    let _ = writeln!(
        s,
        r#"<text x="{lx:.1}" y="{ly:.1}" font-weight="bold">chosen variant</text>"#
    );
    for v in &l.variants {
        ly += 18.0;
        let _ = writeln!(
            s,
            r#"<rect x="{lx:.1}" y="{:.1}" width="12" height="12" fill="{}"/><text x="{:.1}" y="{ly:.1}">{}</text>"#,
            ly - 10.0,
            hex(l.color(v)),
            lx + 18.0,
            escape(v)
        );
    }
    ly += 26.0;
    let _ = writeln!(
        s,
        r#"<line x1="{lx:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{}" stroke-width="1.5" stroke-dasharray="6,4"/><text x="{:.1}" y="{ly:.1}">budget {} ms</text>"#,
        ly - 4.0,
        lx + 14.0,
        ly - 4.0,
        hex(RED),
        lx + 18.0,
        fmt_ms(r.latency_budget_ms)
    );
    ly += 18.0;
    let _ = writeln!(
        s,
        r#"<line x1="{lx:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="black" stroke-width="2"/><text x="{:.1}" y="{ly:.1}">predicted (selector)</text>"#,
        ly - 4.0,
        lx + 14.0,
        ly - 4.0,
        lx + 18.0
    );
    ly += 18.0;
    let _ = writeln!(
        s,
        r#"<rect x="{lx:.1}" y="{:.1}" width="12" height="12" fill="white" stroke="{}" stroke-width="2"/><text x="{:.1}" y="{ly:.1}">failing phone</text>"#,
        ly - 10.0,
        hex(RED),
        lx + 18.0
    );
    let _ = writeln!(
        s,
        r##"<text x="10" y="{:.1}" fill="#555">host {} score {:.1}; emulated = host median × host score / phone score; {} images per phone</text>"##,
        H - 10.0,
        escape(&r.host.id),
        r.host.score,
        r.images
    );
    s.push_str("</svg>\n");
    s
}

fn fmt_ms(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The chart as an RGB image: the SVG's content (bars, predicted ticks, budget line, failing
/// phones, legend) with axes and labels in real text (plotters, embedded DejaVu Sans).
///
/// # Errors
/// [`Error::Draw`] when drawing fails.
pub fn png_image(r: &QaReport) -> Result<image::RgbImage> {
    let l = Layout::of(r);
    render(l.w as u32, H as u32, "the QA chart", |root| {
        root.fill(&WHITE)?;
        let (plot, legend) = root.split_horizontally(l.w - MR + 16.0);
        draw_bars(&plot, r, &l)?;
        draw_legend(&legend, &l)
    })
}

/// Axes, one bar per phone, the prediction ticks, the budget line and the failures.
fn draw_bars(area: &Area<'_>, r: &QaReport, l: &Layout) -> Drawn {
    let n = r.phones.len().max(1);
    let ids: Vec<String> = r
        .phones
        .iter()
        .map(|p| p.id.chars().take(25).collect())
        .collect();
    let title = format!(
        "QA: {} v{}: {}",
        r.bundle_id,
        r.bundle_version,
        if r.all_pass() {
            "all pass".to_string()
        } else {
            format!("{} of {} fail", r.failed, r.phones.len())
        }
    );
    let x_range = -0.5..n as f64 - 0.5;
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 16))
        .margin(10)
        .x_label_area_size(MB - 40.0)
        .y_label_area_size(ML)
        .build_cartesian_2d(x_range, 0.0..l.y_max)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_desc("latency per image (ms)")
        .y_label_formatter(&|v| fmt_ms(*v))
        .x_labels(0)
        .label_style((FONT, 12))
        .axis_desc_style((FONT, 13))
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(228, 228, 228))
        .draw()?;
    let half = 0.3;
    for (i, p) in r.phones.iter().enumerate() {
        let x = i as f64;
        if let Some(e) = p.emulated_ms {
            let color = rgb(l.color(p.measured_variant()));
            chart.draw_series([Rectangle::new(
                [(x - half, 0.0), (x + half, e)],
                color.filled(),
            )])?;
            if !p.pass {
                chart.draw_series([Rectangle::new(
                    [(x - half, 0.0), (x + half, e)],
                    rgb(RED).stroke_width(3),
                )])?;
            }
        }
        chart.draw_series([PathElement::new(
            [
                (x - half - 0.08, p.predicted_ms),
                (x + half + 0.08, p.predicted_ms),
            ],
            BLACK.stroke_width(2),
        )])?;
        if !p.pass {
            let top = p.emulated_ms.unwrap_or(0.0).max(p.predicted_ms);
            chart.draw_series([Text::new(
                "fail",
                (x, top),
                TextStyle::from((FONT, 12))
                    .color(&rgb(RED))
                    .pos(Pos::new(HPos::Center, VPos::Bottom)),
            )])?;
        }
    }
    // the phone ids under their bars, top to bottom
    let id_style = TextStyle::from((FONT, 12))
        .transform(FontTransform::Rotate90)
        .color(&RGBColor(68, 68, 68));
    for (i, id) in ids.iter().enumerate() {
        let (px, py) = chart.backend_coord(&(i as f64, 0.0));
        area.draw(&Text::new(id.clone(), (px + 6, py + 8), id_style.clone()))?;
    }
    let budget = r.latency_budget_ms;
    chart.draw_series(DashedLineSeries::new(
        [(-0.5, budget), (n as f64 - 0.5, budget)],
        6,
        4,
        rgb(RED).stroke_width(2),
    ))?;
    Ok(())
}

/// The legend beside the plot: variants by colour, then the budget, prediction and failure
/// marks.
fn draw_legend(area: &Area<'_>, l: &Layout) -> Drawn {
    let text = |s: &str, x: i32, y: i32| Text::new(s.to_string(), (x, y), (FONT, 13).into_font());
    let (x, mut y) = (4, MT as i32);
    area.draw(&Text::new(
        "variant",
        (x, y),
        (FONT, 13).into_font().style(FontStyle::Bold),
    ))?;
    for v in &l.variants {
        y += 20;
        area.draw(&Rectangle::new(
            [(x, y), (x + 12, y + 12)],
            rgb(l.color(v)).filled(),
        ))?;
        let v: String = v.chars().take(18).collect();
        area.draw(&text(&v, x + 20, y - 1))?;
    }
    y += 30;
    area.draw(&PathElement::new(
        [(x, y + 6), (x + 6, y + 6)],
        rgb(RED).stroke_width(2),
    ))?;
    area.draw(&PathElement::new(
        [(x + 9, y + 6), (x + 15, y + 6)],
        rgb(RED).stroke_width(2),
    ))?;
    area.draw(&text("budget", x + 20, y - 1))?;
    y += 20;
    area.draw(&PathElement::new(
        [(x, y + 6), (x + 15, y + 6)],
        BLACK.stroke_width(2),
    ))?;
    area.draw(&text("predicted", x + 20, y - 1))?;
    y += 20;
    area.draw(&Rectangle::new(
        [(x, y), (x + 12, y + 12)],
        rgb(RED).stroke_width(3),
    ))?;
    area.draw(&text("fail (emulated)", x + 20, y - 1))?;
    Ok(())
}

/// Writes `qa.svg` and `qa.png` into `dir`.
///
/// # Errors
/// I/O or PNG encoding errors, naming the file.
pub fn write_charts(dir: &Path, r: &QaReport) -> Result<()> {
    write_atomic(&dir.join("qa.svg"), svg(r).as_bytes())?;
    let png = dir.join("qa.png");
    write_atomic(&png, &png_bytes(&png_image(r)?, &png)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_ceil_rounds_up_to_round_numbers() {
        for (x, want) in [
            (0.7, 0.8),
            (1.3, 1.5),
            (23.0, 25.0),
            (81.0, 100.0),
            (0.0, 1.0),
        ] {
            let got = nice_ceil(x);
            assert!((got - want).abs() < 1e-9, "{x}: {got}");
        }
    }
}
