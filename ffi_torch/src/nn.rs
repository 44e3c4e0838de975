//! Layers in a parameter store, activations, optimizers, a data loader and
//! checkpoints (plan section 6.1).

use crate::tensor::{lock, opt_device, terr, wrap, Ctx, TensorH, T};
use ffi_sdk::beneath::{self, Follow, WriteMode};
use ffi_sdk::prelude::*;
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::io::{BufReader, BufWriter, Write};
use std::sync::{Arc, Mutex};
use tch::nn::{VarStore, Variables};
use tch::{COptimizer, Device, Kind, Tensor};

// ------------------------------------------------------------------ the store

/// Named parameters (handle type `torch_store`): a tch VarStore.
pub struct Store {
    vs: VarStore,
    /// Held while a layer's parameters are looked up and created.
    create: Mutex<()>,
    /// Parameters already handed to a layer call, by layer name: the next
    /// call finds its tensors without building "layer.param", locking the
    /// VarStore or asking libtorch for a shape (an MLP step makes six lookups).
    /// Entries stay valid: parameters are never removed and a load copies into them.
    cache: Mutex<FxHashMap<String, Vec<Cached>>>,
}

struct Cached {
    pname: &'static str,
    dims: Vec<i64>,
    t: Arc<Param>,
}

/// A parameter tensor shared by the store's cache and the calls using it.
pub(crate) struct Param(Tensor);

// SAFETY: as for `TensorH` (tensor.rs): libtorch reference-counts tensors
// atomically, and a layer call only reads the parameter (one libtorch call
// taking its own autograd locks); in-place writes happen under the
// optimizer's or the store's lock, as documented there.
unsafe impl Sync for Param {}

impl std::ops::Deref for Param {
    type Target = Tensor;
    fn deref(&self) -> &Tensor {
        &self.0
    }
}

// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for Store {
    const NAME: &'static str = "torch_store";
}

/// A new, empty parameter store: layers called with it create their
/// parameters in it; optimizers train them; `rt_model_save`/`_load` write and read them.
///
/// # Options
/// - device (text, default "cpu"): where new parameters live ("cpu", "cuda", "cuda:N")
///
/// # Errors
/// - InvalidArgument: an unknown device or option
/// - Unsupported: a CUDA device without one
/// - OutOfRange: cuda:N past the last device
/// - CapabilityDenied: a CUDA device without capability gpu
#[rt_fn(cap = "gpu", scoped, tier = "empirical", ret = "handle<torch_store>")]
pub fn rt_torch_store_new(opts: Opts) -> RtResult<Value> {
    opts.only(&["device"])?;
    let d = opt_device(FN, &opts)?;
    Ok(new_handle(Store { vs: VarStore::new(d), create: Mutex::new(()), cache: Mutex::new(FxHashMap::default()) }))
}

/// The names of the store's parameters ("fc1.weight", ...), sorted.
///
/// # Errors
/// - Closed: the store was closed
#[rt_fn(tier = "empirical", ret = "array<text>")]
pub fn rt_torch_param_list(store: Handle<Store>) -> RtResult<Value> {
    let mut names: Vec<String> = vars(&store).named_variables.keys().cloned().collect();
    names.sort();
    Ok(Value::text_array(names))
}

/// The parameter `name` ("fc1.weight") of the store: a tensor sharing its
/// storage (an optimizer step or a load changes what it reads).
///
/// # Errors
/// - NotFound: no parameter of that name
/// - Closed: the store was closed
#[rt_fn(tier = "empirical", ret = "handle<tensor>")]
pub fn rt_torch_param_get(store: Handle<Store>, name: &str) -> RtResult<Value> {
    match vars(&store).named_variables.get(name) {
        Some(t) => Ok(wrap(t.shallow_clone())),
        None => Err(Error::not_found(FN, "no parameter of that name in the store", format!("{name:?}"))),
    }
}

fn vars(s: &Store) -> std::sync::MutexGuard<'_, Variables> {
    lock(&s.vs.variables_)
}

fn layer_name(func: &str, name: &str) -> RtResult<()> {
    if name.is_empty() || name.contains('.') || name.contains('|') || name.contains('\0') {
        return Err(Error::invalid(func, "a layer name is not empty and has no '.', '|' or NUL", format!("{name:?}")));
    }
    Ok(())
}

enum Init {
    Kaiming,
    Uniform(f64),
    Zeros,
    Ones,
}

impl Store {
    /// The parameter `layer.pname` of `dims`: the existing one (its shape
    /// checked) or a new one.
    fn param(&self, func: &str, layer: &str, pname: &'static str, dims: &[i64], trainable: bool, init: Init) -> RtResult<Arc<Param>> {
        let mismatch = |had: &[i64]| {
            Error::invalid(
                func,
                format!("parameter {layer}.{pname} of the store has shape {had:?}; this call needs {dims:?} (another layer with that name?)"),
                layer,
            )
        };
        let cached = || -> RtResult<Option<Arc<Param>>> {
            match lock(&self.cache).get(layer).and_then(|v| v.iter().find(|c| c.pname == pname)) {
                Some(c) if c.dims == dims => Ok(Some(c.t.clone())),
                Some(c) => Err(mismatch(&c.dims)),
                None => Ok(None),
            }
        };
        if let Some(p) = cached()? {
            return Ok(p);
        }
        let _g = lock(&self.create);
        if let Some(p) = cached()? {
            return Ok(p);
        }
        let t = self.find_or_create(func, layer, pname, dims, trainable, init, &mismatch)?;
        let p = Arc::new(Param(t));
        let c = Cached { pname, dims: dims.to_vec(), t: p.clone() };
        lock(&self.cache).entry(layer.to_string()).or_default().push(c);
        Ok(p)
    }

    /// The parameter `layer.pname` from the VarStore (made by an earlier call
    /// or a load), or a new one; called with `create` held.
    #[allow(clippy::too_many_arguments)]
    fn find_or_create(&self, func: &str, layer: &str, pname: &str, dims: &[i64], trainable: bool, init: Init, mismatch: &dyn Fn(&[i64]) -> Error) -> RtResult<Tensor> {
        let full = format!("{layer}.{pname}");
        match vars(self).named_variables.get(&full) {
            Some(t) if t.size() == dims => return Ok(t.shallow_clone()),
            Some(t) => return Err(mismatch(&t.size())),
            None => {}
        }
        let root = self.vs.root();
        let p = root.sub(layer);
        let r = match (init, trainable) {
            (Init::Kaiming, _) => p.f_kaiming_uniform(pname, dims),
            (Init::Uniform(b), _) => p.f_uniform(pname, dims, -b, b),
            (Init::Zeros, true) => p.f_zeros(pname, dims),
            (Init::Ones, true) => p.f_ones(pname, dims),
            (Init::Zeros, false) => p.f_zeros_no_train(pname, dims),
            (Init::Ones, false) => p.f_ones_no_train(pname, dims),
        };
        r.ctxf(func, || format!("cannot create parameter {full} {dims:?}"))
    }
}

fn dim_at(func: &str, x: &Tensor, what: &str, min_dims: usize, at: i64) -> RtResult<i64> {
    let s = x.size();
    if s.len() < min_dims {
        return Err(Error::invalid(func, format!("the input needs at least {min_dims} dimensions ({what})"), format!("{s:?}")));
    }
    let i = if at < 0 { s.len() as i64 + at } else { at } as usize;
    Ok(s[i])
}

/// A fully connected layer named `name` in `store`: `x @ weight.T + bias`
/// over the last dimension of `x`. The first call creates `name.weight`
/// [out_features, in] (Kaiming uniform, as PyTorch) and `name.bias` [out_features];
/// later calls reuse them.
///
/// # Options
/// - bias (bool, default true): add a bias
///
/// # Errors
/// - InvalidArgument: a bad name, out_features below 1, an input whose last dimension differs from the layer's, dtype or device mismatches
/// - LimitExceeded: out of memory
/// - Closed: a handle was closed
#[rt_fn(tier = "verified", ret = "handle<tensor>")]
pub fn rt_nn_linear(store: Handle<Store>, name: &str, x: T, out_features: i64, opts: Opts) -> RtResult<Value> {
    opts.only(&["bias"])?;
    layer_name(FN, name)?;
    if out_features < 1 {
        return Err(Error::invalid(FN, "out_features must be 1 or more", out_features));
    }
    let inf = dim_at(FN, &x.0, "features last", 1, -1)?;
    let w = store.param(FN, name, "weight", &[out_features, inf], true, Init::Kaiming)?;
    let b = if opts.bool("bias")?.unwrap_or(true) {
        Some(store.param(FN, name, "bias", &[out_features], true, Init::Uniform(1.0 / (inf.max(1) as f64).sqrt()))?)
    } else {
        None
    };
    Ok(wrap(x.0.f_linear(&w, b.as_deref().map(|p| &**p)).ctxf(FN, || format!("linear {name} on {:?}", x.0.size()))?))
}

/// A 2-d convolution layer named `name` in `store` over `x` [N, C, H, W] (or
/// [C, H, W]) with `out_channels` square kernels of side `kernel`. The first
/// call creates `name.weight` [out_channels, C, kernel, kernel] and `name.bias`.
///
/// # Options
/// - stride (int, default 1): the step
/// - padding (int, default 0): zeros added on each side
/// - bias (bool, default true): add a bias
///
/// # Errors
/// - InvalidArgument: a bad name, kernel/out_channels/stride below 1, negative padding, an input of the wrong rank or channels, a kernel larger than the padded input
/// - LimitExceeded: out of memory
/// - Closed: a handle was closed
#[rt_fn(tier = "verified", ret = "handle<tensor>")]
pub fn rt_nn_conv2d(store: Handle<Store>, name: &str, x: T, out_channels: i64, kernel: i64, opts: Opts) -> RtResult<Value> {
    opts.only(&["stride", "padding", "bias"])?;
    layer_name(FN, name)?;
    let stride = opts.int("stride")?.unwrap_or(1);
    let padding = opts.int("padding")?.unwrap_or(0);
    if out_channels < 1 || kernel < 1 || stride < 1 || padding < 0 {
        return Err(Error::invalid(
            FN,
            "out_channels, kernel and stride must be 1 or more, padding 0 or more",
            format!("out_channels {out_channels}, kernel {kernel}, stride {stride}, padding {padding}"),
        ));
    }
    let rank = x.0.dim();
    if rank != 3 && rank != 4 {
        return Err(Error::invalid(FN, "the input must be [N, C, H, W] or [C, H, W]", format!("{:?}", x.0.size())));
    }
    let c = dim_at(FN, &x.0, "channels", 3, -3)?;
    let w = store.param(FN, name, "weight", &[out_channels, c, kernel, kernel], true, Init::Kaiming)?;
    let b = if opts.bool("bias")?.unwrap_or(true) {
        Some(store.param(FN, name, "bias", &[out_channels], true, Init::Uniform(1.0 / ((c * kernel * kernel).max(1) as f64).sqrt()))?)
    } else {
        None
    };
    let r = x.0.f_conv2d(&w, b.as_deref().map(|p| &**p), [stride, stride], [padding, padding], [1, 1], 1);
    Ok(wrap(r.ctxf(FN, || format!("conv2d {name} on {:?}", x.0.size()))?))
}

/// Batch normalisation named `name` in `store` over dimension 1 of `x`
/// ([N, C], [N, C, L] or [N, C, H, W]): `name.weight` (ones), `name.bias`
/// (zeros), `name.running_mean`, `name.running_var` (not trained). Training
/// mode normalises with the batch's statistics and updates the running ones;
/// eval mode uses the running ones.
///
/// # Options
/// - train (bool, default true): training mode
/// - momentum (float, default 0.1): running statistics update rate
/// - eps (float, default 1e-5): added to the variance
///
/// # Errors
/// - InvalidArgument: a bad name, an input of fewer than 2 dimensions, other channels than the layer's, only 1 value per channel in training
/// - Closed: a handle was closed
#[rt_fn(tier = "verified", ret = "handle<tensor>")]
pub fn rt_nn_batch_norm(store: Handle<Store>, name: &str, x: T, opts: Opts) -> RtResult<Value> {
    opts.only(&["train", "momentum", "eps"])?;
    layer_name(FN, name)?;
    let train = opts.bool("train")?.unwrap_or(true);
    let momentum = opts.float("momentum")?.unwrap_or(0.1);
    let eps = opts.float("eps")?.unwrap_or(1e-5);
    let c = dim_at(FN, &x.0, "[N, C, ...]", 2, 1)?;
    let per_channel: i64 = x.0.size().iter().product::<i64>() / c.max(1);
    if train && per_channel <= 1 {
        // What torch.nn.functional.batch_norm checks (libtorch itself would return NaNs or zeros).
        return Err(Error::invalid(FN, "expected more than 1 value per channel when training", format!("{:?}", x.0.size())));
    }
    let w = store.param(FN, name, "weight", &[c], true, Init::Ones)?;
    let b = store.param(FN, name, "bias", &[c], true, Init::Zeros)?;
    let rm = store.param(FN, name, "running_mean", &[c], false, Init::Zeros)?;
    let rv = store.param(FN, name, "running_var", &[c], false, Init::Ones)?;
    let r = x.0.f_batch_norm(Some(&**w), Some(&**b), Some(&**rm), Some(&**rv), train, momentum, eps, false);
    Ok(wrap(r.ctxf(FN, || format!("batch_norm {name} on {:?}", x.0.size()))?))
}

/// Layer normalisation named `name` in `store` over the last `dims`
/// dimensions of `x`, with `name.weight` (ones) and `name.bias` (zeros) of that shape.
///
/// # Options
/// - dims (int, default 1): how many trailing dimensions to normalise
/// - eps (float, default 1e-5): added to the variance
///
/// # Errors
/// - InvalidArgument: a bad name, dims below 1 or above the input's rank, trailing dimensions other than the layer's
/// - Closed: a handle was closed
#[rt_fn(tier = "verified", ret = "handle<tensor>")]
pub fn rt_nn_layer_norm(store: Handle<Store>, name: &str, x: T, opts: Opts) -> RtResult<Value> {
    opts.only(&["dims", "eps"])?;
    layer_name(FN, name)?;
    let n = opts.int("dims")?.unwrap_or(1);
    let eps = opts.float("eps")?.unwrap_or(1e-5);
    let s = x.0.size();
    if n < 1 || n as usize > s.len() {
        return Err(Error::invalid(FN, format!("option dims must be 1..={} for this input", s.len()), n));
    }
    let shape = s[s.len() - n as usize..].to_vec();
    let w = store.param(FN, name, "weight", &shape, true, Init::Ones)?;
    let b = store.param(FN, name, "bias", &shape, true, Init::Zeros)?;
    let r = x.0.f_layer_norm(shape.as_slice(), Some(&**w), Some(&**b), eps, false);
    Ok(wrap(r.ctxf(FN, || format!("layer_norm {name} on {s:?}"))?))
}

// ------------------------------------------------------------------ activations

/// `max(x, 0)` element-wise.
///
/// # Errors
/// - InvalidArgument: libtorch refused (e.g. a bool tensor)
/// - Closed: the tensor was closed
#[rt_fn(tier = "verified", ret = "handle<tensor>")]
pub fn rt_nn_relu(x: T) -> RtResult<Value> {
    Ok(wrap(x.0.f_relu().ctx(FN, "relu")?))
}

/// `1 / (1 + exp(-x))` element-wise.
///
/// # Errors
/// - InvalidArgument: libtorch refused (e.g. an integer tensor)
/// - Closed: the tensor was closed
#[rt_fn(tier = "verified", ret = "handle<tensor>")]
pub fn rt_nn_sigmoid(x: T) -> RtResult<Value> {
    Ok(wrap(x.0.f_sigmoid().ctx(FN, "sigmoid")?))
}

/// Softmax along `dim` (default -1, the last).
///
/// # Errors
/// - InvalidArgument: a dimension out of range, an integer tensor
/// - Closed: the tensor was closed
#[rt_fn(tier = "verified", ret = "handle<tensor>")]
pub fn rt_nn_softmax(x: T, dim: Option<i64>) -> RtResult<Value> {
    let d = dim.unwrap_or(-1);
    Ok(wrap(x.0.f_softmax(d, None::<Kind>).ctxf(FN, || format!("softmax over {d} of {:?}", x.0.size()))?))
}

/// Dropout: in training mode zeroes each element with probability `p` and
/// scales the rest by `1/(1-p)`; in eval mode returns `x` unchanged.
///
/// # Options
/// - p (float, default 0.5): the drop probability, 0 to 1
/// - train (bool, default true): training mode
///
/// # Errors
/// - InvalidArgument: p outside 0..1, an unknown option
/// - Closed: the tensor was closed
#[rt_fn(tier = "verified", ret = "handle<tensor>")]
pub fn rt_nn_dropout(x: T, opts: Opts) -> RtResult<Value> {
    opts.only(&["p", "train"])?;
    let p = opts.float("p")?.unwrap_or(0.5);
    if !(0.0..=1.0).contains(&p) {
        return Err(Error::invalid(FN, "p must be between 0 and 1", p));
    }
    let train = opts.bool("train")?.unwrap_or(true);
    Ok(wrap(x.0.f_dropout(p, train).ctx(FN, "dropout")?))
}

// ------------------------------------------------------------------ optimizers

struct OptState {
    opt: COptimizer,
    /// How many of the store's trainable variables were handed to `opt`.
    added: usize,
}

/// An optimizer over a store's trainable parameters (handle type `torch_optimizer`).
pub struct Optim {
    state: Mutex<OptState>,
    vars: Arc<Mutex<Variables>>,
}

// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for Optim {
    const NAME: &'static str = "torch_optimizer";
}

impl Optim {
    /// Hands parameters created since the last call (layers called after the optimizer was made) to libtorch.
    fn sync(&self, func: &str, st: &mut OptState) -> RtResult<()> {
        let v = lock(&self.vars);
        while st.added < v.trainable_variables.len() {
            let var = &v.trainable_variables[st.added];
            st.opt.add_parameters(&var.tensor, var.group).ctx(func, "add a parameter to the optimizer")?;
            st.added += 1;
        }
        Ok(())
    }
}

fn optim(func: &str, store: &Store, opt: COptimizer) -> RtResult<Value> {
    let o = Optim { state: Mutex::new(OptState { opt, added: 0 }), vars: store.vs.variables_.clone() };
    {
        let mut st = lock(&o.state);
        o.sync(func, &mut st)?;
    }
    Ok(new_handle(o))
}

fn nonneg(func: &str, what: &str, x: f64) -> RtResult<f64> {
    if !x.is_finite() || x < 0.0 {
        return Err(Error::invalid(func, format!("{what} must be a finite number, 0 or more"), x));
    }
    Ok(x)
}

/// Stochastic gradient descent over the trainable parameters of `store`
/// (those created later too), PyTorch's `torch.optim.SGD`.
///
/// # Options
/// - momentum (float, default 0)
/// - dampening (float, default 0)
/// - weight_decay (float, default 0)
/// - nesterov (bool, default false)
///
/// # Errors
/// - InvalidArgument: a negative or non-finite lr or option, nesterov without momentum, an unknown option
/// - Closed: the store was closed
#[rt_fn(tier = "verified", ret = "handle<torch_optimizer>")]
pub fn rt_optim_sgd(store: Handle<Store>, lr: f64, opts: Opts) -> RtResult<Value> {
    opts.only(&["momentum", "dampening", "weight_decay", "nesterov"])?;
    let lr = nonneg(FN, "lr", lr)?;
    let m = nonneg(FN, "momentum", opts.float("momentum")?.unwrap_or(0.0))?;
    let d = nonneg(FN, "dampening", opts.float("dampening")?.unwrap_or(0.0))?;
    let wd = nonneg(FN, "weight_decay", opts.float("weight_decay")?.unwrap_or(0.0))?;
    let nesterov = opts.bool("nesterov")?.unwrap_or(false);
    if nesterov && (m <= 0.0 || d != 0.0) {
        return Err(Error::invalid(FN, "nesterov needs a momentum and zero dampening", format!("momentum {m}, dampening {d}")));
    }
    let opt = COptimizer::sgd(lr, m, d, wd, nesterov).ctx(FN, "SGD")?;
    optim(FN, &store, opt)
}

/// Adam over the trainable parameters of `store` (those created later too),
/// PyTorch's `torch.optim.Adam`.
///
/// # Options
/// - beta1 (float, default 0.9): 0 to <1
/// - beta2 (float, default 0.999): 0 to <1
/// - eps (float, default 1e-8)
/// - weight_decay (float, default 0)
/// - amsgrad (bool, default false)
///
/// # Errors
/// - InvalidArgument: a negative or non-finite lr or option, a beta outside 0..1, an unknown option
/// - Closed: the store was closed
#[rt_fn(tier = "verified", ret = "handle<torch_optimizer>")]
pub fn rt_optim_adam(store: Handle<Store>, lr: f64, opts: Opts) -> RtResult<Value> {
    opts.only(&["beta1", "beta2", "eps", "weight_decay", "amsgrad"])?;
    let lr = nonneg(FN, "lr", lr)?;
    let b1 = nonneg(FN, "beta1", opts.float("beta1")?.unwrap_or(0.9))?;
    let b2 = nonneg(FN, "beta2", opts.float("beta2")?.unwrap_or(0.999))?;
    if b1 >= 1.0 || b2 >= 1.0 {
        return Err(Error::invalid(FN, "beta1 and beta2 must be below 1", format!("{b1}, {b2}")));
    }
    let eps = nonneg(FN, "eps", opts.float("eps")?.unwrap_or(1e-8))?;
    let wd = nonneg(FN, "weight_decay", opts.float("weight_decay")?.unwrap_or(0.0))?;
    let ams = opts.bool("amsgrad")?.unwrap_or(false);
    let opt = COptimizer::adam(lr, b1, b2, wd, eps, ams).ctx(FN, "Adam")?;
    optim(FN, &store, opt)
}

/// One update of every parameter from its current gradient (after `rt_tensor_backward`).
///
/// # Errors
/// - InvalidArgument: libtorch refused (e.g. a parameter and its gradient on different devices)
/// - Closed: the optimizer was closed
#[rt_fn(tier = "verified")]
pub fn rt_optim_step(optimizer: Handle<Optim>) -> RtResult<()> {
    let mut st = lock(&optimizer.state);
    optimizer.sync(FN, &mut st)?;
    st.opt.step().ctx(FN, "step")
}

/// Clears the gradients of every parameter (before the next backward).
///
/// # Errors
/// - InvalidArgument: libtorch refused
/// - Closed: the optimizer was closed
#[rt_fn(tier = "verified")]
pub fn rt_optim_zero_grad(optimizer: Handle<Optim>) -> RtResult<()> {
    let mut st = lock(&optimizer.state);
    optimizer.sync(FN, &mut st)?;
    st.opt.zero_grad().ctx(FN, "zero_grad")
}

// ------------------------------------------------------------------ data loader

struct Cursor {
    pos: i64,
    epoch: u64,
    order: Option<Tensor>,
}

/// Batches over tensors (handle type `torch_dataloader`).
pub struct Loader {
    x: TensorH,
    y: Option<TensorH>,
    n: i64,
    batch: i64,
    shuffle: bool,
    drop_last: bool,
    seed: u64,
    cur: Mutex<Cursor>,
}

// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for Loader {
    const NAME: &'static str = "torch_dataloader";
}

fn splitmix(s: &mut u64) -> u64 {
    *s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *s;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A loader over `inputs` and optional `targets` (the same length along
/// dimension 0): each `rt_dataloader_next` gives the next batch.
///
/// # Options
/// - batch_size (int, default 32): rows per batch
/// - shuffle (bool, default false): a new permutation each epoch
/// - seed (int): the shuffle's seed (each epoch derives its own order from it); the time when absent
/// - drop_last (bool, default false): skip a last, smaller batch
///
/// # Errors
/// - InvalidArgument: batch_size below 1, a 0-d input, targets of another length, an unknown option
/// - Closed: a tensor was closed
#[rt_fn(tier = "empirical", ret = "handle<torch_dataloader>")]
pub fn rt_dataloader_new(inputs: T, targets: Option<T>, opts: Opts) -> RtResult<Value> {
    opts.only(&["batch_size", "shuffle", "seed", "drop_last"])?;
    let batch = opts.int("batch_size")?.unwrap_or(32);
    if batch < 1 {
        return Err(Error::invalid(FN, "batch_size must be 1 or more", batch));
    }
    let xs = inputs.0.size();
    if xs.is_empty() {
        return Err(Error::invalid(FN, "inputs need at least one dimension (the rows)", "[]"));
    }
    let n = xs[0];
    let y = match &targets {
        Some(t) => {
            let ys = t.0.size();
            if ys.first() != Some(&n) {
                return Err(Error::invalid(FN, format!("targets must have {n} rows like the inputs"), format!("{ys:?}")));
            }
            Some(TensorH::new(t.0.shallow_clone()))
        }
        None => None,
    };
    let seed = match opts.int("seed")? {
        Some(s) => s as u64,
        None => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1),
    };
    Ok(new_handle(Loader {
        x: TensorH::new(inputs.0.shallow_clone()),
        y,
        n,
        batch,
        shuffle: opts.bool("shuffle")?.unwrap_or(false),
        drop_last: opts.bool("drop_last")?.unwrap_or(false),
        seed,
        cur: Mutex::new(Cursor { pos: 0, epoch: 0, order: None }),
    }))
}

/// The next batch as an array `[inputs, targets]` (`[inputs]` without
/// targets), or nil at the end of an epoch; the call after nil starts the next epoch.
///
/// # Errors
/// - InvalidArgument: libtorch refused
/// - Closed: the loader was closed
#[rt_fn(tier = "empirical")]
pub fn rt_dataloader_next(loader: Handle<Loader>) -> RtResult<Value> {
    let l = &*loader;
    let mut c = lock(&l.cur);
    let left = l.n - c.pos;
    if left <= 0 || (l.drop_last && left < l.batch) {
        c.pos = 0;
        c.epoch += 1;
        c.order = None;
        return Ok(Value::NIL);
    }
    if l.shuffle && c.order.is_none() {
        let mut s = l.seed ^ c.epoch.wrapping_mul(0xA24B_AED4_963E_E407);
        let mut p: Vec<i64> = (0..l.n).collect();
        for i in (1..p.len()).rev() {
            let j = (splitmix(&mut s) % (i as u64 + 1)) as usize;
            p.swap(i, j);
        }
        let t = Tensor::f_from_slice(&p).ctx(FN, "permutation")?;
        let t = if l.x.0.device() != Device::Cpu { t.f_to_device(l.x.0.device()).ctx(FN, "permutation to the device")? } else { t };
        c.order = Some(t);
    }
    let len = left.min(l.batch);
    let take = |t: &Tensor| -> RtResult<Tensor> {
        match &c.order {
            Some(o) => {
                let idx = o.f_narrow(0, c.pos, len).ctx(FN, "batch indices")?;
                let idx = if t.device() != o.device() { idx.f_to_device(t.device()).ctx(FN, "indices to the device")? } else { idx };
                t.f_index_select(0, &idx).ctx(FN, "select the batch")
            }
            None => t.f_narrow(0, c.pos, len).ctx(FN, "slice the batch"),
        }
    };
    let out = Value::array(2);
    out.push(wrap(take(&l.x.0)?));
    if let Some(y) = &l.y {
        out.push(wrap(take(&y.0)?));
    }
    c.pos += len;
    Ok(out)
}

// ------------------------------------------------------------------ checkpoints

/// Writes every parameter of `store` to `path` (libtorch's C++ module format,
/// as tch's `VarStore::save`), replacing the file.
///
/// # Errors
/// - InvalidArgument: a bad path or libtorch refused
/// - NotFound: the directory does not exist
/// - PermissionDenied: the file cannot be written
/// - Io: another I/O failure
/// - Closed: the store was closed
#[rt_fn(cap = "fs.write", scoped, blocking, tier = "empirical")]
pub fn rt_model_save(store: Handle<Store>, path: &str) -> RtResult<()> {
    let named: BTreeMap<String, Tensor> = vars(&store).named_variables.iter().map(|(k, v)| (k.clone(), v.shallow_clone())).collect();
    let named: Vec<(String, Tensor)> = named.into_iter().collect();
    let t = beneath::resolve(FN, "fs.write", path, Follow::Yes)?;
    let f = t.open_write(WriteMode::REPLACE)?;
    let mut w = BufWriter::new(f);
    Tensor::save_multi_to_stream(&named, &mut w).ctxf(FN, || format!("cannot save to {path:?}"))?;
    w.flush().map_err(|e| t.err(&e))?;
    let f = w.into_inner().map_err(|e| t.err(e.error()))?;
    f.sync_all().map_err(|e| t.err(&e))
}

/// Reads parameters saved by `rt_model_save` into `store`. An empty store
/// takes every tensor of the file (layers called later use them); a store
/// with parameters needs the same names, shapes and dtypes, and its values are
/// replaced in place (optimizers keep working).
///
/// # Errors
/// - InvalidArgument: the file's parameters differ from the store's (names, shapes, dtypes): another model
/// - Parse: not a checkpoint
/// - NotFound: no such file
/// - PermissionDenied: the file cannot be read
/// - Io: another I/O failure
/// - Closed: the store was closed
#[rt_fn(cap = "fs.read", scoped, blocking, tier = "empirical")]
pub fn rt_model_load(store: Handle<Store>, path: &str) -> RtResult<()> {
    let t = beneath::resolve(FN, "fs.read", path, Follow::Yes)?;
    let f = t.open_read().map_err(|e| t.err(&e))?;
    let loaded = Tensor::load_multi_from_stream_with_device(BufReader::new(f), store.vs.device()).map_err(|e| {
        let mut err = terr(FN, format!("cannot read a checkpoint from {path:?}"), e);
        if err.code == Code::InvalidArgument {
            err.code = Code::Parse;
        }
        err
    })?;
    let loaded: BTreeMap<String, Tensor> = loaded.into_iter().collect();
    let _g = lock(&store.create);
    let empty = vars(&store).named_variables.is_empty();
    if empty {
        for name in loaded.keys() {
            let parts: Vec<&str> = name.split('.').collect();
            if parts.iter().any(|p| p.is_empty()) {
                return Err(Error::parse(FN, "a parameter name in the checkpoint is malformed", name));
            }
        }
        let root = store.vs.root();
        for (name, src) in loaded {
            let parts: Vec<&str> = name.split('.').collect();
            let mut p = root.clone();
            for s in &parts[..parts.len() - 1] {
                p = p.sub(*s);
            }
            let last = parts[parts.len() - 1];
            let k = src.f_kind().ctx(FN, "dtype")?;
            let trainable = matches!(k, Kind::Float | Kind::Double | Kind::Half | Kind::BFloat16)
                && !matches!(last, "running_mean" | "running_var" | "num_batches_tracked");
            let src = src.f_detach().ctx(FN, "detach")?;
            let _ = p.add(last, src, trainable);
        }
        return Ok(());
    }
    let mut v = vars(&store);
    let mine: BTreeMap<String, Tensor> = v.named_variables.iter().map(|(k, t)| (k.clone(), t.shallow_clone())).collect();
    for name in mine.keys() {
        if !loaded.contains_key(name) {
            return Err(Error::invalid(FN, format!("the checkpoint lacks parameter {name} of this model (another model?)"), path));
        }
    }
    for (name, src) in &loaded {
        let dst = mine
            .get(name)
            .ok_or_else(|| Error::invalid(FN, format!("the checkpoint has parameter {name}, which this model lacks (another model?)"), path))?;
        let (ds, ss) = (dst.size(), src.size());
        if ds != ss {
            return Err(Error::invalid(FN, format!("parameter {name} is {ss:?} in the checkpoint, {ds:?} in this model (another model?)"), path));
        }
        let (dk, sk) = (dst.f_kind().ctx(FN, "dtype")?, src.f_kind().ctx(FN, "dtype")?);
        if dk != sk {
            return Err(Error::invalid(FN, format!("parameter {name} is {sk:?} in the checkpoint, {dk:?} in this model"), path));
        }
    }
    let _ng = tch::no_grad_guard();
    for (name, src) in &loaded {
        if let Some(dst) = v.named_variables.get_mut(name) {
            dst.f_copy_(src).ctxf(FN, || format!("copy {name}"))?;
        }
    }
    Ok(())
}
