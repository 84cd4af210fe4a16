//! Learnable toy images for tests and examples: a seeded pattern with one bright bar whose row
//! is the label, so a tiny net learns it in a few steps. The one generator of the workspace's
//! toy datasets (`fixtures` re-exports it; supernet's own unit tests use it directly).

use super::Dataset;

/// A learnable toy image of `size`² (one channel): a seeded pattern in 0..50 with a bright bar
/// (250) at row `2·label + 1` (mod `size`).
pub fn toy_image(label: usize, size: usize, seed: usize) -> Vec<u8> {
    let mut v: Vec<u8> = (0..size * size)
        .map(|p| ((p * 37 + seed * 101) % 50) as u8)
        .collect();
    let row = (2 * label + 1) % size;
    v[row * size..(row + 1) * size].fill(250);
    v
}

/// `n` [`toy_image`]s as a dataset: labels cycle through `classes`, image `i` is seeded with
/// `seed + i`.
pub fn toy_dataset(n: usize, size: usize, classes: usize, seed: usize) -> Dataset {
    let classes = classes.max(1);
    Dataset {
        images: (0..n)
            .flat_map(|i| toy_image(i % classes, size, seed + i))
            .collect(),
        labels: (0..n).map(|i| (i % classes) as u16).collect(),
        channels: 1,
        height: size,
        width: size,
        class_names: (0..classes).map(|c| format!("c{c}")).collect(),
    }
}
