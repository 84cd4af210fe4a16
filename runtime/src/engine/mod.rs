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
//!   allocates nothing but its output (and [`FastNet::forward_into`] not even that). A larger
//!   batch is split over rayon's current pool (or the network's own, below), one image per task,
//!   each worker on its own scratch.
//!
//! # Threads for one image
//! [`FastNet::with_threads`] gives one image `T` threads: a rayon pool of `T` threads per count,
//! shared by the process's networks and warmed when it is made (never inside a timed call). The
//! image runs inside that pool and each stage (stem, expand, depthwise, project, head) big enough
//! to pay — at least [`MIN_PART_MACS`] multiply-adds per part — is split into up to `T` parts
//! with `rayon::join`: the stem and the depthwise conv by output rows, the project and head 1×1
//! convs by GEMM rows (pixels; whole tiles), the expand conv by output channels (its output is the
//! depthwise conv's blocked planes, one contiguous plane per 8 channels). Each part writes its
//! own slice of the output, so the split is safe Rust; every output value is summed in the same
//! order as on one thread, so all thread counts give the same bits. How many threads pay is the
//! runtime's decision per variant and device (`runtime::inference_threads`).
//!
//! # Instruction sets
//! The kernels are plain safe Rust, generic over the tile sizes and over how a multiply-add is
//! done. The build target's own copy ("baseline") is what runs on aarch64 (NEON, with fused
//! multiply-adds, which every aarch64 CPU has; 4 × 16 and 8-pixel tiles for its 32 registers)
//! and on x86_64 CPUs without AVX2 (SSE2, separate multiply and add, smaller tiles for its 16
//! registers). On x86_64 a second copy is compiled with AVX2 + FMA enabled and chosen at run
//! time when the CPU has both: about 1.8× the baseline on the dev host. Calling it is the
//! engine's only `unsafe`, one line (the dispatch of one stage part) that relies on that run-time
//! check.
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
//! #             blocks.push(FoldedBlock { expand, dw, project, residual: block_has_residual(&space, &arch, s, b) });
//! #         }
//! #     }
//! #     let head = convs.next().unwrap();
//! #     FoldedNet { fc_weight: vec![0.1; 3 * space.head_channels], fc_bias: vec![0.0; 3],
//! #         space, arch, stem, blocks, head }.to_safetensors(false)
//! # }
//! ```

mod kernels;

use std::cell::Cell;
use std::ops::Range;
use std::sync::{Arc, Mutex};

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
/// `Send + Sync`: share one across threads; each thread uses its own scratch. One image runs on
/// [`FastNet::threads`] threads (1 unless [`FastNet::with_threads`] says otherwise).
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
    /// The pool one image's stages are split over; `None`: one thread (the caller's).
    pool: Option<Arc<rayon::ThreadPool>>,
    /// The least work of a part of a split stage ([`MIN_PART_MACS`]).
    min_part_macs: usize,
    /// Some stage of one image is split at the pool's thread count: otherwise one image runs on
    /// the calling thread (handing it to the pool costs more than a tiny net's whole run).
    splits: bool,
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
            pool: None,
            min_part_macs: MIN_PART_MACS,
            splits: false,
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

    /// The same network running one image on `threads` threads: each stage big enough to pay
    /// (at least [`MIN_PART_MACS`] multiply-adds per part) is split into up to `threads` parts
    /// (output rows, GEMM rows or output channels) on a pool of that many threads, shared by
    /// every network of the process that asks for the same count and started (warmed) here,
    /// outside any timed call. 1 runs on the calling thread. Results are the same bits at
    /// every count (each output value is summed in the same order).
    ///
    /// # Errors
    /// [`Error::BadInput`] for 0 threads; [`Error::EngineThreads`] when the pool's threads
    /// cannot be started.
    pub fn with_threads(mut self, threads: usize) -> Result<Self> {
        self.set_threads(threads)?;
        Ok(self)
    }

    /// [`FastNet::with_threads`] in place; on an error the network keeps its threads.
    ///
    /// # Errors
    /// See [`FastNet::with_threads`].
    pub fn set_threads(&mut self, threads: usize) -> Result<()> {
        self.pool = match threads {
            // rayon would read 0 as "one per CPU"
            0 => {
                return Err(Error::BadInput {
                    reason: "0 inference threads: ask for 1 or more".into(),
                });
            }
            1 => None,
            n => Some(pool_of(n)?),
        };
        self.splits = self.stage_parts().iter().any(|&p| p > 1);
        Ok(())
    }

    /// Into how many parts each stage of one image is split at [`FastNet::threads`] (stem; each
    /// block's expand, depthwise and project; head), for tests and benchmarks.
    #[doc(hidden)]
    pub fn stage_parts(&self) -> Vec<usize> {
        let t = self.threads();
        std::iter::once(Stage::Stem)
            .chain(
                (0..self.blocks.len())
                    .flat_map(|i| [Stage::Expand(i), Stage::Depthwise(i), Stage::Project(i)]),
            )
            .chain(std::iter::once(Stage::Head))
            .map(|s| self.plan(s).parts(t, self.min_part_macs))
            .collect()
    }

    /// The same network with another work threshold for splitting a stage (default
    /// [`MIN_PART_MACS`]); for measuring where splitting pays.
    #[doc(hidden)]
    pub fn with_min_part_macs(mut self, macs: usize) -> Self {
        self.min_part_macs = macs.max(1);
        self.splits = self.stage_parts().iter().any(|&p| p > 1);
        self
    }

    /// Threads one image runs on ([`FastNet::with_threads`]; 1 by default).
    pub fn threads(&self) -> usize {
        self.pool.as_ref().map_or(1, |p| p.current_num_threads())
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
        match &self.pool {
            // One image over this network's pool: the stages split inside.
            Some(pool) if n == 1 && self.splits => pool.install(|| {
                let threads = rayon::current_num_threads();
                with_scratch(|s| self.image(x, s, out, &mut || {}, threads));
            }),
            // One image no stage of which splits: on the calling thread.
            Some(_) if n == 1 => with_scratch(|s| self.image(x, s, out, &mut || {}, 1)),
            // A batch: one image per task, on this network's pool or else rayon's current one.
            Some(pool) => pool.install(|| self.batch(x, out)),
            None if n > 1 && rayon::current_num_threads() > 1 => self.batch(x, out),
            None => with_scratch(|s| {
                for (x, out) in x.chunks_exact(img).zip(out.chunks_exact_mut(self.classes)) {
                    self.image(x, s, out, &mut || {}, 1);
                }
            }),
        }
        Ok(())
    }

    /// A batch over rayon's current pool, one image per task (each on one thread).
    fn batch(&self, x: &[f32], out: &mut [f32]) {
        x.par_chunks_exact(self.image_len())
            .zip(out.par_chunks_exact_mut(self.classes))
            .for_each(|(x, out)| with_scratch(|s| self.image(x, s, out, &mut || {}, 1)));
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
                self.image(
                    x,
                    s,
                    &mut out,
                    &mut || marks.push(std::time::Instant::now()),
                    1,
                );
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
    /// `threads` > 1 only inside this network's pool (see [`FastNet::forward_into`]): each
    /// stage big enough to pay is split into that many parts with `rayon::join`.
    fn image(
        &self,
        x: &[f32],
        s: &mut Scratch,
        out: &mut [f32],
        mark: &mut dyn FnMut(),
        threads: usize,
    ) {
        s.fit(
            self.stem.padded_len(self.resolution),
            self.buf_len,
            self.planes_len,
            self.head.n_pad,
        );
        self.stem.pad_input(x, self.resolution, &mut s.input);
        self.stage(Stage::Stem, s, threads);
        mark();
        for (i, b) in self.blocks.iter().enumerate() {
            let geometry = (b.side_in, b.dw.k / 2, b.expand.n_pad / LANES);
            if s.zeroed != Some(geometry) {
                zero_border(&mut s.planes, geometry.0, geometry.1, geometry.2);
                s.zeroed = Some(geometry);
            }
            self.stage(Stage::Expand(i), s, threads);
            mark();
            self.stage(Stage::Depthwise(i), s, threads);
            mark();
            self.stage(Stage::Project(i), s, threads);
            std::mem::swap(&mut s.a, &mut s.b);
            mark();
        }
        self.stage(Stage::Head, s, threads);
        mark();
        let hw = self.head_side * self.head_side;
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

    /// How `stage` splits: its output as `units` of `unit_len` floats each (rows of the map,
    /// GEMM rows, or channel blocks), part boundaries on multiples of `align` units, and its
    /// multiply-adds.
    fn plan(&self, stage: Stage) -> Split {
        let r = self.resolution;
        match stage {
            Stage::Stem => {
                let ro = out_size(r, self.stem.k, self.stem.stride);
                Split {
                    units: ro,
                    unit_len: ro * self.stem.c_pad,
                    align: 1,
                    macs: ro * ro * self.stem.c_pad * self.stem.k * self.stem.k * self.stem.c_in,
                }
            }
            Stage::Expand(i) => {
                let b = &self.blocks[i];
                let sp = b.side_in + 2 * (b.dw.k / 2);
                Split {
                    units: b.expand.n_pad / LANES,
                    unit_len: sp * sp * LANES,
                    align: 2,
                    macs: b.side_in * b.side_in * b.expand.k * b.expand.n_pad,
                }
            }
            Stage::Depthwise(i) => {
                let b = &self.blocks[i];
                Split {
                    units: b.side_out,
                    unit_len: b.side_out * b.dw.c_pad,
                    align: 1,
                    macs: b.side_out * b.side_out * b.dw.c_pad * b.dw.k * b.dw.k,
                }
            }
            Stage::Project(i) => {
                let b = &self.blocks[i];
                let m = b.side_out * b.side_out;
                Split {
                    units: m,
                    unit_len: b.project.n_pad,
                    align: GEMM_ROW_ALIGN,
                    macs: m * b.project.k * b.project.n_pad,
                }
            }
            Stage::Head => {
                let m = self.head_side * self.head_side;
                Split {
                    units: m,
                    unit_len: self.head.n_pad,
                    align: GEMM_ROW_ALIGN,
                    macs: m * self.head.k * self.head.n_pad,
                }
            }
        }
    }

    /// Runs one stage over the scratch buffers, in as many parts as pay (at most `threads`).
    fn stage(&self, stage: Stage, s: &mut Scratch, threads: usize) {
        let plan = self.plan(stage);
        let Scratch {
            input,
            a,
            b,
            c,
            planes,
            ..
        } = s;
        let (x, res, y): (&[f32], Option<&[f32]>, &mut [f32]) = match stage {
            Stage::Stem => (input, None, a),
            Stage::Expand(_) => (a, None, planes),
            Stage::Depthwise(_) => (planes, None, c),
            Stage::Project(i) => (c, self.blocks[i].residual.then_some(&a[..]), b),
            Stage::Head => (a, None, b),
        };
        let y = &mut y[..plan.units * plan.unit_len];
        let io = StageIo { stage, x, res };
        let parts = plan.parts(threads, self.min_part_macs);
        self.split(&io, y, 0..plan.units, parts, &plan);
    }

    /// Units `units` of a stage in `parts` parts: halves run through `rayon::join` (on the pool
    /// the caller is in), each part over its own slice of the output.
    fn split(
        &self,
        io: &StageIo<'_>,
        y: &mut [f32],
        units: Range<usize>,
        parts: usize,
        plan: &Split,
    ) {
        if parts <= 1 {
            return self.part(io, y, units);
        }
        let left = parts / 2;
        let cut = units.len() * left / parts;
        let mid = (units.start + cut.div_ceil(plan.align) * plan.align).min(units.end);
        let (ly, ry) = y.split_at_mut((mid - units.start) * plan.unit_len);
        rayon::join(
            || self.split(io, ly, units.start..mid, left, plan),
            || self.split(io, ry, mid..units.end, parts - left, plan),
        );
    }

    /// One part of a stage with the kernels of this CPU.
    fn part(&self, io: &StageIo<'_>, y: &mut [f32], units: Range<usize>) {
        if units.is_empty() {
            return;
        }
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            // SAFETY: `Isa::detect` picks `Avx2Fma` only on a CPU with AVX2 and FMA.
            Isa::Avx2Fma => unsafe { self.part_avx2_fma(io, y, units) },
            Isa::Portable => self
                .part_with::<PortableMadd, PORTABLE_ROWS, { 2 * PORTABLE_ROWS }, PORTABLE_PIXELS>(
                    io, y, units,
                ),
        }
    }

    /// [`FastNet::part_with`] compiled for AVX2 + FMA: 8-wide vectors and fused multiply-adds.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn part_avx2_fma(&self, io: &StageIo<'_>, y: &mut [f32], units: Range<usize>) {
        self.part_with::<kernels::Fused, 4, 8, 8>(io, y, units)
    }

    /// Units `units` of a stage into `y` (which starts at the first of them), every kernel
    /// inlined (so a `target_feature` caller compiles them for its instruction set). `M`:
    /// multiply-add flavour; `R`, `R2`: rows per 1×1 tile of 16 and of 8 channels; `P`: pixels
    /// per depthwise / stem tile (of 8 channels). Each output value is summed in the same order
    /// whatever the split, so every thread count gives the same bits.
    #[inline(always)]
    fn part_with<M: Madd, const R: usize, const R2: usize, const P: usize>(
        &self,
        io: &StageIo<'_>,
        y: &mut [f32],
        units: Range<usize>,
    ) {
        /// GEMM rows `units` of a 1×1 conv whose output is dense NHWC.
        #[inline(always)]
        fn rows<M: Madd, const R: usize, const R2: usize>(
            pw: &Pointwise,
            io: &StageIo<'_>,
            y: &mut [f32],
            units: Range<usize>,
        ) {
            let x = &io.x[units.start * pw.k_stride..units.end * pw.k_stride];
            let res = io
                .res
                .map(|r| &r[units.start * pw.n_pad..units.end * pw.n_pad]);
            let m = units.len();
            pw.run::<M, R, R2>(x, m, res, y, Out::nhwc(m, pw.n_pad / LANES));
        }
        match io.stage {
            Stage::Stem => self.stem.run_rows::<M, P>(io.x, self.resolution, y, units),
            Stage::Expand(i) => {
                let b = &self.blocks[i];
                let out = Out::planes(b.side_in, b.dw.k / 2).from_block(units.start);
                let m = b.side_in * b.side_in;
                b.expand
                    .run_blocks::<M, R, R2>(io.x, m, None, y, out, units);
            }
            Stage::Depthwise(i) => {
                let b = &self.blocks[i];
                b.dw.run_rows::<M, P>(io.x, b.side_in, y, units);
            }
            Stage::Project(i) => rows::<M, R, R2>(&self.blocks[i].project, io, y, units),
            Stage::Head => rows::<M, R, R2>(&self.head, io, y, units),
        }
    }
}

/// One stage of the network: the unit of work a thread count splits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Stem,
    Expand(usize),
    Depthwise(usize),
    Project(usize),
    Head,
}

/// A stage's inputs (its output goes to the caller's slice).
struct StageIo<'a> {
    stage: Stage,
    x: &'a [f32],
    /// The residual added after the activation (project convs of residual blocks).
    res: Option<&'a [f32]>,
}

/// How a stage splits (see [`FastNet::plan`]).
#[derive(Debug, Clone, Copy)]
struct Split {
    units: usize,
    unit_len: usize,
    align: usize,
    macs: usize,
}

impl Split {
    /// Parts worth running for `threads` threads: at most one per `min_macs` multiply-adds
    /// and per `align` units, at most `threads`.
    fn parts(&self, threads: usize, min_macs: usize) -> usize {
        if threads <= 1 {
            return 1;
        }
        (self.macs / min_macs.max(1))
            .min(self.units / self.align.max(1))
            .clamp(1, threads)
    }
}

/// The least work (multiply-adds) a part of a split stage gets: below it, waking a thread and
/// joining it costs more than it saves (measured on the dev host, BENCHMARKS.md issue 12).
pub const MIN_PART_MACS: usize = 32 * 1024;

/// Part boundaries of a 1×1 conv split by GEMM rows fall on multiples of this (whole tiles).
const GEMM_ROW_ALIGN: usize = 8;

/// The process's engine pools, one per thread count asked for, kept for the process's life
/// (a handful at most: counts are bounded by the device's big cores).
static POOLS: Mutex<Vec<Arc<rayon::ThreadPool>>> = Mutex::new(Vec::new());

/// The pool of `threads` threads, started and warmed (each thread has run a job, so none is
/// created during an inference).
fn pool_of(threads: usize) -> Result<Arc<rayon::ThreadPool>> {
    // A poisoned lock only means another thread panicked while pushing: the list is valid.
    let mut pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = pools.iter().find(|p| p.current_num_threads() == threads) {
        return Ok(Arc::clone(p));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("tierforge-engine-{i}"))
        .build()
        .map_err(|source| Error::EngineThreads {
            requested: threads,
            source,
        })?;
    pool.broadcast(|_| ());
    let pool = Arc::new(pool);
    pools.push(Arc::clone(&pool));
    Ok(pool)
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
