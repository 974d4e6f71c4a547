package ref

// NSE is the normalised squared error of got against want over want's length: the sum of
// squared differences over the sum of squares of want (the plain sum when want is all zeros).
// A NaN anywhere makes it NaN.
func NSE(got []float32, want []float64) float64 {
	var num, den float64
	for i, w := range want {
		d := float64(got[i]) - w
		num += d * d
		den += w * w
	}
	if den == 0 {
		return num
	}
	return num / den
}
