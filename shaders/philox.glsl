// philox.glsl: the Philox4x32-10 counter-based random number generator (include it after
// common.glsl). Salmon, Moraes, Dror and Shaw, "Parallel random numbers: as easy as 1, 2, 3",
// SC 2011: ten rounds of a multiply-xor Feistel network over a 128-bit counter, keyed by a 64-bit
// key that is bumped by the Weyl constants between rounds. The Go twin, checked against the
// published known answers, is ref.Philox4x32 in vk/ops/ref/dropout.go.

#ifndef VKTRAIN_PHILOX_GLSL
#define VKTRAIN_PHILOX_GLSL

uvec4 philox4x32(uvec4 ctr, uvec2 key) {
	for (uint round = 0u; round < 10u; round++) {
		uint hi0, lo0, hi1, lo1;
		umulExtended(0xD2511F53u, ctr.x, hi0, lo0);
		umulExtended(0xCD9E8D57u, ctr.z, hi1, lo1);
		ctr = uvec4(hi1 ^ ctr.y ^ key.x, lo1, hi0 ^ ctr.w ^ key.y, lo0);
		key += uvec2(0x9E3779B9u, 0xBB67AE85u); // the bump after the last round is unused
	}
	return ctr;
}

#endif
