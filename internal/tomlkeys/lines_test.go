package tomlkeys

import (
	"strings"
	"testing"
)

func TestKeyLines(t *testing.T) {
	src := "\ufeff# comment = 1\n" +
		"a = 'x = 1'\n" + // 2
		"b.\"c.d\" . e = [\n  1, # x = 2\n  { f = 1 },\n]\n" + // 3-6
		"g = '''\nh = 1\n'''''\n" + // 7-9
		"[ t . \"u v\" ] # [w]\n" + // 10
		"i = 1979-05-27 07:32:00Z\n" + // 11
		"j = { k = { l = \"}\" }, m = 2 }\n" + // 12
		"[[arr]]\nn = 1\n[[arr]]\nn = 2\n" // 13-16
	want := map[string]int{
		"a": 2, "b": 3, `b."c.d"`: 3, `b."c.d".e`: 3, "g": 7,
		"t": 10, `t."u v"`: 10, `t."u v".i`: 11, `t."u v".j`: 12, `t."u v".j.k`: 12,
		`t."u v".j.k.l`: 12, `t."u v".j.m`: 12, "arr": 13, "arr.n": 14,
	}
	got := Lines(src)
	for k, line := range want {
		if got[k] != line {
			t.Errorf("line of %s = %d, want %d", k, got[k], line)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected key %s at line %d", k, got[k])
		}
	}
}

func TestDecodeRefusesUnknownKeys(t *testing.T) {
	var v struct {
		Model struct {
			Width int `toml:"width"`
		} `toml:"model"`
	}
	_, err := Decode("cfg.toml", []byte("[model]\nwidth = 64\n\nwdith = 3\n"), &v)
	if err == nil || err.Error() != `cfg.toml:4: unknown key "model.wdith"` {
		t.Fatalf("unknown key: %v", err)
	}
	_, err = Decode("cfg.toml", []byte("[model]\nwidth = \"x\"\n"), &v)
	if err == nil || !strings.HasPrefix(err.Error(), "cfg.toml:") {
		t.Fatalf("type error: %v", err)
	}
	_, err = Decode("cfg.toml", []byte("[model\n"), &v)
	if err == nil || !strings.HasPrefix(err.Error(), "cfg.toml:2:") {
		t.Fatalf("syntax error: %v", err)
	}
	if _, err := Decode("cfg.toml", []byte("[model]\nwidth = 64\n"), &v); err != nil || v.Model.Width != 64 {
		t.Fatalf("good file: %v %+v", err, v)
	}
}
