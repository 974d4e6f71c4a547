package main

import (
	"path/filepath"

	"github.com/vktrain/vktrain/internal/plot"
	"github.com/vktrain/vktrain/train"
)

// writeCurves draws OUT/curves.png from OUT/metrics.jsonl: training and validation loss against
// steps and against FLOPs, and an image classifier's validation accuracy against steps.
func writeCurves(out string) error {
	ms, err := train.ReadMetrics(filepath.Join(out, "metrics.jsonl"))
	if err != nil {
		return err
	}
	var train, val, trainF, valF, acc plot.Series
	train.Name, val.Name, trainF.Name, valF.Name, acc.Name = "train", "validation", "train", "validation", "validation"
	for _, m := range ms {
		if m.ValAcc != nil {
			acc.X, acc.Y = append(acc.X, float64(m.Step)), append(acc.Y, 100**m.ValAcc)
		}
		train.X, train.Y = append(train.X, float64(m.Step)), append(train.Y, m.Loss)
		trainF.X, trainF.Y = append(trainF.X, m.FLOPs), append(trainF.Y, m.Loss)
		if m.ValLoss != nil {
			val.X, val.Y = append(val.X, float64(m.Step)), append(val.Y, *m.ValLoss)
			valF.X, valF.Y = append(valF.X, m.FLOPs), append(valF.Y, *m.ValLoss)
		}
	}
	panels := []plot.Panel{
		{Title: "loss by step", XLabel: "step", YLabel: "loss (nats/token)", Series: []plot.Series{train, val}},
		{Title: "loss by work", XLabel: "training FLOPs", YLabel: "loss (nats/token)", Series: []plot.Series{trainF, valF}}}
	if len(acc.X) > 0 {
		panels = append(panels, plot.Panel{Title: "accuracy by step", XLabel: "step", YLabel: "accuracy (%)", Series: []plot.Series{acc}})
	}
	return plot.WritePNG(filepath.Join(out, "curves.png"), panels...)
}
