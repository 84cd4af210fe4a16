//! Accuracy through the runtime: the same preprocessing and network an app uses, so it can be
//! compared with the accuracy a bundle records for each variant.

use crate::error::{Error, Result};
use crate::session::{ImageRef, Session};

/// Images per forward pass in [`accuracy`].
pub const EVAL_BATCH: usize = 256;

/// Top-1 accuracy (0..=1) of `session` on `images` (HWC u8, any size: each is resized to the
/// variant's resolution as in [`Session::predict_batch`]) against `labels`, in batches of
/// [`EVAL_BATCH`].
///
/// # Errors
/// [`Error::BadInput`] when there are no images, `labels` has another length, or an image does
/// not fit the model.
pub fn accuracy(session: &mut Session, images: &[ImageRef<'_>], labels: &[usize]) -> Result<f64> {
    if images.is_empty() || images.len() != labels.len() {
        return Err(Error::BadInput {
            reason: format!(
                "accuracy needs one label per image and at least one image: {} images, {} labels",
                images.len(),
                labels.len()
            ),
        });
    }
    let mut correct = 0usize;
    for (ims, ls) in images.chunks(EVAL_BATCH).zip(labels.chunks(EVAL_BATCH)) {
        let preds = session.predict_batch(ims)?;
        correct += preds.iter().zip(ls).filter(|(p, l)| p.class == **l).count();
    }
    Ok(correct as f64 / images.len() as f64)
}
