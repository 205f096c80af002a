// Package wirejson encodes and decodes the JSON that flows through the
// pipeline's hot path: the bus's messages and the per-number event data.
//
// The format is plain JSON, byte-compatible with encoding/json for the
// types the pipeline uses (struct tags, json.RawMessage, time.Time,
// Marshaler/Unmarshaler), so messages and events written by either can be
// read by the other; only the speed differs. It is github.com/goccy/go-json,
// which decodes a job's NumbersRecorded message about six times as fast as
// encoding/json (BenchmarkCodecs in this package). Everything off the hot
// path keeps encoding/json.
package wirejson

import gojson "github.com/goccy/go-json"

// Marshal returns the JSON encoding of v, as encoding/json.Marshal does.
func Marshal(v any) ([]byte, error) { return gojson.Marshal(v) }

// Unmarshal parses the JSON data into v, as encoding/json.Unmarshal does.
func Unmarshal(data []byte, v any) error { return gojson.Unmarshal(data, v) }
