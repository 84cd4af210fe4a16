//! Image preprocessing shared by training and the runtime: bilinear resize and normalisation.

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

/// Normalises u8 pixels `[c, h, w]` into `out`: `(x/255 − mean[c]) / std[c]`.
pub fn normalize_u8(src: &[u8], c: usize, mean: &[f32], std: &[f32], out: &mut [f32]) {
    let plane = src.len() / c.max(1);
    for ch in 0..c {
        let (m, s) = (mean[ch.min(mean.len() - 1)], std[ch.min(std.len() - 1)]);
        let inv = 1.0 / (255.0 * s);
        let off = m / s;
        for (o, &x) in out[ch * plane..(ch + 1) * plane]
            .iter_mut()
            .zip(&src[ch * plane..(ch + 1) * plane])
        {
            *o = x as f32 * inv - off;
        }
    }
}

#[cfg(test)]
mod tests {
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
    fn normalize() {
        let mut out = vec![0.0; 2];
        normalize_u8(&[0, 255], 1, &[0.5], &[0.5], &mut out);
        assert!((out[0] + 1.0).abs() < 1e-6 && (out[1] - 1.0).abs() < 1e-6);
    }
}
