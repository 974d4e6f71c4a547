package ops_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/vktrain/vktrain/vk"
	"github.com/vktrain/vktrain/vk/ops/ref"
	"github.com/vktrain/vktrain/vk/vktest"
)

// TestLayerNorm runs the forward pass and two backward passes (one overwriting dx, one adding
// to dx; both adding to dgamma and dbeta) in one sequence, and checks every output against the
// float64 reference and the gradients against finite differences of the reference forward.
func TestLayerNorm(t *testing.T) {
	ctx, o := newOps(t)
	rng := rand.New(rand.NewPCG(30, 1))
	const eps = 1e-5
	for _, sh := range [][2]int{{1, 1}, {1, 5}, {3, 7}, {2, 64}, {17, 67}, {5, 130}, {33, 9}, {1, 4}, {4, 12}, {7, 132}} {
		rows, cols := sh[0], sh[1]
		t.Run(fmt.Sprintf("%dx%d", rows, cols), func(t *testing.T) {
			n := rows * cols
			xs := randoms(rng, n)
			for i := range xs {
				xs[i] = 3 + 2*xs[i] // a mean far from zero
			}
			gs, bs, dys := randoms(rng, cols), randoms(rng, cols), randoms(rng, n)
			for i := range gs {
				gs[i] += 1.5
			}
			dx0, dg0, db0 := randoms(rng, n), randoms(rng, cols), randoms(rng, cols)
			x := vktest.NewPadded(t, ctx, "x", n, xs)
			gamma := vktest.NewPadded(t, ctx, "gamma", cols, gs)
			beta := vktest.NewPadded(t, ctx, "beta", cols, bs)
			y := vktest.NewPadded(t, ctx, "y", n, nil)
			mean := vktest.NewPadded(t, ctx, "mean", rows, nil)
			rstd := vktest.NewPadded(t, ctx, "rstd", rows, nil)
			dy := vktest.NewPadded(t, ctx, "dy", n, dys)
			dx := vktest.NewPadded(t, ctx, "dx", n, dx0) // overwritten
			dgamma := vktest.NewPadded(t, ctx, "dgamma", cols, nil)
			dbeta := vktest.NewPadded(t, ctx, "dbeta", cols, nil)
			dxAcc := vktest.NewPadded(t, ctx, "dxAcc", n, dx0)
			dgammaAcc := vktest.NewPadded(t, ctx, "dgammaAcc", cols, dg0)
			dbetaAcc := vktest.NewPadded(t, ctx, "dbetaAcc", cols, db0)
			got := replayTwice(t, ctx, func(s *vk.Sequence) error {
				if err := o.LayerNormForward(s, x, gamma, beta, y, mean, rstd, rows, cols, eps); err != nil {
					return err
				}
				if err := o.LayerNormBackward(s, x, gamma, mean, rstd, dy, dx, dgamma, dbeta, rows, cols, false); err != nil {
					return err
				}
				return o.LayerNormBackward(s, x, gamma, mean, rstd, dy, dxAcc, dgammaAcc, dbetaAcc, rows, cols, true)
			}, y, mean, rstd, dx, dgamma, dbeta, dxAcc, dgammaAcc, dbetaAcc)

			x64, g64, b64, dy64 := ref.F64(xs), ref.F64(gs), ref.F64(bs), ref.F64(dys)
			wy, wmean, wrstd := ref.LayerNormForward(x64, g64, b64, rows, cols, eps)
			wdx, wdg, wdb := ref.LayerNormBackward(x64, g64, wmean, wrstd, dy64, rows, cols)
			for i, c := range []struct {
				name string
				want []float64
			}{
				{"y", wy}, {"mean", wmean}, {"rstd", wrstd}, {"dx", wdx}, {"dgamma", wdg}, {"dbeta", wdb},
				{"dx accumulated", plus(dx0, wdx)}, {"dgamma accumulated", plus(dg0, wdg)}, {"dbeta accumulated", plus(db0, wdb)},
			} {
				checkNSE(t, c.name, got[i], c.want, 1e-6)
			}
			loss := func(x, g, b []float64) float64 {
				y, _, _ := ref.LayerNormForward(x, g, b, rows, cols, eps)
				return ref.Dot(y, dy64)
			}
			checkFD(t, "dx", got[3][:n], func(x []float64) float64 { return loss(x, g64, b64) }, x64)
			checkFD(t, "dgamma", got[4][:cols], func(g []float64) float64 { return loss(x64, g, b64) }, g64)
			checkFD(t, "dbeta", got[5][:cols], func(b []float64) float64 { return loss(x64, g64, b) }, b64)
		})
	}
}

// TestLayerNormBackwardInPlace checks dx written over dy, on the scalar and the vec4 path.
func TestLayerNormBackwardInPlace(t *testing.T) {
	ctx, o := newOps(t)
	rng := rand.New(rand.NewPCG(31, 1))
	for _, sh := range [][2]int{{9, 31}, {5, 32}} {
		rows, cols := sh[0], sh[1]
		t.Run(fmt.Sprintf("%dx%d", rows, cols), func(t *testing.T) {
			xs, gs, dys := randoms(rng, rows*cols), randoms(rng, cols), randoms(rng, rows*cols)
			x := vktest.NewPadded(t, ctx, "x", rows*cols, xs)
			gamma := vktest.NewPadded(t, ctx, "gamma", cols, gs)
			y := vktest.NewPadded(t, ctx, "y", rows*cols, nil)
			mean := vktest.NewPadded(t, ctx, "mean", rows, nil)
			rstd := vktest.NewPadded(t, ctx, "rstd", rows, nil)
			dy := vktest.NewPadded(t, ctx, "dy", rows*cols, dys)
			dgamma := vktest.NewPadded(t, ctx, "dgamma", cols, nil)
			dbeta := vktest.NewPadded(t, ctx, "dbeta", cols, nil)
			got := replayTwice(t, ctx, func(s *vk.Sequence) error {
				if err := o.LayerNormForward(s, x, gamma, gamma, y, mean, rstd, rows, cols, 1e-5); err != nil {
					return err
				}
				return o.LayerNormBackward(s, x, gamma, mean, rstd, dy, dy, dgamma, dbeta, rows, cols, false)
			}, dy, dgamma, dbeta)
			x64, g64 := ref.F64(xs), ref.F64(gs)
			_, wmean, wrstd := ref.LayerNormForward(x64, g64, g64, rows, cols, 1e-5)
			wdx, wdg, wdb := ref.LayerNormBackward(x64, g64, wmean, wrstd, ref.F64(dys), rows, cols)
			checkNSE(t, "dx", got[0], wdx, 1e-6)
			checkNSE(t, "dgamma", got[1], wdg, 1e-6)
			checkNSE(t, "dbeta", got[2], wdb, 1e-6)
		})
	}
}
