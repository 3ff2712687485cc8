package main

import (
	"fmt"
	"testing"

	"github.com/paygate/paygate/config"
)

// TestPaygateConfLoads checks the generated config against paygate's own
// loader, so the bench keeps up with SPEC 8 as implemented.
func TestPaygateConfLoads(t *testing.T) {
	conf, err := renderPaygateConf(paygateParams{
		Listen: "127.0.0.1:18080", AdminListen: "127.0.0.1:18081",
		UpstreamURL: "http://127.0.0.1:19090/v1", StorePath: t.TempDir() + "/paygate.db", Pprof: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	noEnv := func(string) (string, bool) { return "", false }
	cfg, err := config.Parse([]byte(conf), "paygate.yaml", noEnv)
	if err != nil {
		t.Fatalf("generated config does not load: %v\n%s", err, conf)
	}
	tests := []struct {
		name, got, want string
	}{
		{name: "listen", got: cfg.Server.Listen, want: "127.0.0.1:18080"},
		{name: "admin listen", got: cfg.Server.AdminListen, want: "127.0.0.1:18081"},
		{name: "client key", got: cfg.Clients[0].Key, want: benchClientKey},
		{name: "provider base URL", got: cfg.Providers[0].BaseURL, want: "http://127.0.0.1:19090/v1"},
		{name: "first model", got: cfg.Models[0].Name, want: benchModel},
		{name: "slow model target", got: cfg.Models[1].Targets[0].Model, want: slowModel},
		{name: "user hashed", got: cfg.Privacy.ForwardUser, want: "hash"},
		{name: "pprof for -profile", got: fmt.Sprint(cfg.Server.Pprof), want: "true"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q; want %q", tt.got, tt.want)
			}
		})
	}
}
