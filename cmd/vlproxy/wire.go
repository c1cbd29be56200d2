package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"

	"github.com/vlproxy/vlproxy/cache"
	"github.com/vlproxy/vlproxy/cache/l2"
	"github.com/vlproxy/vlproxy/internal/promexp"
	"github.com/vlproxy/vlproxy/media"
	"github.com/vlproxy/vlproxy/model"
	"github.com/vlproxy/vlproxy/proxy"
	"github.com/vlproxy/vlproxy/proxy/experiment"
	"github.com/vlproxy/vlproxy/rerank"
	"github.com/vlproxy/vlproxy/rewrite"
	"github.com/vlproxy/vlproxy/ui"
)

// wire builds the search pipeline's parts from cfg. close releases the model clients.
func wire(cfg Config, log *slog.Logger) (opts []proxy.Option, close func(), err error) {
	var clients []*model.Client
	var shared *l2.Client
	close = func() {
		for _, c := range clients {
			c.Close()
		}
		if shared != nil {
			shared.Close()
		}
	}
	defer func() {
		if err != nil {
			close()
		}
	}()
	opts = append(opts, proxy.WithPipeline(cfg.Pipeline), proxy.WithAdminToken(cfg.AdminToken))

	var chat *model.Client
	if cfg.Model.Chat.URL != "" {
		if chat, err = model.New(model.RoleChat, cfg.Model.Chat, log); err != nil {
			return nil, close, fmt.Errorf("cannot set up the chat model (-model-url): %w", err)
		}
		clients = append(clients, chat)
		opts = append(opts, proxy.WithComponent(modelComponent("model.chat", chat)))
	}

	keywords := newCache(cfg.Cache.Keywords)
	scores := newCache(cfg.Cache.Scores)
	opts = append(opts, proxy.WithCaches(present(keywords, scores)...))
	if cfg.Redis.URL != "" {
		if shared, err = l2.New(cfg.Redis, log); err != nil {
			return nil, close, fmt.Errorf("cannot set up fleet mode (-redis-url): %w", err)
		}
		setTier(keywords, shared, "keywords")
		setTier(scores, shared, "scores")
		opts = append(opts, proxy.WithSharedGenerations(shared.Counters()), proxy.WithFleet(shared),
			proxy.WithComponent(proxy.Component{Name: "redis", Health: func() (any, bool) {
				h := shared.Health()
				return h, h.State == "up"
			}}))
	}

	var rw *rewrite.Rewriter
	var chatter rewrite.Chatter
	if chat != nil {
		chatter = chat
	}
	rw, err = rewrite.New(cfg.Rewrite, chatter, rewriteCache(keywords), log)
	if err != nil {
		return nil, close, fmt.Errorf("cannot set up rewrite (config section rewrite:): %w", err)
	}
	if cfg.Model.Embed.URL != "" {
		emb, err := model.New(model.RoleEmbed, cfg.Model.Embed, log)
		if err != nil {
			return nil, close, fmt.Errorf("cannot set up the embed model (-embed-url): %w", err)
		}
		clients = append(clients, emb)
		opts = append(opts, proxy.WithComponent(modelComponent("model.embed", emb)))
		embeddings := newCache(cfg.Cache.Embeddings)
		setTier(embeddings, shared, "embeddings")
		opts = append(opts, proxy.WithCaches(present(embeddings)...))
		rw.SetEmbedder(emb, rewriteCache(embeddings))
	}
	opts = append(opts, proxy.WithRewriter(rw))

	scorers, rerankClient, err := buildScorers(cfg, chat, log)
	if err != nil {
		return nil, close, err
	}
	if rerankClient != nil {
		clients = append(clients, rerankClient)
		opts = append(opts, proxy.WithComponent(modelComponent("model.rerank", rerankClient)))
	}
	if cfg.Rerank.Scorer != "api" && cfg.Rerank.Scorer != "judge" {
		return nil, close, fmt.Errorf("-rerank-scorer: unknown scorer %q (want api or judge)", cfg.Rerank.Scorer)
	}
	for name, sc := range scorers {
		rcfg := cfg.Rerank
		rcfg.Scorer = name
		rr, err := rerank.New(rcfg, sc, rerankCache(scores), log)
		if err != nil {
			return nil, close, fmt.Errorf("cannot set up rerank (config section rerank:): %w", err)
		}
		opts = append(opts, proxy.WithScorer(name, rr))
		if name == cfg.Rerank.Scorer {
			opts = append(opts, proxy.WithReranker(rr))
		}
	}

	exps, err := experiment.New(cfg.Experiments)
	if err != nil {
		return nil, close, fmt.Errorf("cannot set up experiments (config section experiments:): %w", err)
	}
	for _, e := range cfg.Experiments.Experiments {
		for _, v := range e.Variants {
			if _, ok := scorers[v.Scorer]; v.Scorer != "" && !ok {
				return nil, close, fmt.Errorf("experiment %q, variant %q: scorer %q is not available "+
					"(api needs -rerank-url, judge needs -model-url)", e.Name, v.Name, v.Scorer)
			}
		}
	}
	opts = append(opts, proxy.WithExperiments(exps))

	if cfg.UI.Enabled {
		h, err := playground(cfg, rw.Decodes())
		if err != nil {
			return nil, close, err
		}
		opts = append(opts, proxy.WithUI(h.Serve))
		log.Info("playground enabled", "path", ui.Prefix+"/")
		if host, _, _ := net.SplitHostPort(cfg.Proxy.Listen); cfg.AdminToken == "" && !isLoopbackHost(host) {
			log.Warn("the playground answers loopback clients only; set VLPROXY_ADMIN_TOKEN to open it to others", "listen", cfg.Proxy.Listen)
		}
	}

	if results := newCache(cfg.Cache.Results); results != nil {
		opts = append(opts, proxy.WithResultCache(results, cfg.Cache.Keys, cfg.Cache.TopologyRefresh),
			proxy.WithRefreshLag(cfg.Cache.RefreshLag))
	}
	return opts, close, nil
}

// newCache builds the cache of one config section, or returns nil when the section turns it
// off: a size, largest entry or TTL of 0 (cache.New would read a 0 as its own default). The
// defaults apply only to what the flags, env and file leave unset (defaultConfig).
func newCache(cfg cache.Config) *cache.Cache {
	if cacheOff(cfg) {
		return nil
	}
	return cache.New(cfg)
}

func cacheOff(cfg cache.Config) bool {
	return cfg.MaxBytes == 0 || cfg.MaxEntryBytes == 0 || cfg.TTL == 0
}

// rewriteCache hands c to the rewriter as its interface, nil staying nil (a typed nil pointer
// in the interface would be called).
func rewriteCache(c *cache.Cache) rewrite.Cache {
	if c == nil {
		return nil
	}
	return c
}

// rerankCache is rewriteCache for the reranker.
func rerankCache(c *cache.Cache) rerank.Cache {
	if c == nil {
		return nil
	}
	return c
}

// setTier gives c its Redis tier in fleet mode; a cache that is off has none.
func setTier(c *cache.Cache, shared *l2.Client, name string) {
	if c != nil && shared != nil {
		c.SetTier(shared.Tier(name))
	}
}

// present drops the caches that are off.
func present(cs ...*cache.Cache) []*cache.Cache {
	var out []*cache.Cache
	for _, c := range cs {
		if c != nil {
			out = append(out, c)
		}
	}
	return out
}

// buildScorers builds every rerank scorer the configured models allow: "api" with a rerank
// server, "judge" (yes/no logprobs) with the chat model. -rerank-scorer picks the default one;
// experiment variants may name the other.
func buildScorers(cfg Config, chat *model.Client, log *slog.Logger) (map[string]rerank.Scorer, *model.Client, error) {
	out := map[string]rerank.Scorer{}
	var rc *model.Client
	if cfg.Model.Rerank.URL != "" {
		var err error
		if rc, err = model.New(model.RoleRerank, cfg.Model.Rerank, log); err != nil {
			return nil, nil, fmt.Errorf("cannot set up the rerank model (-rerank-url): %w", err)
		}
		out["api"] = rerank.NewAPIScorer(rc)
	}
	if chat != nil {
		out["judge"] = rerank.NewJudgeScorer(chat, cfg.Judge)
	}
	return out, rc, nil
}

// playground builds the page at /_vlproxy/ui: it downscales with the rewrite's own image
// pipeline, limits and decode bound (decodes), and shows the configured experiments with their
// metrics.
func playground(cfg Config, decodes *media.Gate) (*ui.Handler, error) {
	imgCfg, err := cfg.Rewrite.Image.WithDefaults()
	if err != nil {
		return nil, fmt.Errorf("cannot set up the playground (config section rewrite.image:): %w", err)
	}
	deps := ui.Deps{
		AdminToken: cfg.AdminToken,
		Downscale: func(raw []byte) ([]byte, error) {
			q, err := decodes.Process(context.Background(), raw, &imgCfg)
			return q.JPEG, err
		},
		MaxImageBytes: imgCfg.MaxBytes,
		Metrics:       func(w io.Writer) { promexp.Write(w) },
	}
	for _, e := range cfg.Experiments.Experiments {
		ue := ui.Experiment{Name: e.Name, KeyHeader: e.KeyHeader, DefaultVariant: e.DefaultVariant}
		for _, v := range e.Variants {
			ue.Variants = append(ue.Variants, ui.Variant{Name: v.Name, Weight: v.Weight, Rewrite: v.Rewrite,
				Rerank: v.Rerank, WindowSize: v.WindowSize, Scorer: v.Scorer})
		}
		deps.Experiments = append(deps.Experiments, ue)
	}
	h, err := ui.New(cfg.UI, deps)
	if err != nil {
		return nil, fmt.Errorf("cannot set up the playground (config section ui:): %w", err)
	}
	return h, nil
}

func isLoopbackHost(h string) bool {
	ip := net.ParseIP(h)
	return h == "localhost" || (ip != nil && ip.IsLoopback())
}

func modelComponent(name string, c *model.Client) proxy.Component {
	return proxy.Component{Name: name, Health: func() (any, bool) {
		h := c.Health()
		return h, h.State != "down" && h.Breaker != "open"
	}}
}
