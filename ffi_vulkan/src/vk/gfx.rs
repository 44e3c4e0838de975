//! Graphics: images (colour render targets), graphics pipelines (vertex +
//! fragment SPIR-V, Vulkan 1.3 dynamic rendering: no render pass objects),
//! recording of rendering and draws, and image → buffer copies for read-back.

use super::*;

/// The colour formats images and graphics pipelines take: (name, format, bytes per texel).
const FORMATS: &[(&str, vk::Format, u32)] = &[
    ("rgba8", vk::Format::R8G8B8A8_UNORM, 4),
    ("bgra8", vk::Format::B8G8R8A8_UNORM, 4),
    ("rgba8_srgb", vk::Format::R8G8B8A8_SRGB, 4),
    ("bgra8_srgb", vk::Format::B8G8R8A8_SRGB, 4),
    ("rgba32f", vk::Format::R32G32B32A32_SFLOAT, 16),
];

pub(crate) fn format_of(func: &str, name: Option<&str>) -> RtResult<(vk::Format, u32)> {
    let n = name.unwrap_or("rgba8");
    FORMATS.iter().find(|(k, _, _)| *k == n).map(|(_, f, t)| (*f, *t)).ok_or_else(|| {
        let names: Vec<&str> = FORMATS.iter().map(|(k, _, _)| *k).collect();
        Error::invalid(func, format!("format must be one of {}", names.join(", ")), ffi_sdk::error::quote(n))
    })
}

pub(crate) fn format_name(f: vk::Format) -> &'static str {
    FORMATS.iter().find(|(_, g, _)| *g == f).map(|(k, _, _)| *k).unwrap_or("other")
}

fn same_device(a: &Device, b: &Device) -> bool {
    std::ptr::eq(a as *const Device, b as *const Device)
}

/// A 2D colour image with its view and memory (handle type `vk_image`).
pub struct Image {
    pub(crate) dev: ChildOf<Device>,
    pub(crate) image: vk::Image,
    pub(crate) view: vk::ImageView,
    alloc: Mutex<Option<Allocation>>,
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) format: vk::Format,
    pub(crate) texel: u32,
    pub(crate) children: Children,
    /// The layout the commands recorded so far leave it in (record order).
    pub(crate) layout: Mutex<vk::ImageLayout>,
}
// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for Image {
    const NAME: &'static str = "vk_image";
}
impl HasChildren for Image {
    fn children(&self) -> &Children {
        &self.children
    }
}
impl Drop for Image {
    fn drop(&mut self) {
        let d = &self.dev.device;
        // SAFETY: command buffers that record it hold the image, so no work uses it.
        unsafe {
            d.destroy_image_view(self.view, None);
            d.destroy_image(self.image, None);
        }
        if let Some(a) = lock(&self.alloc).take() {
            if let Some(al) = lock(&self.dev.allocator).as_mut() {
                let _ = al.free(a);
            }
        }
    }
}

/// Creates a `width` × `height` colour image in device memory, usable as a render target (`rt_vk_render_start`)
/// and as a copy source (`rt_vk_image_copy`).
///
/// # Options
/// - format (text): "rgba8" (default, R8G8B8A8_UNORM), "bgra8", "rgba8_srgb", "bgra8_srgb", "rgba32f"
///
/// # Errors
/// - InvalidArgument: format must be one of …; an unknown option, or an option of the wrong kind or range
/// - Timeout: the wait timed out
/// - Io: an operating-system failure (details.errno)
/// - Unsupported: for a format the device cannot render to
/// - Closed: the device is being destroyed; `device` was closed
/// - OutOfRange: for a size beyond the device's limit
/// - LimitExceeded: gpu-allocator: <e> (<width>x<height> image)
#[rt_fn(cap = "gpu", tier = "empirical")]
pub fn rt_vk_image_create(device: Handle<Device>, width: i64, height: i64, opts: Opts) -> RtResult<Value> {
    opts.only(&["format"])?;
    let max = device.limits.max_image_dimension2_d as i64;
    for (what, v) in [("width", width), ("height", height)] {
        if v < 1 || v > max {
            return Err(Error::new(Code::OutOfRange, FN, format!("{what} must be 1 to {max} (the device's limit)"), v));
        }
    }
    let (format, texel) = format_of(FN, opts.text("format")?)?;
    let inst = &device.inst.instance;
    // SAFETY: pd belongs to this instance.
    let fp = unsafe { inst.get_physical_device_format_properties(device.pd, format) };
    let need = vk::FormatFeatureFlags::COLOR_ATTACHMENT | vk::FormatFeatureFlags::TRANSFER_SRC;
    if !fp.optimal_tiling_features.contains(need) {
        return Err(Error::unsupported(FN, format!("the device cannot render to or copy from {} images", format_name(format))));
    }
    let d = &device.device;
    let ci = vk::ImageCreateInfo::default()
        .image_type(vk::ImageType::TYPE_2D)
        .format(format)
        .extent(vk::Extent3D { width: width as u32, height: height as u32, depth: 1 })
        .mip_levels(1)
        .array_layers(1)
        .samples(vk::SampleCountFlags::TYPE_1)
        .tiling(vk::ImageTiling::OPTIMAL)
        .usage(vk::ImageUsageFlags::COLOR_ATTACHMENT | vk::ImageUsageFlags::TRANSFER_SRC | vk::ImageUsageFlags::TRANSFER_DST)
        .sharing_mode(vk::SharingMode::EXCLUSIVE)
        .initial_layout(vk::ImageLayout::UNDEFINED);
    // SAFETY: `d` is the live device; `ci` meets vkCreateImage's rules: 2D, extent 1..=the
    // device's maxImageDimension2D (checked above), one mip and layer, one sample, a format
    // whose optimal tiling supports the requested usages (checked), UNDEFINED initial layout.
    let image = unsafe { d.create_image(&ci, None) }.map_err(|e| vkerr(FN, "vkCreateImage", e))?;
    // SAFETY: the image belongs to this device.
    let req = unsafe { d.get_image_memory_requirements(image) };
    let alloc = {
        let mut g = lock(&device.allocator);
        let r = match g.as_mut() {
            None => Err(Error::plain(Code::Closed, FN, "the device is being destroyed")),
            Some(al) => al
                .allocate(&AllocationCreateDesc {
                    name: "rt_vk_image",
                    requirements: req,
                    location: MemoryLocation::GpuOnly,
                    linear: false,
                    allocation_scheme: AllocationScheme::GpuAllocatorManaged,
                })
                .map_err(|e| Error::plain(Code::LimitExceeded, FN, format!("gpu-allocator: {e} ({width}x{height} image)"))),
        };
        match r {
            Ok(a) => a,
            Err(e) => {
                // SAFETY: `image` was created on `d` just above, has no memory bound and is
                // referenced by nothing else; destroyed once on this failure path.
                unsafe { d.destroy_image(image, None) };
                return Err(e);
            }
        }
    };
    let free = |a: Allocation| {
        if let Some(al) = lock(&device.allocator).as_mut() {
            let _ = al.free(a);
        }
    };
    // SAFETY: memory made for these requirements.
    if let Err(e) = unsafe { d.bind_image_memory(image, alloc.memory(), alloc.offset()) } {
        // SAFETY: `image` was created on `d` above and is referenced by nothing (the bind
        // failed); destroyed once before its memory is freed.
        unsafe { d.destroy_image(image, None) };
        free(alloc);
        return Err(vkerr(FN, "vkBindImageMemory", e));
    }
    let vci = vk::ImageViewCreateInfo::default()
        .image(image)
        .view_type(vk::ImageViewType::TYPE_2D)
        .format(format)
        .subresource_range(color_range());
    // SAFETY: `image` is a live 2D image of `d` with memory now bound (as views require),
    // single mip and layer; the view uses the image's own format and its colour range.
    let view = match unsafe { d.create_image_view(&vci, None) } {
        Ok(v) => v,
        Err(e) => {
            // SAFETY: `image` was created on `d` above and no view or command uses it (the
            // view failed); destroyed once, before its memory is freed.
            unsafe { d.destroy_image(image, None) };
            free(alloc);
            return Err(vkerr(FN, "vkCreateImageView", e));
        }
    };
    Ok(new_handle(Image {
        dev: ChildOf::new(device.arc()),
        image,
        view,
        alloc: Mutex::new(Some(alloc)),
        width: width as u32,
        height: height as u32,
        format,
        texel,
        children: Children(AtomicUsize::new(0)),
        layout: Mutex::new(vk::ImageLayout::UNDEFINED),
    }))
}

/// Destroys an image.
///
/// # Errors
/// - Closed: `image` was closed
/// - Busy: while a command buffer that records it is open
#[rt_fn(cap = "gpu", tier = "empirical")]
pub fn rt_vk_image_destroy(image: Handle<Image>) -> RtResult<()> {
    destroy_checked(FN, &image, "image")
}

/// `{width, height, format, size_bytes}` of an image (size_bytes: what
/// `rt_vk_image_copy` writes, rows tightly packed).
///
/// # Errors
/// - Closed: `image` was closed
#[rt_fn(cap = "gpu", tier = "empirical", ret = "dict")]
pub fn rt_vk_image_info_get(image: Handle<Image>) -> RtResult<Value> {
    let d = Value::dict();
    d.set("width", Value::int(image.width as i64));
    d.set("height", Value::int(image.height as i64));
    d.set("format", Value::text(format_name(image.format)));
    d.set("size_bytes", Value::int(image.width as i64 * image.height as i64 * image.texel as i64));
    Ok(d)
}

pub(crate) fn color_range() -> vk::ImageSubresourceRange {
    vk::ImageSubresourceRange::default().aspect_mask(vk::ImageAspectFlags::COLOR).base_mip_level(0).level_count(1).base_array_layer(0).layer_count(1)
}

/// Builds a graphics pipeline from vertex and fragment SPIR-V (entry points "main"), rendering with Vulkan 1.3
/// dynamic rendering into one colour image. The layout comes from reflecting both shaders (storage and uniform
/// buffers, visible to both stages; one push-constant block). No vertex buffers: vertices come from the vertex
/// shader (gl_VertexIndex, buffers).
///
/// # Options
/// - format (text, default "rgba8"): the colour format it renders to, as for `rt_vk_image_create`
/// - topology (text, default "trianglelist"): "triangle_list" (default), "triangle_strip", "line_list", "point_list"
/// - cull (text, default "none"): "none" (default), "back", "front"; counter-clockwise triangles face front
/// - blend (bool, default false): false by default; true: alpha blending
///
/// # Errors
/// - InvalidArgument: topology must be triangle_list, triangle_strip, line_list or point_list; cull must be none, back or front; binding ….… has different types in the vertex and fragment shaders; format must be one of …
/// - Parse: malformed input (details.line/column/position where known)
/// - Unsupported: on a device without graphics queues or dynamic rendering
/// - Closed: `device` was closed
/// - LimitExceeded: a size, depth or count limit was reached
#[rt_fn(cap = "gpu", tier = "empirical")]
pub fn rt_vk_pipeline_graphics(device: Handle<Device>, vertex: &[u8], fragment: &[u8], opts: Opts) -> RtResult<Value> {
    opts.only(&["format", "topology", "cull", "blend"])?;
    if !device.graphics {
        return Err(Error::unsupported(FN, "the device's queue family has no graphics (create it with a graphics-capable queue_family)"));
    }
    if !device.dynamic_rendering {
        return Err(Error::unsupported(FN, "the device has no Vulkan 1.3 dynamic rendering (needed for graphics pipelines here)"));
    }
    let (format, _) = format_of(FN, opts.text("format")?)?;
    let topology = match opts.text("topology")?.unwrap_or("triangle_list") {
        "triangle_list" => vk::PrimitiveTopology::TRIANGLE_LIST,
        "triangle_strip" => vk::PrimitiveTopology::TRIANGLE_STRIP,
        "line_list" => vk::PrimitiveTopology::LINE_LIST,
        "point_list" => vk::PrimitiveTopology::POINT_LIST,
        o => return Err(Error::invalid(FN, "topology must be triangle_list, triangle_strip, line_list or point_list", ffi_sdk::error::quote(o))),
    };
    let cull = match opts.text("cull")?.unwrap_or("none") {
        "none" => vk::CullModeFlags::NONE,
        "back" => vk::CullModeFlags::BACK,
        "front" => vk::CullModeFlags::FRONT,
        o => return Err(Error::invalid(FN, "cull must be none, back or front", ffi_sdk::error::quote(o))),
    };
    let blend = opts.bool("blend")?.unwrap_or(false);
    let rv = reflect(FN, "vertex shader", vertex, &device.limits)?;
    let rf = reflect(FN, "fragment shader", fragment, &device.limits)?;
    check_entry(FN, "the vertex shader", &rv.entries, 0, "main")?;
    check_entry(FN, "the fragment shader", &rf.entries, 4, "main")?;
    let mut bindings = rv.bindings.clone();
    for b in &rf.bindings {
        match bindings.iter().find(|x| x.set == b.set && x.binding == b.binding) {
            Some(x) if x.ty != b.ty => {
                return Err(Error::invalid(FN, format!("binding {}.{} has different types in the vertex and fragment shaders", b.set, b.binding), b.binding))
            }
            Some(_) => {}
            None => bindings.push(b.clone()),
        }
    }
    bindings.sort_by_key(|b| (b.set, b.binding));
    let push_size = rv.push_size.max(rf.push_size);
    let stages = vk::ShaderStageFlags::VERTEX | vk::ShaderStageFlags::FRAGMENT;
    let d = &device.device;
    let vm = make_module(FN, d, vertex)?;
    let fm = match make_module(FN, d, fragment) {
        Ok(m) => m,
        Err(e) => {
            // SAFETY: `vm` was created on `d` just above and no pipeline was made from it;
            // destroyed once on this failure path.
            unsafe { d.destroy_shader_module(vm, None) };
            return Err(e);
        }
    };
    let drop_modules = || {
        // SAFETY: modules may go once pipelines are made (or on failure).
        unsafe {
            d.destroy_shader_module(vm, None);
            d.destroy_shader_module(fm, None);
        }
    };
    let (set_layouts, layout) = match make_layout(FN, d, &bindings, push_size, stages) {
        Ok(l) => l,
        Err(e) => {
            drop_modules();
            return Err(e);
        }
    };
    let stage_ci = [
        vk::PipelineShaderStageCreateInfo::default().stage(vk::ShaderStageFlags::VERTEX).module(vm).name(c"main"),
        vk::PipelineShaderStageCreateInfo::default().stage(vk::ShaderStageFlags::FRAGMENT).module(fm).name(c"main"),
    ];
    let vin = vk::PipelineVertexInputStateCreateInfo::default();
    let ia = vk::PipelineInputAssemblyStateCreateInfo::default().topology(topology);
    let vp = vk::PipelineViewportStateCreateInfo::default().viewport_count(1).scissor_count(1);
    let rs = vk::PipelineRasterizationStateCreateInfo::default()
        .polygon_mode(vk::PolygonMode::FILL)
        .cull_mode(cull)
        .front_face(vk::FrontFace::COUNTER_CLOCKWISE)
        .line_width(1.0);
    let ms = vk::PipelineMultisampleStateCreateInfo::default().rasterization_samples(vk::SampleCountFlags::TYPE_1);
    let mut att = vk::PipelineColorBlendAttachmentState::default().color_write_mask(vk::ColorComponentFlags::RGBA);
    if blend {
        att = att
            .blend_enable(true)
            .src_color_blend_factor(vk::BlendFactor::SRC_ALPHA)
            .dst_color_blend_factor(vk::BlendFactor::ONE_MINUS_SRC_ALPHA)
            .color_blend_op(vk::BlendOp::ADD)
            .src_alpha_blend_factor(vk::BlendFactor::ONE)
            .dst_alpha_blend_factor(vk::BlendFactor::ONE_MINUS_SRC_ALPHA)
            .alpha_blend_op(vk::BlendOp::ADD);
    }
    let atts = [att];
    let cbs = vk::PipelineColorBlendStateCreateInfo::default().attachments(&atts);
    let dyns = [vk::DynamicState::VIEWPORT, vk::DynamicState::SCISSOR];
    let ds = vk::PipelineDynamicStateCreateInfo::default().dynamic_states(&dyns);
    let formats = [format];
    let mut rci = vk::PipelineRenderingCreateInfo::default().color_attachment_formats(&formats);
    let ci = [vk::GraphicsPipelineCreateInfo::default()
        .stages(&stage_ci)
        .vertex_input_state(&vin)
        .input_assembly_state(&ia)
        .viewport_state(&vp)
        .rasterization_state(&rs)
        .multisample_state(&ms)
        .color_blend_state(&cbs)
        .dynamic_state(&ds)
        .layout(layout)
        .push_next(&mut rci)];
    // SAFETY: valid create info; entry points and stages checked above.
    let r = unsafe { d.create_graphics_pipelines(vk::PipelineCache::null(), &ci, None) };
    drop_modules();
    let pipeline = match r {
        Ok(p) => p[0],
        Err((_, e)) => {
            drop_layout(d, &set_layouts, layout);
            return Err(vkerr(FN, "vkCreateGraphicsPipelines", e));
        }
    };
    Ok(new_handle(Pipeline {
        _shader: None,
        dev: ChildOf::new(device.arc()),
        set_layouts,
        layout,
        pipeline,
        bindings,
        push_size,
        stages,
        color_format: Some(format),
    }))
}

fn floats4(func: &str, v: Value, what: &str) -> RtResult<[f32; 4]> {
    let bad = || Error::invalid(func, format!("{what} must be an array of 4 numbers (r, g, b, a)"), v.describe());
    if !v.is_array() || v.len() != 4 {
        return Err(bad());
    }
    let mut out = [0f32; 4];
    for (i, o) in out.iter_mut().enumerate() {
        let x = v.at(i);
        *o = x.as_float().or_else(|| x.as_int().map(|n| n as f64)).ok_or_else(bad)? as f32;
    }
    Ok(out)
}

/// Records the start of rendering into `image` (Vulkan 1.3 dynamic rendering): the image is cleared (its earlier
/// contents are discarded), and viewport and scissor cover it whole (y grows downwards, (-1,-1) is the top left
/// corner). Draw with `rt_vk_draw_record`, then `rt_vk_render_end`.
///
/// # Options
/// - clear_color (default [0): [r, g, b, a], 0, 0, 1]
///
/// # Errors
/// - InvalidArgument: the image belongs to another device; the command buffer is not recording (call rt_vk_command_begin); rendering is already open: call rt_vk_render_end first; an unknown option, or an option of the wrong kind or range
/// - Unsupported: the device has no graphics queue family with dynamic rendering
/// - Closed: `cb` was closed; `image` was closed
#[rt_fn(cap = "gpu", tier = "empirical")]
pub fn rt_vk_render_start(cb: Handle<CommandBuffer>, image: Handle<Image>, opts: Opts) -> RtResult<()> {
    opts.only(&["clear_color"])?;
    let dev = &cb.pool.dev;
    if !same_device(dev, &image.dev) {
        return Err(Error::invalid(FN, "the image belongs to another device", "image"));
    }
    if !dev.graphics || !dev.dynamic_rendering {
        return Err(Error::unsupported(FN, "the device has no graphics queue family with dynamic rendering"));
    }
    let clear = match opts.get("clear_color") {
        v if v.is_nil() => [0.0, 0.0, 0.0, 1.0],
        v => floats4(FN, v, "clear_color")?,
    };
    let mut inner = lock(&cb.inner);
    if inner.state != CbState::Recording {
        return Err(Error::invalid(FN, "the command buffer is not recording (call rt_vk_command_begin)", "render_start"));
    }
    if inner.rendering.is_some() {
        return Err(Error::invalid(FN, "rendering is already open: call rt_vk_render_end first", "render_start"));
    }
    let _pool = lock(&cb.pool.pool);
    let d = &dev.device;
    let (w, h) = (image.width, image.height);
    let to_attachment = vk::ImageMemoryBarrier::default()
        .src_access_mask(vk::AccessFlags::empty())
        .dst_access_mask(vk::AccessFlags::COLOR_ATTACHMENT_WRITE)
        .old_layout(vk::ImageLayout::UNDEFINED)
        .new_layout(vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL)
        .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
        .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
        .image(image.image)
        .subresource_range(color_range());
    let att = [vk::RenderingAttachmentInfo::default()
        .image_view(image.view)
        .image_layout(vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL)
        .load_op(vk::AttachmentLoadOp::CLEAR)
        .store_op(vk::AttachmentStoreOp::STORE)
        .clear_value(vk::ClearValue { color: vk::ClearColorValue { float32: clear } })];
    let area = vk::Rect2D { offset: vk::Offset2D { x: 0, y: 0 }, extent: vk::Extent2D { width: w, height: h } };
    let ri = vk::RenderingInfo::default().render_area(area).layer_count(1).color_attachments(&att);
    // SAFETY: recording (checked); the image is kept alive by `inner`.
    unsafe {
        // Earlier copies from the image (a write-after-read) finish first.
        d.cmd_pipeline_barrier(
            cb.cb,
            vk::PipelineStageFlags::TRANSFER | vk::PipelineStageFlags::COLOR_ATTACHMENT_OUTPUT,
            vk::PipelineStageFlags::COLOR_ATTACHMENT_OUTPUT,
            vk::DependencyFlags::empty(),
            &[],
            &[],
            &[to_attachment],
        );
        d.cmd_begin_rendering(cb.cb, &ri);
        d.cmd_set_viewport(cb.cb, 0, &[vk::Viewport { x: 0.0, y: 0.0, width: w as f32, height: h as f32, min_depth: 0.0, max_depth: 1.0 }]);
        d.cmd_set_scissor(cb.cb, 0, &[area]);
    }
    *lock(&image.layout) = vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL;
    let img = image.arc();
    inner.rendering = Some(img.clone());
    inner.keep_image(img);
    Ok(())
}

/// Records a draw of `vertex_count` vertices with graphics `pipeline` between `rt_vk_render_start` and
/// `rt_vk_render_end`.
///
/// # Options
/// - buffers: one `vk_buffer` per descriptor binding of the shaders, in (set, binding) order
/// - push_constants (bytes): bytes, exactly the shaders' push-constant size
/// - instance_count (int, default 1): 1
/// - first_vertex (int, default 0): 0
///
/// # Errors
/// - InvalidArgument: the pipeline belongs to another device; a compute pipeline cannot draw (rt_vk_dispatch runs it); the command buffer is not recording (call rt_vk_command_begin); no rendering is open: call rt_vk_render_start first
/// - Closed: `cb` was closed; `pipeline` was closed
/// - OutOfRange: an index or number is outside its range
#[rt_fn(cap = "gpu", tier = "empirical")]
pub fn rt_vk_draw_record(cb: Handle<CommandBuffer>, pipeline: Handle<Pipeline>, vertex_count: i64, opts: Opts) -> RtResult<()> {
    opts.only(&["buffers", "push_constants", "instance_count", "first_vertex"])?;
    let dev = &cb.pool.dev;
    if !same_device(dev, &pipeline.dev) {
        return Err(Error::invalid(FN, "the pipeline belongs to another device", "pipeline"));
    }
    let Some(pf) = pipeline.color_format else {
        return Err(Error::invalid(FN, "a compute pipeline cannot draw (rt_vk_dispatch runs it)", "pipeline"));
    };
    let u32_arg = |v: i64, what: &str, min: i64| -> RtResult<u32> {
        if v < min || v > u32::MAX as i64 {
            return Err(Error::new(Code::OutOfRange, FN, format!("{what} must be {min} to {}", u32::MAX), v));
        }
        Ok(v as u32)
    };
    let vc = u32_arg(vertex_count, "vertex_count", 1)?;
    let ic = u32_arg(opts.int("instance_count")?.unwrap_or(1), "instance_count", 1)?;
    let fv = u32_arg(opts.int("first_vertex")?.unwrap_or(0), "first_vertex", 0)?;
    let push = opts.bytes("push_constants")?.unwrap_or(&[]);
    let buffers = opts.get("buffers");
    let mut inner = lock(&cb.inner);
    if inner.state != CbState::Recording {
        return Err(Error::invalid(FN, "the command buffer is not recording (call rt_vk_command_begin)", "draw"));
    }
    let Some(target) = inner.rendering.clone() else {
        return Err(Error::invalid(FN, "no rendering is open: call rt_vk_render_start first", "draw"));
    };
    if target.format != pf {
        return Err(Error::invalid(
            FN,
            format!("the pipeline renders to {} but the image is {}", format_name(pf), format_name(target.format)),
            "pipeline",
        ));
    }
    let _pool = lock(&cb.pool.pool);
    bind_resources(FN, &cb, &mut inner, &pipeline, buffers, push, vk::PipelineBindPoint::GRAPHICS)?;
    // SAFETY: recording inside rendering (checked); objects are kept alive by `inner`.
    unsafe { dev.device.cmd_draw(cb.cb, vc, ic, fv, 0) };
    inner.keep_pipelines.push(pipeline.arc());
    Ok(())
}

/// Records the end of rendering; the image is then ready to be copied
/// (`rt_vk_image_copy`) by commands recorded after this one.
///
/// # Errors
/// - InvalidArgument: the command buffer is not recording (call rt_vk_command_begin); no rendering is open (rt_vk_render_start)
/// - Closed: `cb` was closed
#[rt_fn(cap = "gpu", tier = "empirical")]
pub fn rt_vk_render_end(cb: Handle<CommandBuffer>) -> RtResult<()> {
    let mut inner = lock(&cb.inner);
    if inner.state != CbState::Recording {
        return Err(Error::invalid(FN, "the command buffer is not recording (call rt_vk_command_begin)", "render_end"));
    }
    let Some(image) = inner.rendering.take() else {
        return Err(Error::invalid(FN, "no rendering is open (rt_vk_render_start)", "render_end"));
    };
    let _pool = lock(&cb.pool.pool);
    let d = &cb.pool.dev.device;
    let to_src = vk::ImageMemoryBarrier::default()
        .src_access_mask(vk::AccessFlags::COLOR_ATTACHMENT_WRITE)
        .dst_access_mask(vk::AccessFlags::TRANSFER_READ)
        .old_layout(vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL)
        .new_layout(vk::ImageLayout::TRANSFER_SRC_OPTIMAL)
        .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
        .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
        .image(image.image)
        .subresource_range(color_range());
    // SAFETY: recording, inside rendering (checked).
    unsafe {
        d.cmd_end_rendering(cb.cb);
        d.cmd_pipeline_barrier(
            cb.cb,
            vk::PipelineStageFlags::COLOR_ATTACHMENT_OUTPUT,
            vk::PipelineStageFlags::TRANSFER,
            vk::DependencyFlags::empty(),
            &[],
            &[],
            &[to_src],
        );
    }
    *lock(&image.layout) = vk::ImageLayout::TRANSFER_SRC_OPTIMAL;
    Ok(())
}

/// Records a copy of the whole of `image` into `buffer` (rows tightly packed, top row first: width × height ×
/// texel bytes, see `rt_vk_image_info_get`), followed by a barrier that makes the bytes visible to the host and
/// to shaders; read them with `rt_vk_memory_map` after the fence. The image must have been rendered
/// (`rt_vk_render_end` recorded before).
///
/// # Errors
/// - InvalidArgument: the image or buffer belongs to another device; the buffer was created without usage transfer_dst; the buffer has no memory bound (rt_vk_memory_allocate); the command buffer is not recording (call rt_vk_command_begin)
/// - Closed: `cb` was closed; `image` was closed; `buffer` was closed
/// - OutOfRange: the buffer is too small
#[rt_fn(cap = "gpu", tier = "empirical")]
pub fn rt_vk_image_copy(cb: Handle<CommandBuffer>, image: Handle<Image>, buffer: Handle<Buffer>) -> RtResult<()> {
    let dev = &cb.pool.dev;
    if !same_device(dev, &image.dev) || !same_device(dev, &buffer.dev) {
        return Err(Error::invalid(FN, "the image or buffer belongs to another device", "image"));
    }
    let need = image.width as u64 * image.height as u64 * image.texel as u64;
    if buffer.size < need {
        return Err(Error::new(Code::OutOfRange, FN, format!("the buffer has {} bytes; the image needs {need}", buffer.size), buffer.size));
    }
    if !buffer.usage.contains(vk::BufferUsageFlags::TRANSFER_DST) {
        return Err(Error::invalid(FN, "the buffer was created without usage transfer_dst", "buffer"));
    }
    if lock(&buffer.memory).is_none() {
        return Err(Error::invalid(FN, "the buffer has no memory bound (rt_vk_memory_allocate)", "buffer"));
    }
    let mut inner = lock(&cb.inner);
    if inner.state != CbState::Recording {
        return Err(Error::invalid(FN, "the command buffer is not recording (call rt_vk_command_begin)", "image_copy"));
    }
    if inner.rendering.is_some() {
        return Err(Error::invalid(FN, "rendering is open: call rt_vk_render_end first", "image_copy"));
    }
    if *lock(&image.layout) != vk::ImageLayout::TRANSFER_SRC_OPTIMAL {
        return Err(Error::invalid(FN, "the image has not been rendered yet (record rt_vk_render_start / rt_vk_render_end first)", "image"));
    }
    let _pool = lock(&cb.pool.pool);
    let d = &dev.device;
    let region = vk::BufferImageCopy::default()
        .buffer_offset(0)
        .buffer_row_length(0)
        .buffer_image_height(0)
        .image_subresource(vk::ImageSubresourceLayers::default().aspect_mask(vk::ImageAspectFlags::COLOR).mip_level(0).base_array_layer(0).layer_count(1))
        .image_extent(vk::Extent3D { width: image.width, height: image.height, depth: 1 });
    let visible = vk::BufferMemoryBarrier::default()
        .src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
        .dst_access_mask(vk::AccessFlags::HOST_READ | vk::AccessFlags::SHADER_READ)
        .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
        .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
        .buffer(buffer.buffer)
        .offset(0)
        .size(vk::WHOLE_SIZE);
    // SAFETY: recording outside rendering; the image is in TRANSFER_SRC_OPTIMAL at this point of the recording.
    unsafe {
        d.cmd_copy_image_to_buffer(cb.cb, image.image, vk::ImageLayout::TRANSFER_SRC_OPTIMAL, buffer.buffer, &[region]);
        d.cmd_pipeline_barrier(
            cb.cb,
            vk::PipelineStageFlags::TRANSFER,
            vk::PipelineStageFlags::HOST | vk::PipelineStageFlags::COMPUTE_SHADER,
            vk::DependencyFlags::empty(),
            &[],
            &[visible],
            &[],
        );
    }
    inner.keep_image(image.arc());
    inner.keep_buffer(buffer.arc());
    Ok(())
}
