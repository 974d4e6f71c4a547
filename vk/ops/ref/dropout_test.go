package ref

import "testing"

// TestPhilox4x32KnownAnswers checks the generator against the known-answer vectors published
// with Random123 (Salmon et al.), the reference implementation of Philox.
func TestPhilox4x32KnownAnswers(t *testing.T) {
	for _, c := range []struct {
		ctr  [4]uint32
		key  [2]uint32
		want [4]uint32
	}{
		{[4]uint32{0, 0, 0, 0}, [2]uint32{0, 0}, [4]uint32{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
		{[4]uint32{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, [2]uint32{0xffffffff, 0xffffffff},
			[4]uint32{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
		{[4]uint32{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, [2]uint32{0xa4093822, 0x299f31d0},
			[4]uint32{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
	} {
		if got := Philox4x32(c.ctr, c.key); got != c.want {
			t.Errorf("Philox4x32(%#x, %#x) = %#x, want %#x", c.ctr, c.key, got, c.want)
		}
	}
}

func TestDropoutKeepCounter(t *testing.T) {
	// Element i of a mask at offset o is element o + i of the mask at offset 0, across the
	// 2^32 carry into the counter's second word.
	a := DropoutKeep(7, 0xfffffff0, 64, 0.5)
	b := DropoutKeep(7, 0xfffffff8, 56, 0.5)
	for i := range b {
		if a[i+8] != b[i] {
			t.Fatalf("element %d differs between offsets", i)
		}
	}
	for _, k := range DropoutKeep(7, 0, 1000, 0) {
		if !k {
			t.Fatal("p = 0 dropped an element")
		}
	}
}
