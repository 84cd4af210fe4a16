//! Image preprocessing shared by training and the runtime: bilinear resize, normalisation, and
//! [`prepare_image`], the one function that turns an app's u8 image into a network input.

use crate::error::{Error, Result};

/// Bilinear resize of `n` images `[c, h, w]` (row-major, contiguous) to `[c, r, r]`, with
/// PyTorch's `align_corners = false` convention. `out` is cleared and refilled (no allocation
/// once it has the capacity).
pub fn resize_bilinear(
    src: &[f32],
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    r: usize,
    out: &mut Vec<f32>,
) {
    out.clear();
    if h == 0 || w == 0 || src.len() < n * c * h * w {
        // Nothing to sample from: callers validate sizes first; never index out of bounds.
        out.resize(n * c * r * r, 0.0);
        return;
    }
    if h == r && w == r {
        out.extend_from_slice(&src[..n * c * h * w]);
        return;
    }
    out.resize(n * c * r * r, 0.0);
    let sy = h as f32 / r as f32;
    let sx = w as f32 / r as f32;
    // Pre-compute the x taps once.
    let taps = |size: usize, scale: f32, i: usize| {
        let f = ((i as f32 + 0.5) * scale - 0.5).max(0.0);
        let i0 = (f.floor() as usize).min(size - 1);
        let i1 = (i0 + 1).min(size - 1);
        (i0, i1, f - i0 as f32)
    };
    for img in 0..n * c {
        let s = &src[img * h * w..(img + 1) * h * w];
        let o = &mut out[img * r * r..(img + 1) * r * r];
        for oy in 0..r {
            let (y0, y1, fy) = taps(h, sy, oy);
            for ox in 0..r {
                let (x0, x1, fx) = taps(w, sx, ox);
                let top = s[y0 * w + x0] * (1.0 - fx) + s[y0 * w + x1] * fx;
                let bot = s[y1 * w + x0] * (1.0 - fx) + s[y1 * w + x1] * fx;
                o[oy * r + ox] = top * (1.0 - fy) + bot * fy;
            }
        }
    }
}

/// `(mean, std)` of channel `ch`: the last entry serves channels past the end of the lists, an
/// empty list means 0 and 1.
fn channel_stats(mean: &[f32], std: &[f32], ch: usize) -> (f32, f32) {
    let pick = |v: &[f32], default: f32| v.get(ch).or(v.last()).copied().unwrap_or(default);
    (pick(mean, 0.0), pick(std, 1.0))
}

/// Normalises u8 pixels `[c, h, w]` into `out`: `(x/255 − mean[c]) / std[c]`.
pub fn normalize_u8(src: &[u8], c: usize, mean: &[f32], std: &[f32], out: &mut [f32]) {
    let plane = src.len() / c.max(1);
    normalize_planes(src, c, plane, Layout::Chw, mean, std, out);
}

/// How the u8 source of [`normalize_planes`] is laid out.
#[derive(Clone, Copy)]
enum Layout {
    /// Channel-major: channel `ch`'s pixel `p` at `ch · plane + p`.
    Chw,
    /// Pixel-major: at `p · c + ch`.
    Hwc,
}

/// The one normalisation: pixel `p` of channel `ch` of `src` (laid out as `layout` says) becomes
/// `out[ch · plane + p] = (x/255 − mean[ch]) / std[ch]`, for `c` channels of `plane` pixels.
fn normalize_planes(
    src: &[u8],
    c: usize,
    plane: usize,
    layout: Layout,
    mean: &[f32],
    std: &[f32],
    out: &mut [f32],
) {
    for ch in 0..c {
        let (m, s) = channel_stats(mean, std, ch);
        let inv = 1.0 / (255.0 * s);
        let off = m / s;
        let dst = &mut out[ch * plane..(ch + 1) * plane];
        match layout {
            Layout::Chw => {
                for (o, &x) in dst.iter_mut().zip(&src[ch * plane..(ch + 1) * plane]) {
                    *o = f32::from(x) * inv - off;
                }
            }
            Layout::Hwc => {
                for (p, o) in dst.iter_mut().enumerate() {
                    *o = f32::from(src[p * c + ch]) * inv - off;
                }
            }
        }
    }
}

/// One image stored channel-major (`CHW`, as datasets hold it) rearranged to pixel-major
/// (`HWC`, as apps hold bitmaps and as [`ImageRef`] takes them).
///
/// # Panics
/// Never: a short `chw` yields zeros for the missing values.
pub fn chw_to_hwc(chw: &[u8], channels: usize, height: usize, width: usize) -> Vec<u8> {
    let plane = height * width;
    let mut out = vec![0u8; channels * plane];
    for ch in 0..channels {
        for p in 0..plane {
            if let Some(v) = chw.get(ch * plane + p) {
                out[p * channels + ch] = *v;
            }
        }
    }
    out
}

/// An image in memory: `height × width × channels` u8, interleaved (HWC), as apps hold bitmaps.
#[derive(Debug, Clone, Copy)]
pub struct ImageRef<'a> {
    /// Pixels, `height · width · channels` bytes.
    pub pixels: &'a [u8],
    /// Width.
    pub width: usize,
    /// Height.
    pub height: usize,
    /// Channels (1 or 3).
    pub channels: usize,
}

/// Largest side of an image [`prepare_image`] takes (a larger one is a caller's mistake).
pub const MAX_IMAGE_SIDE: usize = 16_384;

/// How a network wants its input: channels, square resolution, per-channel mean and std.
#[derive(Debug, Clone, Copy)]
pub struct InputSpec<'a> {
    /// Channels the network reads.
    pub channels: usize,
    /// Side of the square input.
    pub resolution: usize,
    /// Per-channel mean (of pixels scaled to 0..1).
    pub mean: &'a [f32],
    /// Per-channel std.
    pub std: &'a [f32],
}

/// The one preprocessing function: a u8 HWC image of any size → the network's input, NCHW f32
/// `[channels, r, r]`, normalised `(x/255 − mean) / std` and resized bilinearly
/// (`align_corners = false`). Appends to `out`; `scratch` is reused between calls.
///
/// # Errors
/// [`Error::Data`] (path `image`) for a channel count the network does not take, a zero or
/// absurd side, or a buffer whose length is not `width · height · channels`.
pub fn prepare_image(
    image: ImageRef<'_>,
    spec: InputSpec<'_>,
    scratch: &mut Vec<f32>,
    resized: &mut Vec<f32>,
    out: &mut Vec<f32>,
) -> Result<()> {
    let c = spec.channels;
    let (w, h) = (image.width, image.height);
    let expected = w.checked_mul(h).and_then(|p| p.checked_mul(image.channels));
    if image.channels != c
        || w == 0
        || h == 0
        || w > MAX_IMAGE_SIDE
        || h > MAX_IMAGE_SIDE
        || expected != Some(image.pixels.len())
    {
        return Err(Error::Data {
            path: "image".into(),
            reason: format!(
                "{h}×{w}×{} with {} bytes; this model takes {c}-channel HWC u8 images of 1..={MAX_IMAGE_SIDE} pixels a side, height·width·channels bytes",
                image.channels,
                image.pixels.len()
            ),
        });
    }
    let plane = w * h;
    scratch.clear();
    scratch.resize(c * plane, 0.0);
    normalize_planes(
        image.pixels,
        c,
        plane,
        Layout::Hwc,
        spec.mean,
        spec.std,
        scratch,
    );
    resize_bilinear(scratch, 1, c, h, w, spec.resolution, resized);
    out.extend_from_slice(resized);
    Ok(())
}

#[cfg(test)]
mod tests {

    #[test]
    fn chw_to_hwc_interleaves_channels() {
        // 2 channels, 1×3: R = 1 2 3, G = 4 5 6 → 1 4 2 5 3 6
        assert_eq!(
            chw_to_hwc(&[1, 2, 3, 4, 5, 6], 2, 1, 3),
            vec![1, 4, 2, 5, 3, 6]
        );
        assert_eq!(chw_to_hwc(&[7, 8], 1, 1, 2), vec![7, 8]);
        assert_eq!(chw_to_hwc(&[1], 2, 1, 1), vec![1, 0]);
    }

    use super::*;

    #[test]
    fn resize_identity_and_constant() {
        let src: Vec<f32> = (0..2 * 4 * 4).map(|i| i as f32).collect();
        let mut out = Vec::new();
        resize_bilinear(&src, 1, 2, 4, 4, 4, &mut out);
        assert_eq!(out, src);
        let c = vec![3.5f32; 28 * 28];
        resize_bilinear(&c, 1, 1, 28, 28, 20, &mut out);
        assert_eq!(out.len(), 400);
        assert!(out.iter().all(|&v| (v - 3.5).abs() < 1e-6));
    }

    #[test]
    fn downscale_by_two_averages_pairs() {
        // align_corners=false, exact 2x: each output is the mean of a 2x2 block
        let src: Vec<f32> = vec![
            0., 2., 4., 6., 0., 2., 4., 6., 8., 10., 12., 14., 8., 10., 12., 14.,
        ];
        let mut out = Vec::new();
        resize_bilinear(&src, 1, 1, 4, 4, 2, &mut out);
        assert_eq!(out, vec![1., 5., 9., 13.]);
    }

    #[test]
    fn empty_input_does_not_panic() {
        let mut out = Vec::new();
        resize_bilinear(&[], 1, 1, 0, 0, 4, &mut out);
        assert_eq!(out, vec![0.0; 16]);
    }

    #[test]
    fn prepare_image_normalises_interleaved_channels_and_rejects_bad_buffers() {
        // 2×1 RGB image: pixel 0 = (255, 0, 51), pixel 1 = (0, 255, 102)
        let px = [255u8, 0, 51, 0, 255, 102];
        let img = ImageRef {
            pixels: &px,
            width: 2,
            height: 1,
            channels: 3,
        };
        let spec = InputSpec {
            channels: 3,
            resolution: 2,
            mean: &[0.5, 0.0, 0.2],
            std: &[0.5, 1.0, 0.2],
        };
        let (mut a, mut b, mut out) = (Vec::new(), Vec::new(), Vec::new());
        // height 1 → 2 rows: each output row repeats the input row
        prepare_image(img, spec, &mut a, &mut b, &mut out).unwrap();
        assert_eq!(out.len(), 3 * 4);
        let close = |x: f32, y: f32| (x - y).abs() < 1e-5;
        assert!(close(out[0], 1.0) && close(out[1], -1.0) && close(out[2], 1.0));
        assert!(close(out[4], 0.0) && close(out[5], 1.0));
        assert!(close(out[8], 0.0) && close(out[9], 1.0));
        for (pixels, w, h, c) in [
            (&px[..5], 2, 1, 3),
            (&px[..], 3, 1, 3),
            (&px[..0], 0, 0, 3),
            (&px[..], 6, 1, 1),
        ] {
            let img = ImageRef {
                pixels,
                width: w,
                height: h,
                channels: c,
            };
            let e = prepare_image(img, spec, &mut a, &mut b, &mut out)
                .unwrap_err()
                .to_string();
            assert!(e.contains("3-channel"), "{e}");
        }
    }

    #[test]
    fn normalize() {
        let mut out = vec![0.0; 2];
        normalize_u8(&[0, 255], 1, &[0.5], &[0.5], &mut out);
        assert!((out[0] + 1.0).abs() < 1e-6 && (out[1] - 1.0).abs() < 1e-6);
    }
}
