package descriptors

import _ "embed"

// JSONSchema is the JSON Schema (draft 2020-12) of a descriptor, for
// editors: point yaml-language-server at it with a first line such as
//
//	# yaml-language-server: $schema=https://raw.githubusercontent.com/gitmon-dev/gitmon/main/descriptors/descriptor.schema.json
//
// It states what a schema can: types, required keys, unknown keys
// (x- keys excepted), patterns and ranges. Parse stays the authority and
// also checks what a schema cannot: that service equals the file name
// stem, the duration caps, duplicate and merge keys, and the hostile-input
// limits. The schema is no stricter than Parse except about scalar types:
// where it wants a string, Parse takes any scalar's text, so a file with
// "service: 123" parses but fails the schema.
//
// Callers must not modify it.
//
//go:embed descriptor.schema.json
var JSONSchema []byte
