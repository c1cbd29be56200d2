package main

import (
	"fmt"
	"log/slog"

	"github.com/vlproxy/vlproxy/cache"
	"github.com/vlproxy/vlproxy/model"
	"github.com/vlproxy/vlproxy/proxy"
	"github.com/vlproxy/vlproxy/proxy/experiment"
	"github.com/vlproxy/vlproxy/rerank"
	"github.com/vlproxy/vlproxy/rewrite"
)

// wire builds the search pipeline's parts from cfg. close releases the model clients.
func wire(cfg Config, log *slog.Logger) (opts []proxy.Option, close func(), err error) {
	var clients []*model.Client
	close = func() {
		for _, c := range clients {
			c.Close()
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

	keywords := cache.New(cfg.Cache.Keywords)
	scores := cache.New(cfg.Cache.Scores)
	opts = append(opts, proxy.WithCaches(keywords, scores))

	var rw *rewrite.Rewriter
	if chat != nil {
		rw, err = rewrite.New(cfg.Rewrite, chat, keywords, log)
	} else {
		rw, err = rewrite.New(cfg.Rewrite, nil, keywords, log)
	}
	if err != nil {
		return nil, close, fmt.Errorf("cannot set up rewrite (config section rewrite:): %w", err)
	}
	opts = append(opts, proxy.WithRewriter(rw))

	scorer, err := buildScorer(cfg, chat, &clients, log)
	if err != nil {
		return nil, close, err
	}
	if scorer != nil {
		rr, err := rerank.New(cfg.Rerank, scorer, scores, log)
		if err != nil {
			return nil, close, fmt.Errorf("cannot set up rerank (config section rerank:): %w", err)
		}
		opts = append(opts, proxy.WithReranker(rr))
	}

	exps, err := experiment.New(cfg.Experiments)
	if err != nil {
		return nil, close, fmt.Errorf("cannot set up experiments (config section experiments:): %w", err)
	}
	opts = append(opts, proxy.WithExperiments(exps))

	if cfg.Cache.Results.MaxBytes > 0 {
		opts = append(opts, proxy.WithResultCache(cache.New(cfg.Cache.Results), cfg.Cache.Keys, cfg.Cache.TopologyRefresh),
			proxy.WithRefreshLag(cfg.Cache.RefreshLag))
	}
	return opts, close, nil
}

// buildScorer picks the rerank scorer: a rerank API server, or the chat model as a yes/no judge.
// Without the model it needs there is no reranking (requests asking for it get skipped:…).
func buildScorer(cfg Config, chat *model.Client, clients *[]*model.Client, log *slog.Logger) (rerank.Scorer, error) {
	switch cfg.Rerank.Scorer {
	case "api":
		if cfg.Model.Rerank.URL == "" {
			return nil, nil
		}
		c, err := model.New(model.RoleRerank, cfg.Model.Rerank, log)
		if err != nil {
			return nil, fmt.Errorf("cannot set up the rerank model (-rerank-url): %w", err)
		}
		*clients = append(*clients, c)
		return rerank.NewAPIScorer(c), nil
	case "judge":
		if chat == nil {
			return nil, nil
		}
		return rerank.NewJudgeScorer(chat, cfg.Judge), nil
	}
	return nil, fmt.Errorf("-rerank-scorer: unknown scorer %q (want api or judge)", cfg.Rerank.Scorer)
}

func modelComponent(name string, c *model.Client) proxy.Component {
	return proxy.Component{Name: name, Health: func() (any, bool) {
		h := c.Health()
		return h, h.State != "down" && h.Breaker != "open"
	}}
}
