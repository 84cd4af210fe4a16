//! Plain-slice kernels of batch norm with batch statistics fused with its activation (NCHW,
//! contiguous f32). Per-channel sums run in parallel over channels, element-wise passes over
//! `(n, c)` planes; sums of a plane use 8 f32 lanes, planes are added in f64.

use netspec::space::Act;
#[cfg(feature = "fused-ops")]
use rayon::prelude::*;

/// The shape of one call: `x: [n, c, hw]` (NCHW with `h·w` flattened).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Dims {
    /// Batch.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// `h·w`.
    pub hw: usize,
}

impl Dims {
    /// Elements a channel's statistics run over (`n·h·w`).
    pub fn count(&self) -> usize {
        self.n * self.hw
    }

    /// Elements of the tensor.
    pub fn len(&self) -> usize {
        self.n * self.c * self.hw
    }
}

/// Batch mean and `1/√(var + ε)` per channel (biased variance), what the backward reuses.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Stats {
    /// Mean per channel.
    pub mean: Vec<f32>,
    /// `1/√(var + ε)` per channel.
    pub rstd: Vec<f32>,
}

/// `Σ f(a[i], b[i])` with 8 independent f32 lanes (vectorisable), returned in f64.
#[inline(always)]
fn lanes_sum(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f64 {
    let mut acc = [0.0f32; 8];
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for j in 0..8 {
            acc[j] += f(x[j], y[j]);
        }
    }
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(&x, &y)| f(x, y))
        .sum();
    acc.iter().map(|&v| v as f64).sum::<f64>() + tail as f64
}

/// The planes of channel `ch` of `x`.
#[inline(always)]
fn planes(x: &[f32], d: Dims, ch: usize) -> impl Iterator<Item = &[f32]> {
    (0..d.n).map(move |i| {
        let start = (i * d.c + ch) * d.hw;
        &x[start..start + d.hw]
    })
}

/// An activation and its derivative, as a type so each kernel is compiled (and vectorised)
/// for one activation. Derivatives follow burn's conventions: relu's is 0 at 0, hard swish's is
/// taken from `z · clamp(z/6 + 1/2, 0, 1)` with the clamp's gradient 0 at its bounds.
trait ActFn: Copy + Send + Sync {
    fn y(z: f32) -> f32;
    fn dy(z: f32) -> f32;
}

#[derive(Clone, Copy)]
struct Identity;
#[derive(Clone, Copy)]
struct Relu;
#[derive(Clone, Copy)]
struct Hswish;

impl ActFn for Identity {
    #[inline(always)]
    fn y(z: f32) -> f32 {
        z
    }
    #[inline(always)]
    fn dy(_: f32) -> f32 {
        1.0
    }
}

impl ActFn for Relu {
    #[inline(always)]
    fn y(z: f32) -> f32 {
        z.max(0.0)
    }
    #[inline(always)]
    fn dy(z: f32) -> f32 {
        if z > 0.0 { 1.0 } else { 0.0 }
    }
}

impl ActFn for Hswish {
    #[inline(always)]
    fn y(z: f32) -> f32 {
        z * (z / 6.0 + 0.5).clamp(0.0, 1.0)
    }
    #[inline(always)]
    fn dy(z: f32) -> f32 {
        let s = z / 6.0 + 0.5;
        let inside = if s > 0.0 && s < 1.0 { s + z / 6.0 } else { 0.0 };
        if s >= 1.0 { 1.0 } else { inside }
    }
}

/// `Σ gz` and `Σ gz·(x − m)` over a plane in one pass (8 f32 lanes each), in f64,
/// `gz = g·act'(x·a + b)`.
#[inline(always)]
fn grad_sums<A: ActFn>(xs: &[f32], gs: &[f32], a: f32, b: f32, m: f32) -> (f64, f64) {
    let mut acc_g = [0.0f32; 8];
    let mut acc_gx = [0.0f32; 8];
    let mut cx = xs.chunks_exact(8);
    let mut cg = gs.chunks_exact(8);
    for (x, g) in (&mut cx).zip(&mut cg) {
        for j in 0..8 {
            let gz = g[j] * A::dy(x[j] * a + b);
            acc_g[j] += gz;
            acc_gx[j] += gz * (x[j] - m);
        }
    }
    let (mut tg, mut tgx) = (0.0f32, 0.0f32);
    for (&x, &g) in cx.remainder().iter().zip(cg.remainder()) {
        let gz = g * A::dy(x * a + b);
        tg += gz;
        tgx += gz * (x - m);
    }
    let sum = |acc: [f32; 8], t: f32| acc.iter().map(|&v| v as f64).sum::<f64>() + t as f64;
    (sum(acc_g, tg), sum(acc_gx, tgx))
}

/// Runs `f` on every channel index, in parallel when the `fused-ops` feature (rayon) is on.
fn per_channel<T: Send>(c: usize, f: impl Fn(usize) -> T + Sync + Send) -> Vec<T> {
    #[cfg(feature = "fused-ops")]
    {
        (0..c).into_par_iter().map(f).collect()
    }
    #[cfg(not(feature = "fused-ops"))]
    {
        (0..c).map(f).collect()
    }
}

/// Runs `f(plane index, output plane)` over every `hw`-long plane of `out`, in parallel when
/// the `fused-ops` feature is on.
fn per_plane(out: &mut [f32], hw: usize, f: impl Fn(usize, &mut [f32]) + Sync + Send) {
    #[cfg(feature = "fused-ops")]
    out.par_chunks_mut(hw.max(1))
        .with_min_len(8)
        .enumerate()
        .for_each(|(p, o)| f(p, o));
    #[cfg(not(feature = "fused-ops"))]
    out.chunks_mut(hw.max(1))
        .enumerate()
        .for_each(|(p, o)| f(p, o));
}

/// Batch statistics of `x` (two passes: mean, then the centred second moment).
pub(super) fn stats(x: &[f32], d: Dims, eps: f32) -> Stats {
    let count = d.count().max(1) as f64;
    let pairs = per_channel(d.c, |ch| {
        let sum: f64 = planes(x, d, ch).map(|p| lanes_sum(p, p, |a, _| a)).sum();
        let mean = (sum / count) as f32;
        let sq: f64 = planes(x, d, ch)
            .map(|p| {
                lanes_sum(p, p, |a, _| {
                    let v = a - mean;
                    v * v
                })
            })
            .sum();
        let var = (sq / count) as f32;
        (mean, 1.0 / (var + eps).sqrt())
    });
    let (mean, rstd) = pairs.into_iter().unzip();
    Stats { mean, rstd }
}

/// `act(x·scale + shift)` per channel, `scale = γ·rstd`, `shift = β − mean·scale`: the forward.
/// `gamma` and `beta` hold at least `d.c` values (the first `d.c` are used).
pub(super) fn forward(
    x: &[f32],
    d: Dims,
    gamma: &[f32],
    beta: &[f32],
    s: &Stats,
    act: Option<Act>,
) -> Vec<f32> {
    match act {
        None => forward_with::<Identity>(x, d, gamma, beta, s),
        Some(Act::Relu) => forward_with::<Relu>(x, d, gamma, beta, s),
        Some(Act::Hswish) => forward_with::<Hswish>(x, d, gamma, beta, s),
    }
}

fn forward_with<A: ActFn>(x: &[f32], d: Dims, gamma: &[f32], beta: &[f32], s: &Stats) -> Vec<f32> {
    let (scale, shift) = scale_shift(gamma, beta, s, d.c);
    let mut out = vec![0.0f32; d.len()];
    per_plane(&mut out, d.hw, |p, o| {
        let ch = p % d.c;
        let (a, b) = (scale[ch], shift[ch]);
        let xs = &x[p * d.hw..(p + 1) * d.hw];
        for (o, &v) in o.iter_mut().zip(xs) {
            *o = A::y(v * a + b);
        }
    });
    out
}

fn scale_shift(gamma: &[f32], beta: &[f32], s: &Stats, c: usize) -> (Vec<f32>, Vec<f32>) {
    let scale: Vec<f32> = (0..c).map(|ch| gamma[ch] * s.rstd[ch]).collect();
    let shift = (0..c).map(|ch| beta[ch] - s.mean[ch] * scale[ch]).collect();
    (scale, shift)
}

/// Gradients of the fused op: `(grad x, grad γ, grad β)`, the last two of length `d.c`.
#[allow(clippy::too_many_arguments)]
pub(super) fn backward(
    x: &[f32],
    gy: &[f32],
    d: Dims,
    gamma: &[f32],
    beta: &[f32],
    s: &Stats,
    act: Option<Act>,
    need_x: bool,
) -> (Option<Vec<f32>>, Vec<f32>, Vec<f32>) {
    let args = (x, gy, d, gamma, beta, s, need_x);
    match act {
        None => backward_with::<Identity>(args),
        Some(Act::Relu) => backward_with::<Relu>(args),
        Some(Act::Hswish) => backward_with::<Hswish>(args),
    }
}

type BackwardArgs<'a> = (
    &'a [f32],
    &'a [f32],
    Dims,
    &'a [f32],
    &'a [f32],
    &'a Stats,
    bool,
);

fn backward_with<A: ActFn>(
    (x, gy, d, gamma, beta, s, need_x): BackwardArgs<'_>,
) -> (Option<Vec<f32>>, Vec<f32>, Vec<f32>) {
    let (scale, shift) = scale_shift(gamma, beta, s, d.c);
    // Σ gz and Σ gz·x̂ per channel, gz = gy·act'(z), z = x·scale + shift, x̂ = (x − mean)·rstd.
    let sums = per_channel(d.c, |ch| {
        let (a, b, m, r) = (scale[ch], shift[ch], s.mean[ch], s.rstd[ch]);
        let (mut sg, mut sgx) = (0.0f64, 0.0f64);
        for (xp, gp) in planes(x, d, ch).zip(planes(gy, d, ch)) {
            let (g, gx) = grad_sums::<A>(xp, gp, a, b, m);
            sg += g;
            sgx += gx;
        }
        (sg, sgx * r as f64)
    });
    let gbeta: Vec<f32> = sums.iter().map(|&(g, _)| g as f32).collect();
    let ggamma: Vec<f32> = sums.iter().map(|&(_, g)| g as f32).collect();
    let gx = need_x.then(|| {
        let count = d.count().max(1) as f64;
        // gx = γ·rstd·(gz − Σgz/M − x̂·Σ(gz·x̂)/M)
        let mean_g: Vec<f32> = sums.iter().map(|&(g, _)| (g / count) as f32).collect();
        let mean_gx: Vec<f32> = sums.iter().map(|&(_, g)| (g / count) as f32).collect();
        let mut gx = vec![0.0f32; d.len()];
        per_plane(&mut gx, d.hw, |p, o| {
            let ch = p % d.c;
            let (a, b, m, r) = (scale[ch], shift[ch], s.mean[ch], s.rstd[ch]);
            let (mg, mgx) = (mean_g[ch], mean_gx[ch]);
            let xs = &x[p * d.hw..(p + 1) * d.hw];
            let gs = &gy[p * d.hw..(p + 1) * d.hw];
            for ((o, &v), &g) in o.iter_mut().zip(xs).zip(gs) {
                let gz = g * A::dy(v * a + b);
                let xh = (v - m) * r;
                *o = a * (gz - mg - xh * mgx);
            }
        });
        gx
    });
    (gx, ggamma, gbeta)
}
