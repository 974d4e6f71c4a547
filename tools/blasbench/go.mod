module github.com/vktrain/vktrain/tools/blasbench

go 1.26
