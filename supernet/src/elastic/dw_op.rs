//! Depthwise 2D convolution (`groups = channels`, weight `[C, 1, k, k]`, padding `k/2`,
//! dilation 1, no bias) with a hand-written forward *and* backward for the flex CPU backend.
//!
//! burn-flex computes the depthwise input gradient through a generic `conv_transpose3d`, which
//! dominated a training step. With the `fast-dw` feature, this module registers a backend
//! extension (`#[backend_extension(Flex, Autodiff)]`, burn's `extension` feature): the flex
//! implementation runs direct NCHW stencil loops (see `kernels`), one `(n, c)` plane per
//! rayon task on the current pool, compiled for the CPU's SIMD level through `pulp` (AVX2 on
//! x86-64), and the `Autodiff<Flex, C>` implementation records its own backward step (grad x
//! and grad w by direct loops, both in one pass over the planes). Results match `conv2d` up to
//! float summation order (≈1e-6 relative), deterministically.
//!
//! Any other backend (cuda / wgpu features), dtype, or shape falls back to
//! [`depthwise_conv2d_reference`], i.e. `burn::tensor::module::conv2d` with `groups = C`.

use burn::prelude::*;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;

/// `x: [n, c, h, w]`, `w: [c, 1, k, k]` (k odd) → `[n, c, ⌈h/stride⌉, ⌈w/stride⌉]`.
///
/// Uses the direct flex kernels when the `fast-dw` feature is on and the tensors live on the
/// flex backend (with or without autodiff); otherwise [`depthwise_conv2d_reference`].
pub fn depthwise_conv2d(x: Tensor<4>, w: Tensor<4>, stride: usize) -> Tensor<4> {
    #[cfg(test)]
    if tests::FORCE_REFERENCE.with(|f| f.get()) {
        return depthwise_conv2d_reference(x, w, stride);
    }
    #[cfg(feature = "fast-dw")]
    if fast::supported(&x, &w, stride) {
        return fast::run(x, w, stride);
    }
    depthwise_conv2d_reference(x, w, stride)
}

/// The generic path: `conv2d` with `groups = C`, padding `k/2`, no bias.
pub fn depthwise_conv2d_reference(x: Tensor<4>, w: Tensor<4>, stride: usize) -> Tensor<4> {
    let c = x.dims()[1];
    let k = w.dims()[2];
    conv2d(x, w, None, options(stride, k, c))
}

fn options(stride: usize, k: usize, c: usize) -> ConvOptions<2> {
    ConvOptions::new([stride; 2], [k / 2, k / 2], [1, 1], c)
}

/// Whether [`depthwise_conv2d`] uses the direct kernels (the `fast-dw` feature).
pub const FAST_DW_ENABLED: bool = cfg!(feature = "fast-dw");

/// Geometry of one depthwise conv: sizes, padded plane and output plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "fast-dw"), allow(dead_code))]
struct Geom {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    k: usize,
    s: usize,
    p: usize,
    oh: usize,
    ow: usize,
    /// Phase plane size: `⌈(h + 2p) / s⌉ × ⌈(w + 2p) / s⌉`.
    hq: usize,
    wq: usize,
    /// Per column phase `b < s`: first input column, first phase column, count.
    cols: [(usize, usize, usize); MAX_STRIDE],
    /// Per tap `kh·k + kw`: offset of its input window in the phase buffer.
    taps: [usize; MAX_K * MAX_K],
}

/// The direct kernels handle strides 1 and 2 and kernels up to 7 (others: `conv2d`).
const MAX_STRIDE: usize = 2;
const MAX_K: usize = 7;

#[cfg_attr(not(feature = "fast-dw"), allow(dead_code))]
impl Geom {
    /// `None` when the shapes are not a canonical odd-kernel depthwise conv.
    fn new(x: &[usize], w: &[usize], stride: usize) -> Option<Self> {
        let (&[n, c, h, wd], &[wc, one, kh, kw]) = (x, w) else {
            return None;
        };
        let k = kh;
        if wc != c || one != 1 || kw != k || k % 2 == 0 || k > MAX_K {
            return None;
        }
        if stride == 0 || stride > MAX_STRIDE {
            return None;
        }
        if n == 0 || c == 0 || h == 0 || wd == 0 {
            return None;
        }
        let p = k / 2;
        let hp = h + 2 * p;
        let wp = wd + 2 * p;
        let oh = (hp - k) / stride + 1;
        let ow = (wp - k) / stride + 1;
        let (hq, wq) = (hp.div_ceil(stride), wp.div_ceil(stride));
        let mut cols = [(0, 0, 0); MAX_STRIDE];
        for (b, col) in cols.iter_mut().enumerate().take(stride) {
            // First padded column `cp ≥ p` with `cp % s == b`.
            let cp0 = p + (b + stride - p % stride) % stride;
            let count = (p + wd).saturating_sub(cp0).div_ceil(stride);
            *col = (cp0 - p, cp0 / stride, count);
        }
        let mut taps = [0; MAX_K * MAX_K];
        for kh in 0..k {
            for kw in 0..k {
                let phase = (kh % stride) * stride + kw % stride;
                taps[kh * k + kw] = phase * hq * wq + (kh / stride) * wq + kw / stride;
            }
        }
        Some(Self {
            n,
            c,
            h,
            w: wd,
            k,
            s: stride,
            p,
            oh,
            ow,
            hq,
            wq,
            cols,
            taps,
        })
    }

    /// Flat length covering all output rows laid out `wq` apart.
    fn span(&self) -> usize {
        (self.oh - 1) * self.wq + self.ow
    }

    fn planes(&self) -> usize {
        self.n * self.c
    }
}

/// Plain-slice kernels (NCHW, contiguous f32), parallel over `(n, c)` planes.
///
/// Each `(n, c)` plane is handled as stride-1 work on flat buffers: the zero-padded input
/// plane is split into `s²` polyphase planes `P[a][b][r][q] = xp[s·r + a][s·q + b]` of
/// `hq × wq`, so a stride-`s` stencil becomes `k²` long contiguous `axpy`/`dot` calls of
/// length `span = (oh - 1)·wq + ow` (output rows laid out `wq` apart; the few columns
/// `ow..wq` of each row are scratch), which LLVM vectorises, instead of `k²·oh` short ones.
#[cfg_attr(not(feature = "fast-dw"), allow(dead_code))]
mod kernels {
    use super::Geom;
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
    fn forward_plane(
        g: &Geom,
        x: &[f32],
        wk: &[f32],
        o: &mut [f32],
        xp: &mut [f32],
        wide: &mut [f32],
    ) {
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
}

#[cfg(feature = "fast-dw")]
mod fast {
    use super::{Geom, kernels, options};
    use burn::backend::autodiff::NodeId;
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
    use burn::backend::flex::FlexTensor;
    use burn::backend::ops::ModuleOps;
    use burn::backend::tensor::FloatTensor;
    use burn::backend::{Autodiff, Backend, DispatchDevice, Flex, backend_extension};
    use burn::prelude::*;
    use burn::tensor::{DType, TensorData};

    #[backend_extension(Flex, Autodiff)]
    pub trait DepthwiseBackend: Backend {
        /// Depthwise conv2d, padding `k/2`, no bias.
        fn depthwise_conv2d_direct(
            x: FloatTensor<Self>,
            w: FloatTensor<Self>,
            stride: usize,
        ) -> FloatTensor<Self>;
    }

    /// The tensors are f32 on flex (possibly autodiff) and the shapes are a depthwise conv.
    pub(super) fn supported(x: &Tensor<4>, w: &Tensor<4>, stride: usize) -> bool {
        let on_flex =
            |d: Device| matches!(d.as_dispatch().clone().inner(), DispatchDevice::Flex(_));
        x.dtype() == DType::F32
            && w.dtype() == DType::F32
            && on_flex(x.device())
            && on_flex(w.device())
            && Geom::new(&x.dims(), &w.dims(), stride).is_some()
    }

    pub(super) fn run(x: Tensor<4>, w: Tensor<4>, stride: usize) -> Tensor<4> {
        Tensor::from_dispatch(
            <burn::backend::Dispatch as DepthwiseBackend>::depthwise_conv2d_direct(
                x.into_dispatch(),
                w.into_dispatch(),
                stride,
            ),
        )
    }

    /// The tensor with a contiguous layout (O(1) when it already is; copies otherwise).
    fn contiguous(t: &FlexTensor) -> FlexTensor {
        t.to_contiguous()
    }

    fn geom(x: &FlexTensor, w: &FlexTensor, stride: usize) -> Option<Geom> {
        if x.dtype() != DType::F32 || w.dtype() != DType::F32 {
            return None;
        }
        Geom::new(
            x.layout().shape().as_slice(),
            w.layout().shape().as_slice(),
            stride,
        )
    }

    /// Size of dimension `i` (1 when absent; only used on fallback paths).
    fn dim(t: &FlexTensor, i: usize) -> usize {
        t.layout().shape().as_slice().get(i).copied().unwrap_or(1)
    }

    fn flex_tensor(values: Vec<f32>, shape: [usize; 4]) -> FlexTensor {
        FlexTensor::from_data(TensorData::new(values, shape))
    }

    /// Direct forward; `None` for an unsupported dtype or shape.
    fn forward(x: &FlexTensor, w: &FlexTensor, stride: usize) -> Option<FlexTensor> {
        let g = geom(x, w, stride)?;
        let (x, w) = (contiguous(x), contiguous(w));
        let xs = x.as_slice::<f32>()?;
        let ws = w.as_slice::<f32>()?;
        if xs.len() != g.planes() * g.h * g.w || ws.len() != g.c * g.k * g.k {
            return None;
        }
        let out = kernels::forward(&g, xs, ws);
        Some(flex_tensor(out, [g.n, g.c, g.oh, g.ow]))
    }

    /// Direct backward; `None` for an unsupported dtype or shape.
    fn backward(
        x: &FlexTensor,
        w: &FlexTensor,
        gy: &FlexTensor,
        stride: usize,
        need_x: bool,
        need_w: bool,
    ) -> Option<(Option<FlexTensor>, Option<FlexTensor>)> {
        let g = geom(x, w, stride)?;
        if gy.dtype() != DType::F32 || gy.layout().shape().as_slice() != [g.n, g.c, g.oh, g.ow] {
            return None;
        }
        let (x, w, gy) = (contiguous(x), contiguous(w), contiguous(gy));
        let xs = x.as_slice::<f32>()?;
        let ws = w.as_slice::<f32>()?;
        let gys = gy.as_slice::<f32>()?;
        if xs.len() != g.planes() * g.h * g.w
            || ws.len() != g.c * g.k * g.k
            || gys.len() != g.planes() * g.oh * g.ow
        {
            return None;
        }
        let (gx, gw) = kernels::backward(&g, xs, ws, gys, need_x, need_w);
        Some((
            need_x.then(|| flex_tensor(gx, [g.n, g.c, g.h, g.w])),
            need_w.then(|| flex_tensor(gw, [g.c, 1, g.k, g.k])),
        ))
    }

    impl DepthwiseBackend for Flex {
        fn depthwise_conv2d_direct(x: FlexTensor, w: FlexTensor, stride: usize) -> FlexTensor {
            match forward(&x, &w, stride) {
                Some(out) => out,
                None => {
                    let (c, k) = (dim(&w, 0), dim(&w, 2));
                    Flex::conv2d(x, w, None, options(stride, k, c))
                }
            }
        }
    }

    /// The backward step: grad x and grad w by the direct kernels.
    #[derive(Debug)]
    struct DepthwiseBackward;

    impl Backward<Flex, 2> for DepthwiseBackward {
        /// Checkpointed x, checkpointed w, stride.
        type State = (NodeId, NodeId, usize);

        fn backward(
            self,
            ops: Ops<Self::State, 2>,
            grads: &mut Gradients,
            checkpointer: &mut Checkpointer,
        ) {
            let [node_x, node_w] = ops.parents;
            let grad = grads.consume::<Flex>(&ops.node);
            let (x_state, w_state, stride) = ops.state;
            let x = checkpointer.retrieve_node_output::<FlexTensor>(x_state);
            let w = checkpointer.retrieve_node_output::<FlexTensor>(w_state);

            let (gx, gw) = match backward(&x, &w, &grad, stride, node_x.is_some(), node_w.is_some())
            {
                Some(grads) => grads,
                None => {
                    // Unsupported layout: burn's generic conv2d backward.
                    let (c, k) = (dim(&w, 0), dim(&w, 2));
                    let opts = options(stride, k, c);
                    let gx = node_x.as_ref().map(|_| {
                        Flex::conv2d_x_backward(x.clone(), w.clone(), grad.clone(), opts.clone())
                    });
                    let gw = node_w
                        .as_ref()
                        .map(|_| Flex::conv2d_weight_backward(x, w, grad, opts));
                    (gx, gw)
                }
            };
            if let (Some(node), Some(g)) = (node_x, gx) {
                grads.register::<Flex>(node.id, g);
            }
            if let (Some(node), Some(g)) = (node_w, gw) {
                grads.register::<Flex>(node.id, g);
            }
        }
    }

    impl<C: CheckpointStrategy> DepthwiseBackend for Autodiff<Flex, C> {
        fn depthwise_conv2d_direct(
            x: FloatTensor<Self>,
            w: FloatTensor<Self>,
            stride: usize,
        ) -> FloatTensor<Self> {
            match DepthwiseBackward
                .prepare::<C>([x.node(), w.node()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(mut prep) => {
                    let x_state = prep.checkpoint(&x);
                    let w_state = prep.checkpoint(&w);
                    let out = Flex::depthwise_conv2d_direct(
                        x.into_primitive(),
                        w.into_primitive(),
                        stride,
                    );
                    prep.finish((x_state, w_state, stride), out)
                }
                OpsKind::UnTracked(prep) => prep.finish(Flex::depthwise_conv2d_direct(
                    x.into_primitive(),
                    w.into_primitive(),
                    stride,
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        /// Test hook: route [`depthwise_conv2d`] to the reference path on this thread.
        pub(super) static FORCE_REFERENCE: Cell<bool> = const { Cell::new(false) };
    }

    fn seq(len: usize, seed: u32) -> Vec<f32> {
        // Deterministic pseudo-random values in [-1, 1).
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(12_345);
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s % 20_000) as f32 / 10_000.0 - 1.0
            })
            .collect()
    }

    fn tensor(values: Vec<f32>, shape: [usize; 4], device: &Device) -> Tensor<4> {
        Tensor::<4>::from_data(burn::tensor::TensorData::new(values, shape), device)
    }

    /// Max abs difference ≤ `tol · max(1, |b|)` element-wise.
    fn assert_close_tol(a: Tensor<4>, b: Tensor<4>, tol: f32, what: &str) {
        assert_eq!(a.dims(), b.dims(), "{what}: shapes");
        let a = a.into_data().try_to_vec::<f32>().unwrap();
        let b = b.into_data().try_to_vec::<f32>().unwrap();
        for (x, y) in a.iter().zip(&b) {
            let err = (x - y).abs();
            assert!(err <= tol * y.abs().max(1.0), "{what}: {x} vs {y}");
        }
    }

    fn assert_close(a: Tensor<4>, b: Tensor<4>, what: &str) {
        assert_close_tol(a, b, 1e-4, what);
    }

    const CASES: &[(usize, usize, usize, usize, usize)] = &[
        // (batch, channels, size, k, stride)
        (1, 3, 7, 3, 1),
        (3, 5, 7, 3, 2),
        (1, 4, 14, 5, 1),
        (3, 2, 14, 5, 2),
        (3, 3, 7, 7, 1),
        (1, 6, 14, 7, 2),
        (3, 4, 9, 7, 2),
        (1, 2, 5, 7, 1),
        (3, 3, 13, 3, 2),
        (1, 1, 1, 3, 1),
    ];

    #[test]
    fn forward_matches_conv2d() {
        for device in [Device::flex(), Device::flex().autodiff()] {
            for (i, &(n, c, hw, k, s)) in CASES.iter().enumerate() {
                let x = tensor(seq(n * c * hw * hw, i as u32), [n, c, hw, hw], &device);
                let w = tensor(seq(c * k * k, 100 + i as u32), [c, 1, k, k], &device);
                let fast = depthwise_conv2d(x.clone(), w.clone(), s);
                let slow = depthwise_conv2d_reference(x, w, s);
                assert_close(fast, slow, &format!("forward {n}x{c}x{hw} k{k} s{s}"));
            }
        }
    }

    #[test]
    fn kernels_match_naive_loops() {
        for (i, &(n, c, hw, k, s)) in CASES.iter().enumerate() {
            let Some(g) = Geom::new(&[n, c, hw, hw], &[c, 1, k, k], s) else {
                panic!("geometry");
            };
            let x = seq(n * c * hw * hw, i as u32);
            let w = seq(c * k * k, 7 + i as u32);
            let naive = kernels::naive_forward(&g, &x, &w);
            #[cfg(feature = "fast-dw")]
            {
                let fast = kernels::forward(&g, &x, &w);
                let max = fast
                    .iter()
                    .zip(&naive)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0f32, f32::max);
                assert!(max <= 1e-5, "case {i}: {max}");
            }
            assert_eq!(naive.len(), n * c * hw.div_ceil(s) * hw.div_ceil(s));
        }
    }

    #[test]
    fn gradients_match_conv2d() {
        let device = Device::flex().autodiff();
        for (i, &(n, c, hw, k, s)) in CASES.iter().enumerate() {
            let xv = seq(n * c * hw * hw, 30 + i as u32);
            let wv = seq(c * k * k, 60 + i as u32);
            let oh = hw.div_ceil(s);
            let upstream = seq(n * c * oh * oh, 90 + i as u32);
            let run = |fast: bool| {
                let x = tensor(xv.clone(), [n, c, hw, hw], &device).require_grad();
                let w = tensor(wv.clone(), [c, 1, k, k], &device).require_grad();
                // A non-uniform upstream gradient: loss = Σ y ⊙ u.
                let u = tensor(upstream.clone(), [n, c, oh, oh], &device);
                let y = if fast {
                    depthwise_conv2d(x.clone(), w.clone(), s)
                } else {
                    depthwise_conv2d_reference(x.clone(), w.clone(), s)
                };
                let grads = (y * u).sum().backward();
                let gx = x.grad(&grads).unwrap();
                let gw = w.grad(&grads).unwrap();
                (gx, gw)
            };
            let (gx_fast, gw_fast) = run(true);
            let (gx_slow, gw_slow) = run(false);
            let what = format!("{n}x{c}x{hw} k{k} s{s}");
            assert_close(gx_fast, gx_slow, &format!("grad x {what}"));
            assert_close(gw_fast, gw_slow, &format!("grad w {what}"));
        }
    }

    #[test]
    fn gradient_flows_into_only_one_input() {
        // Only w requires grad (x constant), then only x.
        let device = Device::flex().autodiff();
        let (n, c, hw, k, s) = (3, 4, 7, 5, 2);
        let xv = seq(n * c * hw * hw, 1);
        let wv = seq(c * k * k, 2);
        let grads_of = |fast: bool, x_grad: bool| {
            let mut x = tensor(xv.clone(), [n, c, hw, hw], &device);
            let mut w = tensor(wv.clone(), [c, 1, k, k], &device);
            if x_grad {
                x = x.require_grad();
            } else {
                w = w.require_grad();
            }
            let y = if fast {
                depthwise_conv2d(x.clone(), w.clone(), s)
            } else {
                depthwise_conv2d_reference(x.clone(), w.clone(), s)
            };
            let grads = (y.clone() * y).sum().backward();
            if x_grad {
                assert!(w.grad(&grads).is_none());
                x.grad(&grads).unwrap()
            } else {
                assert!(x.grad(&grads).is_none());
                w.grad(&grads).unwrap()
            }
        };
        assert_close(grads_of(true, true), grads_of(false, true), "x only");
        assert_close(grads_of(true, false), grads_of(false, false), "w only");
    }

    #[test]
    fn composes_with_slicing_and_matmul() {
        // The ElasticDepthwise pattern: a sliced, transformed weight and a chained op.
        let device = Device::flex().autodiff();
        let (n, c, hw) = (2, 6, 14);
        let big = tensor(seq(8 * 49, 5), [8, 1, 7, 7], &device).require_grad();
        let t = Tensor::<2>::from_data(
            burn::tensor::TensorData::new(seq(25 * 25, 6), [25, 25]),
            &device,
        )
        .require_grad();
        let xv = seq(n * c * hw * hw, 7);
        let run = |fast: bool| {
            let x = tensor(xv.clone(), [n, c, hw, hw], &device).require_grad();
            let w = big
                .clone()
                .slice(s![0..c, .., 1..6, 1..6])
                .reshape([c, 25])
                .matmul(t.clone())
                .reshape([c, 1, 5, 5]);
            let y = if fast {
                depthwise_conv2d(x.clone(), w, 1)
            } else {
                depthwise_conv2d_reference(x.clone(), w, 1)
            };
            let y = depthwise_conv2d_reference(
                burn::tensor::activation::relu(y),
                big.clone().slice(s![0..c, .., 2..5, 2..5]),
                2,
            );
            let grads = y.powi_scalar(2).sum().backward();
            (
                x.grad(&grads).unwrap(),
                big.grad(&grads).unwrap(),
                t.grad(&grads).unwrap(),
            )
        };
        let (a_x, a_big, a_t) = run(true);
        let (b_x, b_big, b_t) = run(false);
        // Large magnitudes (squared chain of 25-tap convs): relative tolerance.
        assert_close_tol(a_x, b_x, 1e-5, "x");
        assert_close_tol(a_big, b_big, 1e-5, "big weight");
        let a_t = a_t.into_data().try_to_vec::<f32>().unwrap();
        let b_t = b_t.into_data().try_to_vec::<f32>().unwrap();
        for (a, b) in a_t.iter().zip(&b_t) {
            assert!(
                (a - b).abs() <= 1e-3 * (1.0 + b.abs()),
                "transform grad {a} vs {b}"
            );
        }
    }

    #[cfg(feature = "fast-dw")]
    #[test]
    fn fast_path_is_taken_on_flex() {
        for device in [Device::flex(), Device::flex().autodiff()] {
            let x = Tensor::<4>::zeros([2, 3, 7, 7], &device);
            let w = Tensor::<4>::zeros([3, 1, 5, 5], &device);
            assert!(fast::supported(&x, &w, 2), "{device:?}");
            // Not a depthwise shape: the reference path.
            let w4 = Tensor::<4>::zeros([3, 2, 5, 5], &device);
            assert!(!fast::supported(&x, &w4, 1));
            let even = Tensor::<4>::zeros([3, 1, 4, 4], &device);
            assert!(!fast::supported(&x, &even, 1));
        }
    }

    /// A whole supernet (kernels 3/5/7, strides 1/2, sliced channels): the loss, the input
    /// gradient and every depthwise weight gradient agree between the two paths.
    #[test]
    fn supernet_gradients_match_reference() {
        use crate::elastic::BnMode;
        use crate::net::Supernet;
        use crate::space::{ArchConfig, SearchSpace};
        use rand::SeedableRng;

        let ad = Device::flex().autodiff();
        let sp = SearchSpace::default_for(1, 10, 28);
        let net = match Supernet::new(&sp, 5, &ad) {
            Ok(net) => net,
            Err(e) => panic!("{e}"),
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let mut archs = vec![ArchConfig::max(&sp), ArchConfig::min(&sp)];
        for _ in 0..2 {
            archs.push(ArchConfig::sample_from(
                &sp,
                &mut rng,
                &sp.resolutions,
                &sp.depths,
                &sp.kernel_sizes,
                &sp.expand_ratios,
            ));
        }
        for arch in &archs {
            let r = arch.resolution;
            let xv = seq(3 * r * r, r as u32);
            let run = |reference: bool| {
                FORCE_REFERENCE.with(|f| f.set(reference));
                let x = tensor(xv.clone(), [3, 1, r, r], &ad).require_grad();
                let logits = net.forward(x.clone(), arch, BnMode::Train);
                let loss = (logits.clone() * logits).sum();
                let lv: f32 = loss.clone().into_scalar();
                let grads = loss.backward();
                FORCE_REFERENCE.with(|f| f.set(false));
                let dw: Vec<Tensor<4>> = net
                    .stages
                    .iter()
                    .flatten()
                    .filter_map(|b| b.dw.weight.val().grad(&grads))
                    .collect();
                (lv, x.grad(&grads).unwrap(), dw)
            };
            let (l_fast, gx_fast, dw_fast) = run(false);
            let (l_ref, gx_ref, dw_ref) = run(true);
            assert!(
                (l_fast - l_ref).abs() <= 1e-4 * l_ref.abs().max(1.0),
                "{l_fast} vs {l_ref}"
            );
            assert_close_tol(gx_fast, gx_ref, 1e-4, "input grad");
            assert_eq!(dw_fast.len(), dw_ref.len());
            assert!(!dw_fast.is_empty());
            for (a, b) in dw_fast.into_iter().zip(dw_ref) {
                assert_close_tol(a, b, 1e-4, "dw weight grad");
            }
        }
    }

    #[test]
    fn enabled_flag_matches_feature() {
        assert_eq!(FAST_DW_ENABLED, cfg!(feature = "fast-dw"));
    }

    /// Timing of forward / forward+backward at training shapes, fast vs reference:
    /// `cargo test --release -p supernet dw_op::tests::timing -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn timing() {
        use std::time::Instant;
        let device = Device::flex().autodiff();
        for &(n, c, hw, k, s) in &[
            (64, 32, 14, 3, 1),
            (64, 64, 14, 5, 1),
            (64, 128, 7, 7, 1),
            (64, 64, 14, 7, 2),
            (64, 128, 14, 3, 2),
        ] {
            let xv = seq(n * c * hw * hw, 1);
            let wv = seq(c * k * k, 2);
            for fast in [false, true] {
                let reps = 20;
                let mut t_fwd = Vec::new();
                let mut t_all = Vec::new();
                for _ in 0..reps {
                    let x = tensor(xv.clone(), [n, c, hw, hw], &device).require_grad();
                    let w = tensor(wv.clone(), [c, 1, k, k], &device).require_grad();
                    let t0 = Instant::now();
                    let y = if fast {
                        depthwise_conv2d(x.clone(), w.clone(), s)
                    } else {
                        depthwise_conv2d_reference(x.clone(), w.clone(), s)
                    };
                    let y = y.sum();
                    let _ = y.clone().into_data();
                    let t1 = Instant::now();
                    let grads = y.backward();
                    let _ = x.grad(&grads).map(|g| g.into_data());
                    let t2 = Instant::now();
                    t_fwd.push((t1 - t0).as_secs_f64() * 1e3);
                    t_all.push((t2 - t1).as_secs_f64() * 1e3);
                }
                if fast {
                    #[cfg(feature = "fast-dw")]
                    {
                        let Some(g) = Geom::new(&[n, c, hw, hw], &[c, 1, k, k], s) else {
                            panic!("geometry");
                        };
                        let gy = seq(g.planes() * g.oh * g.ow, 3);
                        let mut kf = Vec::new();
                        let mut kb = Vec::new();
                        for _ in 0..reps {
                            let t0 = Instant::now();
                            std::hint::black_box(kernels::forward(&g, &xv, &wv));
                            let t1 = Instant::now();
                            std::hint::black_box(kernels::backward(&g, &xv, &wv, &gy, true, true));
                            kf.push((t1 - t0).as_secs_f64() * 1e3);
                            kb.push(t1.elapsed().as_secs_f64() * 1e3);
                        }
                        kf.sort_by(f64::total_cmp);
                        kb.sort_by(f64::total_cmp);
                        println!(
                            "    kernels only: fwd {:.2} ms (min {:.2}), bwd {:.2} ms (min {:.2})",
                            kf[reps / 2],
                            kf[0],
                            kb[reps / 2],
                            kb[0]
                        );
                    }
                }
                t_fwd.sort_by(f64::total_cmp);
                t_all.sort_by(f64::total_cmp);
                println!(
                    "{n}x{c}x{hw} k{k} s{s} {}: fwd {:.2} ms (min {:.2}), bwd {:.2} ms (min {:.2}) (median of {reps})",
                    if fast { "fast" } else { "ref " },
                    t_fwd[reps / 2],
                    t_fwd[0],
                    t_all[reps / 2],
                    t_all[0]
                );
            }
        }
    }
}
