//! The compute device, chosen in this one place.
//!
//! Training, evaluation and the search's sub-net measurements run on burn's `flex` CPU backend
//! by default. A build with the `wgpu` feature (`cargo build --release --features supernet/wgpu`)
//! can also run them on a GPU through burn's wgpu backend (Vulkan, Metal or DX12), chosen at run
//! time with `--device gpu`. burn's `cuda` backend cannot be built offline (its build script
//! downloads an LLVM bundle), so `cuda` is a feature for machines with a network.
//!
//! Checkpoints hold plain f32 records whatever the device, so a run trained on a GPU should
//! resume and extract on the CPU (not yet tried on a GPU: no session had one).

use burn::prelude::Device;

use crate::error::{Error, Result};

/// Where tensors live and ops run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ComputeDevice {
    /// burn's `flex` CPU backend (with the depthwise-conv extension).
    #[default]
    Cpu,
    /// The first GPU of burn's wgpu backend (or, in a `cuda` build, CUDA device 0). Needs a build
    /// with the `wgpu` (or `cuda`) feature.
    Gpu,
}

impl ComputeDevice {
    /// Whether this build can run on a GPU (`wgpu` or `cuda` feature).
    pub const GPU_BUILT: bool = cfg!(any(feature = "wgpu", feature = "cuda"));

    /// The burn device.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for [`ComputeDevice::Gpu`] in a build without a GPU backend,
    /// saying how to build one.
    pub fn device(self) -> Result<Device> {
        Ok(self.devices(1)?.remove(0))
    }

    /// `n` devices for a data-parallel run ([`crate::train::parallel`]): on the CPU `n` times
    /// the one CPU device (each replica then runs on its own thread); on GPUs the first `n`
    /// discrete GPUs (with `n = 1`, the default GPU).
    ///
    /// # Errors
    /// `n = 0`, or a GPU in a build without a GPU backend.
    pub fn devices(self, n: usize) -> Result<Vec<Device>> {
        if n == 0 {
            return Err(Error::config(
                "device",
                "`--replicas 0`: a run needs at least one replica",
            ));
        }
        match (self, n) {
            (ComputeDevice::Cpu, _) => Ok(vec![default_device(); n]),
            (ComputeDevice::Gpu, 1) => Ok(vec![gpu_device(None)?]),
            (ComputeDevice::Gpu, _) => (0..n).map(|i| gpu_device(Some(i))).collect(),
        }
    }
}

#[cfg(feature = "cuda")]
fn gpu_device(index: Option<usize>) -> Result<Device> {
    Ok(Device::cuda(index.unwrap_or(0)))
}

#[cfg(all(feature = "wgpu", not(feature = "cuda")))]
fn gpu_device(index: Option<usize>) -> Result<Device> {
    use burn::tensor::DeviceKind;
    Ok(Device::wgpu(match index {
        None => DeviceKind::DefaultDevice,
        Some(i) => DeviceKind::DiscreteGpu(i),
    }))
}

#[cfg(not(any(feature = "wgpu", feature = "cuda")))]
fn gpu_device(_index: Option<usize>) -> Result<Device> {
    Err(Error::config(
        "device",
        "`--device gpu`: this tierforge was built without a GPU backend; rebuild with \
         `cargo build --release --features supernet/wgpu` (Vulkan, Metal or DX12), or use `--device cpu`",
    ))
}

/// Whether `device` is burn's flex CPU backend: where the hand-written kernels (`dw_op`, `pw_op`,
/// `bn_op`) run and where a step's sub-nets are worth splitting over cores.
#[cfg(any(feature = "fast-dw", feature = "fused-ops", feature = "train"))]
pub(crate) fn on_flex(device: &Device) -> bool {
    matches!(
        device.as_dispatch().clone().inner(),
        burn::backend::DispatchDevice::Flex(_)
    )
}

/// The CPU device: what every computation uses unless a command is given `--device gpu`.
pub fn default_device() -> Device {
    Device::flex()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_device_computes_and_the_gpu_needs_a_gpu_build() {
        let d = ComputeDevice::Cpu.device().unwrap();
        let t = burn::tensor::Tensor::<1>::from_floats([1.0, 2.0], &d);
        assert_eq!(t.sum().into_scalar::<f32>(), 3.0);
        if !ComputeDevice::GPU_BUILT {
            let e = ComputeDevice::Gpu.device().unwrap_err().to_string();
            assert!(e.contains("--features supernet/wgpu"), "{e}");
        }
    }
}
