//! Augmentation (pad + random crop, horizontal flip) and allocation-free batching.

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::dataset::Dataset;
use crate::preprocess::{normalize_u8, resize_bilinear};

/// Training-time augmentation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Augment {
    /// Zero-padding (in pixels) before a random crop back to the original size; 0 = off.
    pub pad: usize,
    /// Random horizontal flip (turn off for digits and text).
    pub hflip: bool,
}

impl Default for Augment {
    fn default() -> Self {
        Augment {
            pad: 2,
            hflip: true,
        }
    }
}

impl Augment {
    /// No augmentation.
    pub fn none() -> Self {
        Augment {
            pad: 0,
            hflip: false,
        }
    }
}

/// Turns dataset images into normalised f32 batches, reusing its buffers.
#[derive(Debug, Clone)]
pub struct Batcher {
    /// Per-channel mean of pixels / 255.
    pub mean: Vec<f32>,
    /// Per-channel std of pixels / 255.
    pub std: Vec<f32>,
    buf: Vec<f32>,
    resized: Vec<f32>,
    labels: Vec<i64>,
    dims: [usize; 4],
    /// One augmented u8 image.
    shifted: Vec<u8>,
}

impl Batcher {
    /// A batcher normalising with `mean` / `std`.
    pub fn new(mean: Vec<f32>, std: Vec<f32>) -> Self {
        Batcher {
            mean,
            std,
            buf: Vec::new(),
            resized: Vec::new(),
            labels: Vec::new(),
            dims: [0; 4],
            shifted: Vec::new(),
        }
    }

    /// Fills the batch of images `idx` at native size, augmenting with `aug` when `rng` is
    /// given. Returns the pixels `[n, c, h, w]` and labels.
    pub fn fill<R: Rng + ?Sized>(
        &mut self,
        ds: &Dataset,
        idx: &[usize],
        aug: Augment,
        mut rng: Option<&mut R>,
    ) -> (&[f32], &[i64]) {
        let (c, h, w) = (ds.channels, ds.height, ds.width);
        let il = c * h * w;
        self.buf.clear();
        self.buf.resize(idx.len() * il, 0.0);
        self.labels.clear();
        self.dims = [idx.len(), c, h, w];
        self.shifted.resize(il, 0);
        for (bi, &i) in idx.iter().enumerate() {
            let img = ds.image(i);
            self.labels.push(ds.labels[i] as i64);
            let (dy, dx, flip) = match rng.as_deref_mut() {
                Some(r) => {
                    let p = aug.pad as i64;
                    let dy = if p > 0 {
                        r.random_range(-p..=p) as isize
                    } else {
                        0
                    };
                    let dx = if p > 0 {
                        r.random_range(-p..=p) as isize
                    } else {
                        0
                    };
                    (dy, dx, aug.hflip && r.random_bool(0.5))
                }
                None => (0, 0, false),
            };
            let out = &mut self.buf[bi * il..(bi + 1) * il];
            // pad + crop + flip on the u8 pixels (a padded pixel is 0), then the one
            // normalisation the runtime uses too
            let src = if (dy, dx, flip) == (0, 0, false) {
                img
            } else {
                shift_crop_flip(img, (c, h, w), (dy, dx, flip), &mut self.shifted);
                &self.shifted
            };
            normalize_u8(src, c, &self.mean, &self.std, out);
        }
        (&self.buf, &self.labels)
    }

    /// `[n, c, h, w]` of the last filled batch (zeros before the first).
    pub fn dims(&self) -> [usize; 4] {
        self.dims
    }

    /// The labels of the last filled batch.
    pub fn labels(&self) -> &[i64] {
        &self.labels
    }

    /// The last filled batch resized to `r`×`r` (no copy when `r` is the native size).
    pub fn resized(&mut self, n: usize, c: usize, h: usize, w: usize, r: usize) -> &[f32] {
        if r == h && r == w {
            return &self.buf;
        }
        resize_bilinear(&self.buf, n, c, h, w, r, &mut self.resized);
        &self.resized
    }
}

/// `img` (`[c, h, w]` u8) shifted by `(dy, dx)` (pixels from outside are 0) and mirrored
/// horizontally when `flip`, into `out` (same size).
fn shift_crop_flip(
    img: &[u8],
    (c, h, w): (usize, usize, usize),
    (dy, dx, flip): (isize, isize, bool),
    out: &mut [u8],
) {
    for ch in 0..c {
        let plane = &img[ch * h * w..(ch + 1) * h * w];
        let o = &mut out[ch * h * w..(ch + 1) * h * w];
        for y in 0..h {
            let sy = y as isize + dy;
            for x in 0..w {
                let xx = if flip { w - 1 - x } else { x };
                let sx = xx as isize + dx;
                o[y * w + x] = if sy >= 0 && sy < h as isize && sx >= 0 && sx < w as isize {
                    plane[sy as usize * w + sx as usize]
                } else {
                    0
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn ds() -> Dataset {
        Dataset {
            images: (0..2 * 4 * 4).map(|i| (i * 8) as u8).collect(),
            labels: vec![1, 0],
            channels: 1,
            height: 4,
            width: 4,
            class_names: vec!["a".into(), "b".into()],
        }
    }

    #[test]
    fn no_aug_normalises_exactly() {
        let d = ds();
        let mut b = Batcher::new(vec![0.0], vec![1.0]);
        let (x, y) = b.fill::<rand_chacha::ChaCha8Rng>(&d, &[1, 0], Augment::none(), None);
        assert_eq!(y, &[0, 1]);
        assert!((x[0] - 128.0 / 255.0).abs() < 1e-6);
        assert!((x[16] - 0.0).abs() < 1e-6);
    }

    #[test]
    fn flip_only_mirrors_rows_and_seed_reproduces() {
        let d = ds();
        let mut b = Batcher::new(vec![0.0], vec![1.0]);
        let aug = Augment {
            pad: 0,
            hflip: true,
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let mut seen_flip = false;
        for _ in 0..8 {
            let (x, _) = b.fill(&d, &[0], aug, Some(&mut rng));
            let row: Vec<f32> = x[0..4].to_vec();
            if row[0] > row[3] {
                seen_flip = true;
                assert!((row[0] - 24.0 / 255.0).abs() < 1e-6);
            }
        }
        assert!(seen_flip);
        let mut r1 = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let mut r2 = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let a = b
            .fill(&d, &[0, 1], Augment::default(), Some(&mut r1))
            .0
            .to_vec();
        let c = b
            .fill(&d, &[0, 1], Augment::default(), Some(&mut r2))
            .0
            .to_vec();
        assert_eq!(a, c);
    }

    #[test]
    fn an_unaugmented_batch_is_what_the_runtime_feeds_the_network() {
        // a 3-channel image with per-channel statistics, CHW as datasets hold it
        let (c, side) = (3, 4);
        let plane = side * side;
        let chw: Vec<u8> = (0..c * plane).map(|i| (i * 53 % 256) as u8).collect();
        let d = Dataset {
            images: chw.clone(),
            labels: vec![0],
            channels: c,
            height: side,
            width: side,
            class_names: vec!["a".into()],
        };
        let (mean, std) = (vec![0.4, 0.5, 0.6], vec![0.2, 0.25, 0.3]);
        let mut b = Batcher::new(mean.clone(), std.clone());
        let x = b
            .fill::<rand_chacha::ChaCha8Rng>(&d, &[0], Augment::none(), None)
            .0
            .to_vec();
        // the same image as an app holds it (HWC) through the runtime's one function
        let hwc: Vec<u8> = (0..plane)
            .flat_map(|p| (0..c).map(move |ch| ch * plane + p))
            .map(|i| chw[i])
            .collect();
        let (mut scratch, mut resized, mut want) = (Vec::new(), Vec::new(), Vec::new());
        crate::preprocess::prepare_image(
            crate::preprocess::ImageRef {
                pixels: &hwc,
                width: side,
                height: side,
                channels: c,
            },
            crate::preprocess::InputSpec {
                channels: c,
                resolution: side,
                mean: &mean,
                std: &std,
            },
            &mut scratch,
            &mut resized,
            &mut want,
        )
        .unwrap();
        assert_eq!(x, want);
        let first = (f32::from(chw[plane]) / 255.0 - 0.5) / 0.25;
        assert!((x[plane] - first).abs() < 1e-6, "{} vs {first}", x[plane]);
    }
}
