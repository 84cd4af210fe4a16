//! The `Autodiff<Flex>` implementation of the extension: it records its own backward step,
//! two batched GEMMs (grad x = Wᵀ·gy per image, grad W = Σₙ gyₙ·xₙᵀ) on the NCHW data.

use super::backend::{PointwiseBackend, as_3d, corner, embed};
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::Shape;

/// What the backward step keeps: the input and the full weight.
#[derive(Debug, Clone)]
struct PointwiseState {
    x: FlexTensor,
    weight: FlexTensor,
    active_out: usize,
}

#[derive(Debug)]
struct PointwiseBackward;

impl Backward<Flex, 2> for PointwiseBackward {
    type State = PointwiseState;

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_w] = ops.parents;
        let gy = grads.consume::<Flex>(&ops.node);
        let PointwiseState {
            x,
            weight,
            active_out,
        } = ops.state;
        let xs = x.layout().shape().as_slice().to_vec();
        let gy3 = as_3d(&gy); // [n, cout, hw]
        if let Some(node) = node_w {
            // Σₙ gyₙ · xₙᵀ: [n, cout, hw] × [n, hw, cin] → [n, cout, cin], summed over n
            let xt = Flex::float_swap_dims(as_3d(&x), 1, 2);
            let per_image = Flex::float_matmul(gy3.clone(), xt);
            let [cout, cin] = [active_out, xs[1]];
            let g = Flex::float_sum_dim(per_image, 0).reshape(Shape::from(vec![cout, cin]));
            grads.register::<Flex>(node.id, embed(g, &weight));
        }
        if let Some(node) = node_x {
            // Wᵀ · gyₙ: [cin, cout] × [n, cout, hw] → [n, cin, hw]
            let wt = Flex::float_swap_dims(corner(&weight, active_out, xs[1]), 0, 1);
            let gx = Flex::float_matmul(wt, gy3).reshape(Shape::from(xs));
            grads.register::<Flex>(node.id, gx);
        }
    }
}

impl<C: CheckpointStrategy> PointwiseBackend for Autodiff<Flex, C> {
    fn pointwise_conv2d_direct(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        active_out: usize,
    ) -> FloatTensor<Self> {
        match PointwiseBackward
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (x, weight) = (x.into_primitive(), weight.into_primitive());
                let out = Flex::pointwise_conv2d_direct(x.clone(), weight.clone(), active_out);
                let state = PointwiseState {
                    x,
                    weight,
                    active_out,
                };
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::pointwise_conv2d_direct(
                x.into_primitive(),
                weight.into_primitive(),
                active_out,
            )),
        }
    }
}
