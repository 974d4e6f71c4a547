package ref

// EmbeddingForward gathers rows of table (vocab x dim, vocab = len(table)/dim): row t of the
// result is table[ids[t]], or zeros where ids[t] >= vocab.
func EmbeddingForward(ids []uint32, table []float64, dim int) []float64 {
	vocab := len(table) / dim
	out := make([]float64, len(ids)*dim)
	for t, id := range ids {
		if int(id) < vocab {
			copy(out[t*dim:(t+1)*dim], table[int(id)*dim:(int(id)+1)*dim])
		}
	}
	return out
}

// EmbeddingBackward returns the gradient of EmbeddingForward with respect to the table (vocab
// x dim): row v is the sum of the rows of dout whose id is v; ids >= vocab contribute nothing.
func EmbeddingBackward(ids []uint32, dout []float64, vocab, dim int) []float64 {
	dtable := make([]float64, vocab*dim)
	for t, id := range ids {
		if int(id) >= vocab {
			continue
		}
		for c := 0; c < dim; c++ {
			dtable[int(id)*dim+c] += dout[t*dim+c]
		}
	}
	return dtable
}
