//! Plain-slice kernels (NCHW, contiguous f32), parallel over `(n, c)` planes.
//!
//! Each `(n, c)` plane is handled as stride-1 work on flat buffers: the zero-padded input
//! plane is split into `s²` polyphase planes `P[a][b][r][q] = xp[s·r + a][s·q + b]` of
//! `hq × wq`, so a stride-`s` stencil becomes `k²` long contiguous `axpy`/`dot` calls of
//! length `span = (oh - 1)·wq + ow` (output rows laid out `wq` apart; the few columns
//! `ow..wq` of each row are scratch), which LLVM vectorises, instead of `k²·oh` short ones.

use super::geom::Geom;
#[cfg(feature = "fast-dw")]
use rayon::prelude::*;

/// `dst[i] += a * src[i]`
#[inline(always)]
fn axpy(dst: &mut [f32], src: &[f32], a: f32) {
    for (d, &v) in dst.iter_mut().zip(src) {
        *d += a * v;
    }
}

/// `Σ a[i] * b[i]` with 8 independent lanes (vectorisable).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; 8];
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for j in 0..8 {
            acc[j] += x[j] * y[j];
        }
    }
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    acc.iter().sum::<f32>() + tail
}

/// For input row `r` of a plane: `(phase, row in the phase plane)`.
#[inline(always)]
fn split_row(g: &Geom, r: usize) -> (usize, usize) {
    if g.s == 1 {
        (0, r + g.p)
    } else {
        ((r + g.p) & 1, (r + g.p) >> 1)
    }
}

/// Writes one `h×w` plane, zero-padded by `p`, into `s²` phase planes (`dst` must be
/// zero outside the positions written; they are the same for every plane).
#[inline(always)]
fn to_phases(dst: &mut [f32], src: &[f32], g: &Geom) {
    let plane = g.hq * g.wq;
    for (r, row) in src.chunks_exact(g.w).enumerate() {
        let (a, rq) = split_row(g, r);
        for b in 0..g.s {
            let (c0, q0, count) = g.cols[b];
            let start = (a * g.s + b) * plane + rq * g.wq + q0;
            let d = &mut dst[start..start + count];
            if g.s == 1 {
                d.copy_from_slice(&row[c0..c0 + count]);
            } else {
                for (d, &v) in d.iter_mut().zip(row[c0..].iter().step_by(g.s)) {
                    *d = v;
                }
            }
        }
    }
}

/// Inverse of [`to_phases`] on the interior: reads the `h×w` plane back.
#[inline(always)]
fn from_phases(dst: &mut [f32], src: &[f32], g: &Geom) {
    let plane = g.hq * g.wq;
    for (r, row) in dst.chunks_exact_mut(g.w).enumerate() {
        let (a, rq) = split_row(g, r);
        for b in 0..g.s {
            let (c0, q0, count) = g.cols[b];
            let start = (a * g.s + b) * plane + rq * g.wq + q0;
            let sr = &src[start..start + count];
            if g.s == 1 {
                row[c0..c0 + count].copy_from_slice(sr);
            } else {
                for (d, &v) in row[c0..].iter_mut().step_by(g.s).zip(sr) {
                    *d = v;
                }
            }
        }
    }
}

/// Buffer sizes: phase planes, and the `oh` rows `wq` apart.
fn phase_len(g: &Geom) -> usize {
    g.s * g.s * g.hq * g.wq
}

fn wide_len(g: &Geom) -> usize {
    g.oh * g.wq
}

/// One output plane `o` from input plane `x` and taps `wk` (`xp`, `wide`: scratch).
#[inline(always)]
fn forward_plane(g: &Geom, x: &[f32], wk: &[f32], o: &mut [f32], xp: &mut [f32], wide: &mut [f32]) {
    let span = g.span();
    to_phases(xp, x, g);
    wide.fill(0.0);
    for kh in 0..g.k {
        for kw in 0..g.k {
            let off = g.taps[kh * g.k + kw];
            axpy(&mut wide[..span], &xp[off..off + span], wk[kh * g.k + kw]);
        }
    }
    for (orow, wrow) in o.chunks_exact_mut(g.ow).zip(wide.chunks(g.wq)) {
        orow.copy_from_slice(&wrow[..g.ow]);
    }
}

/// Scratch of one backward task: phases of x, phases of grad x, upstream grad `wq` apart.
struct BackwardScratch {
    xp: Vec<f32>,
    gxp: Vec<f32>,
    gy_wide: Vec<f32>,
}

/// One plane of the backward pass: `gxo` (grad x plane) and/or `gwo` (this plane's
/// contribution to grad w) from upstream `gy`, input `x` and taps `wk`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn backward_plane(
    g: &Geom,
    x: &[f32],
    wk: &[f32],
    gy: &[f32],
    gxo: Option<&mut [f32]>,
    gwo: Option<&mut [f32]>,
    sc: &mut BackwardScratch,
) {
    let span = g.span();
    // Upstream gradient rows `wq` apart; the scratch columns stay zero.
    for (dst, src) in sc.gy_wide.chunks_mut(g.wq).zip(gy.chunks_exact(g.ow)) {
        dst[..g.ow].copy_from_slice(src);
    }
    let gy_span = &sc.gy_wide[..span];
    if let Some(gxo) = gxo {
        sc.gxp.fill(0.0);
        for kh in 0..g.k {
            for kw in 0..g.k {
                let off = g.taps[kh * g.k + kw];
                axpy(&mut sc.gxp[off..off + span], gy_span, wk[kh * g.k + kw]);
            }
        }
        from_phases(gxo, &sc.gxp, g);
    }
    if let Some(gwo) = gwo {
        to_phases(&mut sc.xp, x, g);
        for kh in 0..g.k {
            for kw in 0..g.k {
                let off = g.taps[kh * g.k + kw];
                gwo[kh * g.k + kw] = dot(gy_span, &sc.xp[off..off + span]);
            }
        }
    }
}

/// [`forward_plane`] as a `pulp` SIMD operation: generic over the instruction set, so
/// each level's copy is compiled (and the helpers inlined) with its target features.
#[cfg(feature = "fast-dw")]
struct ForwardPlane<'a> {
    g: &'a Geom,
    x: &'a [f32],
    wk: &'a [f32],
    o: &'a mut [f32],
    xp: &'a mut [f32],
    wide: &'a mut [f32],
}

#[cfg(feature = "fast-dw")]
impl pulp::WithSimd for ForwardPlane<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        forward_plane(self.g, self.x, self.wk, self.o, self.xp, self.wide);
    }
}

/// [`backward_plane`] as a `pulp` SIMD operation (see [`ForwardPlane`]).
#[cfg(feature = "fast-dw")]
struct BackwardPlane<'a> {
    g: &'a Geom,
    x: &'a [f32],
    wk: &'a [f32],
    gy: &'a [f32],
    gxo: Option<&'a mut [f32]>,
    gwo: Option<&'a mut [f32]>,
    sc: &'a mut BackwardScratch,
}

#[cfg(feature = "fast-dw")]
impl pulp::WithSimd for BackwardPlane<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        backward_plane(
            self.g, self.x, self.wk, self.gy, self.gxo, self.gwo, self.sc,
        );
    }
}

/// `x: [n, c, h, w]`, `w: [c, k, k]` → `[n, c, oh, ow]`.
#[cfg(feature = "fast-dw")]
pub(super) fn forward(g: &Geom, x: &[f32], w: &[f32]) -> Vec<f32> {
    let (hw, ohw, kk) = (g.h * g.w, g.oh * g.ow, g.k * g.k);
    // Widest SIMD level of this CPU (AVX2 on x86-64), detected once; the per-plane
    // closure is compiled for it (the helpers are `inline(always)`).
    let arch = pulp::Arch::new();
    let mut out = vec![0.0f32; g.planes() * ohw];
    out.par_chunks_mut(ohw).enumerate().for_each_init(
        || (vec![0.0f32; phase_len(g)], vec![0.0f32; wide_len(g)]),
        |(xp, wide), (i, o)| {
            let c = i % g.c;
            let (xi, wk) = (&x[i * hw..(i + 1) * hw], &w[c * kk..(c + 1) * kk]);
            arch.dispatch(ForwardPlane {
                g,
                x: xi,
                wk,
                o,
                xp,
                wide,
            });
        },
    );
    out
}

/// Gradients of [`forward`]: `(grad_x [n, c, h, w], grad_w [c, k, k])`, each only when
/// asked for (an empty `Vec` otherwise).
#[cfg(feature = "fast-dw")]
pub(super) fn backward(
    g: &Geom,
    x: &[f32],
    w: &[f32],
    gy: &[f32],
    need_x: bool,
    need_w: bool,
) -> (Vec<f32>, Vec<f32>) {
    let (hw, ohw, kk) = (g.h * g.w, g.oh * g.ow, g.k * g.k);
    let arch = pulp::Arch::new();
    // Chunk size 1 for a gradient that is not needed keeps one code path.
    let gx_chunk = if need_x { hw } else { 1 };
    let gw_chunk = if need_w { kk } else { 1 };
    let mut gx = vec![0.0f32; g.planes() * gx_chunk];
    let mut gw_parts = vec![0.0f32; g.planes() * gw_chunk];
    gx.par_chunks_mut(gx_chunk)
        .zip(gw_parts.par_chunks_mut(gw_chunk))
        .enumerate()
        .for_each_init(
            || BackwardScratch {
                xp: vec![0.0f32; phase_len(g)],
                gxp: vec![0.0f32; phase_len(g)],
                gy_wide: vec![0.0f32; wide_len(g)],
            },
            |sc, (i, (gxo, gwo))| {
                let c = i % g.c;
                let xi = &x[i * hw..(i + 1) * hw];
                let wk = &w[c * kk..(c + 1) * kk];
                let gyi = &gy[i * ohw..(i + 1) * ohw];
                let gxo = need_x.then_some(gxo);
                let gwo = need_w.then_some(gwo);
                arch.dispatch(BackwardPlane {
                    g,
                    x: xi,
                    wk,
                    gy: gyi,
                    gxo,
                    gwo,
                    sc,
                });
            },
        );
    let gw = if need_w {
        // Fixed summation order over the batch: deterministic.
        let mut gw = vec![0.0f32; g.c * kk];
        for part in gw_parts.chunks_exact(g.c * kk) {
            axpy(&mut gw, part, 1.0);
        }
        gw
    } else {
        Vec::new()
    };
    (if need_x { gx } else { Vec::new() }, gw)
}

/// Sequential reference implementations for the tests (naive index arithmetic).
#[cfg(test)]
pub(super) fn naive_forward(g: &Geom, x: &[f32], w: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0f32; g.planes() * g.oh * g.ow];
    for i in 0..g.planes() {
        let c = i % g.c;
        for oh in 0..g.oh {
            for ow in 0..g.ow {
                let mut acc = 0.0;
                for kh in 0..g.k {
                    for kw in 0..g.k {
                        let ih = (oh * g.s + kh) as isize - g.p as isize;
                        let iw = (ow * g.s + kw) as isize - g.p as isize;
                        if ih < 0 || iw < 0 || ih >= g.h as isize || iw >= g.w as isize {
                            continue;
                        }
                        let xv = x[i * g.h * g.w + ih as usize * g.w + iw as usize];
                        acc += xv * w[c * g.k * g.k + kh * g.k + kw];
                    }
                }
                out[i * g.oh * g.ow + oh * g.ow + ow] = acc;
            }
        }
    }
    out
}
