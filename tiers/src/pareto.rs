//! The Pareto plot: validation accuracy (measured where measured, else predicted) vs MACs and
//! vs predicted latency on the reference device, every evaluated sub-net as a grey dot, the
//! front as a line, the chosen tiers marked. One plotters drawing ([`draw`]) makes both the PNG
//! and the SVG, with real text ([`crate::plot`]).

use std::path::Path;

use plotters::prelude::*;

use crate::error::{Result, write_atomic};
use crate::plot::{Area, Drawn, FONT, png_bytes, render, render_svg, rgb};
use crate::search::{Candidate, SearchResult};

/// One panel's width.
const W: u32 = 520;
/// The panels' height.
const H: u32 = 380;
/// Height of the line under the panels.
const FOOTER: u32 = 24;

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
}

fn front_of(r: &SearchResult, i: usize) -> &[Candidate] {
    if i == 0 {
        &r.pareto_macs
    } else {
        &r.pareto_latency
    }
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

/// The plot as SVG text ([`draw`] on plotters' SVG backend: every label is a `<text>`).
/// `archive` is every evaluated sub-net (may be empty: then only the fronts and the tiers are
/// drawn).
///
/// # Errors
/// [`Error::Draw`](crate::Error::Draw) when drawing fails.
pub fn svg(r: &SearchResult, archive: &[Candidate]) -> Result<String> {
    render_svg(2 * W, H + FOOTER, "the Pareto plot (SVG)", |root| {
        draw(root, r, archive)
    })
}

/// The plot as an RGB image ([`draw`] on plotters' bitmap backend).
///
/// # Errors
/// [`Error::Draw`](crate::Error::Draw) when drawing fails.
pub fn png_image(r: &SearchResult, archive: &[Candidate]) -> Result<image::RgbImage> {
    render(2 * W, H + FOOTER, "the Pareto plot", |root| {
        draw(root, r, archive)
    })
}

/// The whole plot on any backend: the two panels side by side, a line on the reference device
/// under them.
fn draw<DB: DrawingBackend>(root: &Area<DB>, r: &SearchResult, archive: &[Candidate]) -> Drawn
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let (panels, footer) = root.split_vertically(H);
    for (i, (p, area)) in PANELS.iter().zip(panels.split_evenly((1, 2))).enumerate() {
        draw_panel(&area, p, r, archive, front_of(r, i))?;
    }
    footer.draw(&Text::new(
        format!(
            "reference device: {} (score {:.0}); grey: sub-nets evaluated by the search; \
             line: Pareto front; discs: chosen tiers",
            r.reference.id, r.reference.score
        ),
        (10, 4),
        TextStyle::from((FONT, 12)).color(&RGBColor(85, 85, 85)),
    ))?;
    Ok(())
}

/// One panel: the archive as grey dots, the front as a line, each tier's choice as a coloured
/// disc, with a legend.
fn draw_panel<DB: DrawingBackend>(
    area: &Area<DB>,
    p: &Panel<'_>,
    r: &SearchResult,
    archive: &[Candidate],
    front: &[Candidate],
) -> Drawn
where
    DB::ErrorType: 'static,
{
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
    write_atomic(&dir.join("pareto.svg"), svg(r, archive)?.as_bytes())?;
    let png = dir.join("pareto.png");
    write_atomic(&png, &png_bytes(&png_image(r, archive)?, &png)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::search;
    use crate::search::tests::{fake_lut, fake_predictor};
    use crate::spec::TierSpec;
    use supernet::SearchSpace;

    /// Both plots of a search over a fake family; with `TIERS_CHART_DIR` set, also written there
    /// as `pareto.svg` / `pareto.png` to look at.
    #[test]
    fn svg_and_png_come_from_one_drawing_with_real_text() {
        let sp = SearchSpace::small_for(1, 10, 28);
        let opts = crate::search::SearchOptions {
            population: 30,
            generations: 5,
            ..Default::default()
        };
        let spec = TierSpec::default_spec().unwrap();
        let (r, archive) = search(&sp, &spec, &fake_predictor(&sp), &fake_lut(&sp), &opts).unwrap();
        let svg = svg(&r, &archive).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        let texts = crate::plot::svg_texts(&svg);
        let count = |t: &str| texts.iter().filter(|x| *x == t).count();
        let evaluated = format!("evaluated sub-nets ({})", archive.len());
        for text in [
            "accuracy vs MACs",
            "accuracy vs latency",
            "MACs (millions)",
            "predicted latency on the reference device (ms)",
        ] {
            assert_eq!(count(text), 1, "{text} not once in {texts:?}");
        }
        // each panel has the y axis and a legend
        for text in [
            "val. accuracy, measured or predicted (%)",
            "Pareto front",
            evaluated.as_str(),
        ] {
            assert_eq!(count(text), 2, "{text} not twice in {texts:?}");
        }
        for t in &r.tiers {
            assert_eq!(
                count(&t.tier.name),
                2,
                "{} not in both legends",
                t.tier.name
            );
        }
        let footer = format!("reference device: {} (score", r.reference.id);
        assert!(texts.iter().any(|t| t.starts_with(&footer)), "{texts:?}");
        let img = png_image(&r, &archive).unwrap();
        assert_eq!((img.width(), img.height()), (2 * W, H + FOOTER));
        if let Some(dir) = std::env::var_os("TIERS_CHART_DIR") {
            write_plots(Path::new(&dir), &r, &archive).unwrap();
        }
    }
}
