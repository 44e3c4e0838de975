//! ffi_vulkan benchmark: the exported rt_vk_* functions (through their C
//! ABI) against the same work done with ash called directly, side by side
//! in one run, on whatever device the loader finds (lavapipe on CI boxes).
//!
//! `cargo bench -p ffi_vulkan --features vulkan --bench vk` (release;
//! needs glslangValidator). Env `RT_BENCH_ROUNDS` (default 15) sets the
//! rounds; the table shows the best round of each contender (round robin,
//! so load bursts on a shared machine hit both alike).
//!
//! - round trip, recorded each time: begin, one 1-workgroup dispatch (one
//!   storage buffer, push constants), end, submit with a fence, wait. The
//!   direct code reuses one descriptor set and one fence, as hand-written
//!   ash code does; the library makes a descriptor pool per recording and a
//!   fence per submission (its handles own their lifetimes).
//! - round trip, pre-recorded: submit + fence wait only.
//! - recording only (no submission): the library's own CPU cost per dispatch.
//! - upload / download of 64 MiB into / out of host-visible memory:
//!   `rt_vk_memory_write` / `rt_vk_memory_map` (a copy into a new bytes
//!   value) vs `copy_from_slice` into / out of the mapped pointer (out of it
//!   into a Vec made once).

#![deny(clippy::undocumented_unsafe_blocks)]

use ash::vk;
use ffi_sdk::bench;
use ffi_sdk::testing::{bytes, close, dict, int, ok, NIL};
use ffi_sdk::Value;
use ffi_vulkan::vk::*;
use std::hint::black_box;
use std::process::Command;
use std::time::Duration;

const SHADER: &str = r#"#version 450
layout(local_size_x = 64) in;
layout(set = 0, binding = 0) buffer B { uint x[]; };
layout(push_constant) uniform P { uint add; } p;
void main() { x[gl_GlobalInvocationID.x] += p.add; }
"#;

fn spirv() -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!("rt-vk-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (g, s) = (dir.join("b.comp"), dir.join("b.spv"));
    std::fs::write(&g, SHADER).unwrap();
    let o = Command::new("glslangValidator").arg("-V").arg(&g).arg("-o").arg(&s).output().expect("glslangValidator (glslang-tools)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let v = std::fs::read(&s).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    v
}

/// The same work with ash alone: instance, device, one storage buffer,
/// pipeline, one descriptor set, one command buffer and one fence.
struct Direct {
    _entry: ash::Entry,
    inst: ash::Instance,
    dev: ash::Device,
    queue: vk::Queue,
    buf: vk::Buffer,
    mem: vk::DeviceMemory,
    ptr: *mut u8,
    up: (vk::Buffer, vk::DeviceMemory, *mut u8),
    down: (vk::Buffer, vk::DeviceMemory, *mut u8),
    dsl: vk::DescriptorSetLayout,
    layout: vk::PipelineLayout,
    module: vk::ShaderModule,
    pipe: vk::Pipeline,
    dpool: vk::DescriptorPool,
    set: vk::DescriptorSet,
    pool: vk::CommandPool,
    cb: vk::CommandBuffer,
    fence: vk::Fence,
}

impl Direct {
    unsafe fn new(code: &[u8], big: u64) -> Direct {
        let entry = ash::Entry::load().unwrap();
        let app = vk::ApplicationInfo::default().api_version(vk::API_VERSION_1_3);
        let inst = entry.create_instance(&vk::InstanceCreateInfo::default().application_info(&app), None).unwrap();
        let pd = inst.enumerate_physical_devices().unwrap()[0];
        let family = inst.get_physical_device_queue_family_properties(pd).iter().position(|f| f.queue_flags.contains(vk::QueueFlags::COMPUTE)).unwrap() as u32;
        let prio = [1.0f32];
        let qci = [vk::DeviceQueueCreateInfo::default().queue_family_index(family).queue_priorities(&prio)];
        let dev = inst.create_device(pd, &vk::DeviceCreateInfo::default().queue_create_infos(&qci), None).unwrap();
        let queue = dev.get_device_queue(family, 0);
        let mp = inst.get_physical_device_memory_properties(pd);
        let alloc = |size: u64, want: vk::MemoryPropertyFlags| {
            let b = dev.create_buffer(&vk::BufferCreateInfo::default().size(size).usage(vk::BufferUsageFlags::STORAGE_BUFFER), None).unwrap();
            let req = dev.get_buffer_memory_requirements(b);
            let ty = (0..mp.memory_type_count)
                .find(|i| req.memory_type_bits & (1 << i) != 0 && mp.memory_types[*i as usize].property_flags.contains(want))
                .or_else(|| {
                    (0..mp.memory_type_count).find(|i| {
                        req.memory_type_bits & (1 << i) != 0 && mp.memory_types[*i as usize].property_flags.contains(vk::MemoryPropertyFlags::HOST_VISIBLE)
                    })
                })
                .unwrap();
            let m = dev.allocate_memory(&vk::MemoryAllocateInfo::default().allocation_size(req.size).memory_type_index(ty), None).unwrap();
            dev.bind_buffer_memory(b, m, 0).unwrap();
            let p = dev.map_memory(m, 0, vk::WHOLE_SIZE, vk::MemoryMapFlags::empty()).unwrap() as *mut u8;
            (b, m, p)
        };
        let hc = vk::MemoryPropertyFlags::HOST_VISIBLE | vk::MemoryPropertyFlags::HOST_COHERENT;
        let (buf, mem, ptr) = alloc(256, hc);
        let up = alloc(big, hc);
        let down = alloc(big, vk::MemoryPropertyFlags::HOST_VISIBLE | vk::MemoryPropertyFlags::HOST_CACHED);
        let binding = [vk::DescriptorSetLayoutBinding::default()
            .binding(0)
            .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
            .descriptor_count(1)
            .stage_flags(vk::ShaderStageFlags::COMPUTE)];
        let dsl = dev.create_descriptor_set_layout(&vk::DescriptorSetLayoutCreateInfo::default().bindings(&binding), None).unwrap();
        let dsls = [dsl];
        let pcr = [vk::PushConstantRange::default().stage_flags(vk::ShaderStageFlags::COMPUTE).size(4)];
        let layout = dev.create_pipeline_layout(&vk::PipelineLayoutCreateInfo::default().set_layouts(&dsls).push_constant_ranges(&pcr), None).unwrap();
        let words: Vec<u32> = code.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        let module = dev.create_shader_module(&vk::ShaderModuleCreateInfo::default().code(&words), None).unwrap();
        let stage = vk::PipelineShaderStageCreateInfo::default().stage(vk::ShaderStageFlags::COMPUTE).module(module).name(c"main");
        let pipe = dev.create_compute_pipelines(vk::PipelineCache::null(), &[vk::ComputePipelineCreateInfo::default().stage(stage).layout(layout)], None).unwrap()[0];
        let sizes = [vk::DescriptorPoolSize::default().ty(vk::DescriptorType::STORAGE_BUFFER).descriptor_count(1)];
        let dpool = dev.create_descriptor_pool(&vk::DescriptorPoolCreateInfo::default().max_sets(1).pool_sizes(&sizes), None).unwrap();
        let set = dev.allocate_descriptor_sets(&vk::DescriptorSetAllocateInfo::default().descriptor_pool(dpool).set_layouts(&dsls)).unwrap()[0];
        let info = [vk::DescriptorBufferInfo::default().buffer(buf).range(vk::WHOLE_SIZE)];
        dev.update_descriptor_sets(
            &[vk::WriteDescriptorSet::default().dst_set(set).dst_binding(0).descriptor_type(vk::DescriptorType::STORAGE_BUFFER).buffer_info(&info)],
            &[],
        );
        let pool = dev
            .create_command_pool(&vk::CommandPoolCreateInfo::default().queue_family_index(family).flags(vk::CommandPoolCreateFlags::RESET_COMMAND_BUFFER), None)
            .unwrap();
        let cb = dev.allocate_command_buffers(&vk::CommandBufferAllocateInfo::default().command_pool(pool).command_buffer_count(1)).unwrap()[0];
        let fence = dev.create_fence(&vk::FenceCreateInfo::default(), None).unwrap();
        Direct { _entry: entry, inst, dev, queue, buf, mem, ptr, up, down, dsl, layout, module, pipe, dpool, set, pool, cb, fence }
    }

    unsafe fn record(&self) {
        let d = &self.dev;
        d.reset_command_buffer(self.cb, vk::CommandBufferResetFlags::empty()).unwrap();
        d.begin_command_buffer(self.cb, &vk::CommandBufferBeginInfo::default()).unwrap();
        d.cmd_bind_pipeline(self.cb, vk::PipelineBindPoint::COMPUTE, self.pipe);
        d.cmd_bind_descriptor_sets(self.cb, vk::PipelineBindPoint::COMPUTE, self.layout, 0, &[self.set], &[]);
        d.cmd_push_constants(self.cb, self.layout, vk::ShaderStageFlags::COMPUTE, 0, &1u32.to_le_bytes());
        d.cmd_dispatch(self.cb, 1, 1, 1);
        let barrier = vk::MemoryBarrier::default()
            .src_access_mask(vk::AccessFlags::SHADER_WRITE)
            .dst_access_mask(vk::AccessFlags::SHADER_READ | vk::AccessFlags::SHADER_WRITE | vk::AccessFlags::HOST_READ | vk::AccessFlags::TRANSFER_READ);
        d.cmd_pipeline_barrier(
            self.cb,
            vk::PipelineStageFlags::COMPUTE_SHADER,
            vk::PipelineStageFlags::COMPUTE_SHADER | vk::PipelineStageFlags::HOST | vk::PipelineStageFlags::TRANSFER,
            vk::DependencyFlags::empty(),
            &[barrier],
            &[],
            &[],
        );
        d.end_command_buffer(self.cb).unwrap();
    }

    unsafe fn submit_wait(&self) {
        let cbs = [self.cb];
        self.dev.queue_submit(self.queue, &[vk::SubmitInfo::default().command_buffers(&cbs)], self.fence).unwrap();
        self.dev.wait_for_fences(&[self.fence], true, u64::MAX).unwrap();
        self.dev.reset_fences(&[self.fence]).unwrap();
    }
}

impl Drop for Direct {
    fn drop(&mut self) {
        // SAFETY: every object here was created by `Direct::new` on `self.dev` and is owned
        // only by `self`; device_wait_idle first, so none is in use by the GPU; children go
        // before the device and the device before the instance, each destroyed exactly once
        // (freeing `mem` also unmaps `ptr`, which is not used afterwards).
        unsafe {
            let d = &self.dev;
            d.device_wait_idle().unwrap();
            d.destroy_fence(self.fence, None);
            d.destroy_command_pool(self.pool, None);
            d.destroy_descriptor_pool(self.dpool, None);
            d.destroy_pipeline(self.pipe, None);
            d.destroy_shader_module(self.module, None);
            d.destroy_pipeline_layout(self.layout, None);
            d.destroy_descriptor_set_layout(self.dsl, None);
            for (b, m) in [(self.buf, self.mem), (self.up.0, self.up.1), (self.down.0, self.down.1)] {
                d.destroy_buffer(b, None);
                d.free_memory(m, None);
            }
            let _ = self.ptr;
            d.destroy_device(None);
            self.inst.destroy_instance(None);
        }
    }
}

fn main() {
    let rounds: usize = std::env::var("RT_BENCH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(15);
    let code = spirv();
    let big: usize = 64 << 20;

    // The library side.
    let inst = ok(rt_vk_instance_create(NIL));
    let pds = ok(rt_vk_physical_devices(inst.raw()));
    println!("device: {} ({})", pds.at(0).get("name").as_text().unwrap_or("?"), pds.at(0).get("type").as_text().unwrap_or("?"));
    let dev = ok(rt_vk_device_create(inst.raw(), NIL, NIL));
    let q = ok(rt_vk_queue_get(dev.raw(), NIL));
    let buf = ok(rt_vk_buffer_create(dev.raw(), int(256), NIL));
    let mem = ok(rt_vk_memory_allocate(dev.raw(), buf.raw(), NIL));
    let up_b = ok(rt_vk_buffer_create(dev.raw(), int(big as i64), NIL));
    let up_m = ok(rt_vk_memory_allocate(dev.raw(), up_b.raw(), NIL));
    let down_b = ok(rt_vk_buffer_create(dev.raw(), int(big as i64), NIL));
    let down_m = ok(rt_vk_memory_allocate(dev.raw(), down_b.raw(), dict(&[("location", Value::text("gpu_to_cpu"))])));
    let sh = ok(rt_vk_shader_load(dev.raw(), bytes(&code)));
    let pipe = ok(rt_vk_pipeline_compute(sh.raw(), NIL));
    let pool = ok(rt_vk_command_pool(dev.raw()));
    let cb = ok(rt_vk_command_buffer(pool.raw()));
    let cb2 = ok(rt_vk_command_buffer(pool.raw()));
    let bufs = Value::array(1);
    bufs.push(buf);
    let push = dict(&[("push_constants", Value::bytes(&1u32.to_le_bytes()))]);
    let one = int(1);

    // The direct side.
    // SAFETY: plain ash set-up on the loader's first device; torn down by Drop.
    let direct = unsafe { Direct::new(&code, big as u64) };

    let lib_recorded = || {
        ok(rt_vk_command_begin(cb.raw()));
        ok(rt_vk_dispatch(cb.raw(), pipe.raw(), bufs.raw(), one, push));
        ok(rt_vk_command_end(cb.raw()));
        let f = ok(rt_vk_submit(q.raw(), cb.raw()));
        ok(rt_vk_fence_wait(f.raw(), NIL));
        close(f.raw());
    };
    // SAFETY: the direct objects are alive; each round trip waits for its fence.
    let ash_recorded = || unsafe {
        direct.record();
        direct.submit_wait();
    };
    ok(rt_vk_command_begin(cb2.raw()));
    ok(rt_vk_dispatch(cb2.raw(), pipe.raw(), bufs.raw(), one, push));
    ok(rt_vk_command_end(cb2.raw()));
    let lib_pre = || {
        let f = ok(rt_vk_submit(q.raw(), cb2.raw()));
        ok(rt_vk_fence_wait(f.raw(), NIL));
        close(f.raw());
    };
    // SAFETY: `direct` is alive and its command buffer not pending (every submission so far
    // waited on its fence); it is re-recorded once here, then only resubmitted.
    unsafe { direct.record() };
    // SAFETY: `direct` outlives the closure; submit_wait waits on and resets its fence, so
    // each call finds the command buffer idle again.
    let ash_pre = || unsafe { direct.submit_wait() };

    // Recording alone (CPU only: no submission), to show the library's own cost.
    let lib_record = || {
        ok(rt_vk_command_begin(cb.raw()));
        ok(rt_vk_dispatch(cb.raw(), pipe.raw(), bufs.raw(), one, push));
        ok(rt_vk_command_end(cb.raw()));
    };
    // SAFETY: the direct command buffer is not pending (every submission above waited).
    let ash_record = || unsafe { direct.record() };

    bench::table_header(&["operation", "rt_vk_* (library)", "ash directly", "ratio"]);
    let row = |name: &str, a: &mut dyn FnMut(), b: &mut dyn FnMut()| {
        let reps = bench::calibrate(Duration::from_millis(30), 20_000, &mut [&mut *a, &mut *b]);
        let n = reps[0].min(reps[1]);
        bench::warm_up(n / 4 + 1, &mut [&mut *a, &mut *b]);
        let t = bench::race(rounds, n, &mut [&mut *a, &mut *b]);
        let (x, y) = (bench::per_op(t[0], n) * 1e6, bench::per_op(t[1], n) * 1e6);
        println!("| {name} | {x:.2} us | {y:.2} us | {:.2}x |", x / y);
    };
    row("dispatch + fence round trip, recorded each time", &mut { lib_recorded }, &mut { ash_recorded });
    row("dispatch + fence round trip, pre-recorded (submit + wait)", &mut { lib_pre }, &mut { ash_pre });
    row("recording only: begin + dispatch + end (CPU, no submit)", &mut { lib_record }, &mut { ash_record });
    // SAFETY: re-record the direct buffer for the teardown's sake (it is idle).
    unsafe { direct.record() };

    // Uploads and downloads of 64 MiB.
    let src: Vec<u8> = (0..big).map(|i| (i * 31 % 251) as u8).collect();
    let src_v = Value::bytes(&src);
    let mut lib_up = || {
        ok(rt_vk_memory_write(up_m.raw(), src_v.raw(), NIL));
    };
    // SAFETY: the mapping is `big` bytes, host-visible and coherent, and no device work uses it.
    let mut ash_up = || unsafe { std::slice::from_raw_parts_mut(direct.up.2, big).copy_from_slice(black_box(&src)) };
    let mut lib_down = || {
        black_box(ok(rt_vk_memory_map(down_m.raw(), NIL, NIL)));
    };
    // Into a destination made once (a fresh Vec per call would pay page faults: ~1 GB/s here).
    let mut dst = vec![0u8; big];
    // SAFETY: the mapping of `down` is `big` bytes, host-visible and host-cached, alive while
    // `direct` is, and no device work writes it, so no invalidate is needed before reading.
    let mut ash_down = || unsafe {
        dst.copy_from_slice(std::slice::from_raw_parts(direct.down.2, big));
        black_box(&dst);
    };
    bench::warm_up(2, &mut [&mut lib_up, &mut ash_up, &mut lib_down, &mut ash_down]);
    let t = bench::race(rounds, 1, &mut [&mut lib_up, &mut ash_up, &mut lib_down, &mut ash_down]);
    let mbs: Vec<f64> = t.iter().map(|d| bench::mb_per_s(big, *d)).collect();
    println!("| upload 64 MiB into host-visible memory | {:.0} MB/s | {:.0} MB/s | {:.2}x |", mbs[0], mbs[1], mbs[1] / mbs[0]);
    println!("| download 64 MiB out of host-visible memory (a new copy) | {:.0} MB/s | {:.0} MB/s | {:.2}x |", mbs[2], mbs[3], mbs[3] / mbs[2]);
    println!("\n(ratio: library time / direct time; > 1 is slower; best of {rounds} rounds)");

    drop(direct);
    std::hint::black_box((src_v, bufs));
    for h in [cb2, cb, pool, pipe, sh, down_m, down_b, up_m, up_b, mem, buf, q, dev, inst] {
        close(h.raw());
    }
}
