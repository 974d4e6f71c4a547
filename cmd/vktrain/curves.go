package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/vktrain/vktrain/internal/plot"
	"github.com/vktrain/vktrain/model"
)

// readMetrics reads a run's metrics.jsonl.
func readMetrics(path string) ([]model.Metrics, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []model.Metrics
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m model.Metrics
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

// writeCurves draws OUT/curves.png from OUT/metrics.jsonl: training and validation loss against
// steps and against FLOPs.
func writeCurves(out string) error {
	ms, err := readMetrics(filepath.Join(out, "metrics.jsonl"))
	if err != nil {
		return err
	}
	var train, val, trainF, valF plot.Series
	train.Name, val.Name, trainF.Name, valF.Name = "train", "validation", "train", "validation"
	for _, m := range ms {
		train.X, train.Y = append(train.X, float64(m.Step)), append(train.Y, m.Loss)
		trainF.X, trainF.Y = append(trainF.X, m.FLOPs), append(trainF.Y, m.Loss)
		if m.ValLoss != nil {
			val.X, val.Y = append(val.X, float64(m.Step)), append(val.Y, *m.ValLoss)
			valF.X, valF.Y = append(valF.X, m.FLOPs), append(valF.Y, *m.ValLoss)
		}
	}
	return plot.WritePNG(filepath.Join(out, "curves.png"),
		plot.Panel{Title: "loss by step", XLabel: "step", YLabel: "loss (nats/token)", Series: []plot.Series{train, val}},
		plot.Panel{Title: "loss by work", XLabel: "training FLOPs", YLabel: "loss (nats/token)", Series: []plot.Series{trainF, valF}})
}
