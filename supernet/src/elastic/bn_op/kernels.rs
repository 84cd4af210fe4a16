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

/// The activation and its derivative at `z` (burn's conventions: relu's gradient is 0 at 0,
/// hard swish's is taken from `z · clamp(z/6 + 1/2, 0, 1)` with the clamp's gradient 0 at its
/// bounds).
#[inline(always)]
fn act_and_grad(z: f32, act: Option<Act>) -> (f32, f32) {
    match act {
        None => (z, 1.0),
        Some(Act::Relu) => {
            if z > 0.0 {
                (z, 1.0)
            } else {
                (0.0, 0.0)
            }
        }
        Some(Act::Hswish) => {
            let s = z / 6.0 + 0.5;
            if s <= 0.0 {
                (0.0, 0.0)
            } else if s >= 1.0 {
                (z, 1.0)
            } else {
                (z * s, s + z / 6.0)
            }
        }
    }
}

#[inline(always)]
fn activate(z: f32, act: Option<Act>) -> f32 {
    match act {
        None => z,
        Some(Act::Relu) => z.max(0.0),
        Some(Act::Hswish) => z * (z / 6.0 + 0.5).clamp(0.0, 1.0),
    }
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
    let (scale, shift) = scale_shift(gamma, beta, s, d.c);
    let mut out = vec![0.0f32; d.len()];
    per_plane(&mut out, d.hw, |p, o| {
        let ch = p % d.c;
        let (a, b) = (scale[ch], shift[ch]);
        let xs = &x[p * d.hw..(p + 1) * d.hw];
        for (o, &v) in o.iter_mut().zip(xs) {
            *o = activate(v * a + b, act);
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
    let (scale, shift) = scale_shift(gamma, beta, s, d.c);
    // Σ gz and Σ gz·x̂ per channel, gz = gy·act'(z), z = x·scale + shift, x̂ = (x − mean)·rstd.
    let sums = per_channel(d.c, |ch| {
        let (a, b, m, r) = (scale[ch], shift[ch], s.mean[ch], s.rstd[ch]);
        let mut sg = 0.0f64;
        let mut sgx = 0.0f64;
        for (xp, gp) in planes(x, d, ch).zip(planes(gy, d, ch)) {
            sg += lanes_sum(xp, gp, |v, g| g * act_and_grad(v * a + b, act).1);
            sgx += lanes_sum(xp, gp, |v, g| {
                g * act_and_grad(v * a + b, act).1 * ((v - m) * r)
            });
        }
        (sg, sgx)
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
                let gz = g * act_and_grad(v * a + b, act).1;
                let xh = (v - m) * r;
                *o = a * (gz - mg - xh * mgx);
            }
        });
        gx
    });
    (gx, ggamma, gbeta)
}
