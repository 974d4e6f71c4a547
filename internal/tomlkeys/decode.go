package tomlkeys

import (
	"errors"
	"fmt"
	"strings"

	"github.com/BurntSushi/toml"
)

// Decode decodes the TOML document data into v and refuses any key that v does not have. name
// (a file path, or "preset:NAME") starts every error, with the line: "NAME:LINE: unknown key \"a.b\"".
// The metadata it returns tells a key set to its zero value from one left out (IsDefined).
func Decode(name string, data []byte, v any) (toml.MetaData, error) {
	md, err := toml.Decode(string(data), v)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			return md, fmt.Errorf("%s:%d: %s", name, perr.Position.Line, perr.Message)
		}
		return md, fmt.Errorf("%s: %w", name, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		lines := Lines(string(data))
		var msgs []string
		for _, k := range und {
			msgs = append(msgs, fmt.Sprintf("%s:%d: unknown key %q", name, lines[k.String()], k.String()))
		}
		return md, errors.New(strings.Join(msgs, "\n"))
	}
	return md, nil
}
