// Package document owns client documents: a PDF (data URI, base64 or an
// allowed URL, fetched by the caller) or an image of a printed page. It
// checks them against limits before any expensive work, reads the text of
// text PDFs (in reading order, split into table cells) and the embedded page
// images of scanned PDFs, and parses the table rows a model extracts from
// them.
//
// PDF objects are read with pdfcpu (github.com/pdfcpu/pdfcpu): it is pure Go,
// Apache-2.0, maintained, and since v0.15 it has resource limits of its own
// (decoded bytes per filter, object counts, recursion depth) and honours a
// context while reading. The page tree walk, stream decoding, text
// extraction and image extraction are this package's own code over pdfcpu's
// object table, so every loop is bounded here: a visited set for the page
// tree and form XObjects, a byte budget for all decoded streams of one
// document, a page, object and pixel cap, and a deadline. A panic inside the
// library is recovered into a 400.
package document
