//! Run-time device choice (CPU, or CUDA behind the `cuda` feature) and device profiles for modelled cost.
//!
//! Model code is written once over a burn backend `B`; a [`BackendTask`] wraps such code and
//! [`Device::run`] runs it on the backend the run-time [`Device`] names: [`CpuBackend`]
//! (burn's NdArray, always built) or [`CudaBackend`] (burn-cuda, only with the crate's `cuda`
//! feature; its driver is loaded at run time, so neither the build nor the CPU path needs
//! CUDA). Before a CUDA task starts, the driver and the GPU index are checked, so a missing
//! driver or GPU is a [`DeviceError`], never a panic inside the backend.
//!
//! Device profiles (named figures for modelled cost when no GPU ran) live with the FLOP
//! counts in [`crate::model::cost`]: [`DeviceProfile`](crate::model::cost::DeviceProfile).
//!
//! Numerics: on the CPU, training is bit-identical run after run and across thread counts.
//! On CUDA, kernels may sum in another order than NdArray, so CUDA and CPU weights agree
//! only within a tolerance, [`CUDA_CPU_TOLERANCE`] (tested when the `cuda` feature is on).

use std::fmt;
use std::str::FromStr;

use burn::backend::ndarray::NdArrayDevice;
use burn::backend::{Autodiff, NdArray};
use burn::tensor::backend::AutodiffBackend;

/// The CPU backend: burn's NdArray over `f32`, with autodiff.
pub type CpuBackend = Autodiff<NdArray<f32>>;

/// The CUDA backend: burn-cuda (cubecl, no fusion, no autotune) over `f32`, with autodiff.
#[cfg(feature = "cuda")]
pub type CudaBackend = Autodiff<burn_cuda::Cuda<f32, i32>>;

/// Largest absolute difference allowed between a parameter trained on CUDA and the same
/// parameter trained on the CPU, relative to `max(1, |cpu value|)`, for the small models of
/// the agreement test (a few hundred Adam steps in `f32`): summation order differs between
/// the backends, and Adam's normalised steps carry those last-bit differences forward.
pub const CUDA_CPU_TOLERANCE: f32 = 1e-3;

/// Where models run, chosen at run time (`--device cpu|cuda|cuda:N`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Device {
    /// The CPU (burn's NdArray backend).
    #[default]
    Cpu,
    /// The CUDA GPU of this index (`cuda` is `cuda:0`).
    Cuda(usize),
}

/// Why a device cannot be parsed or used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeviceError {
    /// The text names no device.
    #[error("unknown device {input:?}: {reason}; expected cpu, cuda or cuda:N (N a GPU index)")]
    Parse {
        /// The text as given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// CUDA was asked for, but this build has no CUDA backend.
    #[error(
        "device {device} needs the CUDA backend, which this build lacks: rebuild with the \
         `cuda` cargo feature (`--features cuda`) or use --device cpu"
    )]
    CudaNotBuilt {
        /// The device asked for.
        device: String,
    },
    /// The CUDA driver library could not be loaded.
    #[error(
        "device {device}: no CUDA driver found (libcuda could not be loaded); install the \
         NVIDIA driver or use --device cpu"
    )]
    NoDriver {
        /// The device asked for.
        device: String,
    },
    /// The CUDA driver reported an error.
    #[error("device {device}: CUDA driver error in {call}: {message}")]
    Driver {
        /// The device asked for.
        device: String,
        /// The driver call that failed.
        call: &'static str,
        /// The driver's error.
        message: String,
    },
    /// The GPU index is not below the number of GPUs present.
    #[error(
        "device {device}: this machine has {count} CUDA GPU(s); use an index below {count} \
         or --device cpu"
    )]
    NoSuchGpu {
        /// The device asked for.
        device: String,
        /// Number of CUDA GPUs the driver sees.
        count: usize,
    },
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

impl FromStr for Device {
    type Err = DeviceError;

    /// Parses `cpu`, `cuda` (GPU 0) or `cuda:N`, ignoring case and surrounding spaces. In a
    /// build without the `cuda` feature, a well-formed CUDA device is
    /// [`DeviceError::CudaNotBuilt`].
    fn from_str(s: &str) -> Result<Self, DeviceError> {
        let text = s.trim().to_ascii_lowercase();
        let parse_err = |reason: &str| DeviceError::Parse {
            input: s.to_string(),
            reason: reason.to_string(),
        };
        let device = match text.as_str() {
            "cpu" => return Ok(Device::Cpu),
            "cuda" => Device::Cuda(0),
            _ => match text.strip_prefix("cuda:") {
                Some(index) if !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()) => {
                    Device::Cuda(
                        index
                            .parse()
                            .map_err(|_| parse_err("GPU index too large"))?,
                    )
                }
                Some(_) => return Err(parse_err("the GPU index must be a non-negative integer")),
                None => return Err(parse_err("not a known device")),
            },
        };
        if cfg!(feature = "cuda") {
            Ok(device)
        } else {
            Err(DeviceError::CudaNotBuilt {
                device: device.to_string(),
            })
        }
    }
}

/// Backend-generic work (training, serving, attribution) that [`Device::run`] runs on the
/// backend chosen at run time.
pub trait BackendTask {
    /// What the work returns.
    type Output;
    /// Runs the work on backend `B` and its device `device`.
    fn run<B: AutodiffBackend>(self, device: &B::Device) -> Self::Output;
}

impl Device {
    /// Checks that this device can run work in this build on this machine: always for the
    /// CPU; for CUDA, that the build has the backend, the driver loads and the GPU exists.
    pub fn check(self) -> Result<(), DeviceError> {
        match self {
            Device::Cpu => Ok(()),
            Device::Cuda(index) => check_cuda(self, index),
        }
    }

    /// Runs `task` on this device's backend, after [`Device::check`].
    pub fn run<T: BackendTask>(self, task: T) -> Result<T::Output, DeviceError> {
        self.check()?;
        match self {
            Device::Cpu => Ok(task.run::<CpuBackend>(&NdArrayDevice::Cpu)),
            Device::Cuda(index) => run_cuda(task, index),
        }
    }
}

#[cfg(feature = "cuda")]
fn check_cuda(device: Device, index: usize) -> Result<(), DeviceError> {
    use cudarc::driver::{result, sys};
    // SAFETY: only tries to open the driver library by its usual names and closes it again;
    // no driver function is called through it.
    if !unsafe { sys::is_culib_present() } {
        return Err(DeviceError::NoDriver {
            device: device.to_string(),
        });
    }
    let driver = |call: &'static str, e: result::DriverError| DeviceError::Driver {
        device: device.to_string(),
        call,
        message: e.to_string(),
    };
    let count = match result::init() {
        Err(e) if e.0 == sys::CUresult::CUDA_ERROR_NO_DEVICE => 0,
        Err(e) => return Err(driver("cuInit", e)),
        Ok(()) => result::device::get_count().map_err(|e| driver("cuDeviceGetCount", e))?,
    };
    let count = usize::try_from(count).unwrap_or(0);
    if index < count {
        Ok(())
    } else {
        Err(DeviceError::NoSuchGpu {
            device: device.to_string(),
            count,
        })
    }
}

#[cfg(not(feature = "cuda"))]
fn check_cuda(device: Device, _index: usize) -> Result<(), DeviceError> {
    Err(DeviceError::CudaNotBuilt {
        device: device.to_string(),
    })
}

#[cfg(feature = "cuda")]
fn run_cuda<T: BackendTask>(task: T, index: usize) -> Result<T::Output, DeviceError> {
    Ok(task.run::<CudaBackend>(&burn_cuda::CudaDevice::new(index)))
}

#[cfg(not(feature = "cuda"))]
fn run_cuda<T: BackendTask>(_task: T, index: usize) -> Result<T::Output, DeviceError> {
    Err(DeviceError::CudaNotBuilt {
        device: Device::Cuda(index).to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_and_rejects_junk() {
        assert_eq!("cpu".parse(), Ok(Device::Cpu));
        assert_eq!(" CPU ".parse(), Ok(Device::Cpu));
        for bad in ["", "gpu", "cuda:", "cuda:-1", "cuda:x", "cuda:1.5", "cpu:0"] {
            let err = bad.parse::<Device>().unwrap_err();
            assert!(
                matches!(&err, DeviceError::Parse { input, .. } if input == bad),
                "{bad:?}: {err:?}"
            );
            assert!(err.to_string().contains("expected cpu, cuda or cuda:N"));
        }
        let huge = "cuda:99999999999999999999999"
            .parse::<Device>()
            .unwrap_err();
        assert!(huge.to_string().contains("too large"), "{huge}");
    }

    #[test]
    fn cuda_devices_parse_by_index_or_name_the_missing_feature() {
        for (text, index) in [("cuda", 0), ("CUDA:0", 0), ("cuda:3", 3)] {
            let parsed = text.parse::<Device>();
            if cfg!(feature = "cuda") {
                assert_eq!(parsed, Ok(Device::Cuda(index)));
            } else {
                let err = parsed.unwrap_err();
                assert_eq!(
                    err,
                    DeviceError::CudaNotBuilt {
                        device: format!("cuda:{index}")
                    }
                );
                assert!(err.to_string().contains("--features cuda"), "{err}");
            }
        }
    }

    #[test]
    fn display_round_trips() {
        assert_eq!(Device::Cpu.to_string(), "cpu");
        assert_eq!(Device::Cuda(2).to_string(), "cuda:2");
        assert_eq!(Device::default(), Device::Cpu);
    }

    /// Names the backend it ran on and adds two tensors there.
    struct AddOnes;

    impl BackendTask for AddOnes {
        type Output = (String, Vec<f32>);
        fn run<B: AutodiffBackend>(self, device: &B::Device) -> Self::Output {
            let a = burn::tensor::Tensor::<B, 1>::ones([3], device);
            let sum = (a.clone() + a).into_data().to_vec::<f32>().unwrap();
            (B::name(device), sum)
        }
    }

    #[test]
    fn cpu_runs_the_task_on_ndarray() {
        let (name, sum) = Device::Cpu.run(AddOnes).unwrap();
        assert_eq!(name, "autodiff<ndarray>");
        assert_eq!(sum, vec![2.0; 3]);
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_is_an_error_not_a_panic() {
        let err = Device::Cuda(1).run(AddOnes).unwrap_err();
        assert_eq!(
            err,
            DeviceError::CudaNotBuilt {
                device: "cuda:1".into()
            }
        );
        assert!(matches!(
            Device::Cuda(0).check(),
            Err(DeviceError::CudaNotBuilt { .. })
        ));
    }
}
