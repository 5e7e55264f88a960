// Package etcd runs the embedded single-member etcd that `wharf up` and
// `wharf server` use when no external etcd is named. It listens for clients
// on loopback only, so a second server on the same machine can share it.
package etcd

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap/zapcore"
)

// Config says where the embedded etcd keeps its data and listens.
type Config struct {
	// DataDir holds the member's data (<data-dir>/etcd).
	DataDir string
	// ClientURL is where clients connect (default http://127.0.0.1:2379).
	ClientURL string
	// PeerURL is the member's peer address (default http://127.0.0.1:2380).
	PeerURL string
	// UnsafeNoFsync trades durability for speed; tests use it on tmpfs.
	UnsafeNoFsync bool
}

// Server is a running embedded etcd.
type Server struct {
	etcd *embed.Etcd
	// ClientURL is the address clients use.
	ClientURL string
}

// Start starts the member and waits until it serves (at most a minute).
func Start(ctx context.Context, c Config) (*Server, error) {
	if c.ClientURL == "" {
		c.ClientURL = "http://127.0.0.1:2379"
	}
	if c.PeerURL == "" {
		c.PeerURL = "http://127.0.0.1:2380"
	}
	client, err := url.Parse(c.ClientURL)
	if err != nil {
		return nil, fmt.Errorf("etcd client URL: %w", err)
	}
	peer, err := url.Parse(c.PeerURL)
	if err != nil {
		return nil, fmt.Errorf("etcd peer URL: %w", err)
	}
	cfg := embed.NewConfig()
	cfg.Name = "wharf"
	cfg.Dir = filepath.Clean(c.DataDir)
	cfg.ListenClientUrls = []url.URL{*client}
	cfg.AdvertiseClientUrls = []url.URL{*client}
	cfg.ListenPeerUrls = []url.URL{*peer}
	cfg.AdvertisePeerUrls = []url.URL{*peer}
	cfg.InitialCluster = cfg.Name + "=" + peer.String()
	cfg.UnsafeNoFsync = c.UnsafeNoFsync
	// etcd logs normal shutdown as errors; real failures arrive on Err().
	cfg.LogLevel = zapcore.FatalLevel.String()
	// The API server compacts history itself (every 5 minutes, to the
	// revision of the previous round), as kube-apiserver does.
	cfg.AutoCompactionRetention = "0"
	cfg.QuotaBackendBytes = 8 << 30
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd in %s: %w", c.DataDir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd: %w", err)
	case <-time.After(time.Minute):
		e.Close()
		return nil, fmt.Errorf("embedded etcd in %s did not become ready in a minute", c.DataDir)
	case <-ctx.Done():
		e.Close()
		return nil, ctx.Err()
	}
	return &Server{etcd: e, ClientURL: client.String()}, nil
}

// Err reports a failure of the running member.
func (s *Server) Err() <-chan error { return s.etcd.Err() }

// Close stops the member.
func (s *Server) Close() { s.etcd.Close() }
