package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/vlproxy/vlproxy/enrich"
	"github.com/vlproxy/vlproxy/model"
)

// runEnrich walks an index and writes model keywords of each document's image into a field, so
// that plain text queries find products by what their photos show.
func runEnrich(args []string) error {
	cfg := enrich.DefaultConfig()
	mc := model.DefaultConfig()
	fs := flag.NewFlagSet("enrich", flag.ContinueOnError)
	fs.StringVar(&cfg.ESURL, "url", cfg.ESURL, "ES/OpenSearch (or vlproxy) base URL")
	fs.StringVar(&cfg.Index, "index", "", "index to walk (required)")
	fs.StringVar(&cfg.ImageField, "image-field", cfg.ImageField, "field holding each document's image: http(s) URL, data URI, base64 or a file path")
	fs.StringVar(&cfg.ImageDir, "image-dir", "", "directory that relative file paths in -image-field are resolved against")
	fs.StringVar(&cfg.TargetField, "target-field", cfg.TargetField, "field that receives the keyword phrases")
	fs.IntVar(&cfg.BatchSize, "batch", cfg.BatchSize, "page size of the walk and of each bulk update")
	fs.Float64Var(&cfg.Rate, "rate", 0, "most model calls per second (0: no cap)")
	fs.IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "model calls in flight")
	fs.IntVar(&cfg.Image.MaxDecodes, "image-decodes", cfg.Image.MaxDecodes, "images decoded at once (PNG, WebP, GIF, JPEGs over the pixel budget), whatever -concurrency is; the other workers wait")
	fs.BoolVar(&cfg.Resume, "resume", false, "skip documents whose target field exists (continue a stopped run)")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "time for one model call")
	fs.StringVar(&cfg.PDFField, "pdf-field", "", "field holding a PDF attachment (spec sheet: file path, URL or base64) whose text goes to -pdf-text-field, without a model")
	fs.StringVar(&cfg.PDFTextField, "pdf-text-field", "pdf_text", "field that receives the attachment's text")
	fs.StringVar(&mc.URL, "model-url", os.Getenv("VLPROXY_MODEL_URL"), "OpenAI-compatible chat model server (env VLPROXY_MODEL_URL; API key from env VLPROXY_MODEL_API_KEY)")
	fs.StringVar(&mc.Model, "model-name", os.Getenv("VLPROXY_MODEL_NAME"), "served model name (env VLPROXY_MODEL_NAME)")
	fs.StringVar(&mc.API, "model-api", mc.API, "server flavour: vllm, sglang, llamacpp, ollama or openai")
	ec := model.DefaultConfig()
	ec.API = model.APIOpenAI
	ec.APIKeyEnv = "VLPROXY_EMBED_API_KEY"
	fs.StringVar(&ec.URL, "embed-url", os.Getenv("VLPROXY_EMBED_URL"), "OpenAI-compatible /v1/embeddings server: image vectors go into -vector-field (env VLPROXY_EMBED_URL)")
	fs.StringVar(&ec.Model, "embed-model", os.Getenv("VLPROXY_EMBED_MODEL"), "served embedding model name (env VLPROXY_EMBED_MODEL)")
	fs.StringVar(&ec.API, "embed-api", ec.API, "embedding server flavour: openai, vllm, sglang, llamacpp, ollama or tei")
	fs.StringVar(&ec.Embed.Form, "embed-form", model.EmbedFormInput, "embedding request form: input or messages (vLLM chat form)")
	fs.IntVar(&ec.Embed.Dimensions, "embed-dimensions", 0, "truncate vectors to this many components before L2 normalisation (0: as served)")
	fs.StringVar(&cfg.VectorField, "vector-field", cfg.VectorField, "field that receives image vectors (created as knn_vector/dense_vector when missing)")
	fs.StringVar(&cfg.Engine, "engine", cfg.Engine, "opensearch or elasticsearch (the vector field's mapping)")
	fs.StringVar(&cfg.VideoField, "video-field", "", "field holding each document's video (file path relative to -image-dir, or http(s) URL of a host in -video-allowed-hosts): frames sampled with ffmpeg, labelled by the models, merged into time-coded segments in -moments-field")
	fs.Func("video-allowed-hosts", "comma-separated hosts video URLs may name (exact, or *.example.com for subdomains); default none: URLs are refused. Loopback, private, link-local and metadata addresses are refused even then, checked after DNS resolution and on every redirect", func(v string) error {
		cfg.Image.AllowedHosts = nil
		for h := range strings.SplitSeq(v, ",") {
			if h = strings.TrimSpace(h); h != "" {
				cfg.Image.AllowedHosts = append(cfg.Image.AllowedHosts, h)
			}
		}
		return nil
	})
	fs.StringVar(&cfg.MomentsField, "moments-field", cfg.MomentsField, "nested field that receives the video segments {start, end, description, keywords, vector} (created when missing)")
	fs.Float64Var(&cfg.Video.FPS, "video-fps", cfg.Video.FPS, "frames sampled per second of video")
	fs.IntVar(&cfg.Video.MaxFrames, "video-max-frames", cfg.Video.MaxFrames, "most frames sampled per video (the rate is lowered to fit)")
	fs.DurationVar(&cfg.Video.MaxDuration, "video-max-duration", cfg.Video.MaxDuration, "longest video accepted (longer ones are refused)")
	fs.IntVar(&cfg.Video.MaxSide, "video-max-side", cfg.Video.MaxSide, "longest side of a sampled frame in pixels")
	fs.Int64Var(&cfg.Video.MaxBytes, "video-max-bytes", cfg.Video.MaxBytes, "largest video file accepted")
	fs.DurationVar(&cfg.Video.Timeout, "video-timeout", cfg.Video.Timeout, "wall time of probing and sampling one video (ffmpeg is killed after it)")
	fs.StringVar(&cfg.VideoInput, "video-input", cfg.VideoInput, "how videos reach the chat model: frames (each frame labelled, similar ones merged), video_url (one small MP4 clip per video, the model answers time-coded segments; vLLM only) or auto (video_url with -model-api vllm until the server refuses a video before taking any, then frames)")
	keywords := fs.Bool("keywords", true, "write model keywords (needs -model-url); -keywords=false with -embed-url writes vectors only")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.Index == "" {
		return fmt.Errorf("-index is required")
	}
	// -keywords needs the chat model unless the run only reads PDF attachments.
	if *keywords && mc.URL == "" && cfg.PDFField == "" {
		return fmt.Errorf("-model-url is required (or env VLPROXY_MODEL_URL) unless -keywords=false; `vlbench fake-model` runs a simulator")
	}
	if cfg.VideoField != "" && mc.URL == "" && ec.URL == "" {
		return fmt.Errorf("-video-field needs -model-url or -embed-url to label the frames")
	}
	if !*keywords && ec.URL == "" && cfg.PDFField == "" {
		return fmt.Errorf("nothing to do: -keywords=false, no -embed-url and no -pdf-field")
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var ms enrich.Models
	if *keywords && mc.URL != "" {
		mc.APIKey = os.Getenv(mc.APIKeyEnv)
		mc.Timeout = max(mc.Timeout, cfg.Timeout)
		m, err := model.New(model.RoleChat, mc, log)
		if err != nil {
			return fmt.Errorf("cannot set up the model client: %w", err)
		}
		defer m.Close()
		ms.Chat = m
	}
	if ec.URL != "" {
		ec.APIKey = os.Getenv(ec.APIKeyEnv)
		ec.Timeout = max(ec.Timeout, cfg.Timeout)
		ec.HealthInterval = -1
		emb, err := model.New(model.RoleEmbed, ec, log)
		if err != nil {
			return fmt.Errorf("cannot set up the embed model client: %w", err)
		}
		defer emb.Close()
		ms.Embed = emb
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	st, err := enrich.RunModels(ctx, cfg, ms, os.Stderr)
	fmt.Printf("enriched %s in %s: %+v\n", cfg.Index, time.Since(start).Round(time.Millisecond), st)
	return err
}
