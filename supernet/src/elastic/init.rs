//! Seeded weight initialisation (our own RNG, so a run is reproducible from its seed whatever
//! the backend).

use burn::prelude::*;
use rand::Rng;

/// A tensor of N(0, std²) samples drawn from `rng` (Box–Muller).
pub(crate) fn normal<const D: usize, R: Rng + ?Sized>(
    shape: [usize; D],
    std: f32,
    rng: &mut R,
    device: &Device,
) -> Tensor<D> {
    let n: usize = shape.iter().product();
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        let u1: f32 = rng.random::<f32>().max(1e-7);
        let u2: f32 = rng.random::<f32>();
        let r = (-2.0 * u1.ln()).sqrt();
        let t = 2.0 * std::f32::consts::PI * u2;
        v.push(r * t.cos() * std);
        if v.len() < n {
            v.push(r * t.sin() * std);
        }
    }
    Tensor::<D>::from_data(TensorData::new(v, shape), device)
}
