//! Learning-rate schedule: linear warm-up then cosine decay to zero.

/// Learning rate at `step` of `total` steps, `warmup` of them warming up linearly.
pub fn cosine_lr(base: f64, step: usize, total: usize, warmup: usize) -> f64 {
    if step < warmup {
        return base * (step + 1) as f64 / warmup as f64;
    }
    let span = total.saturating_sub(warmup).max(1) as f64;
    let t = ((step - warmup) as f64 / span).min(1.0);
    base * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn shape() {
        assert!((cosine_lr(1.0, 0, 100, 10) - 0.1).abs() < 1e-12);
        assert!((cosine_lr(1.0, 9, 100, 10) - 1.0).abs() < 1e-12);
        assert!((cosine_lr(1.0, 10, 100, 10) - 1.0).abs() < 1e-12);
        assert!((cosine_lr(1.0, 55, 100, 10) - 0.5).abs() < 1e-12);
        assert!(cosine_lr(1.0, 99, 100, 10) < 0.01);
    }
}
