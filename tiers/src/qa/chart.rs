//! The QA chart: one bar per phone (emulated latency, coloured by the chosen variant), the
//! selector's prediction as a black tick on each bar, the latency budget as a dashed red line,
//! failing phones marked, and a legend. SVG written by hand; the PNG is drawn with the `image`
//! crate and a built-in 3×5 pixel font (as [`crate::pareto`] does, without a font dependency).

use std::fmt::Write as _;
use std::path::Path;

use super::report::QaReport;
use crate::error::{Error, Result, write_atomic};

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
            if !variants.contains(&p.decision.chosen) {
                variants.push(p.decision.chosen.clone());
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
        let col = hex(l.color(&p.decision.chosen));
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
                escape(&p.decision.chosen),
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

/// 3×5 glyphs, rows top to bottom, 3 bits a row (MSB left).
fn glyph(c: char) -> u16 {
    let rows: [u8; 5] = match c.to_ascii_lowercase() {
        '0' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 7, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7],
        '6' => [7, 4, 7, 5, 7],
        '7' => [7, 1, 1, 1, 1],
        '8' => [7, 5, 7, 5, 7],
        '9' => [7, 5, 7, 1, 7],
        'a' => [2, 5, 7, 5, 5],
        'b' => [6, 5, 6, 5, 6],
        'c' => [3, 4, 4, 4, 3],
        'd' => [6, 5, 5, 5, 6],
        'e' => [7, 4, 6, 4, 7],
        'f' => [7, 4, 6, 4, 4],
        'g' => [3, 4, 5, 5, 3],
        'h' => [5, 5, 7, 5, 5],
        'i' => [7, 2, 2, 2, 7],
        'j' => [1, 1, 1, 5, 2],
        'k' => [5, 5, 6, 5, 5],
        'l' => [4, 4, 4, 4, 7],
        'm' => [5, 7, 7, 5, 5],
        'n' => [6, 5, 5, 5, 5],
        'o' => [2, 5, 5, 5, 2],
        'p' => [6, 5, 6, 4, 4],
        'q' => [2, 5, 5, 6, 3],
        'r' => [6, 5, 6, 5, 5],
        's' => [3, 4, 2, 1, 6],
        't' => [7, 2, 2, 2, 2],
        'u' => [5, 5, 5, 5, 7],
        'v' => [5, 5, 5, 5, 2],
        'w' => [5, 5, 7, 7, 5],
        'x' => [5, 5, 2, 5, 5],
        'y' => [5, 5, 2, 2, 2],
        'z' => [7, 1, 2, 4, 7],
        '-' => [0, 0, 7, 0, 0],
        '.' => [0, 0, 0, 0, 2],
        '%' => [5, 1, 2, 4, 5],
        '/' => [1, 1, 2, 4, 4],
        ':' => [0, 2, 0, 2, 0],
        '(' => [2, 4, 4, 4, 2],
        ')' => [2, 1, 1, 1, 2],
        '_' => [0, 0, 0, 0, 7],
        '+' => [0, 2, 7, 2, 0],
        ' ' => [0; 5],
        _ => [7, 1, 3, 0, 2],
    };
    rows.iter().fold(0u16, |acc, r| (acc << 3) | u16::from(*r))
}

struct Canvas {
    img: image::RgbImage,
}

impl Canvas {
    fn put(&mut self, x: f64, y: f64, c: [u8; 3]) {
        let (x, y) = (x.round(), y.round());
        if x >= 0.0 && y >= 0.0 && (x as u32) < self.img.width() && (y as u32) < self.img.height() {
            self.img.put_pixel(x as u32, y as u32, image::Rgb(c));
        }
    }
    fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, c: [u8; 3]) {
        let (x0, y0) = (x.round() as i64, y.round() as i64);
        let (x1, y1) = ((x + w).round() as i64, (y + h).round() as i64);
        for yy in y0..y1.max(y0 + 1) {
            for xx in x0..x1.max(x0 + 1) {
                self.put(xx as f64, yy as f64, c);
            }
        }
    }
    fn hline(&mut self, x0: f64, x1: f64, y: f64, c: [u8; 3], dash: Option<(usize, usize)>) {
        let n = (x1 - x0).abs().ceil() as usize;
        for i in 0..=n {
            if dash.is_some_and(|(on, off)| i % (on + off) >= on) {
                continue;
            }
            self.put(x0 + i as f64, y, c);
        }
    }
    fn vline(&mut self, x: f64, y0: f64, y1: f64, c: [u8; 3]) {
        let n = (y1 - y0).abs().ceil() as usize;
        for i in 0..=n {
            self.put(x, y0.min(y1) + i as f64, c);
        }
    }
    /// Text at (x, y) = top-left; `up`: rotated 90° counter-clockwise (reads bottom to top,
    /// (x, y) = bottom-left).
    fn text(&mut self, x: f64, y: f64, t: &str, c: [u8; 3], scale: f64, up: bool) {
        for (k, ch) in t.chars().enumerate() {
            let g = glyph(ch);
            for gy in 0..5 {
                for gx in 0..3 {
                    if g >> (14 - (gy * 3 + gx)) & 1 == 0 {
                        continue;
                    }
                    let along = (k * 4 + gx) as f64 * scale;
                    let across = gy as f64 * scale;
                    let (px, py) = if up {
                        (x + across, y - along)
                    } else {
                        (x + along, y + across)
                    };
                    self.rect(px, if up { py - scale } else { py }, scale, scale, c);
                }
            }
        }
    }
}

/// The chart as an RGB image (the SVG's content in a 3×5 pixel font).
pub fn png_image(r: &QaReport) -> image::RgbImage {
    let l = Layout::of(r);
    let mut cv = Canvas {
        img: image::RgbImage::from_pixel(l.w as u32, H as u32, image::Rgb([255, 255, 255])),
    };
    let bw = BAR_PITCH * 0.6;
    let (x0, x1, y0, y1) = (ML, l.w - MR, MT, H - MB);
    let grey = [68, 68, 68];
    cv.text(
        ML,
        12.0,
        &format!(
            "qa: {} v{} - {}",
            r.bundle_id,
            r.bundle_version,
            if r.all_pass() {
                "all pass".to_string()
            } else {
                format!("{} of {} fail", r.failed, r.phones.len())
            }
        ),
        [0, 0, 0],
        2.0,
        false,
    );
    for k in 0..=5 {
        let v = l.y_max * k as f64 / 5.0;
        let y = l.y(v);
        cv.hline(x0, x1, y, [228, 228, 228], None);
        let label = fmt_ms(v);
        cv.text(
            x0 - 6.0 - label.len() as f64 * 8.0,
            y - 5.0,
            &label,
            grey,
            2.0,
            false,
        );
    }
    cv.text(14.0, (y0 + y1) / 2.0 + 60.0, "latency ms", grey, 2.0, true);
    for (i, p) in r.phones.iter().enumerate() {
        let x = Layout::bar_x(i);
        if let Some(e) = p.emulated_ms {
            let y = l.y(e);
            if !p.pass {
                cv.rect(x - 2.0, y - 2.0, bw + 4.0, y1 - y + 2.0, RED);
            }
            cv.rect(x, y, bw, (y1 - y).max(1.0), l.color(&p.decision.chosen));
        }
        let yp = l.y(p.predicted_ms);
        cv.rect(x - 3.0, yp - 1.0, bw + 6.0, 2.0, [0, 0, 0]);
        if !p.pass {
            let top = p.emulated_ms.map_or(y1, |e| l.y(e)).min(yp);
            cv.text(x - 1.0, top - 14.0, "fail", RED, 2.0, false);
        }
        let id: String = p.id.chars().take(25).collect();
        cv.text(
            x + bw / 2.0 - 5.0,
            y1 + 8.0 + id.len() as f64 * 8.0,
            &id,
            grey,
            2.0,
            true,
        );
    }
    cv.hline(x0, x1, y0, grey, None);
    cv.hline(x0, x1, y1, grey, None);
    cv.vline(x0, y0, y1, grey);
    cv.vline(x1, y0, y1, grey);
    cv.hline(x0, x1, l.y(r.latency_budget_ms), RED, Some((6, 4)));
    cv.hline(x0, x1, l.y(r.latency_budget_ms) + 1.0, RED, Some((6, 4)));
    // Legend.
    let lx = x1 + 14.0;
    let mut ly = y0;
    cv.text(lx, ly, "variant", [0, 0, 0], 2.0, false);
    for v in &l.variants {
        ly += 18.0;
        cv.rect(lx, ly, 12.0, 12.0, l.color(v));
        let v: String = v.chars().take(18).collect();
        cv.text(lx + 18.0, ly + 1.0, &v, [0, 0, 0], 2.0, false);
    }
    ly += 26.0;
    cv.hline(lx, lx + 14.0, ly + 5.0, RED, Some((4, 2)));
    cv.hline(lx, lx + 14.0, ly + 6.0, RED, Some((4, 2)));
    cv.text(lx + 18.0, ly + 1.0, "budget", [0, 0, 0], 2.0, false);
    ly += 18.0;
    cv.rect(lx, ly + 4.0, 14.0, 2.0, [0, 0, 0]);
    cv.text(lx + 18.0, ly + 1.0, "predicted", [0, 0, 0], 2.0, false);
    ly += 18.0;
    cv.rect(lx, ly, 12.0, 12.0, RED);
    cv.rect(lx + 2.0, ly + 2.0, 8.0, 8.0, [255, 255, 255]);
    cv.text(lx + 18.0, ly + 1.0, "fail", [0, 0, 0], 2.0, false);
    cv.img
}

/// Writes `qa.svg` and `qa.png` into `dir`.
///
/// # Errors
/// I/O or PNG encoding errors, naming the file.
pub fn write_charts(dir: &Path, r: &QaReport) -> Result<()> {
    write_atomic(&dir.join("qa.svg"), svg(r).as_bytes())?;
    let png = dir.join("qa.png");
    let mut bytes = std::io::Cursor::new(Vec::new());
    png_image(r)
        .write_to(&mut bytes, image::ImageFormat::Png)
        .map_err(|source| Error::Plot {
            path: png.clone(),
            source,
        })?;
    write_atomic(&png, bytes.get_ref())
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

    #[test]
    fn glyphs_are_distinct_for_digits() {
        let g: Vec<u16> = "0123456789".chars().map(glyph).collect();
        for i in 0..g.len() {
            for j in i + 1..g.len() {
                assert_ne!(g[i], g[j], "{i} {j}");
            }
        }
        assert_eq!(glyph('A'), glyph('a'));
    }
}
