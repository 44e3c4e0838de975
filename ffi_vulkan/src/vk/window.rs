//! Windows (winit 0.30, X11), surfaces (ash-window), swapchains and present.
//!
//! winit allows one event loop per process, on the thread that made it. The
//! first `rt_vk_window_create` starts a thread that owns it (X11, any thread)
//! and runs it for the rest of the process; windows are made there on
//! request and handed back (an X11 window may be used from any thread).

use super::*;
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::Duration;
use winit::application::ApplicationHandler;
use winit::event::WindowEvent;
use winit::event_loop::{ActiveEventLoop, EventLoop, EventLoopProxy};
use winit::platform::x11::EventLoopBuilderExtX11;
use winit::raw_window_handle::{HasDisplayHandle, HasWindowHandle};
use winit::window::WindowId;

type WinResult = Result<winit::window::Window, String>;

/// A request to the event-loop thread.
enum Request {
    Create { title: String, width: u32, height: u32, reply: mpsc::Sender<WinResult> },
}

/// Per-window state the event loop updates.
#[derive(Default)]
struct WinState {
    close_requested: std::sync::atomic::AtomicBool,
}

fn states() -> &'static Mutex<std::collections::HashMap<WindowId, Arc<WinState>>> {
    static S: OnceLock<Mutex<std::collections::HashMap<WindowId, Arc<WinState>>>> = OnceLock::new();
    S.get_or_init(Default::default)
}

struct App;
impl ApplicationHandler<Request> for App {
    fn resumed(&mut self, _: &ActiveEventLoop) {}
    fn user_event(&mut self, el: &ActiveEventLoop, req: Request) {
        match req {
            Request::Create { title, width, height, reply } => {
                let attrs = winit::window::Window::default_attributes()
                    .with_title(title)
                    .with_inner_size(winit::dpi::PhysicalSize::new(width, height));
                let r = el.create_window(attrs).map_err(|e| e.to_string());
                if let Ok(w) = &r {
                    lock(states()).insert(w.id(), Arc::new(WinState::default()));
                }
                let _ = reply.send(r);
            }
        }
    }
    fn window_event(&mut self, _: &ActiveEventLoop, id: WindowId, ev: WindowEvent) {
        if let WindowEvent::CloseRequested = ev {
            if let Some(s) = lock(states()).get(&id) {
                s.close_requested.store(true, Ordering::SeqCst);
            }
        }
    }
}

/// The event-loop thread's proxy, or why there is none (decided once).
fn event_loop(func: &str) -> RtResult<&'static Mutex<EventLoopProxy<Request>>> {
    static EL: OnceLock<Result<Mutex<EventLoopProxy<Request>>, String>> = OnceLock::new();
    if EL.get().is_none() && std::env::var_os("DISPLAY").is_none_or(|d| d.is_empty()) {
        // Not cached: a later call with DISPLAY set may still succeed.
        return Err(Error::unsupported(func, "no X display: DISPLAY is not set (windows need an X server, e.g. Xvfb)"));
    }
    let r = EL.get_or_init(|| {
        let (tx, rx) = mpsc::channel();
        let spawned = std::thread::Builder::new().name("rt-vk-event-loop".into()).spawn(move || {
            let built = EventLoop::<Request>::with_user_event().with_x11().with_any_thread(true).build();
            match built {
                Err(e) => {
                    let _ = tx.send(Err(format!("winit could not open the X display: {e}")));
                }
                Ok(el) => {
                    let _ = tx.send(Ok(el.create_proxy()));
                    let _ = el.run_app(&mut App);
                }
            }
        });
        if let Err(e) = spawned {
            return Err(format!("could not start the event-loop thread: {e}"));
        }
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(p)) => Ok(Mutex::new(p)),
            Ok(Err(m)) => Err(m),
            Err(_) => Err("the event-loop thread did not start".into()),
        }
    });
    r.as_ref().map_err(|m| Error::unsupported(func, format!("{m} (decided by the first window of the process)")))
}

/// A window (handle type `vk_window`).
pub struct Window {
    win: winit::window::Window,
    state: Arc<WinState>,
    children: Children,
}
// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for Window {
    const NAME: &'static str = "vk_window";
}
impl HasChildren for Window {
    fn children(&self) -> &Children {
        &self.children
    }
}
impl Drop for Window {
    fn drop(&mut self) {
        lock(states()).remove(&self.win.id());
    }
}

/// Opens a `width` × `height` window titled `title` on the X display named by DISPLAY (winit 0.30, X11; the event
/// loop runs on a thread of its own).
///
/// # Errors
/// - Timeout: the event loop did not answer within 30 s
/// - Io: winit could not create the window
/// - Unsupported: there is no X display (DISPLAY unset or the server unreachable: the first window of the process decides)
/// - OutOfRange: an index or number is outside its range
#[rt_fn(cap = "gpu", tier = "experimental")]
pub fn rt_vk_window_create(title: &str, width: i64, height: i64) -> RtResult<Value> {
    for (what, v) in [("width", width), ("height", height)] {
        if !(1..=16384).contains(&v) {
            return Err(Error::new(Code::OutOfRange, FN, format!("{what} must be 1 to 16384"), v));
        }
    }
    let proxy = event_loop(FN)?;
    let (tx, rx) = mpsc::channel();
    let req = Request::Create { title: title.to_string(), width: width as u32, height: height as u32, reply: tx };
    lock(proxy).send_event(req).map_err(|_| Error::unsupported(FN, "the window event loop has stopped"))?;
    let win = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Ok(w)) => w,
        Ok(Err(m)) => return Err(Error::plain(Code::Io, FN, format!("winit could not create the window: {m}"))),
        Err(_) => return Err(Error::plain(Code::Timeout, FN, "the event loop did not answer within 30 s")),
    };
    let state = lock(states()).get(&win.id()).cloned().unwrap_or_default();
    Ok(new_handle(Window { win, state, children: Children(AtomicUsize::new(0)) }))
}

/// `{width, height, close_requested}`: the window's inner size in pixels
/// and whether its close button was pressed.
///
/// # Errors
/// - Closed: `window` was closed
#[rt_fn(cap = "gpu", tier = "experimental", ret = "dict")]
pub fn rt_vk_window_info_get(window: Handle<Window>) -> RtResult<Value> {
    let s = window.win.inner_size();
    let d = Value::dict();
    d.set("width", Value::int(s.width as i64));
    d.set("height", Value::int(s.height as i64));
    d.set("close_requested", Value::bool(window.state.close_requested.load(Ordering::SeqCst)));
    Ok(d)
}

/// Closes a window.
///
/// # Errors
/// - Closed: `window` was closed
/// - Busy: while a surface made on it is open
#[rt_fn(cap = "gpu", tier = "experimental")]
pub fn rt_vk_window_destroy(window: Handle<Window>) -> RtResult<()> {
    destroy_checked(FN, &window, "window")
}

// ------------------------------------------------------------------ surfaces

/// A Vulkan surface on a window (handle type `vk_surface`).
pub struct Surface {
    inst: ChildOf<Instance>,
    _win: ChildOf<Window>,
    loader: ash::khr::surface::Instance,
    pub(crate) surface: vk::SurfaceKHR,
    children: Children,
}
// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for Surface {
    const NAME: &'static str = "vk_surface";
}
impl HasChildren for Surface {
    fn children(&self) -> &Children {
        &self.children
    }
}
impl Drop for Surface {
    fn drop(&mut self) {
        // SAFETY: swapchains on it hold the surface, so none is left; the window outlives it (held).
        unsafe { self.loader.destroy_surface(self.surface, None) };
        let _ = &self.inst;
    }
}

/// Creates a Vulkan surface for `window` (ash-window).
///
/// # Errors
/// - Timeout: the wait timed out
/// - Io: an operating-system failure (details.errno)
/// - Unsupported: the instance lacks the surface extensions the window's display needs
/// - Closed: `instance` was closed; `window` was closed
/// - LimitExceeded: a size, depth or count limit was reached
#[rt_fn(cap = "gpu", tier = "experimental")]
pub fn rt_vk_surface_create(instance: Handle<Instance>, window: Handle<Window>) -> RtResult<Value> {
    let dh = window.win.display_handle().map_err(|e| Error::unsupported(FN, format!("the window has no display handle: {e}")))?.as_raw();
    let wh = window.win.window_handle().map_err(|e| Error::unsupported(FN, format!("the window has no window handle: {e}")))?.as_raw();
    if !instance.surfaces {
        return Err(Error::unsupported(FN, "the instance has no surface extensions (the loader offers no VK_KHR_xlib_surface / VK_KHR_xcb_surface)"));
    }
    let needed = ash_window::enumerate_required_extensions(dh).map_err(|e| vkerr(FN, "ash_window::enumerate_required_extensions", e))?;
    // SAFETY: a plain query of the loader.
    let exts = unsafe { instance.entry.enumerate_instance_extension_properties(None) }.map_err(|e| vkerr(FN, "listing instance extensions", e))?;
    for n in needed {
        // SAFETY: ash-window's names are static NUL-terminated strings.
        let name = unsafe { std::ffi::CStr::from_ptr(*n) };
        if !has_ext(&exts, name) {
            return Err(Error::unsupported(FN, format!("the window's display needs {}, which the loader does not offer", name.to_string_lossy())));
        }
    }
    // SAFETY: the extensions are enabled (checked above: every offered surface extension is);
    // the window outlives the surface (held).
    let surface = unsafe { ash_window::create_surface(&instance.entry, &instance.instance, dh, wh, None) }
        .map_err(|e| vkerr(FN, "vkCreate*SurfaceKHR", e))?;
    let loader = ash::khr::surface::Instance::new(&instance.entry, &instance.instance);
    Ok(new_handle(Surface {
        inst: ChildOf::new(instance.arc()),
        _win: ChildOf::new(window.arc()),
        loader,
        surface,
        children: Children(AtomicUsize::new(0)),
    }))
}

/// Destroys a surface.
///
/// # Errors
/// - Closed: `surface` was closed
/// - Busy: while a swapchain on it is open
#[rt_fn(cap = "gpu", tier = "experimental")]
pub fn rt_vk_surface_destroy(surface: Handle<Surface>) -> RtResult<()> {
    destroy_checked(FN, &surface, "surface")
}

// ------------------------------------------------------------------ swapchains and present

/// What one present needs, reused frame after frame (the fence is waited
/// on before anything here is reused).
struct Frame {
    pool: vk::CommandPool,
    cb: vk::CommandBuffer,
    acquired: vk::Semaphore,
    /// One per swapchain image: the presentation engine may still wait on
    /// an image's semaphore until that image is acquired again.
    rendered: Vec<vk::Semaphore>,
    fence: vk::Fence,
    /// The fence has a submission pending.
    pending: bool,
    /// The image last copied in, kept until the fence signals.
    source: Option<Arc<Image>>,
    presented: u64,
}

/// A swapchain with what presenting needs (handle type `vk_swapchain`).
pub struct Swapchain {
    dev: ChildOf<Device>,
    surface: ChildOf<Surface>,
    swapchain: vk::SwapchainKHR,
    images: Vec<vk::Image>,
    format: vk::Format,
    extent: vk::Extent2D,
    present_mode: vk::PresentModeKHR,
    frame: Mutex<Frame>,
}
// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for Swapchain {
    const NAME: &'static str = "vk_swapchain";
}
impl Drop for Swapchain {
    fn drop(&mut self) {
        let d = &self.dev.device;
        let f = self.frame.get_mut().unwrap_or_else(|e| e.into_inner());
        // The device goes idle before they go (the presentation engine may still
        // wait on the semaphores otherwise); every queue is locked meanwhile
        // (vkDeviceWaitIdle needs them externally synchronised).
        let held: Vec<_> = self.dev.queues.iter().map(|q| lock(q)).collect();
        // SAFETY: nothing else uses these objects; the device is idle.
        unsafe {
            let _ = d.device_wait_idle();
            d.destroy_fence(f.fence, None);
            d.destroy_semaphore(f.acquired, None);
            for s in &f.rendered {
                d.destroy_semaphore(*s, None);
            }
            d.destroy_command_pool(f.pool, None);
            if let Some(sc) = &self.dev.swapchain {
                sc.destroy_swapchain(self.swapchain, None);
            }
        }
        drop(held);
        let _ = &self.surface;
    }
}

/// Creates a swapchain for `surface` on `device` (whose queue family must be able to present to it). Frames are
/// `width` × `height` of the surface (`rt_vk_swapchain_info_get`); `rt_vk_present` fills and shows one.
///
/// # Options
/// - present_mode (text, default "fifo"): "fifo" (default, always there), "mailbox", "immediate"
/// - images (int, default the surface's minimum + 1): how many
///
/// # Errors
/// - InvalidArgument: the surface belongs to another instance; present_mode must be fifo, mailbox or immediate; the window has no area (minimised?); an unknown option, or an option of the wrong kind or range
/// - Timeout: the wait timed out
/// - Io: an operating-system failure (details.errno)
/// - Unsupported: the device has no VK_KHR_swapchain (the instance had no surface extensions, or the device lacks it); queue family … of the device cannot present to this surface; the surface does not offer present mode <present_mode> (it offers <modes>); the surface's images cannot be transfer destinations (needed to fill frames)
/// - Closed: `device` was closed; `surface` was closed
/// - OutOfRange: images must be … to <max_images> for this surface
/// - LimitExceeded: a size, depth or count limit was reached
#[rt_fn(cap = "gpu", tier = "experimental")]
pub fn rt_vk_swapchain_create(device: Handle<Device>, surface: Handle<Surface>, opts: Opts) -> RtResult<Value> {
    opts.only(&["present_mode", "images"])?;
    let Some(sc) = &device.swapchain else {
        return Err(Error::unsupported(FN, "the device has no VK_KHR_swapchain (the instance had no surface extensions, or the device lacks it)"));
    };
    if !std::ptr::eq(&*device.inst.0 as *const Instance, &*surface.inst.0 as *const Instance) {
        return Err(Error::invalid(FN, "the surface belongs to another instance", "surface"));
    }
    let present_mode = match opts.text("present_mode")?.unwrap_or("fifo") {
        "fifo" => vk::PresentModeKHR::FIFO,
        "mailbox" => vk::PresentModeKHR::MAILBOX,
        "immediate" => vk::PresentModeKHR::IMMEDIATE,
        o => return Err(Error::invalid(FN, "present_mode must be fifo, mailbox or immediate", ffi_sdk::error::quote(o))),
    };
    let sl = &surface.loader;
    let (pd, s) = (device.pd, surface.surface);
    // SAFETY: pd and the surface belong to the same instance (checked).
    let (supported, caps, formats, modes) = unsafe {
        (
            sl.get_physical_device_surface_support(pd, device.family, s).map_err(|e| vkerr(FN, "vkGetPhysicalDeviceSurfaceSupportKHR", e))?,
            sl.get_physical_device_surface_capabilities(pd, s).map_err(|e| vkerr(FN, "vkGetPhysicalDeviceSurfaceCapabilitiesKHR", e))?,
            sl.get_physical_device_surface_formats(pd, s).map_err(|e| vkerr(FN, "vkGetPhysicalDeviceSurfaceFormatsKHR", e))?,
            sl.get_physical_device_surface_present_modes(pd, s).map_err(|e| vkerr(FN, "vkGetPhysicalDeviceSurfacePresentModesKHR", e))?,
        )
    };
    if !supported {
        return Err(Error::unsupported(FN, format!("queue family {} of the device cannot present to this surface", device.family)));
    }
    if !modes.contains(&present_mode) {
        return Err(Error::unsupported(FN, format!("the surface does not offer present mode {present_mode:?} (it offers {modes:?})")));
    }
    if !caps.supported_usage_flags.contains(vk::ImageUsageFlags::TRANSFER_DST) {
        return Err(Error::unsupported(FN, "the surface's images cannot be transfer destinations (needed to fill frames)"));
    }
    let fmt = [vk::Format::B8G8R8A8_UNORM, vk::Format::R8G8B8A8_UNORM]
        .iter()
        .find_map(|f| formats.iter().find(|x| x.format == *f))
        .or(formats.first())
        .copied()
        .ok_or_else(|| Error::unsupported(FN, "the surface offers no formats"))?;
    let extent = if caps.current_extent.width != u32::MAX {
        caps.current_extent
    } else {
        let s = surface._win.win.inner_size();
        vk::Extent2D {
            width: s.width.clamp(caps.min_image_extent.width, caps.max_image_extent.width),
            height: s.height.clamp(caps.min_image_extent.height, caps.max_image_extent.height),
        }
    };
    if extent.width == 0 || extent.height == 0 {
        return Err(Error::invalid(FN, "the window has no area (minimised?)", format!("{}x{}", extent.width, extent.height)));
    }
    let max_images = if caps.max_image_count == 0 { u32::MAX } else { caps.max_image_count };
    let count = match opts.int("images")? {
        Some(n) if n < caps.min_image_count as i64 || n > max_images as i64 => {
            return Err(Error::new(Code::OutOfRange, FN, format!("images must be {} to {max_images} for this surface", caps.min_image_count), n))
        }
        Some(n) => n as u32,
        None => (caps.min_image_count + 1).min(max_images),
    };
    let ci = vk::SwapchainCreateInfoKHR::default()
        .surface(s)
        .min_image_count(count)
        .image_format(fmt.format)
        .image_color_space(fmt.color_space)
        .image_extent(extent)
        .image_array_layers(1)
        .image_usage(vk::ImageUsageFlags::TRANSFER_DST | vk::ImageUsageFlags::COLOR_ATTACHMENT)
        .image_sharing_mode(vk::SharingMode::EXCLUSIVE)
        .pre_transform(caps.current_transform)
        .composite_alpha(if caps.supported_composite_alpha.contains(vk::CompositeAlphaFlagsKHR::OPAQUE) {
            vk::CompositeAlphaFlagsKHR::OPAQUE
        } else {
            vk::CompositeAlphaFlagsKHR::INHERIT
        })
        .present_mode(present_mode)
        .clipped(true);
    let d = &device.device;
    // SAFETY: `sc` is the device's live swapchain loader and `ci` names the live surface, which
    // the device's queue family can present to (checked), with a present mode, format, extent
    // (non-zero, within the surface's limits) and image count the surface offers (checked).
    let swapchain = unsafe { sc.create_swapchain(&ci, None) }.map_err(|e| vkerr(FN, "vkCreateSwapchainKHR", e))?;
    // Everything below is undone by Swapchain's Drop once it exists; until then, by hand.
    let mut made: Vec<Box<dyn FnOnce()>> = Vec::new();
    let fail = |made: Vec<Box<dyn FnOnce()>>, e: Error| -> Error {
        for f in made.into_iter().rev() {
            f();
        }
        e
    };
    {
        let sc = sc.clone();
        // Undo closures run only from `fail`, before the Swapchain exists, at most once each
        // (FnOnce), and are dropped unrun on success (`drop(made)`).
        // SAFETY: `swapchain` was created by `sc` just above and is owned only by this function;
        // no image of it was acquired or presented, so the device does not use it when destroyed.
        made.push(Box::new(move || unsafe { sc.destroy_swapchain(swapchain, None) }));
    }
    // SAFETY: the swapchain was just made.
    let images = match unsafe { sc.get_swapchain_images(swapchain) } {
        Ok(i) => i,
        Err(e) => return Err(fail(made, vkerr(FN, "vkGetSwapchainImagesKHR", e))),
    };
    let pci = vk::CommandPoolCreateInfo::default().queue_family_index(device.family).flags(vk::CommandPoolCreateFlags::RESET_COMMAND_BUFFER);
    // SAFETY: `d` is the live device and `pci` names the family it was created with; on a
    // later failure the pool is destroyed by its undo closure.
    let pool = match unsafe { d.create_command_pool(&pci, None) } {
        Ok(p) => p,
        Err(e) => return Err(fail(made, vkerr(FN, "vkCreateCommandPool", e))),
    };
    {
        let d = d.clone();
        // SAFETY: `pool` was created on `d` just above and nothing was submitted from it, so no
        // command buffer of it is pending; run at most once, only on the failure path.
        made.push(Box::new(move || unsafe { d.destroy_command_pool(pool, None) }));
    }
    let ai = vk::CommandBufferAllocateInfo::default().command_pool(pool).level(vk::CommandBufferLevel::PRIMARY).command_buffer_count(1);
    // SAFETY: `pool` was just made on `d` and is used by nothing else yet (no external
    // synchronisation needed); `ai` asks for one primary buffer from it.
    let cb = match unsafe { d.allocate_command_buffers(&ai) } {
        Ok(c) => c[0],
        Err(e) => return Err(fail(made, vkerr(FN, "vkAllocateCommandBuffers", e))),
    };
    let mut sems = Vec::new();
    for _ in 0..images.len() + 1 {
        // SAFETY: `d` is the live device; a default SemaphoreCreateInfo (binary, no pNext) is
        // always valid.
        match unsafe { d.create_semaphore(&vk::SemaphoreCreateInfo::default(), None) } {
            Ok(s) => {
                sems.push(s);
                let d = d.clone();
                // SAFETY: `s` was created on `d` in this iteration and never waited on or
                // signalled by any submission; destroyed at most once, only on the failure path.
                made.push(Box::new(move || unsafe { d.destroy_semaphore(s, None) }));
            }
            Err(e) => return Err(fail(made, vkerr(FN, "vkCreateSemaphore", e))),
        }
    }
    // SAFETY: `d` is the live device; a default FenceCreateInfo (unsignalled, no pNext) is
    // always valid.
    let fence = match unsafe { d.create_fence(&vk::FenceCreateInfo::default(), None) } {
        Ok(f) => f,
        Err(e) => return Err(fail(made, vkerr(FN, "vkCreateFence", e))),
    };
    drop(made);
    let acquired = sems.pop().expect("one more semaphore than images");
    Ok(new_handle(Swapchain {
        dev: ChildOf::new(device.arc()),
        surface: ChildOf::new(surface.arc()),
        swapchain,
        images,
        format: fmt.format,
        extent,
        present_mode,
        frame: Mutex::new(Frame { pool, cb, acquired, rendered: sems, fence, pending: false, source: None, presented: 0 }),
    }))
}

/// `{width, height, images, format, present_mode, presented}` of a
/// swapchain (format: a VkFormat name; presented: frames shown so far).
///
/// # Errors
/// - Closed: `swapchain` was closed
#[rt_fn(cap = "gpu", tier = "experimental", ret = "dict")]
pub fn rt_vk_swapchain_info_get(swapchain: Handle<Swapchain>) -> RtResult<Value> {
    let d = Value::dict();
    d.set("width", Value::int(swapchain.extent.width as i64));
    d.set("height", Value::int(swapchain.extent.height as i64));
    d.set("images", Value::int(swapchain.images.len() as i64));
    d.set("format", Value::text(&format!("{:?}", swapchain.format)));
    d.set("present_mode", Value::text(&format!("{:?}", swapchain.present_mode).to_lowercase()));
    d.set("presented", Value::int(lock(&swapchain.frame).presented as i64));
    Ok(d)
}

/// Destroys a swapchain (waits for the device to go idle first).
///
/// # Errors
/// - Closed: `swapchain` was closed
#[rt_fn(cap = "gpu", tier = "experimental")]
pub fn rt_vk_swapchain_destroy(swapchain: Handle<Swapchain>) -> RtResult<()> {
    swapchain.close();
    Ok(())
}

/// Shows one frame: acquires the next swapchain image, fills it — with `image` (a rendered `vk_image`, scaled to
/// the frame by a blit) or, without one, with `clear_color` ([r, g, b, a], default black) — and presents it on
/// `queue`. Waits for the previous frame's copy first, so at most one frame is in flight. Returns `{index,
/// suboptimal}`.
///
/// # Options
/// - image (vk_image): a rendered image to show, scaled to the frame by a blit
/// - clear_color (array of 4 floats, default black): [r, g, b, a] to fill the frame with when there is no image
/// - timeout_ms (int >= 0, default 5000): how long to wait for a swapchain image (Error Timeout past it)
///
/// # Errors
/// - InvalidArgument: the queue or the image belongs to another device, the image has not been rendered yet, timeout_ms is negative, or an unknown option
/// - Unsupported: the device has no VK_KHR_swapchain, or cannot blit the image's format to the frame's
/// - Closed: the swapchain is out of date (the window changed size: make a new one), or a handle was closed
/// - Timeout: no image came within timeout_ms
/// - Cancelled: the calling thread's cancel token fired while waiting
/// - LimitExceeded: the device ran out of memory
/// - Io: any other Vulkan failure
#[rt_fn(cap = "gpu", blocking, tier = "experimental", ret = "dict")]
pub fn rt_vk_present(queue: Handle<Queue>, swapchain: Handle<Swapchain>, opts: Opts) -> RtResult<Value> {
    opts.only(&["image", "clear_color", "timeout_ms"])?;
    let dev = &swapchain.dev;
    if !std::ptr::eq(&*queue.dev.0 as *const Device, &*dev.0 as *const Device) {
        return Err(Error::invalid(FN, "the queue belongs to another device", "queue"));
    }
    let sc = dev.swapchain.as_ref().ok_or_else(|| Error::unsupported(FN, "the device has no VK_KHR_swapchain"))?;
    let timeout_ms = opts.int("timeout_ms")?.unwrap_or(5000);
    if timeout_ms < 0 {
        return Err(Error::invalid(FN, "timeout_ms must be 0 or more", timeout_ms));
    }
    let src = match opts.get("image") {
        v if v.is_nil() => None,
        v => {
            let h = <Handle<Image> as ffi_sdk::FromArg>::from_arg(v.raw(), FN, 2, "image")?;
            if !std::ptr::eq(&*h.dev.0 as *const Device, &*dev.0 as *const Device) {
                return Err(Error::invalid(FN, "the image belongs to another device", "image"));
            }
            if *lock(&h.layout) != vk::ImageLayout::TRANSFER_SRC_OPTIMAL {
                return Err(Error::invalid(FN, "the image has not been rendered yet (rt_vk_render_start / rt_vk_render_end, submitted)", "image"));
            }
            Some(h.arc())
        }
    };
    let clear = match opts.get("clear_color") {
        v if v.is_nil() => [0.0, 0.0, 0.0, 1.0],
        v => {
            let bad = || Error::invalid(FN, "clear_color must be an array of 4 numbers (r, g, b, a)", v.describe());
            if !v.is_array() || v.len() != 4 {
                return Err(bad());
            }
            let mut c = [0f32; 4];
            for (i, o) in c.iter_mut().enumerate() {
                let x = v.at(i);
                *o = x.as_float().or_else(|| x.as_int().map(|n| n as f64)).ok_or_else(bad)? as f32;
            }
            c
        }
    };
    if let Some(img) = &src {
        let inst = &dev.inst.instance;
        // SAFETY: pd belongs to this instance.
        let (a, b) = unsafe {
            (inst.get_physical_device_format_properties(dev.pd, img.format), inst.get_physical_device_format_properties(dev.pd, swapchain.format))
        };
        if !a.optimal_tiling_features.contains(vk::FormatFeatureFlags::BLIT_SRC) || !b.optimal_tiling_features.contains(vk::FormatFeatureFlags::BLIT_DST) {
            return Err(Error::unsupported(FN, format!("the device cannot blit {:?} images to {:?} frames", img.format, swapchain.format)));
        }
    }
    let d = &dev.device;
    let mut f = lock(&swapchain.frame);
    if f.pending {
        // SAFETY: the fence is alive and was submitted.
        match unsafe { d.wait_for_fences(&[f.fence], true, timeout_ms as u64 * 1_000_000) } {
            Ok(()) => {}
            Err(vk::Result::TIMEOUT) => return Err(Error::plain(Code::Timeout, FN, format!("the previous frame did not finish within {timeout_ms} ms"))),
            Err(e) => return Err(vkerr(FN, "vkWaitForFences", e)),
        }
        // SAFETY: signalled, not in use.
        unsafe { d.reset_fences(&[f.fence]) }.map_err(|e| vkerr(FN, "vkResetFences", e))?;
        f.pending = false;
        f.source = None;
    }
    // SAFETY: the acquire semaphore is unsignalled (its last wait finished: fence above).
    let (index, sub_acquire) = match unsafe { sc.acquire_next_image(swapchain.swapchain, timeout_ms as u64 * 1_000_000, f.acquired, vk::Fence::null()) } {
        Ok(r) => r,
        Err(vk::Result::ERROR_OUT_OF_DATE_KHR) => {
            return Err(Error::plain(Code::Closed, FN, "the swapchain is out of date (the window changed): create a new one"))
        }
        Err(vk::Result::TIMEOUT) | Err(vk::Result::NOT_READY) => {
            return Err(Error::plain(Code::Timeout, FN, format!("no swapchain image became available within {timeout_ms} ms")))
        }
        Err(e) => return Err(vkerr(FN, "vkAcquireNextImageKHR", e)),
    };
    let target = swapchain.images[index as usize];
    let range = gfx::color_range();
    let barrier = |img: vk::Image, old, new, src: vk::AccessFlags, dst: vk::AccessFlags| {
        vk::ImageMemoryBarrier::default()
            .src_access_mask(src)
            .dst_access_mask(dst)
            .old_layout(old)
            .new_layout(new)
            .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
            .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
            .image(img)
            .subresource_range(range)
    };
    let bi = vk::CommandBufferBeginInfo::default().flags(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT);
    // SAFETY: the command buffer is not pending (fence waited above); every image
    // recorded is alive until the fence signals (source kept in `f`).
    unsafe {
        d.reset_command_buffer(f.cb, vk::CommandBufferResetFlags::empty()).map_err(|e| vkerr(FN, "vkResetCommandBuffer", e))?;
        d.begin_command_buffer(f.cb, &bi).map_err(|e| vkerr(FN, "vkBeginCommandBuffer", e))?;
        d.cmd_pipeline_barrier(
            f.cb,
            vk::PipelineStageFlags::TRANSFER,
            vk::PipelineStageFlags::TRANSFER,
            vk::DependencyFlags::empty(),
            &[],
            &[],
            &[barrier(target, vk::ImageLayout::UNDEFINED, vk::ImageLayout::TRANSFER_DST_OPTIMAL, vk::AccessFlags::empty(), vk::AccessFlags::TRANSFER_WRITE)],
        );
        match &src {
            Some(img) => {
                let sub = vk::ImageSubresourceLayers::default().aspect_mask(vk::ImageAspectFlags::COLOR).mip_level(0).base_array_layer(0).layer_count(1);
                let blit = vk::ImageBlit::default()
                    .src_subresource(sub)
                    .src_offsets([vk::Offset3D::default(), vk::Offset3D { x: img.width as i32, y: img.height as i32, z: 1 }])
                    .dst_subresource(sub)
                    .dst_offsets([
                        vk::Offset3D::default(),
                        vk::Offset3D { x: swapchain.extent.width as i32, y: swapchain.extent.height as i32, z: 1 },
                    ]);
                d.cmd_blit_image(
                    f.cb,
                    img.image,
                    vk::ImageLayout::TRANSFER_SRC_OPTIMAL,
                    target,
                    vk::ImageLayout::TRANSFER_DST_OPTIMAL,
                    &[blit],
                    vk::Filter::NEAREST,
                );
            }
            None => {
                d.cmd_clear_color_image(
                    f.cb,
                    target,
                    vk::ImageLayout::TRANSFER_DST_OPTIMAL,
                    &vk::ClearColorValue { float32: clear },
                    &[range],
                );
            }
        }
        d.cmd_pipeline_barrier(
            f.cb,
            vk::PipelineStageFlags::TRANSFER,
            vk::PipelineStageFlags::BOTTOM_OF_PIPE,
            vk::DependencyFlags::empty(),
            &[],
            &[],
            &[barrier(target, vk::ImageLayout::TRANSFER_DST_OPTIMAL, vk::ImageLayout::PRESENT_SRC_KHR, vk::AccessFlags::TRANSFER_WRITE, vk::AccessFlags::empty())],
        );
        d.end_command_buffer(f.cb).map_err(|e| vkerr(FN, "vkEndCommandBuffer", e))?;
    }
    let waits = [f.acquired];
    let stages = [vk::PipelineStageFlags::TRANSFER];
    let signals = [f.rendered[index as usize]];
    let cbs = [f.cb];
    let si = [vk::SubmitInfo::default().wait_semaphores(&waits).wait_dst_stage_mask(&stages).command_buffers(&cbs).signal_semaphores(&signals)];
    let q = lock(&queue.queue);
    // SAFETY: the queue is locked (external synchronisation); the buffer is recorded.
    unsafe { d.queue_submit(*q, &si, f.fence) }.map_err(|e| vkerr(FN, "vkQueueSubmit", e))?;
    f.pending = true;
    f.source = src;
    let scs = [swapchain.swapchain];
    let idx = [index];
    let pi = vk::PresentInfoKHR::default().wait_semaphores(&signals).swapchains(&scs).image_indices(&idx);
    // SAFETY: the queue is locked; the image was acquired and its copy submitted.
    let sub_present = match unsafe { sc.queue_present(*q, &pi) } {
        Ok(s) => s,
        Err(vk::Result::ERROR_OUT_OF_DATE_KHR) => {
            return Err(Error::plain(Code::Closed, FN, "the swapchain is out of date (the window changed): create a new one"))
        }
        Err(e) => return Err(vkerr(FN, "vkQueuePresentKHR", e)),
    };
    f.presented += 1;
    let out = Value::dict();
    out.set("index", Value::int(index as i64));
    out.set("suboptimal", Value::bool(sub_acquire || sub_present));
    Ok(out)
}
