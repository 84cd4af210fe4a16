//! The QA chart: one bar per phone (measured latency, coloured by the variant measured: the
//! runtime's own pick under emulation), the selector's prediction as a black tick on each bar,
//! the latency budget as a dashed red line, failing phones marked, a legend and a line on the
//! host. One plotters drawing ([`draw`]) makes both the PNG and the SVG, with real text
//! ([`crate::plot`]), as [`crate::pareto`] does.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::report::QaReport;
use crate::error::{Result, write_atomic};
use crate::plot::{Area, Drawn, FONT, png_bytes, render, render_svg, rgb};

const H: f64 = 512.0;
/// Height of the host line under the plot.
const FOOTER: f64 = 34.0;
const ML: f64 = 64.0;
const MR: f64 = 190.0;
const MT: f64 = 40.0;
const MB: f64 = 227.0;
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

/// The chart's size, scale and colours.
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

fn fmt_ms(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The chart as SVG text ([`draw`] on plotters' SVG backend: every label is a `<text>`).
///
/// # Errors
/// [`Error::Draw`](crate::Error::Draw) when drawing fails.
pub fn svg(r: &QaReport) -> Result<String> {
    let l = Layout::of(r);
    render_svg(l.w as u32, H as u32, "the QA chart (SVG)", |root| {
        draw(root, r, &l)
    })
}

/// The chart as an RGB image ([`draw`] on plotters' bitmap backend).
///
/// # Errors
/// [`Error::Draw`](crate::Error::Draw) when drawing fails.
pub fn png_image(r: &QaReport) -> Result<image::RgbImage> {
    let l = Layout::of(r);
    render(l.w as u32, H as u32, "the QA chart", |root| {
        draw(root, r, &l)
    })
}

/// The whole chart on any backend: the bars beside the legend, the host line under both.
fn draw<DB: DrawingBackend>(root: &Area<DB>, r: &QaReport, l: &Layout) -> Drawn
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let (chart, footer) = root.split_vertically(H - FOOTER);
    let (plot, legend) = chart.split_horizontally(l.w - MR + 16.0);
    draw_bars(&plot, r, l)?;
    draw_legend(&legend, r, l)?;
    let style = TextStyle::from((FONT, 12)).color(&RGBColor(85, 85, 85));
    let lines = [
        format!(
            "host {} score {:.1}; {} images per phone",
            r.host.id, r.host.score, r.images
        ),
        if r.emulation == "cpu-quota" {
            "measured under each phone's CPU quota".to_string()
        } else {
            "emulated = host median × host score / phone score".to_string()
        },
    ];
    for (i, line) in lines.into_iter().enumerate() {
        footer.draw(&Text::new(line, (10, 2 + 15 * i as i32), style.clone()))?;
    }
    Ok(())
}

/// Axes, one bar per phone, the prediction ticks, the budget line and the failures.
fn draw_bars<DB: DrawingBackend>(area: &Area<DB>, r: &QaReport, l: &Layout) -> Drawn
where
    DB::ErrorType: 'static,
{
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
        .x_label_area_size(MB - 40.0 - FOOTER)
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
fn draw_legend<DB: DrawingBackend>(area: &Area<DB>, r: &QaReport, l: &Layout) -> Drawn
where
    DB::ErrorType: 'static,
{
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
    let budget = format!("budget {} ms", fmt_ms(r.latency_budget_ms));
    area.draw(&text(&budget, x + 20, y - 1))?;
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
    write_atomic(&dir.join("qa.svg"), svg(r)?.as_bytes())?;
    let png = dir.join("qa.png");
    write_atomic(&png, &png_bytes(&png_image(r)?, &png)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qa::tests::sample_report;

    /// Both charts of the sample report; with `TIERS_CHART_DIR` set, also written there as
    /// `qa.svg` / `qa.png` to look at.
    #[test]
    fn svg_and_png_come_from_one_drawing_with_real_text() {
        let r = sample_report();
        let svg = svg(&r).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        let texts = crate::plot::svg_texts(&svg);
        let has = |t: &str| texts.iter().any(|x| x == t);
        for text in [
            "QA: tiny v00ff: 2 of 3 fail",
            "budget 10 ms",
            "latency per image (ms)",
            "predicted",
            "fail",
            "small",
            "large",
            "host host-0123 score 200.0; 16 images per phone",
            "emulated = host median × host score / phone score",
        ] {
            assert!(has(text), "{text} not in {texts:?}");
        }
        for p in &r.phones {
            assert!(has(&p.id), "{} not in {texts:?}", p.id);
        }
        // two phones fail: two marks
        assert_eq!(
            texts.iter().filter(|t| *t == "fail").count(),
            2,
            "{texts:?}"
        );
        let img = png_image(&r).unwrap();
        assert_eq!((img.width(), img.height()), (svg_size(&svg)));
        let edges = img
            .pixels()
            .filter(|p| p.0[0] == p.0[1] && p.0[1] == p.0[2] && (90..200).contains(&p.0[0]))
            .count();
        assert!(
            edges > 300,
            "{edges} anti-aliased grey pixels: no text drawn?"
        );
        if let Some(dir) = std::env::var_os("TIERS_CHART_DIR") {
            write_charts(Path::new(&dir), &r).unwrap();
        }
    }

    /// The `width` and `height` attributes of an `<svg>` element.
    fn svg_size(svg: &str) -> (u32, u32) {
        let attr = |name: &str| -> u32 {
            let at = svg.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
            svg[at..].split('"').next().unwrap().parse().unwrap()
        };
        (attr("width"), attr("height"))
    }

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
