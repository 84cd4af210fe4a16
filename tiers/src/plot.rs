//! Charts with real text: each chart is one `plotters` drawing, generic over the backend, drawn
//! into an RGB buffer ([`render`], for the PNG) or into SVG text ([`render_svg`]). Text is laid
//! out with DejaVu Sans embedded in the binary (`assets/DejaVuSans.ttf`, Bitstream Vera license
//! beside it), so no system font is looked up and nothing is loaded at run time; the SVG names
//! the family ([`FONT`]) in its `<text>` elements.

use std::sync::OnceLock;

use plotters::prelude::*;

use crate::error::{Error, Result};

/// The font family name charts use (registered on first use).
pub(crate) const FONT: &str = "sans-serif";

static DEJAVU_SANS: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// The drawing area charts draw on: a bitmap ([`render`]) or SVG ([`render_svg`]).
pub(crate) type Area<DB> = DrawingArea<DB, plotters::coord::Shift>;

/// What a drawing closure returns: plotters' errors, boxed.
pub(crate) type Drawn = std::result::Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Registers the embedded font once; whether it worked.
fn font_ready() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, DEJAVU_SANS).is_ok()
    })
}

/// [`Error::Draw`] naming `what`, unless the embedded font is registered.
fn need_font(what: &'static str) -> Result<()> {
    if font_ready() {
        Ok(())
    } else {
        Err(Error::Draw {
            what,
            reason: "the embedded font did not load".into(),
        })
    }
}

/// A `width × height` image drawn by `draw` (on white, unless `draw` fills it).
///
/// # Errors
/// [`Error::Draw`] naming `what` when the font does not load or plotters fails.
pub(crate) fn render(
    width: u32,
    height: u32,
    what: &'static str,
    draw: impl FnOnce(&Area<BitMapBackend<'_>>) -> Drawn,
) -> Result<image::RgbImage> {
    need_font(what)?;
    let mut buf = vec![255u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
        draw(&root)
            .and_then(|()| root.present().map_err(Into::into))
            .map_err(|e| Error::Draw {
                what,
                reason: e.to_string(),
            })?;
    }
    image::RgbImage::from_raw(width, height, buf).ok_or_else(|| Error::Draw {
        what,
        reason: "the pixel buffer has the wrong size".into(),
    })
}

/// The same drawing as [`render`]'s, as SVG text (`width × height` px).
///
/// # Errors
/// [`Error::Draw`] naming `what` when the font does not load or plotters fails.
pub(crate) fn render_svg(
    width: u32,
    height: u32,
    what: &'static str,
    draw: impl FnOnce(&Area<SVGBackend<'_>>) -> Drawn,
) -> Result<String> {
    need_font(what)?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        draw(&root)
            .and_then(|()| root.present().map_err(Into::into))
            .map_err(|e| Error::Draw {
                what,
                reason: e.to_string(),
            })?;
    }
    Ok(svg)
}

/// An RGB triple as a plotters colour.
pub(crate) fn rgb(c: [u8; 3]) -> RGBColor {
    RGBColor(c[0], c[1], c[2])
}

/// A PNG of `img`.
///
/// # Errors
/// [`Error::Plot`] naming `path` when encoding fails.
pub(crate) fn png_bytes(img: &image::RgbImage, path: &std::path::Path) -> Result<Vec<u8>> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    img.write_to(&mut bytes, image::ImageFormat::Png)
        .map_err(|source| Error::Plot {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(bytes.into_inner())
}

/// The text of every `<text>` element of `svg`, trimmed, in document order (for tests).
#[cfg(test)]
pub(crate) fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = &t[t.find('>')? + 1..];
            Some(body[..body.find("</text>")?].trim().to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_drawn_with_the_embedded_font() {
        let img = render(120, 40, "a test", |root| {
            root.fill(&WHITE)?;
            root.draw(&Text::new("Ag 0.5 ms", (5, 10), (FONT, 18).into_font()))?;
            Ok(())
        })
        .unwrap();
        // anti-aliased glyphs: dark pixels and grey edge pixels, only where the text is
        let dark = img.pixels().filter(|p| p.0[0] < 80).count();
        let grey = img.pixels().filter(|p| (80..200).contains(&p.0[0])).count();
        assert!(dark > 50 && grey > 20, "dark {dark} grey {grey}");
        assert!(img.get_pixel(110, 38).0 == [255, 255, 255]);
    }

    #[test]
    fn svg_has_the_text_as_text() {
        let svg = render_svg(120, 40, "a test", |root| {
            root.fill(&WHITE)?;
            root.draw(&Text::new("A&B <1 ms>", (5, 10), (FONT, 18).into_font()))?;
            Ok(())
        })
        .unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{svg}"
        );
        assert_eq!(svg_texts(&svg), ["A&amp;B &lt;1 ms&gt;"], "{svg}");
        assert!(svg.contains(r#"font-family="sans-serif""#), "{svg}");
    }
}
