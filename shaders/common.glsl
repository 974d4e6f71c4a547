// common.glsl: helpers shared by vktrain's compute shaders (include it, do not compile it).
//
// Conventions every shader in shaders/ follows (the host side in vk/ relies on them):
//
// 1. `#version 450`, compute shaders only, one entry point `main`. A shader includes this file
//    right after #version, before anything else:
//        #extension GL_GOOGLE_include_directive : require
//        #include "common.glsl"
//    Included files carry no #version.
// 2. The workgroup size comes from specialization constants:
//        layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;
//    Constant ids 0, 1 and 2 are ALWAYS the workgroup x, y and z size. Op-specific constants
//    (tiles, unrolls, ...) start at constant_id 3, each with a default that compiles.
//    This file makes that declaration. A shader that does not include it must make it itself,
//    before any code: glslang folds gl_WorkGroupSize that is used above the declaration to the
//    default 1x1x1, silently (the SPIR-V validates, the kernel is wrong).
// 3. Descriptor set 0 only. Bindings 0..7 are storage buffers (std430); the host binds each one
//    to exactly one tensor, with the buffer offset at the tensor's first element. Bindings 8..11
//    are read-only RGBA32F texel views (`uniform samplerBuffer`) of the tensor passed in position
//    binding - 8, which then leaves that storage binding to a placeholder (vk.InTexels). Several
//    bindings may be bound to the same tensor (so never declare them `restrict`). Element
//    offsets, strides and shapes travel in one push-constant block of at most 128 bytes, made
//    of 4-byte uint/int/float members in the order the host packs them (vk.Push).
// 4. The host may dispatch more invocations than there are elements: every write (and every
//    read that could leave its tensor) is guarded by the bounds from the push constants.
// 5. Dispatch grid of 1-D kernels: the host launches groups = ceil(n / (wg_x * per)) workgroups,
//    where per is the number of elements each invocation handles. When that exceeds
//    maxComputeWorkGroupCount[0] (65535 on many GPUs) the host spreads the groups over x and y
//    (x * y >= groups), so a 1-D kernel always linearises the group index as
//        gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x
//    (linearGroupID below); elementIndex does that and the bounds check in one call.
//    gl_WorkGroupID.z stays free for the kernel (matmul uses it as the batch index).
// 6. No grid-stride loops: the host sizes the grid, and each invocation handles its own
//    element(s) only.

#ifndef VKTRAIN_COMMON_GLSL
#define VKTRAIN_COMMON_GLSL

layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;

// NO_ELEMENT is what elementIndex returns to an invocation with nothing to do. It is >= every
// uint n, so `if (i >= n) return;` rejects it.
const uint NO_ELEMENT = 0xFFFFFFFFu;

// linearGroupID is the workgroup's index in a 1-D grid that the host may have spread over x and y.
uint linearGroupID() {
	return gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
}

// elementIndex returns the first of the per consecutive elements this invocation handles, out
// of n, or NO_ELEMENT when the invocation lies past the end (or in a padding group of a 2-D
// grid). It never overflows, even for n close to 2^32. per must be at least 1.
uint elementIndex(uint n, uint per) {
	if (n == 0u) {
		return NO_ELEMENT;
	}
	const uint wg = gl_WorkGroupSize.x;
	const uint last = (n - 1u) / per; // index of the last invocation with work
	const uint g = linearGroupID();
	if (g > last / wg) {
		return NO_ELEMENT;
	}
	const uint base = g * wg; // <= last, as g <= last / wg
	if (gl_LocalInvocationID.x > last - base) { // base + local could wrap past 2^32
		return NO_ELEMENT;
	}
	return (base + gl_LocalInvocationID.x) * per; // <= n - 1
}

#endif
