//! The exports (plan section 6.3) over ash and gpu-allocator.

use ash::vk;
use ffi_sdk::prelude::*;
use gpu_allocator::vulkan::{Allocation, AllocationCreateDesc, AllocationScheme, Allocator, AllocatorCreateDesc};
use gpu_allocator::MemoryLocation;
use std::ffi::CString;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

mod gfx;
mod window;
pub use gfx::*;
pub use window::*;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn vkerr(func: &str, what: &str, r: vk::Result) -> Error {
    let code = match r {
        vk::Result::ERROR_OUT_OF_HOST_MEMORY | vk::Result::ERROR_OUT_OF_DEVICE_MEMORY => Code::LimitExceeded,
        vk::Result::ERROR_LAYER_NOT_PRESENT | vk::Result::ERROR_EXTENSION_NOT_PRESENT | vk::Result::ERROR_FEATURE_NOT_PRESENT
        | vk::Result::ERROR_INCOMPATIBLE_DRIVER => Code::Unsupported,
        vk::Result::ERROR_DEVICE_LOST => Code::Io,
        vk::Result::TIMEOUT => Code::Timeout,
        _ => Code::Io,
    };
    Error::plain(code, func, format!("{what}: {r:?}"))
}

/// The Vulkan loader, loaded once (Error Unsupported when libvulkan.so.1 is absent).
fn entry(func: &str) -> RtResult<ash::Entry> {
    static ENTRY: std::sync::OnceLock<Result<ash::Entry, String>> = std::sync::OnceLock::new();
    let e = ENTRY.get_or_init(|| {
        // SAFETY: loads the system's Vulkan loader; its initialisation has no preconditions.
        unsafe { ash::Entry::load() }.map_err(|e| format!("no Vulkan loader (libvulkan.so.1: {e})"))
    });
    e.clone().map_err(|m| Error::unsupported(func, m))
}

/// Counts a parent's open children (for the Busy check of explicit destroys).
pub struct Children(pub(crate) AtomicUsize);

/// A child's registration with its parent: counted while it lives.
pub(crate) struct ChildOf<P: HasChildren>(pub(crate) Arc<P>);
pub(crate) trait HasChildren {
    fn children(&self) -> &Children;
}
impl<P: HasChildren> ChildOf<P> {
    pub(crate) fn new(p: Arc<P>) -> Self {
        p.children().0.fetch_add(1, Ordering::SeqCst);
        ChildOf(p)
    }
}
impl<P: HasChildren> Drop for ChildOf<P> {
    fn drop(&mut self) {
        self.0.children().0.fetch_sub(1, Ordering::SeqCst);
    }
}
impl<P: HasChildren> std::ops::Deref for ChildOf<P> {
    type Target = P;
    fn deref(&self) -> &P {
        &self.0
    }
}

// ------------------------------------------------------------------ instance

/// An instance (handle type `vk_instance`).
pub struct Instance {
    /// The loader: kept as long as the instance (it owns the dispatch table).
    pub(crate) entry: ash::Entry,
    pub(crate) instance: ash::Instance,
    children: Children,
    validation: bool,
    /// The API version asked for (1.3 where the loader has it).
    api: u32,
    /// VK_KHR_surface and at least one X11 surface extension are enabled.
    pub(crate) surfaces: bool,
    debug: Option<(ash::ext::debug_utils::Instance, vk::DebugUtilsMessengerEXT)>,
    /// Messages of the validation layer (VK_EXT_debug_utils); boxed: the
    /// callback holds its address.
    messages: Box<MsgLog>,
}
// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for Instance {
    const NAME: &'static str = "vk_instance";
}
impl HasChildren for Instance {
    fn children(&self) -> &Children {
        &self.children
    }
}
impl Drop for Instance {
    fn drop(&mut self) {
        // SAFETY: every child holds this instance, so none is left; the
        // messenger goes first, the message log (its user data) after both.
        unsafe {
            if let Some((du, m)) = self.debug.take() {
                du.destroy_debug_utils_messenger(m, None);
            }
            self.instance.destroy_instance(None);
        }
    }
}

const VALIDATION: &str = "VK_LAYER_KHRONOS_validation";
/// At most this many messages are kept (the oldest are dropped first).
const MAX_MESSAGES: usize = 10_000;

/// One message of the debug messenger.
struct Msg {
    severity: &'static str,
    kind: String,
    id: String,
    text: String,
}
struct MsgLog {
    msgs: Mutex<std::collections::VecDeque<Msg>>,
    dropped: AtomicUsize,
}

unsafe extern "system" fn on_message(
    sev: vk::DebugUtilsMessageSeverityFlagsEXT,
    ty: vk::DebugUtilsMessageTypeFlagsEXT,
    data: *const vk::DebugUtilsMessengerCallbackDataEXT<'_>,
    user: *mut std::ffi::c_void,
) -> vk::Bool32 {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if user.is_null() || data.is_null() {
            return;
        }
        // SAFETY: `user` is the instance's boxed log, alive until after the
        // messenger is destroyed; `data` is valid for this call.
        let (log, d) = unsafe { (&*(user as *const MsgLog), &*data) };
        let s = |c: Option<&std::ffi::CStr>| c.map(|c| c.to_string_lossy().into_owned()).unwrap_or_default();
        // SAFETY: the strings are NUL-terminated or null (spec).
        let (id, text) = unsafe { (s(d.message_id_name_as_c_str()), s(d.message_as_c_str())) };
        let severity = if sev.contains(vk::DebugUtilsMessageSeverityFlagsEXT::ERROR) {
            "error"
        } else if sev.contains(vk::DebugUtilsMessageSeverityFlagsEXT::WARNING) {
            "warning"
        } else if sev.contains(vk::DebugUtilsMessageSeverityFlagsEXT::INFO) {
            "info"
        } else {
            "verbose"
        };
        let mut kinds = Vec::new();
        for (f, n) in [
            (vk::DebugUtilsMessageTypeFlagsEXT::GENERAL, "general"),
            (vk::DebugUtilsMessageTypeFlagsEXT::VALIDATION, "validation"),
            (vk::DebugUtilsMessageTypeFlagsEXT::PERFORMANCE, "performance"),
        ] {
            if ty.contains(f) {
                kinds.push(n);
            }
        }
        let mut q = lock(&log.msgs);
        if q.len() >= MAX_MESSAGES {
            q.pop_front();
            log.dropped.fetch_add(1, Ordering::Relaxed);
        }
        q.push_back(Msg { severity, kind: kinds.join(","), id, text });
    }));
    vk::FALSE
}

fn has_ext(props: &[vk::ExtensionProperties], name: &std::ffi::CStr) -> bool {
    props.iter().any(|e| e.extension_name_as_c_str().is_ok_and(|n| n == name))
}

/// Creates a Vulkan instance (API 1.3 where the loader has it, else what it has). The surface extensions
/// (VK_KHR_surface, xlib, xcb) are enabled where present.
///
/// # Options
/// - app_name (text, default "simple-rt"): text
/// - validation (bool, default false): true: enable VK_LAYER_KHRONOS_validation and collect its messages through VK_EXT_debug_utils, read them with `rt_vk_instance_messages_drain`; Error Unsupported when the layer is not installed
/// - severity (text, default "warning"): the lowest severity collected: "verbose", "info", "warning" (default), "error"
///
/// # Errors
/// - InvalidArgument: app_name contains a NUL byte; severity must be verbose, info, warning or error; an unknown option, or an option of the wrong kind or range
/// - Timeout: the wait timed out
/// - Io: an operating-system failure (details.errno)
/// - Unsupported: no Vulkan loader is installed
/// - LimitExceeded: a size, depth or count limit was reached
#[rt_fn(cap = "gpu", tier = "empirical")]
pub fn rt_vk_instance_create(opts: Opts) -> RtResult<Value> {
    opts.only(&["app_name", "validation", "severity"])?;
    let entry = entry(FN)?;
    let app = CString::new(opts.text("app_name")?.unwrap_or("simple-rt"))
        .map_err(|_| Error::invalid(FN, "app_name contains a NUL byte", "app_name"))?;
    let validation = opts.bool("validation")?.unwrap_or(false);
    type Sev = vk::DebugUtilsMessageSeverityFlagsEXT;
    let severity = match opts.text("severity")?.unwrap_or("warning") {
        "verbose" => Sev::VERBOSE | Sev::INFO | Sev::WARNING | Sev::ERROR,
        "info" => Sev::INFO | Sev::WARNING | Sev::ERROR,
        "warning" => Sev::WARNING | Sev::ERROR,
        "error" => Sev::ERROR,
        other => return Err(Error::invalid(FN, "severity must be verbose, info, warning or error", ffi_sdk::error::quote(other))),
    };
    let mut layers: Vec<*const std::ffi::c_char> = Vec::new();
    let vl = CString::new(VALIDATION).expect("no NUL");
    if validation {
        // SAFETY: a global-level query through the loader `entry`, which stays loaded for the
        // call; ash sizes and owns the returned Vec, so no caller memory is written.
        let have = unsafe { entry.enumerate_instance_layer_properties() }.map_err(|e| vkerr(FN, "listing layers", e))?;
        if !have.iter().any(|l| l.layer_name_as_c_str().is_ok_and(|n| n.to_bytes() == VALIDATION.as_bytes())) {
            return Err(Error::unsupported(FN, format!("{VALIDATION} is not installed (Debian: vulkan-validationlayers)")));
        }
        layers.push(vl.as_ptr());
    }
    // SAFETY: global-level queries through the loaded `entry`; ash allocates the output
    // arrays itself (two-call idiom), so no caller memory is written.
    let (loader_api, exts) = unsafe {
        (
            entry.try_enumerate_instance_version().ok().flatten().unwrap_or(vk::API_VERSION_1_0),
            entry.enumerate_instance_extension_properties(None).map_err(|e| vkerr(FN, "listing instance extensions", e))?,
        )
    };
    let api = loader_api.min(vk::API_VERSION_1_3);
    let mut enabled: Vec<*const std::ffi::c_char> = Vec::new();
    let mut surfaces = false;
    if has_ext(&exts, ash::khr::surface::NAME) {
        for x in [ash::khr::xlib_surface::NAME, ash::khr::xcb_surface::NAME] {
            if has_ext(&exts, x) {
                enabled.push(x.as_ptr());
                surfaces = true;
            }
        }
        if surfaces {
            enabled.push(ash::khr::surface::NAME.as_ptr());
        }
    }
    if validation {
        if !has_ext(&exts, ash::ext::debug_utils::NAME) {
            return Err(Error::unsupported(FN, "validation needs VK_EXT_debug_utils, which the loader does not offer"));
        }
        enabled.push(ash::ext::debug_utils::NAME.as_ptr());
    }
    let messages = Box::new(MsgLog { msgs: Mutex::new(Default::default()), dropped: AtomicUsize::new(0) });
    let mut dci = vk::DebugUtilsMessengerCreateInfoEXT::default()
        .message_severity(severity)
        .message_type(
            vk::DebugUtilsMessageTypeFlagsEXT::GENERAL
                | vk::DebugUtilsMessageTypeFlagsEXT::VALIDATION
                | vk::DebugUtilsMessageTypeFlagsEXT::PERFORMANCE,
        )
        .pfn_user_callback(Some(on_message))
        .user_data(&*messages as *const MsgLog as *mut std::ffi::c_void);
    let ai = vk::ApplicationInfo::default().application_name(&app).engine_name(c"simple-rt").api_version(api);
    let mut ci = vk::InstanceCreateInfo::default().application_info(&ai).enabled_layer_names(&layers).enabled_extension_names(&enabled);
    if validation {
        // Also collects what vkCreateInstance / vkDestroyInstance report.
        ci = ci.push_next(&mut dci);
    }
    // SAFETY: valid create info; strings and the log outlive the call.
    let instance = unsafe { entry.create_instance(&ci, None) }.map_err(|e| vkerr(FN, "vkCreateInstance", e))?;
    let mut debug = None;
    if validation {
        let du = ash::ext::debug_utils::Instance::new(&entry, &instance);
        // SAFETY: the extension is enabled; the log outlives the messenger (Drop order).
        match unsafe { du.create_debug_utils_messenger(&dci, None) } {
            Ok(m) => debug = Some((du, m)),
            Err(e) => {
                // SAFETY: nothing was made from the instance yet.
                unsafe { instance.destroy_instance(None) };
                return Err(vkerr(FN, "vkCreateDebugUtilsMessengerEXT", e));
            }
        }
    }
    Ok(new_handle(Instance { entry, instance, children: Children(AtomicUsize::new(0)), validation, api, surfaces, debug, messages }))
}

/// Returns and removes the messages collected since the last call: an array
/// of `{severity ("error"|"warning"|"info"|"verbose"), type
/// ("validation", "general", "performance", comma-joined), id, message}`,
/// oldest first (at most 10000 are kept: a first entry with id "dropped"
/// counts the older ones lost). Empty when the instance was created without
/// `validation`.
///
/// # Errors
/// - Closed: `instance` was closed
#[rt_fn(cap = "gpu", tier = "empirical", ret = "array<dict>")]
pub fn rt_vk_instance_messages_drain(instance: Handle<Instance>) -> RtResult<Value> {
    let msgs: Vec<Msg> = lock(&instance.messages.msgs).drain(..).collect();
    let dropped = instance.messages.dropped.swap(0, Ordering::Relaxed);
    let out = Value::array(msgs.len() + 1);
    if dropped > 0 {
        out.push(msg_value(&Msg { severity: "warning", kind: "general".into(), id: "dropped".into(), text: format!("{dropped} older messages were dropped") }));
    }
    for m in &msgs {
        out.push(msg_value(m));
    }
    Ok(out)
}

/// `{api_version, validation, surfaces}`: the API version asked for, whether
/// the validation layer is on, whether windows can get surfaces (VK_KHR_surface
/// with an X11 surface extension enabled).
///
/// # Errors
/// - Closed: `instance` was closed
#[rt_fn(cap = "gpu", tier = "empirical", ret = "dict")]
pub fn rt_vk_instance_info_get(instance: Handle<Instance>) -> RtResult<Value> {
    let d = Value::dict();
    d.set("api_version", Value::text(&version(instance.api)));
    d.set("validation", Value::bool(instance.validation));
    d.set("surfaces", Value::bool(instance.surfaces));
    Ok(d)
}

fn msg_value(m: &Msg) -> Value {
    let d = Value::dict();
    d.set("severity", Value::text(m.severity));
    d.set("type", Value::text(&m.kind));
    d.set("id", Value::text(&m.id));
    d.set("message", Value::text(&m.text));
    d
}

pub(crate) fn destroy_checked<P: HasChildren + HandleType>(func: &str, h: &Handle<P>, what: &str) -> RtResult<()> {
    let n = h.children().0.load(Ordering::SeqCst);
    if n > 0 {
        return Err(Error::new(Code::Busy, func, format!("the {what} still has {n} open child object(s): destroy them first"), n));
    }
    h.close();
    Ok(())
}

/// Destroys an instance.
///
/// # Errors
/// - Closed: `instance` was closed
/// - Busy: while devices made from it are open
#[rt_fn(cap = "gpu", tier = "empirical")]
pub fn rt_vk_instance_destroy(instance: Handle<Instance>) -> RtResult<()> {
    destroy_checked(FN, &instance, "instance")
}

fn physical(func: &str, inst: &Instance) -> RtResult<Vec<vk::PhysicalDevice>> {
    // SAFETY: `inst` is a live `Instance` (borrowed for the call; destroyed only in its Drop);
    // ash allocates the output array.
    unsafe { inst.instance.enumerate_physical_devices() }.map_err(|e| vkerr(func, "vkEnumeratePhysicalDevices", e))
}

fn version(v: u32) -> String {
    format!("{}.{}.{}", vk::api_version_major(v), vk::api_version_minor(v), vk::api_version_patch(v))
}

/// The physical devices: an array of dicts `{index, name, type ("cpu",
/// "discrete_gpu", "integrated_gpu", "virtual_gpu", "other"), api_version,
/// driver_version, vendor_id, device_id, memory_heaps: [{size,
/// device_local}], queue_families: [{index, count, graphics, compute,
/// transfer}], limits: {max_compute_work_group_count,
/// max_compute_work_group_size, max_compute_work_group_invocations,
/// max_storage_buffer_range, max_push_constants_size}}`.
///
/// # Errors
/// - Closed: `instance` was closed
#[rt_fn(cap = "gpu", tier = "empirical", ret = "array<dict>")]
pub fn rt_vk_physical_devices(instance: Handle<Instance>) -> RtResult<Value> {
    let pds = physical(FN, &instance)?;
    let out = Value::array(pds.len());
    for (i, pd) in pds.iter().enumerate() {
        // SAFETY: pd comes from this instance.
        let (p, mem, qf) = unsafe {
            (
                instance.instance.get_physical_device_properties(*pd),
                instance.instance.get_physical_device_memory_properties(*pd),
                instance.instance.get_physical_device_queue_family_properties(*pd),
            )
        };
        let d = Value::dict();
        d.set("index", Value::int(i as i64));
        d.set("name", Value::text(&p.device_name_as_c_str().map(|c| c.to_string_lossy().into_owned()).unwrap_or_default()));
        let ty = match p.device_type {
            vk::PhysicalDeviceType::CPU => "cpu",
            vk::PhysicalDeviceType::DISCRETE_GPU => "discrete_gpu",
            vk::PhysicalDeviceType::INTEGRATED_GPU => "integrated_gpu",
            vk::PhysicalDeviceType::VIRTUAL_GPU => "virtual_gpu",
            _ => "other",
        };
        d.set("type", Value::text(ty));
        d.set("api_version", Value::text(&version(p.api_version)));
        d.set("driver_version", Value::int(p.driver_version as i64));
        d.set("vendor_id", Value::int(p.vendor_id as i64));
        d.set("device_id", Value::int(p.device_id as i64));
        let heaps = Value::array(mem.memory_heap_count as usize);
        for h in &mem.memory_heaps[..mem.memory_heap_count as usize] {
            let hd = Value::dict();
            hd.set("size", Value::int(h.size as i64));
            hd.set("device_local", Value::bool(h.flags.contains(vk::MemoryHeapFlags::DEVICE_LOCAL)));
            heaps.push(hd);
        }
        d.set("memory_heaps", heaps);
        let fams = Value::array(qf.len());
        for (k, f) in qf.iter().enumerate() {
            let fd = Value::dict();
            fd.set("index", Value::int(k as i64));
            fd.set("count", Value::int(f.queue_count as i64));
            fd.set("graphics", Value::bool(f.queue_flags.contains(vk::QueueFlags::GRAPHICS)));
            fd.set("compute", Value::bool(f.queue_flags.contains(vk::QueueFlags::COMPUTE)));
            fd.set("transfer", Value::bool(f.queue_flags.contains(vk::QueueFlags::TRANSFER)));
            fams.push(fd);
        }
        d.set("queue_families", fams);
        let l = &p.limits;
        let ints = |xs: &[u32]| {
            let a = Value::array(xs.len());
            for x in xs {
                a.push(Value::int(*x as i64));
            }
            a
        };
        let lim = Value::dict();
        lim.set("max_compute_work_group_count", ints(&l.max_compute_work_group_count));
        lim.set("max_compute_work_group_size", ints(&l.max_compute_work_group_size));
        lim.set("max_compute_work_group_invocations", Value::int(l.max_compute_work_group_invocations as i64));
        lim.set("max_storage_buffer_range", Value::int(l.max_storage_buffer_range as i64));
        lim.set("max_push_constants_size", Value::int(l.max_push_constants_size as i64));
        d.set("limits", lim);
        out.push(d);
    }
    Ok(out)
}

// ------------------------------------------------------------------ device

/// A logical device with one queue family (handle type `vk_device`).
pub struct Device {
    pub(crate) inst: ChildOf<Instance>,
    pub(crate) pd: vk::PhysicalDevice,
    pub(crate) device: ash::Device,
    pub(crate) family: u32,
    queue_count: u32,
    limits: vk::PhysicalDeviceLimits,
    /// The family has graphics (draws, images) besides compute.
    pub(crate) graphics: bool,
    /// Vulkan 1.3 dynamic rendering is enabled (graphics pipelines need it).
    pub(crate) dynamic_rendering: bool,
    /// VK_KHR_swapchain is enabled.
    pub(crate) swapchain: Option<ash::khr::swapchain::Device>,
    pub(crate) allocator: Mutex<Option<Allocator>>,
    /// The family's queues, each behind the one lock every `vk_queue` handle
    /// of it shares (Vulkan requires external synchronisation per queue).
    pub(crate) queues: Vec<Arc<Mutex<vk::Queue>>>,
    /// Signalled-and-reset fences of finished submissions, reused by `rt_vk_submit`.
    spare_fences: Mutex<Vec<vk::Fence>>,
    pub(crate) children: Children,
}
// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for Device {
    const NAME: &'static str = "vk_device";
}
impl HasChildren for Device {
    fn children(&self) -> &Children {
        &self.children
    }
}
impl Drop for Device {
    fn drop(&mut self) {
        // SAFETY: every child holds this device, so none is left; the
        // allocator's memory was freed by the children and it goes first.
        unsafe {
            let _ = self.device.device_wait_idle();
            drop(lock(&self.allocator).take());
            for f in lock(&self.spare_fences).drain(..) {
                self.device.destroy_fence(f, None);
            }
            self.device.destroy_device(None);
        }
        let _ = &self.inst;
    }
}

/// Creates a logical device on physical device `index` (the first one when nil) with every queue of one queue
/// family: the first with graphics and compute, else the first with compute. Dynamic rendering (Vulkan 1.3) and
/// VK_KHR_swapchain are enabled where the device has them.
///
/// # Options
/// - queue_family (int): an index of a compute-capable family, instead
///
/// # Errors
/// - InvalidArgument: queue_family must be the index of a compute-capable family; an unknown option, or an option of the wrong kind or range
/// - Unsupported: the device has no compute queue
/// - Closed: `instance` was closed
/// - OutOfRange: no physical device <i> (… present)
#[rt_fn(cap = "gpu", tier = "empirical")]
pub fn rt_vk_device_create(instance: Handle<Instance>, index: Option<i64>, opts: Opts) -> RtResult<Value> {
    opts.only(&["queue_family"])?;
    let pds = physical(FN, &instance)?;
    let i = index.unwrap_or(0);
    if i < 0 || i as usize >= pds.len() {
        return Err(Error::new(Code::OutOfRange, FN, format!("no physical device {i} ({} present)", pds.len()), i));
    }
    let pd = pds[i as usize];
    let inst = &instance.instance;
    // SAFETY: pd comes from this instance.
    let (qf, props, exts) = unsafe {
        (
            inst.get_physical_device_queue_family_properties(pd),
            inst.get_physical_device_properties(pd),
            inst.enumerate_device_extension_properties(pd).map_err(|e| vkerr(FN, "listing device extensions", e))?,
        )
    };
    let gc = vk::QueueFlags::GRAPHICS | vk::QueueFlags::COMPUTE;
    let family = match opts.int("queue_family")? {
        Some(f) => {
            if f < 0 || f as usize >= qf.len() || !qf[f as usize].queue_flags.contains(vk::QueueFlags::COMPUTE) {
                return Err(Error::invalid(FN, "queue_family must be the index of a compute-capable family", f));
            }
            f as u32
        }
        None => qf
            .iter()
            .position(|f| f.queue_flags.contains(gc))
            .or_else(|| qf.iter().position(|f| f.queue_flags.contains(vk::QueueFlags::COMPUTE)))
            .ok_or_else(|| Error::unsupported(FN, "the device has no compute queue"))? as u32,
    };
    let graphics = qf[family as usize].queue_flags.contains(vk::QueueFlags::GRAPHICS);
    let count = qf[family as usize].queue_count.max(1);
    let prio = vec![1.0f32; count as usize];
    let qci = [vk::DeviceQueueCreateInfo::default().queue_family_index(family).queue_priorities(&prio)];
    // Dynamic rendering: core in 1.3, when both the instance and the device are 1.3.
    let mut f13 = vk::PhysicalDeviceVulkan13Features::default();
    let mut dynamic_rendering = false;
    if instance.api >= vk::API_VERSION_1_3 && props.api_version >= vk::API_VERSION_1_3 {
        let mut f2 = vk::PhysicalDeviceFeatures2::default().push_next(&mut f13);
        // SAFETY: a query of a 1.3 physical device through a 1.3 instance.
        unsafe { inst.get_physical_device_features2(pd, &mut f2) };
        dynamic_rendering = f13.dynamic_rendering == vk::TRUE;
    }
    let mut want13 = vk::PhysicalDeviceVulkan13Features::default().dynamic_rendering(dynamic_rendering);
    let swapchain_ext = instance.surfaces && has_ext(&exts, ash::khr::swapchain::NAME);
    let dev_exts: Vec<*const std::ffi::c_char> = if swapchain_ext { vec![ash::khr::swapchain::NAME.as_ptr()] } else { vec![] };
    let mut ci = vk::DeviceCreateInfo::default().queue_create_infos(&qci).enabled_extension_names(&dev_exts);
    if dynamic_rendering {
        ci = ci.push_next(&mut want13);
    }
    // SAFETY: valid create info for a physical device of this instance.
    let device = unsafe { inst.create_device(pd, &ci, None) }.map_err(|e| vkerr(FN, "vkCreateDevice", e))?;
    let allocator = Allocator::new(&AllocatorCreateDesc {
        instance: inst.clone(),
        device: device.clone(),
        physical_device: pd,
        debug_settings: Default::default(),
        buffer_device_address: false,
        allocation_sizes: Default::default(),
    });
    let allocator = match allocator {
        Ok(a) => a,
        Err(e) => {
            // SAFETY: nothing was made from the device yet.
            unsafe { device.destroy_device(None) };
            return Err(Error::internal(FN, format!("gpu-allocator: {e}")));
        }
    };
    let swapchain = swapchain_ext.then(|| ash::khr::swapchain::Device::new(inst, &device));
    // SAFETY: the device was just created with `count` queues of `family`, so every index
    // in 0..count names an existing queue of `device`.
    let queues = (0..count).map(|i| Arc::new(Mutex::new(unsafe { device.get_device_queue(family, i) }))).collect();
    Ok(new_handle(Device {
        inst: ChildOf::new(instance.arc()),
        pd,
        device,
        family,
        queue_count: count,
        limits: props.limits,
        graphics,
        dynamic_rendering,
        swapchain,
        allocator: Mutex::new(Some(allocator)),
        queues,
        spare_fences: Mutex::new(Vec::new()),
        children: Children(AtomicUsize::new(0)),
    }))
}

/// Destroys a device.
///
/// # Errors
/// - Closed: `device` was closed
/// - Busy: while objects made from it are open
#[rt_fn(cap = "gpu", tier = "empirical")]
pub fn rt_vk_device_destroy(device: Handle<Device>) -> RtResult<()> {
    destroy_checked(FN, &device, "device")
}

/// A queue of the device's compute family (handle type `vk_queue`).
pub struct Queue {
    pub(crate) dev: ChildOf<Device>,
    /// Shared with every other handle of the same queue (`Device::queues`).
    pub(crate) queue: Arc<Mutex<vk::Queue>>,
}
// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for Queue {
    const NAME: &'static str = "vk_queue";
}

/// Queue `index` (0 when nil) of the device's compute queue family.
///
/// # Errors
/// - Closed: `device` was closed
/// - OutOfRange: no queue <i> (the family has …)
#[rt_fn(cap = "gpu", tier = "empirical")]
pub fn rt_vk_queue_get(device: Handle<Device>, index: Option<i64>) -> RtResult<Value> {
    let i = index.unwrap_or(0);
    if i < 0 || i as u32 >= device.queue_count {
        return Err(Error::new(Code::OutOfRange, FN, format!("no queue {i} (the family has {})", device.queue_count), i));
    }
    Ok(new_handle(Queue { dev: ChildOf::new(device.arc()), queue: device.queues[i as usize].clone() }))
}

// ------------------------------------------------------------------ buffers and memory

/// A buffer (handle type `vk_buffer`); holds its memory once bound.
pub struct Buffer {
    pub(crate) dev: ChildOf<Device>,
    pub(crate) buffer: vk::Buffer,
    pub(crate) size: u64,
    pub(crate) memory: Mutex<Option<Arc<Memory>>>,
    pub(crate) usage: vk::BufferUsageFlags,
    pub(crate) children: Children,
}
// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for Buffer {
    const NAME: &'static str = "vk_buffer";
}
impl HasChildren for Buffer {
    fn children(&self) -> &Children {
        &self.children
    }
}
impl Drop for Buffer {
    fn drop(&mut self) {
        // SAFETY: no command buffer uses it (they hold the buffer); its memory is freed after.
        unsafe { self.dev.device.destroy_buffer(self.buffer, None) };
    }
}

/// Creates a buffer of `size_bytes` bytes.
///
/// # Options
/// - usage (default storage + both transfers): array of "storage", "uniform", "transfer_src", "transfer_dst"
///
/// # Errors
/// - InvalidArgument: size_bytes must be positive; unknown usage (storage, uniform, transfer_src, transfer_dst); usage must name at least one use; an unknown option, or an option of the wrong kind or range
/// - Timeout: the wait timed out
/// - Io: an operating-system failure (details.errno)
/// - Unsupported: not supported (on this machine or build, or for this input)
/// - Closed: `device` was closed
/// - LimitExceeded: a size, depth or count limit was reached
#[rt_fn(cap = "gpu", tier = "empirical")]
pub fn rt_vk_buffer_create(device: Handle<Device>, size_bytes: i64, opts: Opts) -> RtResult<Value> {
    opts.only(&["usage"])?;
    if size_bytes <= 0 {
        return Err(Error::invalid(FN, "size_bytes must be positive", size_bytes));
    }
    let usage = match opts.texts("usage")? {
        None => vk::BufferUsageFlags::STORAGE_BUFFER | vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST,
        Some(us) => {
            let mut f = vk::BufferUsageFlags::empty();
            for u in &us {
                f |= match u.as_str() {
                    "storage" => vk::BufferUsageFlags::STORAGE_BUFFER,
                    "uniform" => vk::BufferUsageFlags::UNIFORM_BUFFER,
                    "transfer_src" => vk::BufferUsageFlags::TRANSFER_SRC,
                    "transfer_dst" => vk::BufferUsageFlags::TRANSFER_DST,
                    _ => return Err(Error::invalid(FN, "unknown usage (storage, uniform, transfer_src, transfer_dst)", ffi_sdk::error::quote(u))),
                };
            }
            if f.is_empty() {
                return Err(Error::invalid(FN, "usage must name at least one use", "[]"));
            }
            f
        }
    };
    let ci = vk::BufferCreateInfo::default().size(size_bytes as u64).usage(usage).sharing_mode(vk::SharingMode::EXCLUSIVE);
    // SAFETY: `device` is alive for the call (its Handle); the create info meets
    // vkCreateBuffer's rules: size > 0 and a non-empty usage (both checked above), exclusive
    // sharing, no pNext chain; it borrows nothing that could dangle.
    let buffer = unsafe { device.device.create_buffer(&ci, None) }.map_err(|e| vkerr(FN, "vkCreateBuffer", e))?;
    Ok(new_handle(Buffer {
        dev: ChildOf::new(device.arc()),
        buffer,
        size: size_bytes as u64,
        memory: Mutex::new(None),
        usage,
        children: Children(AtomicUsize::new(0)),
    }))
}

/// Destroys a buffer (its memory goes with it once nothing else uses it).
///
/// # Errors
/// - Closed: `buffer` was closed
/// - Busy: while a command buffer that records it is open
#[rt_fn(cap = "gpu", tier = "empirical")]
pub fn rt_vk_buffer_destroy(buffer: Handle<Buffer>) -> RtResult<()> {
    destroy_checked(FN, &buffer, "buffer")
}

/// Memory bound to one buffer (handle type `vk_memory`).
pub struct Memory {
    dev: ChildOf<Device>,
    alloc: Mutex<Option<Allocation>>,
    size: u64,
    host_visible: bool,
}
impl Drop for Memory {
    fn drop(&mut self) {
        if let Some(a) = lock(&self.alloc).take() {
            if let Some(al) = lock(&self.dev.allocator).as_mut() {
                let _ = al.free(a);
            }
        }
    }
}

/// A handle to a buffer's memory: the `vk_memory` handle value wraps the
/// same `Arc` the buffer holds.
pub struct MemoryRef(Arc<Memory>);
// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for MemoryRef {
    const NAME: &'static str = "vk_memory";
}

/// Allocates memory for `buffer` through gpu-allocator and binds it. A buffer is bound once: a second call is
/// Error AlreadyExists.
///
/// # Options
/// - location (text, default "cputogpu"): "cpu_to_gpu" (default: host-visible, coherent, mappable), "gpu_to_cpu" (host-visible, cached: for read-back), "gpu_only" (not mappable)
///
/// # Errors
/// - InvalidArgument: the buffer belongs to another device; location must be cpu_to_gpu, gpu_to_cpu or gpu_only; an unknown option, or an option of the wrong kind or range
/// - AlreadyExists: the buffer has memory bound already
/// - Timeout: the wait timed out
/// - Io: an operating-system failure (details.errno)
/// - Unsupported: not supported (on this machine or build, or for this input)
/// - Closed: the device is being destroyed; `device` was closed; `buffer` was closed
/// - LimitExceeded: gpu-allocator
#[rt_fn(cap = "gpu", tier = "empirical")]
pub fn rt_vk_memory_allocate(device: Handle<Device>, buffer: Handle<Buffer>, opts: Opts) -> RtResult<Value> {
    opts.only(&["location"])?;
    if !std::ptr::eq(&*buffer.dev.0 as *const Device, &*device as *const Device) {
        return Err(Error::invalid(FN, "the buffer belongs to another device", "buffer"));
    }
    let location = match opts.text("location")?.unwrap_or("cpu_to_gpu") {
        "cpu_to_gpu" => MemoryLocation::CpuToGpu,
        "gpu_to_cpu" => MemoryLocation::GpuToCpu,
        "gpu_only" => MemoryLocation::GpuOnly,
        other => return Err(Error::invalid(FN, "location must be cpu_to_gpu, gpu_to_cpu or gpu_only", ffi_sdk::error::quote(other))),
    };
    let mut bound = lock(&buffer.memory);
    if bound.is_some() {
        return Err(Error::new(Code::AlreadyExists, FN, "the buffer has memory bound already", "buffer"));
    }
    // SAFETY: `buffer` was created on `device` (checked with ptr::eq above) and is alive: the
    // Handle keeps it open for this call.
    let req = unsafe { device.device.get_buffer_memory_requirements(buffer.buffer) };
    let alloc = {
        let mut g = lock(&device.allocator);
        let al = g.as_mut().ok_or_else(|| Error::plain(Code::Closed, FN, "the device is being destroyed"))?;
        al.allocate(&AllocationCreateDesc {
            name: "rt_vk_buffer",
            requirements: req,
            location,
            linear: true,
            allocation_scheme: AllocationScheme::GpuAllocatorManaged,
        })
        .map_err(|e| Error::plain(Code::LimitExceeded, FN, format!("gpu-allocator: {e}")))?
    };
    // SAFETY: memory and offset come from an allocation made for these requirements.
    if let Err(e) = unsafe { device.device.bind_buffer_memory(buffer.buffer, alloc.memory(), alloc.offset()) } {
        if let Some(al) = lock(&device.allocator).as_mut() {
            let _ = al.free(alloc);
        }
        return Err(vkerr(FN, "vkBindBufferMemory", e));
    }
    let host_visible = alloc.mapped_ptr().is_some();
    let mem = Arc::new(Memory { dev: ChildOf::new(device.arc()), alloc: Mutex::new(Some(alloc)), size: buffer.size, host_visible });
    *bound = Some(mem.clone());
    Ok(new_handle(MemoryRef(mem)))
}

/// Closes the memory handle. The memory itself is released when its buffer
/// is destroyed too (a bound buffer keeps its memory: never a dangling binding).
///
/// # Errors
/// - Closed: `memory` was closed
#[rt_fn(cap = "gpu", tier = "empirical")]
pub fn rt_vk_memory_free(memory: Handle<MemoryRef>) -> RtResult<()> {
    memory.close();
    Ok(())
}

fn mem_range(func: &str, m: &Memory, offset: Option<i64>, len: Option<i64>) -> RtResult<(usize, usize)> {
    let off = offset.unwrap_or(0);
    let len = len.unwrap_or(m.size as i64 - off);
    if off < 0 || len < 0 || off as u128 + len as u128 > m.size as u128 {
        return Err(Error::new(Code::OutOfRange, func, format!("bytes {off}..{} are outside the {}-byte memory", off as i128 + len as i128, m.size), off));
    }
    if !m.host_visible {
        return Err(Error::invalid(func, "the memory is not host-visible (allocated with location gpu_only)", "memory"));
    }
    Ok((off as usize, len as usize))
}

/// Reads `len` bytes (the rest when nil) at `offset` (0 when nil) of
/// host-visible memory: a copy of the mapped bytes at the time of the call
/// (wait for the fence of the work that writes them first). The memory
/// stays mapped for its whole life (gpu-allocator); write with `rt_vk_memory_write`.
///
/// # Errors
/// - InvalidArgument: the memory is not mapped; the memory is not host-visible (allocated with location gpu_only)
/// - Closed: the memory was freed; `memory` was closed
/// - OutOfRange: bytes <off>..… are outside the …-byte memory
#[rt_fn(cap = "gpu", tier = "empirical")]
pub fn rt_vk_memory_map(memory: Handle<MemoryRef>, offset: Option<i64>, len: Option<i64>) -> RtResult<Value> {
    let m = &memory.0;
    let (off, n) = mem_range(FN, m, offset, len)?;
    let g = lock(&m.alloc);
    let a = g.as_ref().ok_or_else(|| Error::plain(Code::Closed, FN, "the memory was freed"))?;
    let s = a.mapped_slice().ok_or_else(|| Error::invalid(FN, "the memory is not mapped", "memory"))?;
    Ok(Value::bytes(&s[off..off + n]))
}

/// Writes `data` into host-visible memory at `offset` (0 when nil). The memory is coherent: no flush needed.
///
/// # Errors
/// - InvalidArgument: the memory is not mapped; the memory is not host-visible (allocated with location gpu_only)
/// - Closed: the memory was freed; `memory` was closed
/// - OutOfRange: it does not fit
#[rt_fn(cap = "gpu", tier = "empirical")]
pub fn rt_vk_memory_write(memory: Handle<MemoryRef>, data: &[u8], offset: Option<i64>) -> RtResult<()> {
    let m = &memory.0;
    let (off, n) = mem_range(FN, m, offset, Some(data.len() as i64))?;
    let mut g = lock(&m.alloc);
    let a = g.as_mut().ok_or_else(|| Error::plain(Code::Closed, FN, "the memory was freed"))?;
    let s = a.mapped_slice_mut().ok_or_else(|| Error::invalid(FN, "the memory is not mapped", "memory"))?;
    s[off..off + n].copy_from_slice(data);
    Ok(())
}

/// Nothing to release: memory allocated here stays persistently mapped
/// (gpu-allocator) until freed. Accepted for symmetry with `rt_vk_memory_map`.
///
/// # Errors
/// - Closed: `memory` was closed
#[rt_fn(cap = "gpu", tier = "empirical")]
pub fn rt_vk_memory_unmap(memory: Handle<MemoryRef>) -> RtResult<()> {
    let _ = &memory.0;
    Ok(())
}

// ------------------------------------------------------------------ shaders and pipelines

#[derive(Clone, Debug)]
pub(crate) struct Binding {
    pub(crate) set: u32,
    pub(crate) binding: u32,
    pub(crate) ty: vk::DescriptorType,
    pub(crate) name: String,
}

/// A compute shader module with its reflection (handle type `vk_shader`).
pub struct Shader {
    dev: ChildOf<Device>,
    module: vk::ShaderModule,
    bindings: Vec<Binding>,
    push_size: u32,
    local_size: (u32, u32, u32),
    entries: Vec<(u32, String)>,
}
// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for Shader {
    const NAME: &'static str = "vk_shader";
}
impl Drop for Shader {
    fn drop(&mut self) {
        // SAFETY: pipelines made from it hold the shader; a module may go once pipelines exist.
        unsafe { self.dev.device.destroy_shader_module(self.module, None) };
    }
}

/// What reflection finds in one SPIR-V module.
pub(crate) struct Reflected {
    pub(crate) bindings: Vec<Binding>,
    pub(crate) push_size: u32,
    pub(crate) local_size: Option<(u32, u32, u32)>,
    /// (execution model, name) of every OpEntryPoint: 0 vertex, 4 fragment, 5 compute.
    pub(crate) entries: Vec<(u32, String)>,
}

/// The OpEntryPoint instructions of SPIR-V words (after the 5-word header).
fn entry_points(words: &[u32]) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    let mut i = 5;
    while i < words.len() {
        let (n, op) = ((words[i] >> 16) as usize, words[i] & 0xffff);
        if n == 0 || i + n > words.len() {
            break;
        }
        if op == 15 && n >= 4 {
            let bytes: Vec<u8> = words[i + 3..i + n].iter().flat_map(|w| w.to_le_bytes()).collect();
            let name = bytes.split(|b| *b == 0).next().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
            out.push((words[i + 1], name));
        }
        i += n;
    }
    out
}

/// Error InvalidArgument unless the module has an entry point `name` of `model`.
pub(crate) fn check_entry(func: &str, what: &str, entries: &[(u32, String)], model: u32, name: &str) -> RtResult<()> {
    if entries.iter().any(|(m, n)| *m == model && n == name) {
        return Ok(());
    }
    let model_name = |m: u32| match m {
        0 => "vertex",
        4 => "fragment",
        5 => "compute",
        _ => "other",
    };
    let have: Vec<String> = entries.iter().map(|(m, n)| format!("{n} ({})", model_name(*m))).collect();
    Err(Error::invalid(func, format!("{what} has no {} entry point named {name:?} (it has: {})", model_name(model), have.join(", ")), ffi_sdk::error::quote(name)))
}

/// Checks and reflects SPIR-V (Error Parse before the driver sees bad input).
pub(crate) fn reflect(func: &str, what: &str, spirv: &[u8], limits: &vk::PhysicalDeviceLimits) -> RtResult<Reflected> {
    if spirv.len() < 20 || !spirv.len().is_multiple_of(4) || spirv[..4] != 0x0723_0203u32.to_le_bytes() {
        return Err(Error::parse(func, format!("{what}: not SPIR-V (little-endian magic 0x07230203, a multiple of 4 bytes)"), format!("{} bytes", spirv.len())));
    }
    let refl = rspirv_reflect::Reflection::new_from_spirv(spirv).map_err(|e| Error::parse(func, format!("{what}: SPIR-V: {e}"), format!("{} bytes", spirv.len())))?;
    let local_size = refl.get_compute_group_size();
    let sets = refl.get_descriptor_sets().map_err(|e| Error::parse(func, format!("{what}: SPIR-V reflection: {e}"), "descriptor sets"))?;
    let mut bindings = Vec::new();
    for (set, bs) in &sets {
        for (b, info) in bs {
            let ty = match info.ty {
                rspirv_reflect::DescriptorType::STORAGE_BUFFER => vk::DescriptorType::STORAGE_BUFFER,
                rspirv_reflect::DescriptorType::UNIFORM_BUFFER => vk::DescriptorType::UNIFORM_BUFFER,
                other => {
                    return Err(Error::unsupported(
                        func,
                        format!("{what}: binding {set}.{b} ({}) has descriptor type {}: only storage and uniform buffers are supported", info.name, other.0),
                    ))
                }
            };
            if !matches!(info.binding_count, rspirv_reflect::BindingCount::One) {
                return Err(Error::unsupported(func, format!("{what}: binding {set}.{b} ({}) is an array of descriptors: not supported", info.name)));
            }
            bindings.push(Binding { set: *set, binding: *b, ty, name: info.name.clone() });
        }
    }
    bindings.sort_by_key(|b| (b.set, b.binding));
    let push_size = refl
        .get_push_constant_range()
        .map_err(|e| Error::parse(func, format!("{what}: SPIR-V reflection: {e}"), "push constants"))?
        .map(|p| p.offset + p.size)
        .unwrap_or(0);
    if push_size > limits.max_push_constants_size {
        return Err(Error::new(
            Code::LimitExceeded,
            func,
            format!("{what}: push constants of {push_size} bytes exceed the device's {}", limits.max_push_constants_size),
            push_size,
        ));
    }
    let words: Vec<u32> = spirv.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    Ok(Reflected { bindings, push_size, local_size, entries: entry_points(&words) })
}

/// A shader module from SPIR-V that `reflect` accepted.
pub(crate) fn make_module(func: &str, d: &ash::Device, spirv: &[u8]) -> RtResult<vk::ShaderModule> {
    let words: Vec<u32> = spirv.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    let ci = vk::ShaderModuleCreateInfo::default().code(&words);
    // SAFETY: the code parsed as SPIR-V (reflect).
    unsafe { d.create_shader_module(&ci, None) }.map_err(|e| vkerr(func, "vkCreateShaderModule", e))
}

/// Loads a compute shader from SPIR-V bytes. Reflection (rspirv-reflect)
/// reads its descriptor bindings (storage and uniform buffers), push-constant
/// size and workgroup size; `rt_vk_shader_info_get` returns them and
/// `rt_vk_pipeline_compute` builds the pipeline layout from them. Malformed
/// SPIR-V is Error Parse before the driver sees it; vertex and fragment
/// shaders go to `rt_vk_pipeline_graphics` as bytes instead.
///
/// # Errors
/// - Parse: malformed input (details.line/column/position where known)
/// - Unsupported: not a compute shader (no LocalSize): pass vertex and fragment SPIR-V to rt_vk_pipeline_graphics
/// - Closed: `device` was closed
/// - LimitExceeded: a size, depth or count limit was reached
#[rt_fn(cap = "gpu", tier = "empirical")]
pub fn rt_vk_shader_load(device: Handle<Device>, spirv: &[u8]) -> RtResult<Value> {
    let r = reflect(FN, "shader", spirv, &device.limits)?;
    let local_size = r.local_size.ok_or_else(|| {
        Error::unsupported(FN, "not a compute shader (no LocalSize): pass vertex and fragment SPIR-V to rt_vk_pipeline_graphics")
    })?;
    let module = make_module(FN, &device.device, spirv)?;
    Ok(new_handle(Shader { dev: ChildOf::new(device.arc()), module, bindings: r.bindings, push_size: r.push_size, local_size, entries: r.entries }))
}

/// What reflection found in a shader: `{bindings: [{set, binding, type
/// ("storage_buffer"|"uniform_buffer"), name}], push_constant_size,
/// local_size: [x, y, z]}`.
///
/// # Errors
/// - Closed: `shader` was closed
#[rt_fn(cap = "gpu", tier = "empirical", ret = "dict")]
pub fn rt_vk_shader_info_get(shader: Handle<Shader>) -> RtResult<Value> {
    let d = Value::dict();
    let bs = Value::array(shader.bindings.len());
    for b in &shader.bindings {
        let bd = Value::dict();
        bd.set("set", Value::int(b.set as i64));
        bd.set("binding", Value::int(b.binding as i64));
        bd.set("type", Value::text(if b.ty == vk::DescriptorType::STORAGE_BUFFER { "storage_buffer" } else { "uniform_buffer" }));
        bd.set("name", Value::text(&b.name));
        bs.push(bd);
    }
    d.set("bindings", bs);
    d.set("push_constant_size", Value::int(shader.push_size as i64));
    let (x, y, z) = shader.local_size;
    let ls = Value::array(3);
    for v in [x, y, z] {
        ls.push(Value::int(v as i64));
    }
    d.set("local_size", ls);
    Ok(d)
}

/// A compute or graphics pipeline with its layout (handle type `vk_pipeline`).
pub struct Pipeline {
    /// The compute shader it was built from (none for graphics pipelines).
    _shader: Option<Arc<Shader>>,
    pub(crate) dev: ChildOf<Device>,
    pub(crate) set_layouts: Vec<(u32, vk::DescriptorSetLayout)>,
    pub(crate) layout: vk::PipelineLayout,
    pub(crate) pipeline: vk::Pipeline,
    pub(crate) bindings: Vec<Binding>,
    pub(crate) push_size: u32,
    /// The stages the layout's bindings and push constants are visible to.
    pub(crate) stages: vk::ShaderStageFlags,
    /// Graphics pipelines: the colour attachment format they render to.
    pub(crate) color_format: Option<vk::Format>,
}
// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for Pipeline {
    const NAME: &'static str = "vk_pipeline";
}
impl Drop for Pipeline {
    fn drop(&mut self) {
        let d = &self.dev.device;
        // SAFETY: command buffers recording it hold the pipeline.
        unsafe {
            d.destroy_pipeline(self.pipeline, None);
            d.destroy_pipeline_layout(self.layout, None);
            for (_, l) in &self.set_layouts {
                d.destroy_descriptor_set_layout(*l, None);
            }
        }
    }
}

/// Set layouts (every set index below the highest, empty where unused) and a
/// pipeline layout for reflected bindings and push constants.
pub(crate) fn make_layout(
    func: &str,
    d: &ash::Device,
    bindings: &[Binding],
    push_size: u32,
    stages: vk::ShaderStageFlags,
) -> RtResult<(Vec<(u32, vk::DescriptorSetLayout)>, vk::PipelineLayout)> {
    let max_set = bindings.iter().map(|b| b.set + 1).max().unwrap_or(0);
    let mut set_layouts: Vec<(u32, vk::DescriptorSetLayout)> = Vec::new();
    let cleanup = |ls: &[(u32, vk::DescriptorSetLayout)]| {
        for (_, l) in ls {
            // SAFETY: each layout in `ls` was created on `d` by this function and not yet
            // handed to any pipeline layout or returned, so nothing uses it; destroyed once.
            unsafe { d.destroy_descriptor_set_layout(*l, None) };
        }
    };
    for set in 0..max_set {
        let lb: Vec<vk::DescriptorSetLayoutBinding> = bindings
            .iter()
            .filter(|b| b.set == set)
            .map(|b| vk::DescriptorSetLayoutBinding::default().binding(b.binding).descriptor_type(b.ty).descriptor_count(1).stage_flags(stages))
            .collect();
        let ci = vk::DescriptorSetLayoutCreateInfo::default().bindings(&lb);
        // SAFETY: `d` is a live device; `ci` borrows `lb`, a local that outlives the call,
        // one binding per reflected descriptor with count 1 and this pipeline's stages.
        match unsafe { d.create_descriptor_set_layout(&ci, None) } {
            Ok(l) => set_layouts.push((set, l)),
            Err(e) => {
                cleanup(&set_layouts);
                return Err(vkerr(func, "vkCreateDescriptorSetLayout", e));
            }
        }
    }
    let raw_layouts: Vec<vk::DescriptorSetLayout> = set_layouts.iter().map(|(_, l)| *l).collect();
    let pcr = [vk::PushConstantRange::default().stage_flags(stages).offset(0).size(push_size)];
    let mut lci = vk::PipelineLayoutCreateInfo::default().set_layouts(&raw_layouts);
    if push_size > 0 {
        lci = lci.push_constant_ranges(&pcr);
    }
    // SAFETY: `d` is a live device; `lci` borrows the set layouts just made on `d` and `pcr`
    // (push size checked against the device limit by `reflect`), all locals alive for the call.
    match unsafe { d.create_pipeline_layout(&lci, None) } {
        Ok(l) => Ok((set_layouts, l)),
        Err(e) => {
            cleanup(&set_layouts);
            Err(vkerr(func, "vkCreatePipelineLayout", e))
        }
    }
}

/// Destroys a layout made by `make_layout` that no pipeline uses.
pub(crate) fn drop_layout(d: &ash::Device, set_layouts: &[(u32, vk::DescriptorSetLayout)], layout: vk::PipelineLayout) {
    // SAFETY: the caller's contract (doc above): `layout` and `set_layouts` were made on `d`
    // by `make_layout` and no pipeline or command buffer uses them; each is destroyed once.
    unsafe {
        d.destroy_pipeline_layout(layout, None);
        for (_, l) in set_layouts {
            d.destroy_descriptor_set_layout(*l, None);
        }
    }
}

/// Builds a compute pipeline from a shader; the layout (descriptor sets, push-constant range) comes from the
/// shader's reflection.
///
/// # Options
/// - entry (text, default "main"): the entry point, "main"
///
/// # Errors
/// - InvalidArgument: entry contains a NUL byte; an unknown option, or an option of the wrong kind or range
/// - Closed: `shader` was closed
#[rt_fn(cap = "gpu", tier = "empirical")]
pub fn rt_vk_pipeline_compute(shader: Handle<Shader>, opts: Opts) -> RtResult<Value> {
    opts.only(&["entry"])?;
    let entry = CString::new(opts.text("entry")?.unwrap_or("main")).map_err(|_| Error::invalid(FN, "entry contains a NUL byte", "entry"))?;
    check_entry(FN, "the shader", &shader.entries, 5, entry.to_str().unwrap_or(""))?;
    let d = &shader.dev.device;
    let stages = vk::ShaderStageFlags::COMPUTE;
    let (set_layouts, layout) = make_layout(FN, d, &shader.bindings, shader.push_size, stages)?;
    let stage = vk::PipelineShaderStageCreateInfo::default().stage(stages).module(shader.module).name(&entry);
    let ci = [vk::ComputePipelineCreateInfo::default().stage(stage).layout(layout)];
    // SAFETY: valid create info; the module is a reflected compute shader.
    let pipeline = match unsafe { d.create_compute_pipelines(vk::PipelineCache::null(), &ci, None) } {
        Ok(p) => p[0],
        Err((_, e)) => {
            drop_layout(d, &set_layouts, layout);
            return Err(vkerr(FN, "vkCreateComputePipelines (is the entry point right?)", e));
        }
    };
    let dev = ChildOf::new(shader.dev.0.clone());
    Ok(new_handle(Pipeline {
        _shader: Some(shader.arc()),
        dev,
        set_layouts,
        layout,
        pipeline,
        bindings: shader.bindings.clone(),
        push_size: shader.push_size,
        stages,
        color_format: None,
    }))
}

// ------------------------------------------------------------------ commands

/// A command pool (handle type `vk_command_pool`).
pub struct CommandPool {
    pub(crate) dev: ChildOf<Device>,
    pub(crate) pool: Mutex<vk::CommandPool>,
    children: Children,
}
// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for CommandPool {
    const NAME: &'static str = "vk_command_pool";
}
impl HasChildren for CommandPool {
    fn children(&self) -> &Children {
        &self.children
    }
}
impl Drop for CommandPool {
    fn drop(&mut self) {
        // SAFETY: its command buffers hold the pool, so none is left.
        unsafe { self.dev.device.destroy_command_pool(*lock(&self.pool), None) };
    }
}

/// A command pool on the device's compute queue family (buffers resettable).
///
/// # Errors
/// - Timeout: the wait timed out
/// - Io: an operating-system failure (details.errno)
/// - Unsupported: not supported (on this machine or build, or for this input)
/// - Closed: `device` was closed
/// - LimitExceeded: a size, depth or count limit was reached
#[rt_fn(cap = "gpu", tier = "empirical")]
pub fn rt_vk_command_pool(device: Handle<Device>) -> RtResult<Value> {
    let ci = vk::CommandPoolCreateInfo::default()
        .queue_family_index(device.family)
        .flags(vk::CommandPoolCreateFlags::RESET_COMMAND_BUFFER);
    // SAFETY: `device` is alive for the call; `ci` names the queue family the device was
    // created with (`device.family`) and has no pNext chain.
    let pool = unsafe { device.device.create_command_pool(&ci, None) }.map_err(|e| vkerr(FN, "vkCreateCommandPool", e))?;
    Ok(new_handle(CommandPool { dev: ChildOf::new(device.arc()), pool: Mutex::new(pool), children: Children(AtomicUsize::new(0)) }))
}

#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub(crate) enum CbState {
    Initial,
    Recording,
    Executable,
}

/// A descriptor pool of a command buffer and the room left in it.
pub(crate) struct DescPool {
    pool: vk::DescriptorPool,
    /// (sets, storage buffers, uniform buffers) it was made for.
    cap: (u32, u32, u32),
    sets_left: u32,
    storage_left: u32,
    uniform_left: u32,
}

pub(crate) struct CbInner {
    pub(crate) state: CbState,
    /// Objects the recorded commands use, kept alive until the buffer is re-recorded or dropped.
    pub(crate) keep_pipelines: Vec<Arc<Pipeline>>,
    pub(crate) keep_buffers: Vec<Arc<Buffer>>,
    pub(crate) keep_images: Vec<Arc<gfx::Image>>,
    /// Descriptor pools: reset and reused when the buffer is re-recorded.
    pub(crate) desc_pools: Vec<DescPool>,
    /// The pool sets are allocated from now.
    pub(crate) pool_cursor: usize,
    /// The image a render pass (dynamic rendering) is open on.
    pub(crate) rendering: Option<Arc<gfx::Image>>,
    /// The fence of the last submission (to refuse re-recording while it runs).
    last: Option<Weak<Fence>>,
}
impl CbInner {
    fn empty() -> CbInner {
        CbInner { state: CbState::Initial, keep_pipelines: vec![], keep_buffers: vec![], keep_images: vec![], desc_pools: vec![], pool_cursor: 0, rendering: None, last: None }
    }
    /// Keeps a buffer alive (and its destroy Busy) while recorded.
    pub(crate) fn keep_buffer(&mut self, b: Arc<Buffer>) {
        b.children.0.fetch_add(1, Ordering::SeqCst);
        self.keep_buffers.push(b);
    }
    /// Keeps an image alive (and its destroy Busy) while recorded.
    pub(crate) fn keep_image(&mut self, i: Arc<gfx::Image>) {
        i.children.0.fetch_add(1, Ordering::SeqCst);
        self.keep_images.push(i);
    }
}

/// A primary command buffer (handle type `vk_command_buffer`).
pub struct CommandBuffer {
    pub(crate) pool: ChildOf<CommandPool>,
    pub(crate) cb: vk::CommandBuffer,
    pub(crate) inner: Mutex<CbInner>,
}
// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for CommandBuffer {
    const NAME: &'static str = "vk_command_buffer";
}
impl CommandBuffer {
    /// Lets go of what the last recording used; its descriptor pools are
    /// reset for reuse (`keep_pools`) or destroyed.
    fn release(&self, inner: &mut CbInner, keep_pools: bool) {
        let d = &self.pool.dev.device;
        if keep_pools {
            for p in inner.desc_pools.iter_mut() {
                if p.sets_left != p.cap.0 {
                    // SAFETY: no submission of this buffer is running (checked by the caller).
                    let _ = unsafe { d.reset_descriptor_pool(p.pool, vk::DescriptorPoolResetFlags::empty()) };
                    (p.sets_left, p.storage_left, p.uniform_left) = p.cap;
                }
            }
        } else {
            for p in inner.desc_pools.drain(..) {
                // SAFETY: no submission of this buffer is running (Drop: a fence holds the buffer while it runs).
                unsafe { d.destroy_descriptor_pool(p.pool, None) };
            }
        }
        inner.pool_cursor = 0;
        inner.keep_pipelines.clear();
        inner.rendering = None;
        for b in inner.keep_buffers.drain(..) {
            b.children.0.fetch_sub(1, Ordering::SeqCst);
        }
        for i in inner.keep_images.drain(..) {
            i.children.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
}
impl Drop for CommandBuffer {
    fn drop(&mut self) {
        let mut inner = std::mem::replace(&mut *lock(&self.inner), CbInner::empty());
        self.release(&mut inner, false);
        let pool = lock(&self.pool.pool);
        // SAFETY: a fence of a running submission holds this buffer, so none runs.
        unsafe { self.pool.dev.device.free_command_buffers(*pool, &[self.cb]) };
    }
}

/// Allocates a primary command buffer from `pool`.
///
/// # Errors
/// - Timeout: the wait timed out
/// - Io: an operating-system failure (details.errno)
/// - Unsupported: not supported (on this machine or build, or for this input)
/// - Closed: `pool` was closed
/// - LimitExceeded: a size, depth or count limit was reached
#[rt_fn(cap = "gpu", tier = "empirical")]
pub fn rt_vk_command_buffer(pool: Handle<CommandPool>) -> RtResult<Value> {
    let p = lock(&pool.pool);
    let ai = vk::CommandBufferAllocateInfo::default().command_pool(*p).level(vk::CommandBufferLevel::PRIMARY).command_buffer_count(1);
    // SAFETY: `*p` is the live pool of this device (the CommandPool handle holds both);
    // `ai` asks for one primary buffer; the pool's lock `p` is held, which is the external
    // synchronisation vkAllocateCommandBuffers requires.
    let cbs = unsafe { pool.dev.device.allocate_command_buffers(&ai) }.map_err(|e| vkerr(FN, "vkAllocateCommandBuffers", e))?;
    drop(p);
    Ok(new_handle(CommandBuffer {
        pool: ChildOf::new(pool.arc()),
        cb: cbs[0],
        inner: Mutex::new(CbInner::empty()),
    }))
}

pub(crate) fn running(inner: &CbInner) -> bool {
    inner.last.as_ref().and_then(Weak::upgrade).is_some_and(|f| !f.signalled())
}

/// Starts recording (resetting what was recorded before).
///
/// # Errors
/// - InvalidArgument: the command buffer is already recording
/// - Timeout: the wait timed out
/// - Io: an operating-system failure (details.errno)
/// - Unsupported: not supported (on this machine or build, or for this input)
/// - Closed: `cb` was closed
/// - LimitExceeded: a size, depth or count limit was reached
/// - Busy: while a submission of this buffer has not finished (wait for its fence)
#[rt_fn(cap = "gpu", tier = "empirical")]
pub fn rt_vk_command_begin(cb: Handle<CommandBuffer>) -> RtResult<()> {
    let mut inner = lock(&cb.inner);
    if running(&inner) {
        return Err(Error::plain(Code::Busy, FN, "the command buffer is still executing: wait for its fence first"));
    }
    if inner.state == CbState::Recording {
        return Err(Error::invalid(FN, "the command buffer is already recording", "begin"));
    }
    cb.release(&mut inner, true);
    let _pool = lock(&cb.pool.pool);
    let d = &cb.pool.dev.device;
    let bi = vk::CommandBufferBeginInfo::default();
    // SAFETY: not pending (checked); the pool is locked.
    unsafe {
        d.reset_command_buffer(cb.cb, vk::CommandBufferResetFlags::empty()).map_err(|e| vkerr(FN, "vkResetCommandBuffer", e))?;
        d.begin_command_buffer(cb.cb, &bi).map_err(|e| vkerr(FN, "vkBeginCommandBuffer", e))?;
    }
    inner.state = CbState::Recording;
    Ok(())
}

/// Ends recording.
///
/// # Errors
/// - InvalidArgument: the command buffer is not recording (call rt_vk_command_begin); rendering is still open: call rt_vk_render_end first
/// - Timeout: the wait timed out
/// - Io: an operating-system failure (details.errno)
/// - Unsupported: not supported (on this machine or build, or for this input)
/// - Closed: `cb` was closed
/// - LimitExceeded: a size, depth or count limit was reached
#[rt_fn(cap = "gpu", tier = "empirical")]
pub fn rt_vk_command_end(cb: Handle<CommandBuffer>) -> RtResult<()> {
    let mut inner = lock(&cb.inner);
    if inner.state != CbState::Recording {
        return Err(Error::invalid(FN, "the command buffer is not recording (call rt_vk_command_begin)", "end"));
    }
    if inner.rendering.is_some() {
        return Err(Error::invalid(FN, "rendering is still open: call rt_vk_render_end first", "end"));
    }
    let _pool = lock(&cb.pool.pool);
    // SAFETY: recording; the pool is locked.
    unsafe { cb.pool.dev.device.end_command_buffer(cb.cb) }.map_err(|e| vkerr(FN, "vkEndCommandBuffer", e))?;
    inner.state = CbState::Executable;
    Ok(())
}

fn group_counts(func: &str, v: Value, max: [u32; 3]) -> RtResult<[u32; 3]> {
    let bad = || Error::invalid(func, "groups must be a positive int or an array of 1 to 3 positive ints", v.describe());
    let mut g = [1u32; 3];
    let items: Vec<Value> = if v.is_array() { v.items().collect() } else { vec![v] };
    if items.is_empty() || items.len() > 3 {
        return Err(bad());
    }
    for (i, it) in items.iter().enumerate() {
        let n = it.as_int().ok_or_else(bad)?;
        if n < 1 {
            return Err(bad());
        }
        if n > max[i] as i64 {
            return Err(Error::new(Code::OutOfRange, func, format!("{n} workgroups in dimension {i} exceed the device's limit {}", max[i]), n));
        }
        g[i] = n as u32;
    }
    Ok(g)
}

/// Checks `buffers` against the pipeline's bindings and records their
/// descriptor sets and the push constants (the caller holds `inner` and
/// has checked the buffer is recording).
pub(crate) fn bind_resources(
    func: &'static str,
    cb: &CommandBuffer,
    inner: &mut CbInner,
    pipeline: &Pipeline,
    buffers: Value,
    push: &[u8],
    bind_point: vk::PipelineBindPoint,
) -> RtResult<()> {
    let dev = &cb.pool.dev;
    let binds = &pipeline.bindings;
    let bv = buffers;
    if !bv.is_nil() && !bv.is_array() {
        return Err(Error::invalid(func, "buffers must be an array of vk_buffer handles", bv.describe()));
    }
    let n = if bv.is_nil() { 0 } else { bv.len() };
    if n != binds.len() {
        let names: Vec<String> = binds.iter().map(|b| format!("{}.{} {}", b.set, b.binding, b.name)).collect();
        return Err(Error::invalid(func, format!("the shaders have {} buffer bindings ({}), got {n} buffers", binds.len(), names.join(", ")), n));
    }
    if push.len() != pipeline.push_size as usize {
        return Err(Error::invalid(func, format!("push_constants must be {} bytes (the shaders' push-constant block)", pipeline.push_size), push.len()));
    }
    let mut bufs: Vec<Arc<Buffer>> = Vec::with_capacity(n);
    for i in 0..n {
        let v = bv.at(i);
        let h = <Handle<Buffer> as ffi_sdk::FromArg>::from_arg(v.raw(), func, 2, "buffers")
            .map_err(|e| Error { message: format!("{} (buffer {i})", e.message), ..e })?;
        if !std::ptr::eq(&*h.dev.0 as *const Device, &**dev as *const Device) {
            return Err(Error::invalid(func, format!("buffer {i} belongs to another device"), i));
        }
        if lock(&h.memory).is_none() {
            return Err(Error::invalid(func, format!("buffer {i} has no memory bound (rt_vk_memory_allocate)"), i));
        }
        bufs.push(h.arc());
    }
    let d = &dev.device;
    let mut sets: Vec<vk::DescriptorSet> = Vec::new();
    if !pipeline.set_layouts.is_empty() {
        let n_storage = binds.iter().filter(|b| b.ty == vk::DescriptorType::STORAGE_BUFFER).count() as u32;
        let n_uniform = binds.len() as u32 - n_storage;
        let n_sets = pipeline.set_layouts.len() as u32;
        let fits = |p: &DescPool| p.sets_left >= n_sets && p.storage_left >= n_storage && p.uniform_left >= n_uniform;
        while inner.pool_cursor < inner.desc_pools.len() && !fits(&inner.desc_pools[inner.pool_cursor]) {
            inner.pool_cursor += 1;
        }
        if inner.pool_cursor == inner.desc_pools.len() {
            // Room for many records of ordinary pipelines; more where one needs it.
            let cap = (n_sets.max(64), n_storage.max(256), n_uniform.max(64));
            let sizes = [
                vk::DescriptorPoolSize::default().ty(vk::DescriptorType::STORAGE_BUFFER).descriptor_count(cap.1),
                vk::DescriptorPoolSize::default().ty(vk::DescriptorType::UNIFORM_BUFFER).descriptor_count(cap.2),
            ];
            let ci = vk::DescriptorPoolCreateInfo::default().max_sets(cap.0).pool_sizes(&sizes);
            // SAFETY: `d` is the live device; max_sets and both descriptor counts are >= 64
            // (never 0, as the spec requires) and `ci` borrows `sizes`, a local alive for the call.
            let pool = unsafe { d.create_descriptor_pool(&ci, None) }.map_err(|e| vkerr(func, "vkCreateDescriptorPool", e))?;
            inner.desc_pools.push(DescPool { pool, cap, sets_left: cap.0, storage_left: cap.1, uniform_left: cap.2 });
        }
        let p = &mut inner.desc_pools[inner.pool_cursor];
        let dpool = p.pool;
        // Counted before the call: a failed allocation only wastes room until the next reset.
        p.sets_left -= n_sets;
        p.storage_left -= n_storage;
        p.uniform_left -= n_uniform;
        let layouts: Vec<vk::DescriptorSetLayout> = pipeline.set_layouts.iter().map(|(_, l)| *l).collect();
        let ai = vk::DescriptorSetAllocateInfo::default().descriptor_pool(dpool).set_layouts(&layouts);
        // SAFETY: `dpool` was made on `d` and has room for these sets and descriptors (checked
        // by `fits` and counted above, so the pool is never over-allocated); `layouts` holds
        // the pipeline's live set layouts, a local alive for the call; the pool is used only
        // under `inner`'s lock, as the spec's external synchronisation requires.
        sets = unsafe { d.allocate_descriptor_sets(&ai) }.map_err(|e| vkerr(func, "vkAllocateDescriptorSets", e))?;
        let infos: Vec<[vk::DescriptorBufferInfo; 1]> =
            bufs.iter().map(|b| [vk::DescriptorBufferInfo::default().buffer(b.buffer).offset(0).range(vk::WHOLE_SIZE)]).collect();
        let writes: Vec<vk::WriteDescriptorSet> = binds
            .iter()
            .zip(infos.iter())
            .map(|(b, info)| vk::WriteDescriptorSet::default().dst_set(sets[b.set as usize]).dst_binding(b.binding).descriptor_type(b.ty).buffer_info(info))
            .collect();
        // SAFETY: sets, buffers and types match the layouts.
        unsafe { d.update_descriptor_sets(&writes, &[]) };
    }
    // SAFETY: recording (checked by the caller); every object recorded is kept alive in `inner`.
    unsafe {
        d.cmd_bind_pipeline(cb.cb, bind_point, pipeline.pipeline);
        if !sets.is_empty() {
            d.cmd_bind_descriptor_sets(cb.cb, bind_point, pipeline.layout, 0, &sets, &[]);
        }
        if !push.is_empty() {
            d.cmd_push_constants(cb.cb, pipeline.layout, pipeline.stages, 0, push);
        }
    }
    for b in bufs {
        inner.keep_buffer(b);
    }
    Ok(())
}

/// Records a dispatch of compute `pipeline` with `groups` workgroups (an int or 1-3 ints, checked against the
/// device's limits). `buffers` gives one `vk_buffer` per descriptor binding of the shader, in (set, binding)
/// order; each must have memory bound. A barrier after the dispatch makes its writes visible to later dispatches,
/// transfers and the host.
///
/// # Options
/// - push_constants (bytes): bytes of exactly the shader's push-constant size
///
/// # Errors
/// - InvalidArgument: the pipeline belongs to another device; a graphics pipeline cannot be dispatched (rt_vk_draw_record draws with it); the command buffer is not recording (call rt_vk_command_begin); rendering is open: dispatch before rt_vk_render_start or after rt_vk_render_end
/// - Timeout: the wait timed out
/// - Io: an operating-system failure (details.errno)
/// - Unsupported: not supported (on this machine or build, or for this input)
/// - Closed: `cb` was closed; `pipeline` was closed
/// - LimitExceeded: a size, depth or count limit was reached
#[rt_fn(cap = "gpu", tier = "empirical")]
pub fn rt_vk_dispatch(cb: Handle<CommandBuffer>, pipeline: Handle<Pipeline>, buffers: Array, groups: Value, opts: Opts) -> RtResult<()> {
    opts.only(&["push_constants"])?;
    let dev = &cb.pool.dev;
    if !std::ptr::eq(&**dev as *const Device, &*pipeline.dev as *const Device) {
        return Err(Error::invalid(FN, "the pipeline belongs to another device", "pipeline"));
    }
    if pipeline.color_format.is_some() {
        return Err(Error::invalid(FN, "a graphics pipeline cannot be dispatched (rt_vk_draw_record draws with it)", "pipeline"));
    }
    let groups = group_counts(FN, groups, dev.limits.max_compute_work_group_count)?;
    let push = opts.bytes("push_constants")?.unwrap_or(&[]);
    let mut inner = lock(&cb.inner);
    if inner.state != CbState::Recording {
        return Err(Error::invalid(FN, "the command buffer is not recording (call rt_vk_command_begin)", "dispatch"));
    }
    if inner.rendering.is_some() {
        return Err(Error::invalid(FN, "rendering is open: dispatch before rt_vk_render_start or after rt_vk_render_end", "dispatch"));
    }
    let _pool = lock(&cb.pool.pool);
    bind_resources(FN, &cb, &mut inner, &pipeline, buffers.0, push, vk::PipelineBindPoint::COMPUTE)?;
    let d = &dev.device;
    // SAFETY: recording (checked); every object recorded is kept alive in `inner`.
    unsafe {
        d.cmd_dispatch(cb.cb, groups[0], groups[1], groups[2]);
        let barrier = vk::MemoryBarrier::default()
            .src_access_mask(vk::AccessFlags::SHADER_WRITE)
            .dst_access_mask(vk::AccessFlags::SHADER_READ | vk::AccessFlags::SHADER_WRITE | vk::AccessFlags::HOST_READ | vk::AccessFlags::TRANSFER_READ);
        d.cmd_pipeline_barrier(
            cb.cb,
            vk::PipelineStageFlags::COMPUTE_SHADER,
            vk::PipelineStageFlags::COMPUTE_SHADER | vk::PipelineStageFlags::HOST | vk::PipelineStageFlags::TRANSFER,
            vk::DependencyFlags::empty(),
            &[barrier],
            &[],
            &[],
        );
    }
    inner.keep_pipelines.push(pipeline.arc());
    Ok(())
}

// ------------------------------------------------------------------ submit and fences

/// A fence of one submission (handle type `vk_fence`); keeps the submitted
/// command buffer (and what it uses) alive until it has signalled.
pub struct Fence {
    dev: ChildOf<Device>,
    fence: vk::Fence,
    _cb: Arc<CommandBuffer>,
}
// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for Fence {
    const NAME: &'static str = "vk_fence";
}
impl Fence {
    fn signalled(&self) -> bool {
        // SAFETY: the fence is alive.
        unsafe { self.dev.device.get_fence_status(self.fence) }.unwrap_or(true)
    }
}
impl Drop for Fence {
    fn drop(&mut self) {
        let d = &self.dev.device;
        // SAFETY: wait for the work to finish before anything it uses can go;
        // a signalled fence is reset and kept for the next submission.
        unsafe {
            let waited = d.wait_for_fences(&[self.fence], true, u64::MAX).is_ok();
            let mut spare = lock(&self.dev.spare_fences);
            if waited && spare.len() < 16 && d.reset_fences(&[self.fence]).is_ok() {
                spare.push(self.fence);
            } else {
                d.destroy_fence(self.fence, None);
            }
        }
    }
}

/// Submits a recorded command buffer to `queue`; returns a `vk_fence` to wait on.
///
/// # Errors
/// - InvalidArgument: the command buffer belongs to another device; the command buffer is not recorded (begin, record, end first)
/// - Timeout: the wait timed out
/// - Io: an operating-system failure (details.errno)
/// - Unsupported: not supported (on this machine or build, or for this input)
/// - Closed: `queue` was closed; `cb` was closed
/// - LimitExceeded: a size, depth or count limit was reached
/// - Busy: while an earlier submission of the same buffer runs
#[rt_fn(cap = "gpu", tier = "empirical")]
pub fn rt_vk_submit(queue: Handle<Queue>, cb: Handle<CommandBuffer>) -> RtResult<Value> {
    let dev = &queue.dev;
    if !std::ptr::eq(&**dev as *const Device, &*cb.pool.dev as *const Device) {
        return Err(Error::invalid(FN, "the command buffer belongs to another device", "cb"));
    }
    let mut inner = lock(&cb.inner);
    if inner.state != CbState::Executable {
        return Err(Error::invalid(FN, "the command buffer is not recorded (begin, record, end first)", format!("{:?}", inner.state)));
    }
    if running(&inner) {
        return Err(Error::plain(Code::Busy, FN, "the command buffer is still executing: wait for its fence first"));
    }
    let d = &dev.device;
    let spare = lock(&dev.spare_fences).pop();
    let fence = match spare {
        Some(f) => f,
        // SAFETY: `d` is the queue's live device; a default FenceCreateInfo (unsignalled, no
        // pNext) is always valid.
        None => unsafe { d.create_fence(&vk::FenceCreateInfo::default(), None) }.map_err(|e| vkerr(FN, "vkCreateFence", e))?,
    };
    let cbs = [cb.cb];
    let si = [vk::SubmitInfo::default().command_buffers(&cbs)];
    let q = lock(&queue.queue);
    // SAFETY: executable, not pending; the queue is locked (external synchronisation).
    if let Err(e) = unsafe { d.queue_submit(*q, &si, fence) } {
        // SAFETY: `fence` belongs to `d` and is owned here alone (fresh, or popped from the
        // spare list); the failed submit left it unsignalled and unused, so no queue
        // operation can still refer to it.
        unsafe { d.destroy_fence(fence, None) };
        return Err(vkerr(FN, "vkQueueSubmit", e));
    }
    drop(q);
    let f = Fence { dev: ChildOf::new(dev.0.clone()), fence, _cb: cb.arc() };
    let v = new_handle(f);
    let h = <Handle<Fence> as ffi_sdk::FromArg>::from_arg(v.raw(), FN, 0, "fence")?;
    inner.last = Some(Arc::downgrade(&h.arc()));
    Ok(v)
}

/// Waits for a fence: true when it signalled, false when `timeout_ms`
/// (nil: no limit besides the thread's deadline) passed first.
///
/// # Errors
/// - InvalidArgument: timeout_ms must be 0 or more
/// - Io: an operating-system failure (details.errno)
/// - Unsupported: not supported (on this machine or build, or for this input)
/// - Closed: `fence` was closed
/// - LimitExceeded: a size, depth or count limit was reached
#[rt_fn(cap = "gpu", blocking, tier = "empirical")]
pub fn rt_vk_fence_wait(fence: Handle<Fence>, timeout_ms: Option<i64>) -> RtResult<bool> {
    if let Some(t) = timeout_ms {
        if t < 0 {
            return Err(Error::invalid(FN, "timeout_ms must be 0 or more", t));
        }
    }
    let d = &fence.dev.device;
    let start = std::time::Instant::now();
    let own = timeout_ms.map(|t| std::time::Duration::from_millis(t as u64));
    loop {
        // Wait in slices so the thread's deadline and cancel token are honoured.
        let left = own.map(|o| o.saturating_sub(start.elapsed()));
        let slice = ffi_sdk::deadline::slice(left).unwrap_or(std::time::Duration::from_millis(100)).min(std::time::Duration::from_millis(100));
        // SAFETY: the fence is alive.
        match unsafe { d.wait_for_fences(&[fence.fence], true, slice.as_nanos() as u64) } {
            Ok(()) => return Ok(true),
            Err(vk::Result::TIMEOUT) => {}
            Err(e) => return Err(vkerr(FN, "vkWaitForFences", e)),
        }
        ffi_sdk::deadline::check(FN)?;
        if own.is_some_and(|o| start.elapsed() >= o) {
            return Ok(false);
        }
    }
}

