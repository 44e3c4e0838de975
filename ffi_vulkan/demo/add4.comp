#version 450
// rt demo's Vulkan step: c = a + b over 4 floats (one workgroup).
// SPIR-V: glslangValidator -V add4.comp -o add4.spv; add4.spv.hex is its bytes in hex
// (rt/src/demo.rs embeds it; regenerate with: xxd -p add4.spv | tr -d '\n' > add4.spv.hex).
layout(local_size_x = 4) in;
layout(set = 0, binding = 0) readonly buffer A { float a[]; };
layout(set = 0, binding = 1) readonly buffer B { float b[]; };
layout(set = 0, binding = 2) writeonly buffer C { float c[]; };
void main() {
    uint i = gl_GlobalInvocationID.x;
    c[i] = a[i] + b[i];
}
