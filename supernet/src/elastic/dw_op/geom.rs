//! The geometry of one depthwise conv: sizes, padding, the output plane and the polyphase
//! layout the direct kernels work in.

/// Geometry of one depthwise conv: sizes, padded plane and output plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "fast-dw"), allow(dead_code))]
pub(super) struct Geom {
    pub(super) n: usize,
    pub(super) c: usize,
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) k: usize,
    pub(super) s: usize,
    pub(super) p: usize,
    pub(super) oh: usize,
    pub(super) ow: usize,
    /// Phase plane size: `⌈(h + 2p) / s⌉ × ⌈(w + 2p) / s⌉`.
    pub(super) hq: usize,
    pub(super) wq: usize,
    /// Per column phase `b < s`: first input column, first phase column, count.
    pub(super) cols: [(usize, usize, usize); MAX_STRIDE],
    /// Per tap `kh·k + kw`: offset of its input window in the phase buffer.
    pub(super) taps: [usize; MAX_K * MAX_K],
}

/// The direct kernels handle strides 1 and 2 and kernels up to 7 (others: `conv2d`).
pub(super) const MAX_STRIDE: usize = 2;
pub(super) const MAX_K: usize = 7;

#[cfg_attr(not(feature = "fast-dw"), allow(dead_code))]
impl Geom {
    /// `None` when the shapes are not a canonical odd-kernel depthwise conv.
    pub(super) fn new(x: &[usize], w: &[usize], stride: usize) -> Option<Self> {
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
    pub(super) fn span(&self) -> usize {
        (self.oh - 1) * self.wq + self.ow
    }

    pub(super) fn planes(&self) -> usize {
        self.n * self.c
    }
}
