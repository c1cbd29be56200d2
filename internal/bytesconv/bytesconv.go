// Package bytesconv holds the project's only zero-copy conversions between byte slices and strings.
package bytesconv

import "unsafe"

// String views b as a string without copying. b must not change while the string is in use
// (a request body does not change while the request is handled).
func String(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// Bytes views s as bytes without copying; they must not be written.
func Bytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
