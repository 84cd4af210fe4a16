//! A fused batch-1 inference engine for extracted, BN-folded networks ([`FastNet`]).
//!
//! # Why
//! Our networks are tiny (1–4 M MACs, 20–70 k parameters, 28×28 inputs), so running
//! `supernet::PlainNet::forward` through burn costs mostly per-op overhead:
//! every conv, bias, BN-free activation and residual add is a separate tensor op with its own
//! allocation, layout bookkeeping and dispatch, ~50 ops per image. At batch 1 that overhead is
//! several times the arithmetic. [`FastNet`] copies the weights out once, into layouts made for
//! its kernels, and then runs the whole network as one loop over plain `f32` buffers.
//!
//! # Layout
//! - Activations are **NHWC** (channels innermost) with the channel count padded to a multiple
//!   of 8 (`LANES`). Every kernel's inner loop is a fixed-size `[f32; 8]` operation over
//!   contiguous channels, which LLVM vectorises with no tail loop. Padded channels have zero
//!   weights and bias, so they stay zero.
//! - **1×1 convs** (expand, project, head; most of the MACs): a register-blocked GEMM over
//!   pixels × channels, tiles of `R` pixels × 16 channels (`2R` × 8 for an odd last block) kept
//!   in registers, weights packed in matching column panels `[k][16]`. For these shapes
//!   (M = H·W ≤ 196, K, N ≤ 240) it measured faster than the `gemm` crate (0.047 vs 0.061 ms
//!   for all 1×1 convs of the largest demo net), whose packing and dispatch cost more than they
//!   save here; and it can write its output straight into the depthwise conv's layout.
//! - **Depthwise**: the expand conv writes its output as one plane per block of 8 channels,
//!   `[c/8][H + 2p][W + 2p][8]`, inside a zero border of `p = k/2`, so the depthwise kernel has
//!   no border logic at all and, for one channel block, the k taps of a kernel row are k
//!   consecutive vectors. A tile is `P` output pixels of a row × 8 channels; k ∈ {3, 5, 7} and
//!   stride ∈ {1, 2} get copies with both constant, so the tap loops unroll and neighbouring
//!   taps share their loads. Weights `[c/8][k·k][8]`. The border is zeroed only when the map's
//!   geometry changes (only interiors are ever written).
//! - **Stem** (dense k×k, few input channels): the caller's NCHW image copied into a zero
//!   border, then the same tiling as the depthwise conv; weights `[c_out/8][k·k][c_in][8]`.
//! - Bias, activation and the residual add are fused into the kernel that produces the output;
//!   the head is followed by global average pooling and the classifier.
//! - Per-thread scratch (the padded input, three NHWC buffers, the depthwise planes) lives in a
//!   thread-local that grows to the largest network run on that thread and is kept, so a call
//!   allocates nothing but its output (and [`FastNet::forward_into`] not even that). Batch 1
//!   runs on the calling thread; a larger batch is split over rayon's current pool, one image
//!   per task, each worker on its own scratch.
//!
//! # Instruction sets
//! The kernels are plain safe Rust, generic over the tile sizes and over how a multiply-add is
//! done. The build target's own copy ("baseline") is what runs on aarch64 (NEON, with fused
//! multiply-adds, which every aarch64 CPU has; 4 × 16 and 8-pixel tiles for its 32 registers)
//! and on x86_64 CPUs without AVX2 (SSE2, separate multiply and add, smaller tiles for its 16
//! registers). On x86_64 a second copy is compiled with AVX2 + FMA enabled and chosen at run
//! time when the CPU has both: about 1.8× the baseline on the dev host. Calling it is the
//! crate's only `unsafe`, one line that relies on that run-time check.
//!
//! Results match burn's to float rounding (the sums run in a different order, and with fused
//! multiply-adds): ~1e-6 relative.
//!
//! ```
//! use runtime::engine::FastNet;
//! use netspec::{ArchConfig, FoldedNet, SearchSpace};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A variant file as the bundle holds it (here: the weights of a bundle built for the doc).
//! # let bytes = doc_weights();
//! let space = SearchSpace::tiny(1, 3, 16);
//! let arch = ArchConfig::max(&space);
//! let net = FoldedNet::from_safetensors(&bytes, &space, &arch, "max.safetensors")?;
//! let fast = FastNet::from_folded(&net)?;
//! let x = vec![0.5f32; fast.input_len(1)];
//! let logits = fast.forward(&x, 1)?;
//! assert_eq!(logits.len(), 3);
//! # Ok(())
//! # }
//! # fn doc_weights() -> Vec<u8> {
//! #     use netspec::{FoldedBlock, FoldedConv, layers, LayerKind, block_has_residual};
//! #     let space = SearchSpace::tiny(1, 3, 16);
//! #     let arch = ArchConfig::max(&space);
//! #     let mut convs = layers(&space, &arch).into_iter().map(|l| {
//! #         let g = if l.kind == LayerKind::Depthwise { l.out_channels } else { 1 };
//! #         let shape = [l.out_channels, l.in_channels / g, l.kernel, l.kernel];
//! #         let n: usize = shape.iter().product();
//! #         FoldedConv { weight: (0..n).map(|i| (i as f32 * 0.37).sin() * 0.2).collect(), shape,
//! #             bias: vec![0.01; l.out_channels], stride: l.stride, groups: g, act: None }
//! #     });
//! #     let stem = convs.next().unwrap();
//! #     let mut blocks = Vec::new();
//! #     for (s, &d) in arch.depths.iter().enumerate() {
//! #         for b in 0..d {
//! #             let (expand, dw, project) = (convs.next().unwrap(), convs.next().unwrap(), convs.next().unwrap());
//! #             blocks.push(FoldedBlock { expand, dw, project, residual: block_has_residual(&space, s, b) });
//! #         }
//! #     }
//! #     let head = convs.next().unwrap();
//! #     FoldedNet { fc_weight: vec![0.1; 3 * space.head_channels], fc_bias: vec![0.0; 3],
//! #         space, arch, stem, blocks, head }.to_safetensors(false)
//! # }
//! ```

mod kernels;

use std::cell::Cell;

use netspec::{FoldedConv, FoldedNet};
use rayon::prelude::*;

use crate::error::{Error, Result};
use kernels::{Depthwise, LANES, Madd, Out, Pointwise, Stem, mean_pool, out_size, zero_border};

/// Where one image's time goes in a [`FastNet`] ([`FastNet::stage_times`]), ms.
#[derive(Debug, Clone, PartialEq)]
pub struct StageTimes {
    /// The stem conv (with padding the input).
    pub stem_ms: f64,
    /// Each block, in order.
    pub blocks: Vec<BlockTimes>,
    /// The head 1×1 conv.
    pub head_ms: f64,
    /// Global average pool and the classifier.
    pub pool_fc_ms: f64,
}

/// One block's stages, ms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockTimes {
    /// The expand 1×1 conv (writing the depthwise conv's bordered input).
    pub expand_ms: f64,
    /// The depthwise conv.
    pub depthwise_ms: f64,
    /// The project 1×1 conv, with the residual addition fused when the block has one.
    pub project_ms: f64,
}

/// One inverted-residual block, ready to run.
#[derive(Debug, Clone)]
struct Block {
    expand: Pointwise,
    dw: Depthwise,
    project: Pointwise,
    residual: bool,
    /// Input side (square).
    side_in: usize,
    /// Output side.
    side_out: usize,
}

/// A BN-folded network ([`FoldedNet`]) compiled for fast CPU inference: NHWC kernels with bias,
/// activation and residual fused, no allocation per call. See the [module docs](self).
///
/// `Send + Sync`: share one across threads; each thread uses its own scratch.
#[derive(Debug, Clone)]
pub struct FastNet {
    in_channels: usize,
    resolution: usize,
    classes: usize,
    stem: Stem,
    blocks: Vec<Block>,
    head: Pointwise,
    /// Side of the head's input and output.
    head_side: usize,
    /// True head channels.
    head_channels: usize,
    /// `[classes, head_channels]`.
    fc_weight: Vec<f32>,
    /// `[classes]`.
    fc_bias: Vec<f32>,
    /// Floats each NHWC activation buffer needs.
    buf_len: usize,
    /// Floats the depthwise input buffer needs.
    planes_len: usize,
    /// Which copy of the kernels runs.
    isa: Isa,
}

/// Reusable per-thread buffers.
#[derive(Debug, Default)]
struct Scratch {
    /// The input image with a zero border.
    input: Vec<f32>,
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
    /// The depthwise input: blocked planes with a zero border. Only the expand convs write
    /// here, and only interiors, so the border stays zero while the geometry stays the same.
    planes: Vec<f32>,
    /// `(side, pad, blocks)` whose border `planes` holds zeroed, if any.
    zeroed: Option<(usize, usize, usize)>,
    pooled: Vec<f32>,
}

impl Scratch {
    fn fit(&mut self, input: usize, len: usize, planes: usize, pooled: usize) {
        if self.input.len() < input {
            self.input.resize(input, 0.0);
        }
        if self.planes.len() < planes {
            self.planes.resize(planes, 0.0);
            self.zeroed = None;
        }
        for v in [&mut self.a, &mut self.b, &mut self.c] {
            if v.len() < len {
                v.resize(len, 0.0);
            }
        }
        if self.pooled.len() < pooled {
            self.pooled.resize(pooled, 0.0);
        }
    }
}

thread_local! {
    static SCRATCH: Cell<Scratch> = Cell::new(Scratch::default());
}

/// Runs `f` with this thread's scratch (a fresh one if it is in use by an outer call or the
/// thread is shutting down). Taking the buffers out of a `Cell` cannot fail, unlike a
/// `RefCell` borrow.
fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    let mut s = SCRATCH.try_with(Cell::take).unwrap_or_default();
    let r = f(&mut s);
    let _ = SCRATCH.try_with(|c| c.set(s));
    r
}

/// What the engine needs to know about one conv layer.
struct ConvData {
    w: Vec<f32>,
    b: Vec<f32>,
    out: usize,
    in_per_group: usize,
    k: usize,
}

fn unsupported(layer: &str, reason: impl Into<String>) -> Error {
    Error::UnsupportedNet {
        layer: layer.to_string(),
        reason: reason.into(),
    }
}

fn read(name: &str, c: &FoldedConv) -> Result<ConvData> {
    let [out, in_per_group, kh, kw] = c.shape;
    if out == 0 || in_per_group == 0 {
        return Err(unsupported(
            name,
            format!("weight shape {:?} has no channels", c.shape),
        ));
    }
    if kh != kw || kh % 2 == 0 {
        return Err(unsupported(
            name,
            format!("kernel {kh}×{kw}: only square odd kernels are supported"),
        ));
    }
    if c.stride == 0 {
        return Err(unsupported(name, "stride 0"));
    }
    let want = out
        .checked_mul(in_per_group)
        .and_then(|n| n.checked_mul(kh * kw));
    if Some(c.weight.len()) != want || c.bias.len() != out {
        return Err(unsupported(
            name,
            format!(
                "weight has {} values for shape {:?} and bias {} values for {out} channels",
                c.weight.len(),
                c.shape,
                c.bias.len()
            ),
        ));
    }
    Ok(ConvData {
        w: c.weight.clone(),
        b: c.bias.clone(),
        out,
        in_per_group,
        k: kh,
    })
}

/// Reads a 1×1 dense conv with `c_in` inputs.
fn pointwise(name: &str, c: &FoldedConv, c_in: usize) -> Result<(Pointwise, usize)> {
    let d = read(name, c)?;
    if d.k != 1 || c.groups != 1 || c.stride != 1 || d.in_per_group != c_in {
        return Err(unsupported(
            name,
            format!(
                "expected a 1×1 stride-1 conv from {c_in} channels, got {}×{} stride {} groups {} from {} channels",
                d.k, d.k, c.stride, c.groups, d.in_per_group
            ),
        ));
    }
    Ok((Pointwise::new(&d.w, &d.b, d.out, c_in, c.act), d.out))
}

impl FastNet {
    /// Compiles a BN-folded network (as [`FoldedNet::from_safetensors`] decodes a variant
    /// file).
    ///
    /// # Errors
    /// [`Error::UnsupportedNet`] naming the layer: a layer whose shape does not chain (which no
    /// extracted network has).
    pub fn from_folded(net: &FoldedNet) -> Result<FastNet> {
        let in_channels = net.space.in_channels;
        let resolution = net.arch.resolution;
        if resolution == 0 || in_channels == 0 {
            return Err(unsupported(
                "input",
                "resolution and in_channels must be > 0",
            ));
        }
        let s = read("stem", &net.stem)?;
        if net.stem.groups != 1 || s.in_per_group != in_channels {
            return Err(unsupported(
                "stem",
                format!(
                    "expected a dense conv from {in_channels} channels, got groups {} from {}",
                    net.stem.groups, s.in_per_group
                ),
            ));
        }
        let stem = Stem::new(
            &s.w,
            &s.b,
            s.out,
            in_channels,
            s.k,
            net.stem.stride,
            net.stem.act,
        );
        let stem_side = out_size(resolution, s.k, net.stem.stride);
        let mut buf_len = stem_side * stem_side * stem.c_pad;
        let mut planes_len = 0;
        let (mut c, mut side) = (s.out, stem_side);
        let mut blocks = Vec::with_capacity(net.blocks.len());
        for (i, b) in net.blocks.iter().enumerate() {
            let (expand, hidden) = pointwise(&format!("blocks.{i}.expand"), &b.expand, c)?;
            let name = format!("blocks.{i}.dw");
            let d = read(&name, &b.dw)?;
            if d.out != hidden || b.dw.groups != hidden || d.in_per_group != 1 {
                return Err(unsupported(
                    &name,
                    format!(
                        "expected a depthwise conv over {hidden} channels, got {} channels in {} groups",
                        d.out, b.dw.groups
                    ),
                ));
            }
            let dw = Depthwise::new(&d.w, &d.b, hidden, d.k, b.dw.stride, b.dw.act);
            let side_out = out_size(side, d.k, b.dw.stride);
            let (project, c_out) = pointwise(&format!("blocks.{i}.project"), &b.project, hidden)?;
            if b.residual && (c_out != c || side_out != side) {
                return Err(unsupported(
                    &format!("blocks.{i}"),
                    format!(
                        "residual block maps {c}×{side}² to {c_out}×{side_out}²; a residual needs equal shapes"
                    ),
                ));
            }
            let pad = d.k / 2;
            planes_len = planes_len.max((side + 2 * pad) * (side + 2 * pad) * expand.n_pad);
            buf_len = buf_len
                .max(side_out * side_out * dw.c_pad)
                .max(side_out * side_out * project.n_pad);
            blocks.push(Block {
                expand,
                dw,
                project,
                residual: b.residual,
                side_in: side,
                side_out,
            });
            (c, side) = (c_out, side_out);
        }
        let (head, head_channels) = pointwise("head", &net.head, c)?;
        buf_len = buf_len.max(side * side * head.n_pad);
        let classes = net.fc_bias.len();
        if classes == 0 || net.fc_weight.len() != classes * head_channels {
            return Err(unsupported(
                "fc",
                format!(
                    "classifier has {} weights for {classes} classes; the head has {head_channels} channels",
                    net.fc_weight.len()
                ),
            ));
        }
        let (fc_weight, fc_bias) = (net.fc_weight.clone(), net.fc_bias.clone());
        Ok(FastNet {
            in_channels,
            resolution,
            classes,
            stem,
            blocks,
            head,
            head_side: side,
            head_channels,
            fc_weight,
            fc_bias,
            buf_len,
            planes_len,
            isa: Isa::detect(),
        })
    }

    /// Which copy of the kernels runs: `avx2+fma` (x86_64 with AVX2 and FMA, detected at run
    /// time) or `baseline` (the build target's own: SSE2 on x86_64, NEON with FMA on aarch64).
    pub fn kernels(&self) -> Isa {
        self.isa
    }

    /// The same network on the baseline kernels even where a faster copy was detected; for
    /// benchmarks and tests.
    #[doc(hidden)]
    pub fn with_baseline_kernels(mut self) -> Self {
        self.isa = Isa::Portable;
        self
    }

    /// Input channels.
    pub fn in_channels(&self) -> usize {
        self.in_channels
    }

    /// Input resolution (square).
    pub fn resolution(&self) -> usize {
        self.resolution
    }

    /// Number of classes (logits per image).
    pub fn num_classes(&self) -> usize {
        self.classes
    }

    /// Floats in a batch of `n` images: `n · in_channels · resolution²`.
    pub fn input_len(&self, n: usize) -> usize {
        n.saturating_mul(self.image_len())
    }

    fn image_len(&self) -> usize {
        self.in_channels * self.resolution * self.resolution
    }

    /// Logits of a batch.
    ///
    /// # Shapes
    /// `x: [n, in_channels, r, r]` (NCHW, row-major, as for [`PlainNet::forward`]) →
    /// `[n, classes]` row-major.
    ///
    /// # Errors
    /// [`Error::BadInput`] when `n` is 0 or `x` does not hold exactly `n` images.
    pub fn forward(&self, x: &[f32], n: usize) -> Result<Vec<f32>> {
        self.check_input(x, n)?;
        let mut out = vec![0.0; self.output_len(n)?];
        self.forward_into(x, n, &mut out)?;
        Ok(out)
    }

    fn output_len(&self, n: usize) -> Result<usize> {
        n.checked_mul(self.classes).ok_or_else(|| Error::BadInput {
            reason: format!("a batch of {n} images is too large"),
        })
    }

    fn check_input(&self, x: &[f32], n: usize) -> Result<()> {
        let (c, r) = (self.in_channels, self.resolution);
        if n == 0 || Some(x.len()) != n.checked_mul(self.image_len()) {
            return Err(Error::BadInput {
                reason: format!("expected {n}×{c}×{r}×{r} floats (n ≥ 1), got {}", x.len()),
            });
        }
        Ok(())
    }

    /// [`FastNet::forward`] into a caller's buffer of `n · classes` floats: allocates nothing
    /// once each thread's scratch has grown to this network's size.
    ///
    /// # Errors
    /// [`Error::BadInput`] when `n` is 0, `x` does not hold exactly `n` images, or `out` does not
    /// hold exactly `n · classes` floats.
    pub fn forward_into(&self, x: &[f32], n: usize, out: &mut [f32]) -> Result<()> {
        self.check_input(x, n)?;
        let img = self.image_len();
        let want = self.output_len(n)?;
        if out.len() != want {
            return Err(Error::BadInput {
                reason: format!(
                    "output buffer holds {} floats; {n} images × {} classes need {want}",
                    out.len(),
                    self.classes,
                ),
            });
        }
        if n == 1 || rayon::current_num_threads() <= 1 {
            with_scratch(|s| {
                for (x, out) in x.chunks_exact(img).zip(out.chunks_exact_mut(self.classes)) {
                    self.image(x, s, out, &mut || {});
                }
            });
        } else {
            x.par_chunks_exact(img)
                .zip(out.par_chunks_exact_mut(self.classes))
                .for_each(|(x, out)| with_scratch(|s| self.image(x, s, out, &mut || {})));
        }
        Ok(())
    }

    /// Where one image's time goes, stage by stage, with the engine's own kernels: the median
    /// over `reps` runs (after one warm-up) of each stage's time, on the calling thread. This is
    /// what the search's latency table is measured with, so it predicts the engine that ships.
    ///
    /// # Errors
    /// [`Error::BadInput`] when `x` is not one `[c, r, r]` image.
    pub fn stage_times(&self, x: &[f32], reps: usize) -> Result<StageTimes> {
        self.check_input(x, 1)?;
        let stages = 3 + 3 * self.blocks.len();
        let mut runs: Vec<Vec<f64>> = vec![Vec::with_capacity(reps); stages];
        let mut out = vec![0.0; self.classes];
        with_scratch(|s| {
            for rep in 0..=reps.max(1) {
                let mut marks = Vec::with_capacity(stages + 1);
                marks.push(std::time::Instant::now());
                self.image(x, s, &mut out, &mut || {
                    marks.push(std::time::Instant::now())
                });
                if rep == 0 {
                    continue; // warm-up
                }
                for (i, w) in marks.windows(2).enumerate().take(stages) {
                    runs[i].push((w[1] - w[0]).as_secs_f64() * 1e3);
                }
            }
        });
        let mut m: Vec<f64> = runs
            .iter()
            .map(|v| device_profiles::bench::median(v).unwrap_or(0.0))
            .collect();
        let tail = m.split_off(1 + 3 * self.blocks.len());
        let stem_ms = m[0];
        let blocks = m[1..]
            .chunks_exact(3)
            .map(|b| BlockTimes {
                expand_ms: b[0],
                depthwise_ms: b[1],
                project_ms: b[2],
            })
            .collect();
        Ok(StageTimes {
            stem_ms,
            blocks,
            head_ms: tail[0],
            pool_fc_ms: tail[1],
        })
    }

    /// One image: `x` is `[c, r, r]`, `out` is `[classes]`; shapes already checked. `mark` is
    /// called after each stage (stem; each block's expand, depthwise, project; head; pool + fc).
    fn image(&self, x: &[f32], s: &mut Scratch, out: &mut [f32], mark: &mut dyn FnMut()) {
        s.fit(
            self.stem.padded_len(self.resolution),
            self.buf_len,
            self.planes_len,
            self.head.n_pad,
        );
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            // SAFETY: `Isa::detect` picks `Avx2Fma` only on a CPU with AVX2 and FMA.
            Isa::Avx2Fma => unsafe { self.image_avx2_fma(x, s, out, mark) },
            Isa::Portable => self
                .image_with::<PortableMadd, PORTABLE_ROWS, { 2 * PORTABLE_ROWS }, PORTABLE_PIXELS>(
                    x, s, out, mark,
                ),
        }
    }

    /// [`FastNet::image_with`] compiled for AVX2 + FMA: 8-wide vectors and fused multiply-adds.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn image_avx2_fma(&self, x: &[f32], s: &mut Scratch, out: &mut [f32], mark: &mut dyn FnMut()) {
        self.image_with::<kernels::Fused, 4, 8, 8>(x, s, out, mark)
    }

    /// The network over one image, every kernel inlined (so a `target_feature` caller compiles
    /// them all for its instruction set). `M`: multiply-add flavour; `R`, `R2`: rows per 1×1
    /// tile of 16 and of 8 channels; `P`: pixels per depthwise / stem tile (of 8 channels).
    #[inline(always)]
    fn image_with<M: Madd, const R: usize, const R2: usize, const P: usize>(
        &self,
        x: &[f32],
        s: &mut Scratch,
        out: &mut [f32],
        mark: &mut dyn FnMut(),
    ) {
        let r = self.resolution;
        self.stem.pad_input(x, r, &mut s.input);
        self.stem.run::<M, P>(&s.input, r, &mut s.a);
        mark();
        for b in &self.blocks {
            let (side, pad) = (b.side_in, b.dw.k / 2);
            let geometry = (side, pad, b.expand.n_pad / LANES);
            if s.zeroed != Some(geometry) {
                zero_border(&mut s.planes, side, pad, geometry.2);
                s.zeroed = Some(geometry);
            }
            b.expand.run::<M, R, R2>(
                &s.a,
                side * side,
                None,
                &mut s.planes,
                Out::planes(side, pad),
            );
            mark();
            b.dw.run::<M, P>(&s.planes, side, &mut s.c);
            mark();
            let res = if b.residual { Some(&s.a[..]) } else { None };
            let out = Out::nhwc(b.side_out, b.project.n_pad / LANES);
            b.project
                .run::<M, R, R2>(&s.c, b.side_out * b.side_out, res, &mut s.b, out);
            std::mem::swap(&mut s.a, &mut s.b);
            mark();
        }
        let hw = self.head_side * self.head_side;
        self.head.run::<M, R, R2>(
            &s.a,
            hw,
            None,
            &mut s.b,
            Out::nhwc(hw, self.head.n_pad / LANES),
        );
        mark();
        let pooled = &mut s.pooled[..self.head.n_pad];
        mean_pool(&s.b, hw, pooled);
        kernels::linear(
            &self.fc_weight,
            &self.fc_bias,
            &pooled[..self.head_channels],
            out,
        );
        mark();
    }
}

/// Which copy of the kernels a [`FastNet`] runs, chosen once when it is built
/// ([`FastNet::kernels`]). Written (`Display`, serde) as `baseline` or `avx2+fma`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Isa {
    /// Compiled for the build's baseline target (SSE2 on x86_64, NEON on aarch64).
    #[serde(rename = "baseline")]
    Portable,
    /// x86_64 with AVX2 and FMA, detected at run time.
    #[cfg(target_arch = "x86_64")]
    #[serde(rename = "avx2+fma")]
    Avx2Fma,
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Isa::Portable => "baseline",
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => "avx2+fma",
        })
    }
}

impl Isa {
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Isa::Avx2Fma;
        }
        Isa::Portable
    }
}

// aarch64 always has FMA and 32 vector registers: fused multiply-adds, 4 rows × 16 channels
// (16 registers) per 1×1 tile, 8 pixels × 8 channels (16 registers) per depthwise tile.
#[cfg(target_arch = "aarch64")]
type PortableMadd = kernels::Fused;
#[cfg(target_arch = "aarch64")]
const PORTABLE_ROWS: usize = 4;
#[cfg(target_arch = "aarch64")]
const PORTABLE_PIXELS: usize = 8;
// Elsewhere (baseline x86_64: SSE2, 16 registers): a multiply and an add, 2 × 16 and 4 × 8
// tiles (8 registers of accumulators each).
#[cfg(not(target_arch = "aarch64"))]
type PortableMadd = kernels::Split;
#[cfg(not(target_arch = "aarch64"))]
const PORTABLE_ROWS: usize = 2;
#[cfg(not(target_arch = "aarch64"))]
const PORTABLE_PIXELS: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_are_named_alike_in_text_and_json() {
        let mut all = vec![(Isa::Portable, "baseline")];
        #[cfg(target_arch = "x86_64")]
        all.push((Isa::Avx2Fma, "avx2+fma"));
        for (isa, name) in all {
            assert_eq!(isa.to_string(), name);
            assert_eq!(serde_json::to_string(&isa).unwrap(), format!("\"{name}\""));
        }
    }

    #[test]
    fn scratch_is_reused_and_nesting_gets_a_fresh_one() {
        let inner = with_scratch(|s| {
            s.fit(1, 4, 1, 1);
            with_scratch(|t| t.a.len())
        });
        assert_eq!(inner, 0);
        assert!(with_scratch(|s| s.a.len()) >= 4);
    }
}
