//! The `Autodiff<Flex>` implementation of the extension: it records its own backward step,
//! grad x, grad γ and grad β by the fused kernels from the statistics of the forward.

use super::backend::{BnActBackend, dims, f32_contiguous, float_tensor, forward, values};
use super::kernels::{self, Stats};
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Flex};
use netspec::space::Act;

/// What the backward step keeps from the forward.
#[derive(Debug, Clone)]
struct BnActState {
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    stats: Stats,
    act: Option<Act>,
}

/// The backward step: grad x, γ and β by the fused kernels.
#[derive(Debug)]
struct BnActBackward;

impl Backward<Flex, 3> for BnActBackward {
    type State = BnActState;

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_g, node_b] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let st = ops.state;
        let d = dims(&st.x);
        let (x, gy) = (f32_contiguous(&st.x), f32_contiguous(&grad));
        let (g, b) = (f32_contiguous(&st.gamma), f32_contiguous(&st.beta));
        let (gx, ggamma, gbeta) = kernels::backward(
            values(&x),
            values(&gy),
            d,
            values(&g),
            values(&b),
            &st.stats,
            st.act,
            node_x.is_some(),
        );
        // γ and β are the layer's full (max-channel) vectors: zeros beyond the first c.
        let full = |v: Vec<f32>, like: &FlexTensor| {
            let max = like
                .layout()
                .shape()
                .as_slice()
                .first()
                .copied()
                .unwrap_or(0);
            let mut out = vec![0.0f32; max];
            out[..v.len().min(max)].copy_from_slice(&v[..v.len().min(max)]);
            float_tensor(out, vec![max], like.dtype())
        };
        if let (Some(node), Some(gx)) = (node_x, gx) {
            let shape = st.x.layout().shape().as_slice().to_vec();
            grads.register::<Flex>(node.id, float_tensor(gx, shape, st.x.dtype()));
        }
        if let Some(node) = node_g {
            grads.register::<Flex>(node.id, full(ggamma, &st.gamma));
        }
        if let Some(node) = node_b {
            grads.register::<Flex>(node.id, full(gbeta, &st.beta));
        }
    }
}

impl<C: CheckpointStrategy> BnActBackend for Autodiff<Flex, C> {
    fn batch_norm_act_direct(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f32,
        act: Option<Act>,
    ) -> FloatTensor<Self> {
        match BnActBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (x, gamma, beta) = (
                    x.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                );
                let (out, stats) = forward(&x, &gamma, &beta, epsilon, act);
                let state = BnActState {
                    x,
                    gamma,
                    beta,
                    stats,
                    act,
                };
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::batch_norm_act_direct(
                x.into_primitive(),
                gamma.into_primitive(),
                beta.into_primitive(),
                epsilon,
                act,
            )),
        }
    }
}
