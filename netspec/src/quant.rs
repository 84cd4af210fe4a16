//! Per-output-channel symmetric int8 quantisation of weights.

/// Per-row symmetric int8 quantisation of a `[rows, …]` row-major weight: `(q, scales)`, with
/// `w ≈ q · scale[row]` and `|q| ≤ 127`. A row of zeros gets scale 1.
pub fn quantize_per_channel(w: &[f32], rows: usize) -> (Vec<i8>, Vec<f32>) {
    let per = w.len() / rows.max(1);
    let mut q = Vec::with_capacity(w.len());
    let mut scales = Vec::with_capacity(rows);
    for r in 0..rows {
        let row = &w[r * per..(r + 1) * per];
        let m = row.iter().fold(0f32, |a, &x| a.max(x.abs()));
        let s = if m > 0.0 { m / 127.0 } else { 1.0 };
        scales.push(s);
        q.extend(
            row.iter()
                .map(|&x| (x / s).round().clamp(-127.0, 127.0) as i8),
        );
    }
    (q, scales)
}

/// The inverse of [`quantize_per_channel`]: `q · scale[row]` for a `[rows, …]` weight with one
/// scale per row.
pub fn dequantize_per_channel(q: &[i8], scales: &[f32]) -> Vec<f32> {
    let per = q.len() / scales.len().max(1);
    let mut w: Vec<f32> = q.iter().map(|&x| f32::from(x)).collect();
    for (r, s) in scales.iter().enumerate() {
        for x in &mut w[r * per..(r + 1) * per] {
            *x *= s;
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantize_roundtrip_error_is_bounded() {
        let w: Vec<f32> = (0..64)
            .map(|i| ((i as f32) * 0.7).sin() * (1 + i / 16) as f32)
            .collect();
        let (q, s) = quantize_per_channel(&w, 4);
        let d = dequantize_per_channel(&q, &s);
        for r in 0..4 {
            for j in 0..16 {
                assert!((d[r * 16 + j] - w[r * 16 + j]).abs() <= s[r] / 2.0 + 1e-6);
            }
            // the largest magnitude of each row maps to ±127
            assert_eq!(
                q[r * 16..(r + 1) * 16]
                    .iter()
                    .map(|x| x.unsigned_abs())
                    .max(),
                Some(127)
            );
        }
    }

    #[test]
    fn zero_rows_get_scale_one() {
        let (q, s) = quantize_per_channel(&[0.0; 6], 2);
        assert_eq!(s, vec![1.0, 1.0]);
        assert!(q.iter().all(|&x| x == 0));
    }
}
