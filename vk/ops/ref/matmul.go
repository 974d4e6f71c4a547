package ref

// Gemm is the float64 reference of ops.Gemm: C = Alpha·op(A)·op(B) + Beta·C + bias over Batch
// row-major matrices, op(X) = X or Xᵀ; op(A) is M x K, op(B) is K x N, C is M x N. Lda, Ldb and
// Ldc are the stored row strides (not defaulted here); offsets and strides are in elements.
type Gemm struct {
	M, N, K                   int
	TransA, TransB            bool
	Lda, Ldb, Ldc             int
	OffA, OffB, OffC, OffBias int
	Batch                     int // 0 means 1
	StrideA, StrideB, StrideC int
	Alpha, Beta               float64
}

// Apply returns a copy of c with the product written into it; bias may be nil.
func (g Gemm) Apply(a, b, bias, c []float64) []float64 {
	out := append([]float64(nil), c...)
	for z := 0; z < max(g.Batch, 1); z++ {
		for i := 0; i < g.M; i++ {
			for j := 0; j < g.N; j++ {
				var sum float64
				for k := 0; k < g.K; k++ {
					ai, bi := i*g.Lda+k, k*g.Ldb+j
					if g.TransA {
						ai = k*g.Lda + i
					}
					if g.TransB {
						bi = j*g.Ldb + k
					}
					sum += a[g.OffA+z*g.StrideA+ai] * b[g.OffB+z*g.StrideB+bi]
				}
				at := g.OffC + z*g.StrideC + i*g.Ldc + j
				v := g.Alpha * sum
				if g.Beta != 0 {
					v += g.Beta * c[at]
				}
				if bias != nil {
					v += bias[g.OffBias+j]
				}
				out[at] = v
			}
		}
	}
	return out
}

// Matmul returns A·B for dense row-major A (m x k) and B (k x n).
func Matmul(a, b []float64, m, n, k int) []float64 {
	return Gemm{M: m, N: n, K: k, Lda: k, Ldb: n, Ldc: n, Alpha: 1}.Apply(a, b, nil, make([]float64, m*n))
}

// MatmulBackward returns dA = dC·Bᵀ and dB = Aᵀ·dC for C = A·B (dense, as in Matmul).
func MatmulBackward(a, b, dc []float64, m, n, k int) (da, db []float64) {
	da = Gemm{M: m, N: k, K: n, TransB: true, Lda: n, Ldb: n, Ldc: k, Alpha: 1}.Apply(dc, b, nil, make([]float64, m*k))
	db = Gemm{M: k, N: n, K: m, TransA: true, Lda: k, Ldb: n, Ldc: n, Alpha: 1}.Apply(a, dc, nil, make([]float64, k*n))
	return da, db
}
