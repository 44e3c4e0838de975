//! ffi_torch: PyTorch tensors, autograd, layers, optimizers, data loading and
//! checkpoints through libtorch (tch 0.26 = PyTorch 2.13.0 exactly). Built with
//! the `pytorch` feature (LIBTORCH from `tests/torch/setup.sh`); without it the
//! library is empty and the default build never needs libtorch.
//!
//! Handles: `tensor` (one libtorch tensor, freed on `rt_handle_close` or
//! collection), `torch_store` (a tch VarStore: the named parameters of the
//! layers), `torch_optimizer`, `torch_dataloader`. Layers (`rt_nn_linear`,
//! `_conv2d`, `_batch_norm`, `_layer_norm`) are named entries of a store: the
//! first call with a name creates its parameters (shapes from the input), later
//! calls reuse them, optimizers made from the store train them and
//! `rt_model_save` / `rt_model_load` write and read them.
//!
//! Only tch's fallible `f_*` calls are used: a libtorch exception (shape or
//! dtype mismatch, wrong device, out of memory) becomes an Error carrying
//! libtorch's message. Devices: "cpu"; "cuda" / "cuda:N" need a CUDA device
//! (Error Unsupported without one) and capability `gpu`.

#![deny(clippy::undocumented_unsafe_blocks)]

#[cfg(feature = "pytorch")]
pub mod nn;
#[cfg(feature = "pytorch")]
pub mod tensor;
