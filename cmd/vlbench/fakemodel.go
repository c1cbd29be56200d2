package main

import "github.com/vlproxy/vlproxy/model/modeltest"

// runFakeModel serves the model simulator of model/modeltest (OpenAI-compatible chat, rerank,
// embeddings) with a fixed or distributed latency.
func runFakeModel(args []string) error { return modeltest.RunCommand(args) }
