package ref

import "math/bits"

// Philox4x32 is the Philox4x32-10 counter-based generator of Salmon et al., "Parallel random
// numbers: as easy as 1, 2, 3" (SC 2011): ten rounds of a multiply-xor Feistel network over a
// 128-bit counter, keyed by a 64-bit key that is bumped by the Weyl constants between rounds.
func Philox4x32(ctr [4]uint32, key [2]uint32) [4]uint32 {
	const (
		m0, m1 = 0xD2511F53, 0xCD9E8D57 // round multipliers
		w0, w1 = 0x9E3779B9, 0xBB67AE85 // key bumps (golden ratio, sqrt(3) - 1)
	)
	c, k := ctr, key
	for round := 0; round < 10; round++ {
		if round > 0 {
			k[0] += w0
			k[1] += w1
		}
		hi0, lo0 := bits.Mul32(m0, c[0])
		hi1, lo1 := bits.Mul32(m1, c[2])
		c = [4]uint32{hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0}
	}
	return c
}

// DropoutKeep returns the dropout mask of n elements: element i is kept when u >= p, where u is
// word 0 of Philox4x32 with key {seed, 0} and the 64-bit counter offset + i (low word first,
// the upper two words zero), read as a fraction of 2^32.
func DropoutKeep(seed, offset uint32, n int, p float64) []bool {
	keep := make([]bool, n)
	for i := range keep {
		c := uint64(offset) + uint64(i)
		r := Philox4x32([4]uint32{uint32(c), uint32(c >> 32), 0, 0}, [2]uint32{seed, 0})[0]
		keep[i] = float64(r)/(1<<32) >= p
	}
	return keep
}

// Dropout returns x with the elements that DropoutKeep drops set to zero and the others scaled
// by 1 / (1 - p). Its backward is the same function applied to dy.
func Dropout(x []float64, seed, offset uint32, p float64) []float64 {
	y := make([]float64, len(x))
	for i, k := range DropoutKeep(seed, offset, len(x), p) {
		if k {
			y[i] = x[i] / (1 - p)
		}
	}
	return y
}
