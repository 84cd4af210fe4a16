//! The engine's kernels: plain safe Rust over NHWC buffers whose channel count is padded to a
//! multiple of [`LANES`], written so that every inner loop is a fixed-size `[f32; LANES]`
//! operation that LLVM turns into SIMD (SSE2 on a baseline x86_64 build, NEON on aarch64, AVX2
//! when [`super`] dispatches to its AVX2 copy) with no tail loop.
//!
//! Each kernel accumulates a tile of output pixels × channels in registers (1×1: `R` pixels ×
//! 16 channels; depthwise and stem: `P` pixels × 8 channels): the independent accumulator
//! chains hide the latency of the multiply-add, and each weight vector is loaded once per tile.
//! The tile sizes and the multiply-add flavour ([`Madd`]) are type parameters so the caller
//! picks them per instruction set.
//!
//! Padded channels carry zero weights and zero bias, so they compute `act(0) = 0` and stay zero
//! through every layer. Depthwise inputs are stored as blocked planes with a zero border of
//! `k/2` pixels (written directly by the expand conv, see [`Out::planes`]), so the depthwise
//! kernel has no border logic at all.

/// Channels are padded to a multiple of this; also the width of every register block.
pub(crate) const LANES: usize = 8;

use std::ops::Range;

type V = [f32; LANES];

/// `x` rounded up to a multiple of [`LANES`].
pub(crate) fn padded(x: usize) -> usize {
    x.div_ceil(LANES) * LANES
}

/// How `a · b + c` is computed.
pub(crate) trait Madd {
    /// `a · b + c`.
    fn madd(a: f32, b: f32, c: f32) -> f32;
}

/// A multiply then an add: what every target can vectorise (LLVM never fuses them itself).
/// aarch64 always fuses, so there it is used by the tests alone.
#[cfg_attr(target_arch = "aarch64", allow(dead_code))]
pub(crate) struct Split;

impl Madd for Split {
    #[inline(always)]
    fn madd(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

/// A fused multiply-add: one instruction where the target has FMA (aarch64 always; x86_64 in
/// the AVX2+FMA copy). Elsewhere it would be a slow library call, so it is used only there.
pub(crate) struct Fused;

impl Madd for Fused {
    #[inline(always)]
    fn madd(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

#[inline(always)]
fn madd_vv<M: Madd>(acc: &mut V, x: &V, w: &V) {
    for l in 0..LANES {
        acc[l] = M::madd(x[l], w[l], acc[l]);
    }
}

#[inline(always)]
fn madd_sv<M: Madd>(acc: &mut V, a: f32, w: &V) {
    for l in 0..LANES {
        acc[l] = M::madd(a, w[l], acc[l]);
    }
}

/// The activation after a layer (`None`: the identity): ReLU is `max(x, 0)`, h-swish
/// `x · clamp(x/6 + 1/2, 0, 1)`, exactly as burn's `hard_swish`.
pub(crate) type Act = Option<netspec::Act>;

/// burn computes `hard_sigmoid(x, 1/6, 1/2)` with `alpha` cast to f32, then multiplies by `x`.
const HS_ALPHA: f32 = (1.0f64 / 6.0) as f32;

#[inline(always)]
fn act_v(act: Act, v: &mut V) {
    match act {
        None => {}
        Some(netspec::Act::Relu) => {
            for x in v.iter_mut() {
                *x = if *x < 0.0 { 0.0 } else { *x };
            }
        }
        Some(netspec::Act::Hswish) => {
            for x in v.iter_mut() {
                *x *= (HS_ALPHA * *x + 0.5).clamp(0.0, 1.0);
            }
        }
    }
}

/// Where a layer's output goes. Output pixel `i` (row-major over rows of `width` pixels) sits at
/// pixel `q = (i / width) · stride + i % width + offset` of the output map, and its channel
/// block `b` at vector (`[f32; LANES]`) index `q · pixel + b · block` of the buffer.
///
/// Two layouts are used: NHWC (`pixel` = number of blocks, `block` = 1), which the 1×1 convs
/// read, and blocked planes with a zero border (`pixel` = 1, `block` = plane size), which the
/// depthwise conv reads: for one channel block the k×k window of a row is then contiguous.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Out {
    width: usize,
    stride: usize,
    offset: usize,
    pixel: usize,
    block: usize,
    /// The channel block the buffer starts at (a part of a split layer that owns blocks
    /// `block0..` gets the buffer from that block's plane on); 0 for a whole layer.
    block0: usize,
}

impl Out {
    /// Dense NHWC rows of `width` pixels with `blocks` channel blocks each.
    pub(crate) fn nhwc(width: usize, blocks: usize) -> Self {
        Out {
            width: width.max(1),
            stride: width.max(1),
            offset: 0,
            pixel: blocks,
            block: 1,
            block0: 0,
        }
    }

    /// A `side × side` map inside a zero border of `pad` pixels, one plane per channel block
    /// (`[blocks][side + 2p][side + 2p][LANES]`).
    pub(crate) fn planes(side: usize, pad: usize) -> Self {
        let stride = side + 2 * pad;
        Out {
            width: side.max(1),
            stride,
            offset: pad * stride + pad,
            pixel: 1,
            block: stride * stride,
            block0: 0,
        }
    }

    /// The same layout for a buffer that starts at channel block `block0` (blocked planes only:
    /// there one block's plane is contiguous).
    pub(crate) fn from_block(self, block0: usize) -> Self {
        Out { block0, ..self }
    }

    /// Vector index of block 0 of output pixel `i`.
    #[inline(always)]
    fn at(&self, i: usize) -> usize {
        ((i / self.width) * self.stride + i % self.width + self.offset) * self.pixel
    }
}

/// Zeroes the border of `blocks` planes of a `side × side` map with a border of `pad` pixels
/// ([`Out::planes`]); the interior is left alone.
pub(crate) fn zero_border(buf: &mut [f32], side: usize, pad: usize, blocks: usize) {
    if pad == 0 {
        return;
    }
    let sp = side + 2 * pad;
    let row = sp * LANES;
    for plane in buf.chunks_exact_mut(sp * row).take(blocks) {
        let (top, rest) = plane.split_at_mut(pad * row);
        top.fill(0.0);
        let (mid, bottom) = rest.split_at_mut(side * row);
        bottom.fill(0.0);
        for r in mid.chunks_exact_mut(row) {
            r[..pad * LANES].fill(0.0);
            r[(side + pad) * LANES..].fill(0.0);
        }
    }
}

/// A 1×1 convolution as a GEMM: `y[i, :] = act(x[i, :k] · W + b) (+ res[i, :])`.
#[derive(Debug, Clone)]
pub(crate) struct Pointwise {
    /// True input channels (the reduction length).
    pub(crate) k: usize,
    /// Row stride of the input (`padded(k)`).
    pub(crate) k_stride: usize,
    /// Padded output channels.
    pub(crate) n_pad: usize,
    /// Weights in column panels of two blocks (`[k][2·LANES]` each, `n_pad / 16` of them), then
    /// one panel of one block (`[k][LANES]`) when `n_pad / LANES` is odd.
    pub(crate) panels: Vec<f32>,
    /// `[n_pad]`, zero-padded.
    pub(crate) bias: Vec<f32>,
    /// Activation.
    pub(crate) act: Act,
}

impl Pointwise {
    /// From a burn weight `[n, k, 1, 1]` (row-major) and bias `[n]`.
    pub(crate) fn new(w: &[f32], bias: &[f32], n: usize, k: usize, act: Act) -> Self {
        let n_pad = padded(n);
        let mut panels = Vec::with_capacity(n_pad * k);
        let mut j0 = 0;
        while j0 < n_pad {
            let width = if n_pad - j0 >= 2 * LANES {
                2 * LANES
            } else {
                LANES
            };
            for kk in 0..k {
                for j in j0..j0 + width {
                    panels.push(if j < n { w[j * k + kk] } else { 0.0 });
                }
            }
            j0 += width;
        }
        let mut b = vec![0.0; n_pad];
        b[..n].copy_from_slice(&bias[..n]);
        Pointwise {
            k,
            k_stride: padded(k),
            n_pad,
            panels,
            bias: b,
            act,
        }
    }

    /// Runs over `m` rows of `x` (`[m, k_stride]`, dense) into `y` laid out as `out`, adding
    /// `res` (`[m, n_pad]`, dense) after the activation when given. Tiles are `R` rows × 16
    /// channels, and `R2` rows × 8 channels for the last 8 channels when `n_pad / 8` is odd
    /// (`R2 = 2R` keeps the same number of accumulators).
    #[inline(always)]
    pub(crate) fn run<M: Madd, const R: usize, const R2: usize>(
        &self,
        x: &[f32],
        m: usize,
        res: Option<&[f32]>,
        y: &mut [f32],
        out: Out,
    ) {
        self.run_blocks::<M, R, R2>(x, m, res, y, out, 0..self.n_pad / LANES);
    }

    /// [`Pointwise::run`] for output channel blocks `blocks` only (a part of a layer split
    /// over threads by output channels): `blocks.start` is even (a panel holds two blocks) and
    /// `y` starts at block `out.block0`.
    #[inline(always)]
    pub(crate) fn run_blocks<M: Madd, const R: usize, const R2: usize>(
        &self,
        x: &[f32],
        m: usize,
        res: Option<&[f32]>,
        y: &mut [f32],
        out: Out,
        blocks: Range<usize>,
    ) {
        let k = self.k;
        if k == 0 || blocks.is_empty() {
            return;
        }
        let pairs = self.n_pad / (2 * LANES);
        let panel = 2 * LANES * k;
        let wide_end = blocks.end.min(2 * pairs);
        debug_assert!(blocks.start % 2 == 0 && (wide_end % 2 == 0), "{blocks:?}");
        if blocks.start < wide_end {
            let wide = &self.panels[blocks.start / 2 * panel..wide_end / 2 * panel];
            self.pass::<M, R, 2>(x, m, res, y, out, wide, blocks.start);
        }
        if blocks.end > 2 * pairs {
            let narrow = &self.panels[pairs * panel..];
            self.pass::<M, R2, 1>(x, m, res, y, out, narrow, 2 * pairs);
        }
    }

    /// Every row through `panels` (of `C` blocks each, the first at block `b0`).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn pass<M: Madd, const R: usize, const C: usize>(
        &self,
        x: &[f32],
        m: usize,
        res: Option<&[f32]>,
        y: &mut [f32],
        out: Out,
        panels: &[f32],
        b0: usize,
    ) {
        let mut i = 0;
        while i + R <= m {
            self.rows::<M, R, C>(x, i, res, y, out, panels, b0);
            i += R;
        }
        if R > 4 && m - i >= 4 {
            self.rows::<M, 4, C>(x, i, res, y, out, panels, b0);
            i += 4;
        }
        if R > 2 && m - i >= 2 {
            self.rows::<M, 2, C>(x, i, res, y, out, panels, b0);
            i += 2;
        }
        while i < m {
            self.rows::<M, 1, C>(x, i, res, y, out, panels, b0);
            i += 1;
        }
    }

    /// Rows `i0..i0 + R` through `panels`.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn rows<M: Madd, const R: usize, const C: usize>(
        &self,
        x: &[f32],
        i0: usize,
        res: Option<&[f32]>,
        y: &mut [f32],
        out: Out,
        panels: &[f32],
        b0: usize,
    ) {
        let (k, xs) = (self.k, self.k_stride);
        let mut rows: [&[f32]; R] = [&[]; R];
        let mut dst = [0usize; R];
        for r in 0..R {
            rows[r] = &x[(i0 + r) * xs..(i0 + r) * xs + k];
            dst[r] = out.at(i0 + r);
        }
        let (y, _) = y.as_chunks_mut::<LANES>();
        let (bias, _) = self.bias.as_chunks::<LANES>();
        for (p, panel) in panels.chunks_exact(C * LANES * k).enumerate() {
            self.tile::<M, R, C>(&rows, i0, b0 + C * p, panel, bias, res, y, &dst, out);
        }
    }

    /// Rows `i0..i0 + R` × channel blocks `b0..b0 + C`.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn tile<M: Madd, const R: usize, const C: usize>(
        &self,
        rows: &[&[f32]; R],
        i0: usize,
        b0: usize,
        panel: &[f32],
        bias: &[V],
        res: Option<&[f32]>,
        y: &mut [V],
        dst: &[usize; R],
        out: Out,
    ) {
        let (panel, _) = panel.as_chunks::<LANES>();
        let (panel, _) = panel.as_chunks::<C>();
        let mut acc = [[[0.0f32; LANES]; C]; R];
        for acc in acc.iter_mut() {
            acc.copy_from_slice(&bias[b0..b0 + C]);
        }
        // a bound the optimiser can see is within every slice, so the loop has no checks
        let n = rows.iter().fold(panel.len(), |n, r| n.min(r.len()));
        for kk in 0..n {
            let w = &panel[kk];
            for r in 0..R {
                let a = rows[r][kk];
                for c in 0..C {
                    madd_sv::<M>(&mut acc[r][c], a, &w[c]);
                }
            }
        }
        self.finish(acc, i0, b0, res, y, dst, out);
    }

    /// Activation, residual and store of a finished tile (taken by value, so the accumulators
    /// stay in registers during the loop above however this part compiles).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn finish<const R: usize, const C: usize>(
        &self,
        mut acc: [[V; C]; R],
        i0: usize,
        b0: usize,
        res: Option<&[f32]>,
        y: &mut [V],
        dst: &[usize; R],
        out: Out,
    ) {
        for v in acc.as_flattened_mut() {
            act_v(self.act, v);
        }
        for (r, acc) in acc.iter().enumerate() {
            for (c, v) in acc.iter().enumerate() {
                let mut v = *v;
                if let Some(res) = res {
                    let at = (i0 + r) * self.n_pad + (b0 + c) * LANES;
                    for (a, s) in v.iter_mut().zip(&res[at..at + LANES]) {
                        *a += s;
                    }
                }
                y[dst[r] + (b0 + c - out.block0) * out.block] = v;
            }
        }
    }
}

/// A depthwise k×k convolution, stride `s`, padding `k/2`, + bias + activation.
#[derive(Debug, Clone)]
pub(crate) struct Depthwise {
    /// Padded channels.
    pub(crate) c_pad: usize,
    /// Kernel size.
    pub(crate) k: usize,
    /// Stride.
    pub(crate) stride: usize,
    /// `[c_pad / LANES][k·k][LANES]`, zero-padded.
    pub(crate) w: Vec<f32>,
    /// `[c_pad]`, zero-padded.
    pub(crate) bias: Vec<f32>,
    /// Activation.
    pub(crate) act: Act,
}

impl Depthwise {
    /// From a burn weight `[c, 1, k, k]` and bias `[c]`.
    pub(crate) fn new(
        w: &[f32],
        bias: &[f32],
        c: usize,
        k: usize,
        stride: usize,
        act: Act,
    ) -> Self {
        let c_pad = padded(c);
        let mut t = vec![0.0; k * k * c_pad];
        for ch in 0..c {
            for tap in 0..k * k {
                t[((ch / LANES) * k * k + tap) * LANES + ch % LANES] = w[ch * k * k + tap];
            }
        }
        let mut b = vec![0.0; c_pad];
        b[..c].copy_from_slice(&bias[..c]);
        Depthwise {
            c_pad,
            k,
            stride,
            w: t,
            bias: b,
            act,
        }
    }

    /// `x` is a `side × side` map in blocked planes with a zero border of `k/2`
    /// ([`Out::planes`]), `y` is dense NHWC `[out, out, c_pad]` with `out` from [`out_size`].
    /// `P`: output pixels per tile.
    #[cfg(test)]
    pub(crate) fn run<M: Madd, const P: usize>(&self, x: &[f32], side: usize, y: &mut [f32]) {
        let rows = 0..out_size(side, self.k, self.stride);
        self.run_rows::<M, P>(x, side, y, rows);
    }

    /// [`Depthwise::run`] for output rows `rows` only (a part of a layer split over threads by
    /// rows): `y` starts at row `rows.start`.
    #[inline(always)]
    pub(crate) fn run_rows<M: Madd, const P: usize>(
        &self,
        x: &[f32],
        side: usize,
        y: &mut [f32],
        rows: Range<usize>,
    ) {
        // The common kernel sizes and strides get their own copy with `k` and `s` constant:
        // the tap loops unroll, and the input vectors that neighbouring taps share are loaded
        // once.
        match (self.k, self.stride) {
            (3, 1) => self.run_ks::<M, P>(x, side, y, rows, 3, 1),
            (3, 2) => self.run_ks::<M, P>(x, side, y, rows, 3, 2),
            (5, 1) => self.run_ks::<M, P>(x, side, y, rows, 5, 1),
            (5, 2) => self.run_ks::<M, P>(x, side, y, rows, 5, 2),
            (7, 1) => self.run_ks::<M, P>(x, side, y, rows, 7, 1),
            (7, 2) => self.run_ks::<M, P>(x, side, y, rows, 7, 2),
            (k, s) => self.run_ks::<M, P>(x, side, y, rows, k, s),
        }
    }

    #[inline(always)]
    fn run_ks<M: Madd, const P: usize>(
        &self,
        x: &[f32],
        side: usize,
        y: &mut [f32],
        rows: Range<usize>,
        k: usize,
        s: usize,
    ) {
        let wo = out_size(side, k, s);
        let wp = side + 2 * (k / 2);
        let blocks = self.c_pad / LANES;
        let (x, _) = x.as_chunks::<LANES>();
        let (y, _) = y.as_chunks_mut::<LANES>();
        for oy in rows.clone() {
            // vector index of pixel (oy, 0), block 0, in `y` (which starts at row `rows.start`)
            let row_at = (oy - rows.start) * wo * blocks;
            let mut ox = 0;
            while ox + P <= wo {
                self.tile::<M, P>(x, wp, oy, ox, row_at + ox * blocks, y, k, s);
                ox += P;
            }
            if P > 4 && wo - ox >= 4 {
                self.tile::<M, 4>(x, wp, oy, ox, row_at + ox * blocks, y, k, s);
                ox += 4;
            }
            if P > 2 && wo - ox >= 2 {
                self.tile::<M, 2>(x, wp, oy, ox, row_at + ox * blocks, y, k, s);
                ox += 2;
            }
            while ox < wo {
                self.tile::<M, 1>(x, wp, oy, ox, row_at + ox * blocks, y, k, s);
                ox += 1;
            }
        }
    }

    /// Output pixels `(oy, ox..ox + P)`, every channel block, stored from vector `at` of `y`.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn tile<M: Madd, const P: usize>(
        &self,
        x: &[V],
        wp: usize,
        oy: usize,
        ox: usize,
        at: usize,
        y: &mut [V],
        k: usize,
        s: usize,
    ) {
        let blocks = self.c_pad / LANES;
        let plane = wp * wp;
        let (wt, _) = self.w.as_chunks::<LANES>();
        let (bias, _) = self.bias.as_chunks::<LANES>();
        for (cb, ((xc, wc), b)) in x
            .chunks_exact(plane)
            .zip(wt.chunks_exact(k * k))
            .zip(bias)
            .enumerate()
        {
            let mut acc = [*b; P];
            for (ky, wr) in wc.chunks_exact(k).enumerate() {
                // the input row under this kernel row, from the first tap of pixel 0 to the
                // last tap of pixel P - 1
                let start = (oy * s + ky) * wp + ox * s;
                let row = &xc[start..start + (P - 1) * s + k];
                for (kx, w) in wr.iter().enumerate() {
                    for (p, acc) in acc.iter_mut().enumerate() {
                        madd_vv::<M>(acc, &row[p * s + kx], w);
                    }
                }
            }
            store_pixels(self.act, acc, y, at + cb, blocks);
        }
    }
}

/// Activation and store of `P` finished pixel vectors, `stride` vectors apart from `at`
/// (taken by value, so the accumulators stay in registers during the loop that made them).
#[inline(always)]
fn store_pixels<const P: usize>(act: Act, mut acc: [V; P], y: &mut [V], at: usize, stride: usize) {
    for (p, v) in acc.iter_mut().enumerate() {
        act_v(act, v);
        y[at + p * stride] = *v;
    }
}

/// The dense stem: k×k, stride `s`, padding `k/2`, few input channels, reading an NCHW image
/// copied into a zero border ([`Stem::pad_input`]); writes dense NHWC.
#[derive(Debug, Clone)]
pub(crate) struct Stem {
    /// Input channels.
    pub(crate) c_in: usize,
    /// Padded output channels.
    pub(crate) c_pad: usize,
    /// Kernel size.
    pub(crate) k: usize,
    /// Stride.
    pub(crate) stride: usize,
    /// `[c_pad / LANES][k·k][c_in][LANES]`, zero-padded.
    pub(crate) w: Vec<f32>,
    /// `[c_pad]`, zero-padded.
    pub(crate) bias: Vec<f32>,
    /// Activation.
    pub(crate) act: Act,
}

impl Stem {
    /// From a burn weight `[c_out, c_in, k, k]` and bias `[c_out]`.
    pub(crate) fn new(
        w: &[f32],
        bias: &[f32],
        c_out: usize,
        c_in: usize,
        k: usize,
        stride: usize,
        act: Act,
    ) -> Self {
        let c_pad = padded(c_out);
        let mut t = vec![0.0; k * k * c_in * c_pad];
        for co in 0..c_out {
            for ci in 0..c_in {
                for tap in 0..k * k {
                    t[(((co / LANES) * k * k + tap) * c_in + ci) * LANES + co % LANES] =
                        w[(co * c_in + ci) * k * k + tap];
                }
            }
        }
        let mut b = vec![0.0; c_pad];
        b[..c_out].copy_from_slice(&bias[..c_out]);
        Stem {
            c_in,
            c_pad,
            k,
            stride,
            w: t,
            bias: b,
            act,
        }
    }

    /// Floats [`Stem::pad_input`] writes for an `r × r` image.
    pub(crate) fn padded_len(&self, r: usize) -> usize {
        let rp = r + 2 * (self.k / 2);
        self.c_in * rp * rp
    }

    /// Copies one NCHW image `[c_in, r, r]` into `xp` with a zero border of `k/2`
    /// (`[c_in, r + 2p, r + 2p]`).
    pub(crate) fn pad_input(&self, x: &[f32], r: usize, xp: &mut [f32]) {
        let pad = self.k / 2;
        let rp = r + 2 * pad;
        let xp = &mut xp[..self.padded_len(r)];
        xp.fill(0.0);
        for (src, dst) in x.chunks_exact(r * r).zip(xp.chunks_exact_mut(rp * rp)) {
            for (row, d) in src.chunks_exact(r).zip(dst.chunks_exact_mut(rp).skip(pad)) {
                d[pad..pad + r].copy_from_slice(row);
            }
        }
    }

    /// `xp` from [`Stem::pad_input`], `y` is dense NHWC `[ro, ro, c_pad]`. `P`: output pixels
    /// per tile.
    #[cfg(test)]
    pub(crate) fn run<M: Madd, const P: usize>(&self, xp: &[f32], r: usize, y: &mut [f32]) {
        let rows = 0..out_size(r, self.k, self.stride);
        self.run_rows::<M, P>(xp, r, y, rows);
    }

    /// [`Stem::run`] for output rows `rows` only (a part of the layer split over threads by
    /// rows): `y` starts at row `rows.start`.
    #[inline(always)]
    pub(crate) fn run_rows<M: Madd, const P: usize>(
        &self,
        xp: &[f32],
        r: usize,
        y: &mut [f32],
        rows: Range<usize>,
    ) {
        match (self.k, self.stride) {
            (3, 2) => self.run_ks::<M, P>(xp, r, y, rows, 3, 2),
            (3, 1) => self.run_ks::<M, P>(xp, r, y, rows, 3, 1),
            (k, s) => self.run_ks::<M, P>(xp, r, y, rows, k, s),
        }
    }

    #[inline(always)]
    fn run_ks<M: Madd, const P: usize>(
        &self,
        xp: &[f32],
        r: usize,
        y: &mut [f32],
        rows: Range<usize>,
        k: usize,
        s: usize,
    ) {
        let ro = out_size(r, k, s);
        let rp = r + 2 * (k / 2);
        let blocks = self.c_pad / LANES;
        let (y, _) = y.as_chunks_mut::<LANES>();
        for oy in rows.clone() {
            let row_at = (oy - rows.start) * ro * blocks;
            let mut ox = 0;
            while ox + P <= ro {
                self.tile::<M, P>(xp, rp, oy, ox, row_at + ox * blocks, y, k, s);
                ox += P;
            }
            while ox < ro {
                self.tile::<M, 1>(xp, rp, oy, ox, row_at + ox * blocks, y, k, s);
                ox += 1;
            }
        }
    }

    /// Output pixels `(oy, ox..ox + P)`, every channel block, stored from vector `at` of `y`.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn tile<M: Madd, const P: usize>(
        &self,
        xp: &[f32],
        rp: usize,
        oy: usize,
        ox: usize,
        at: usize,
        y: &mut [V],
        k: usize,
        s: usize,
    ) {
        let ci = self.c_in;
        let blocks = self.c_pad / LANES;
        let (wt, _) = self.w.as_chunks::<LANES>();
        let (bias, _) = self.bias.as_chunks::<LANES>();
        for (cb, (wc, b)) in wt.chunks_exact(k * k * ci).zip(bias).enumerate() {
            let mut acc = [*b; P];
            for (c, xc) in xp.chunks_exact(rp * rp).take(ci).enumerate() {
                for ky in 0..k {
                    let start = (oy * s + ky) * rp + ox * s;
                    let row = &xc[start..start + (P - 1) * s + k];
                    let wr = &wc[ky * k * ci..(ky + 1) * k * ci];
                    for kx in 0..k {
                        let w = &wr[kx * ci + c];
                        for (p, acc) in acc.iter_mut().enumerate() {
                            madd_sv::<M>(acc, row[p * s + kx], w);
                        }
                    }
                }
            }
            store_pixels(self.act, acc, y, at + cb, blocks);
        }
    }
}

/// Output size of a k×k conv with padding `k/2` and stride `s` over `n` pixels.
pub(crate) fn out_size(n: usize, k: usize, s: usize) -> usize {
    (n + 2 * (k / 2) - k) / s.max(1) + 1
}

/// Global average pool of `x` (`[m, c]`) into `out` (`[c]`).
pub(crate) fn mean_pool(x: &[f32], m: usize, out: &mut [f32]) {
    let c = out.len();
    out.fill(0.0);
    if c == 0 {
        return;
    }
    for row in x.chunks_exact(c).take(m) {
        for (o, v) in out.iter_mut().zip(row) {
            *o += v;
        }
    }
    let inv = 1.0 / m.max(1) as f32;
    for o in out.iter_mut() {
        *o *= inv;
    }
}

/// `out[j] = b[j] + Σ_c w[j, c] · x[c]`, with `w` as `[classes, c]`.
pub(crate) fn linear(w: &[f32], b: &[f32], x: &[f32], out: &mut [f32]) {
    let c = x.len();
    if c == 0 {
        out.copy_from_slice(b);
        return;
    }
    for ((o, row), bj) in out.iter_mut().zip(w.chunks_exact(c)).zip(b) {
        let mut s = 0.0;
        for (a, v) in row.iter().zip(x) {
            s += a * v;
        }
        *o = bj + s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn val(i: usize, f: f32) -> f32 {
        ((i as f32) * f).sin()
    }

    /// Within 1e-5 relative to max(1, |want|): the sums run in another order.
    fn close(got: f32, want: f32) -> bool {
        (got - want).abs() <= 1e-5 * want.abs().max(1.0)
    }

    fn hswish(s: f32) -> f32 {
        s * (s / 6.0 + 0.5).clamp(0.0, 1.0)
    }

    /// Naive NCHW-style reference conv over a `[c_in][n][n]` map: `[c_out][o][o]`.
    #[allow(clippy::too_many_arguments)]
    fn naive_conv(
        x: &[f32],
        c_in: usize,
        n: usize,
        w: &[f32],
        b: &[f32],
        c_out: usize,
        k: usize,
        s: usize,
        depthwise: bool,
    ) -> Vec<f32> {
        let o = out_size(n, k, s);
        let pad = (k / 2) as isize;
        let mut y = vec![0.0; c_out * o * o];
        for co in 0..c_out {
            for oy in 0..o {
                for ox in 0..o {
                    let mut acc = b[co];
                    let cis: Vec<usize> = if depthwise {
                        vec![co]
                    } else {
                        (0..c_in).collect()
                    };
                    for (j, &ci) in cis.iter().enumerate() {
                        for ky in 0..k {
                            for kx in 0..k {
                                let iy = (oy * s + ky) as isize - pad;
                                let ix = (ox * s + kx) as isize - pad;
                                if iy < 0 || ix < 0 || iy >= n as isize || ix >= n as isize {
                                    continue;
                                }
                                let wi = if depthwise {
                                    (co * k + ky) * k + kx
                                } else {
                                    ((co * c_in + j) * k + ky) * k + kx
                                };
                                acc += w[wi] * x[(ci * n + iy as usize) * n + ix as usize];
                            }
                        }
                    }
                    y[(co * o + oy) * o + ox] = acc;
                }
            }
        }
        y
    }

    #[test]
    fn pointwise_matches_naive_with_padding_tails_and_layouts() {
        for (m, k, n) in [
            (7, 13, 11),
            (16, 8, 16),
            (19, 24, 40),
            (9, 3, 5),
            (25, 20, 24),
        ] {
            let w: Vec<f32> = (0..n * k).map(|i| val(i, 0.37)).collect();
            let b: Vec<f32> = (0..n).map(|i| i as f32 * 0.1 - 0.5).collect();
            let pw = Pointwise::new(&w, &b, n, k, Some(netspec::Act::Hswish));
            let ks = padded(k);
            let mut x = vec![0.0; m * ks];
            for i in 0..m {
                for kk in 0..k {
                    x[i * ks + kk] = val(i * k + kk, 0.71) * 3.0;
                }
            }
            let np = pw.n_pad;
            let blocks = np / LANES;
            let res: Vec<f32> = (0..m * np).map(|i| (i % 5) as f32).collect();
            let want = |i: usize, j: usize| {
                let mut s = b.get(j).copied().unwrap_or(0.0);
                if j < n {
                    for kk in 0..k {
                        s += x[i * ks + kk] * w[j * k + kk];
                    }
                }
                hswish(s)
            };
            for variant in 0..4 {
                let mut y = vec![f32::NAN; m * np];
                let out = Out::nhwc(m, blocks);
                match variant {
                    0 => pw.run::<Split, 2, 4>(&x, m, Some(&res), &mut y, out),
                    1 => pw.run::<Fused, 4, 8>(&x, m, Some(&res), &mut y, out),
                    2 => pw.run::<Split, 3, 5>(&x, m, Some(&res), &mut y, out),
                    _ => pw.run::<Split, 1, 1>(&x, m, Some(&res), &mut y, out),
                }
                for i in 0..m {
                    for j in 0..np {
                        let (got, want) = (y[i * np + j], want(i, j) + res[i * np + j]);
                        assert!(close(got, want), "{variant} ({i},{j}): {got} vs {want}");
                    }
                }
            }
            // into blocked planes with a zero border, the first `side²` rows as a map
            let side = (m as f64).sqrt() as usize;
            let pad = 2;
            let sp = side + 2 * pad;
            let mut y = vec![f32::NAN; blocks * sp * sp * LANES];
            zero_border(&mut y, side, pad, blocks);
            pw.run::<Split, 2, 4>(&x, side * side, None, &mut y, Out::planes(side, pad));
            for cb in 0..blocks {
                for py in 0..sp {
                    for px in 0..sp {
                        let inside =
                            (pad..pad + side).contains(&py) && (pad..pad + side).contains(&px);
                        for l in 0..LANES {
                            let got = y[((cb * sp + py) * sp + px) * LANES + l];
                            if inside {
                                let i = (py - pad) * side + px - pad;
                                let want = want(i, cb * LANES + l);
                                assert!(close(got, want), "planes ({py},{px}): {got} vs {want}");
                            } else {
                                assert_eq!(got, 0.0, "border ({py},{px})");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn depthwise_matches_naive_for_all_kernels_strides_and_sizes() {
        let c = 13;
        for n in 1..10 {
            for k in [3, 5, 7] {
                for s in [1, 2] {
                    let w: Vec<f32> = (0..c * k * k).map(|i| val(i, 0.53)).collect();
                    let b: Vec<f32> = (0..c).map(|i| val(i, 1.7)).collect();
                    let x: Vec<f32> = (0..c * n * n).map(|i| val(i, 0.29)).collect();
                    let want = naive_conv(&x, c, n, &w, &b, c, k, s, true);
                    let dw = Depthwise::new(&w, &b, c, k, s, Some(netspec::Act::Relu));
                    let (cp, pad) = (dw.c_pad, k / 2);
                    let np = n + 2 * pad;
                    // blocked planes [cp / 8][np][np][8] with a zero border
                    let mut xp = vec![f32::NAN; np * np * cp];
                    zero_border(&mut xp, n, pad, cp / LANES);
                    for ch in 0..cp {
                        for y in 0..n {
                            for xx in 0..n {
                                let at = (((ch / LANES) * np + y + pad) * np + xx + pad) * LANES;
                                xp[at + ch % LANES] = if ch < c {
                                    x[(ch * n + y) * n + xx]
                                } else {
                                    0.0
                                };
                            }
                        }
                    }
                    let o = out_size(n, k, s);
                    for variant in 0..3 {
                        let mut y = vec![f32::NAN; o * o * cp];
                        match variant {
                            0 => dw.run::<Split, 4>(&xp, n, &mut y),
                            1 => dw.run::<Fused, 8>(&xp, n, &mut y),
                            _ => dw.run::<Split, 3>(&xp, n, &mut y),
                        }
                        for ch in 0..cp {
                            for p in 0..o * o {
                                let got = y[p * cp + ch];
                                let want = if ch < c {
                                    want[ch * o * o + p].max(0.0)
                                } else {
                                    0.0
                                };
                                assert!(
                                    close(got, want),
                                    "n={n} k={k} s={s} ch={ch} p={p}: {got} vs {want}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn stem_matches_naive() {
        for c_in in [1, 3] {
            for (n, k, s) in [(28, 3, 2), (13, 3, 2), (9, 5, 1), (4, 7, 2)] {
                let c_out = 12;
                let w: Vec<f32> = (0..c_out * c_in * k * k).map(|i| val(i, 0.41)).collect();
                let b: Vec<f32> = (0..c_out).map(|i| val(i, 2.3)).collect();
                let x: Vec<f32> = (0..c_in * n * n).map(|i| val(i, 0.19)).collect();
                let want = naive_conv(&x, c_in, n, &w, &b, c_out, k, s, false);
                let stem = Stem::new(&w, &b, c_out, c_in, k, s, None);
                let mut xp = vec![f32::NAN; stem.padded_len(n)];
                stem.pad_input(&x, n, &mut xp);
                let o = out_size(n, k, s);
                let cp = stem.c_pad;
                for variant in 0..2 {
                    let mut y = vec![f32::NAN; o * o * cp];
                    if variant == 0 {
                        stem.run::<Split, 4>(&xp, n, &mut y);
                    } else {
                        stem.run::<Fused, 8>(&xp, n, &mut y);
                    }
                    for ch in 0..cp {
                        for p in 0..o * o {
                            let got = y[p * cp + ch];
                            let want = if ch < c_out {
                                want[ch * o * o + p]
                            } else {
                                0.0
                            };
                            assert!(close(got, want), "c_in={c_in} n={n} k={k}: {got} vs {want}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn pool_and_linear() {
        let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut p = [0.0; 2];
        mean_pool(&x, 3, &mut p);
        assert_eq!(p, [3.0, 4.0]);
        let mut o = [0.0; 2];
        linear(&[1.0, 0.0, 0.5, 2.0], &[0.25, -1.0], &p, &mut o);
        assert_eq!(o, [3.25, 8.5]);
    }
}
