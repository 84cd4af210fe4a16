//! The `Autodiff<Flex>` implementation of the extension: it records its own backward step,
//! grad x and grad w by the direct kernels in one pass over the planes.

use super::backend::{DepthwiseBackend, backward, dim};
use super::options;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Flex};

/// The backward step: grad x and grad w by the direct kernels.
#[derive(Debug)]
struct DepthwiseBackward;

impl Backward<Flex, 2> for DepthwiseBackward {
    /// Checkpointed x, checkpointed w, stride.
    type State = (NodeId, NodeId, usize);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_w] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x_state, w_state, stride) = ops.state;
        let x = checkpointer.retrieve_node_output::<FlexTensor>(x_state);
        let w = checkpointer.retrieve_node_output::<FlexTensor>(w_state);

        let (gx, gw) = match backward(&x, &w, &grad, stride, node_x.is_some(), node_w.is_some()) {
            Some(grads) => {
                #[cfg(test)]
                super::tests::DIRECT_BACKWARDS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                grads
            }
            None => {
                // Unsupported layout: burn's generic conv2d backward.
                let (c, k) = (dim(&w, 0), dim(&w, 2));
                let opts = options(stride, k, c);
                let gx = node_x.as_ref().map(|_| {
                    Flex::conv2d_x_backward(x.clone(), w.clone(), grad.clone(), opts.clone())
                });
                let gw = node_w
                    .as_ref()
                    .map(|_| Flex::conv2d_weight_backward(x, w, grad, opts));
                (gx, gw)
            }
        };
        if let (Some(node), Some(g)) = (node_x, gx) {
            grads.register::<Flex>(node.id, g);
        }
        if let (Some(node), Some(g)) = (node_w, gw) {
            grads.register::<Flex>(node.id, g);
        }
    }
}

impl<C: CheckpointStrategy> DepthwiseBackend for Autodiff<Flex, C> {
    fn depthwise_conv2d_direct(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        stride: usize,
    ) -> FloatTensor<Self> {
        match DepthwiseBackward
            .prepare::<C>([x.node(), w.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let w_state = prep.checkpoint(&w);
                let out =
                    Flex::depthwise_conv2d_direct(x.into_primitive(), w.into_primitive(), stride);
                prep.finish((x_state, w_state, stride), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::depthwise_conv2d_direct(
                x.into_primitive(),
                w.into_primitive(),
                stride,
            )),
        }
    }
}
