package spec

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	json "github.com/go-json-experiment/json/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ConfigName is the name of the configuration file in a bundle.
const ConfigName = "config.json"

// Load reads the configuration of the bundle in directory bundle.
//
// A malformed config.json gives an error wrapping ErrInvalid that names the
// line and column of the problem. Fields unknown to the runtime-spec types
// (other platforms' sections, newer additions) are ignored, as the spec
// requires. A relative root.path is made absolute against the bundle
// directory, so the result does not depend on the current directory.
// Load does not validate: call Validate on the result.
func Load(bundle string) (*specs.Spec, error) {
	dir, err := filepath.Abs(bundle)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", bundle, err)
	}
	path := filepath.Join(dir, ConfigName)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load bundle config: %w", err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalid, describeJSONError(path, data, err))
	}
	if s.Root != nil && s.Root.Path != "" && !filepath.IsAbs(s.Root.Path) {
		s.Root.Path = filepath.Join(dir, s.Root.Path)
	}
	return &s, nil
}

// describeJSONError says where in data the decoding error err happened.
func describeJSONError(path string, data []byte, err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case len(bytes.TrimSpace(data)) == 0:
		return fmt.Sprintf("%s: file is empty", path)
	case errors.As(err, &syntax):
		line, col := position(data, syntax.Offset)
		return fmt.Sprintf("%s:%d:%d: %v", path, line, col, err)
	case errors.As(err, &typ):
		line, col := position(data, typ.Offset)
		return fmt.Sprintf("%s:%d:%d: field %s: cannot use JSON %s as Go %s",
			path, line, col, typ.Field, typ.Value, typ.Type)
	}
	line, col := position(data, int64(len(data)))
	return fmt.Sprintf("%s:%d:%d: %v", path, line, col, err)
}

// position turns a byte offset into data into a 1-based line and column.
// encoding/json reports offsets just past the offending byte.
func position(data []byte, offset int64) (line, col int) {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	if offset > 0 {
		offset--
	}
	before := data[:offset]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(offset) - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}
