//! Losses: label-smoothed cross-entropy and soft-target distillation.

use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softmax};

/// Cross-entropy with label smoothing `eps`, averaged over the batch.
///
/// # Shapes
/// `logits: [n, k]`, `targets: [n]` → scalar `[1]`
pub fn cross_entropy_smooth(logits: Tensor<2>, targets: Tensor<1, Int>, eps: f64) -> Tensor<1> {
    let [n, k] = logits.dims();
    let logp = log_softmax(logits, 1);
    let onehot = targets.one_hot::<2>(k).float();
    let soft = onehot.mul_scalar(1.0 - eps).add_scalar(eps / k as f64);
    logp.mul(soft).sum().neg().div_scalar(n as f64)
}

/// Soft cross-entropy of `student` against the probabilities of (detached) `teacher` logits.
///
/// # Shapes
/// `student: [n, k]`, `teacher_probs: [n, k]` → scalar `[1]`
pub fn distill(student: Tensor<2>, teacher_probs: Tensor<2>) -> Tensor<1> {
    let n = student.dims()[0];
    log_softmax(student, 1)
        .mul(teacher_probs)
        .sum()
        .neg()
        .div_scalar(n as f64)
}

/// Softmax probabilities of detached logits (the distillation target).
pub fn teacher_probs(logits: Tensor<2>) -> Tensor<2> {
    softmax(logits.detach(), 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ce_matches_hand_computation() {
        let dev = Device::flex();
        let logits =
            Tensor::<2>::from_data(TensorData::new(vec![2.0f32, 0.0, 0.0, 1.0], [2, 2]), &dev);
        let t = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 1], [2]), &dev);
        let l: f32 = cross_entropy_smooth(logits.clone(), t.clone(), 0.0).into_scalar();
        let want = ((1.0 + (-2.0f32).exp()).ln() + (1.0 + (-1.0f32).exp()).ln()) / 2.0;
        assert!((l - want).abs() < 1e-5, "{l} {want}");
        // distilling against one-hot targets equals plain CE
        let p = t.one_hot::<2>(2).float();
        let d: f32 = distill(logits, p).into_scalar();
        assert!((d - want).abs() < 1e-5);
    }
}
