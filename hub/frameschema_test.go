package hub_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// frameSchemas holds docs/protocol.schema.json's ServerFrame and, by type, the definition of
// each of its frames, compiled once. A frame is checked against the definition of its type
// alone, which is several times cheaper than ServerFrame's oneOf over ten definitions.
var frameSchemas = sync.OnceValues(func() (map[string]*jsonschema.Schema, error) {
	const file = "../docs/protocol.schema.json"
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("protocol.schema.json", doc); err != nil {
		return nil, err
	}
	var defs struct {
		Defs struct {
			ServerFrame struct {
				OneOf []struct {
					Ref string `json:"$ref"`
				} `json:"oneOf"`
			} `json:"ServerFrame"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(data, &defs); err != nil {
		return nil, err
	}
	m := map[string]*jsonschema.Schema{}
	if m[""], err = c.Compile("protocol.schema.json#/$defs/ServerFrame"); err != nil {
		return nil, err
	}
	for _, d := range defs.Defs.ServerFrame.OneOf {
		name := d.Ref[len("#/$defs/"):]
		if m[name], err = c.Compile("protocol.schema.json" + d.Ref); err != nil {
			return nil, err
		}
	}
	return m, nil
})

// checkServerFrame returns why a frame the server sent does not match the protocol's schema.
func checkServerFrame(data []byte) error {
	schemas, err := frameSchemas()
	if err != nil {
		return fmt.Errorf("protocol schema: %w", err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return err
	}
	sch := schemas[""]
	if obj, ok := v.(map[string]any); ok {
		if t, ok := obj["type"].(string); ok && schemas[t] != nil {
			sch = schemas[t]
		}
	}
	if err := sch.Validate(v); err != nil {
		return fmt.Errorf("frame %s does not match docs/protocol.schema.json: %#v", data, err)
	}
	return nil
}
