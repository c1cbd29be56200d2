// Package rewrite owns the multimodal query clause: it finds `multimodal`
// clauses in a search body, validates and shrinks their images, asks a
// vision-language model for keywords and attributes, builds a standard ES
// query from them and splices it back in place, leaving every other byte of
// the body as it was.
//
// The package is pure bytes in, bytes out plus two narrow interfaces it
// consumes: Chatter (model/) and Cache (cache/). HTTP stays in proxy/.
package rewrite
