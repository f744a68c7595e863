package hub_test

import (
	"bytes"
	"fmt"
	"os"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// serverFrameSchema is the ServerFrame of docs/protocol.schema.json, compiled once.
var serverFrameSchema = sync.OnceValues(func() (*jsonschema.Schema, error) {
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
	return c.Compile("protocol.schema.json#/$defs/ServerFrame")
})

// checkServerFrame returns why a frame the server sent does not match the protocol's schema.
func checkServerFrame(data []byte) error {
	sch, err := serverFrameSchema()
	if err != nil {
		return fmt.Errorf("protocol schema: %w", err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return err
	}
	if err := sch.Validate(v); err != nil {
		return fmt.Errorf("frame %s does not match docs/protocol.schema.json: %#v", data, err)
	}
	return nil
}
