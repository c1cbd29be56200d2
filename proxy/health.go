package proxy

import (
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// healthLoop runs active checks on every node each interval until stop is closed. A node goes
// down after HealthCheckFails failed checks in a row and up after HealthCheckPasses passed
// ones (node.recordCheck). Passive ejection (a refused connection during a request) is in the
// retry loop; both meet in node.Available.
func (s *Server) healthLoop(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(s.cfg.HealthCheckInterval)
	defer t.Stop()
	for {
		s.checkAll()
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

func (s *Server) checkAll() {
	var wg sync.WaitGroup
	for _, n := range s.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, reason := s.checkNode(n)
			if n.recordCheck(ok, reason, s.cfg.HealthCheckFails, s.cfg.HealthCheckPasses) {
				if ok {
					s.log.Info("upstream node is healthy again", "upstream", n.url,
						"passed_checks", s.cfg.HealthCheckPasses)
				} else {
					s.log.Warn("upstream node failed its health checks", "upstream", n.url,
						"failed_checks", s.cfg.HealthCheckFails, "reason", reason)
				}
			} else if !ok && n.healthy.Load() {
				// Still in rotation: at most fails-1 of these per episode.
				s.log.Info("upstream node missed a health check", "upstream", n.url,
					"failed_checks", n.fails.Load(), "of", s.cfg.HealthCheckFails, "reason", reason)
			}
		}()
	}
	wg.Wait()
}

// checkNode does one GET of the health path; any status below 500 means the node answers HTTP.
func (s *Server) checkNode(n *node) (bool, string) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(fasthttp.MethodGet)
	req.SetRequestURI(s.cfg.HealthCheckPath)
	req.Header.SetHost(n.addr)
	if n.client.IsTLS {
		setScheme(req, true)
	}
	req.Header.Set("User-Agent", "vlproxy-health-check")
	if err := n.client.DoTimeout(req, resp, s.cfg.HealthCheckTimeout); err != nil {
		return false, "cannot check health: " + err.Error()
	}
	if resp.StatusCode() >= 500 {
		return false, "health check returned status " + strconv.Itoa(resp.StatusCode())
	}
	return true, ""
}
