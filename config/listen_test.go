package config

import (
	"strings"
	"testing"
)

// TestListenAddresses: every listener address is checked as net.Listen
// will take it, so check-config refuses what serve could not bind, at the
// key's line.
func TestListenAddresses(t *testing.T) {
	tests := []struct {
		src     string
		wantErr string // "" when it loads
	}{
		{"server: {listen: \"127.0.0.1:8080\", admin_listen: \"127.0.0.1:8081\", notify_listen: \"0.0.0.0:8082\"}", ""},
		{"server: {listen: \"127.0.0.1:0\", admin_listen: \"127.0.0.1:0\", notify_listen: \"127.0.0.1:0\"}", ""},
		{"server: {listen: \"127.0.0.1:8080\", admin_listen: \"[::1]:8080\"}", ""},
		{"server: {listen: \"127.0.0.1:8080\", admin_listen: \"off\", notify_listen: \"\"}", ""},
		{"server: {listen: \"127.0.0.1:8080\", admin_listen: \"127.0.0.1:65535\"}", ""},
		{"server:\n  admin_listen: \"127.0.0.1:99999\"\n", `c.yaml:2: server.admin_listen: "127.0.0.1:99999": the port must be a number from 0 to 65535`},
		{"server:\n  admin_listen: \"127.0.0.1:http-admin\"\n", `c.yaml:2: server.admin_listen: "127.0.0.1:http-admin": the port must be`},
		{"server:\n  listen: \"127.0.0.1:-1\"\n", `c.yaml:2: server.listen: "127.0.0.1:-1": the port must be`},
		{"server:\n  listen: \"127.0.0.1:\"\n", ""}, // an empty port is 0 to net.Listen
		{"server:\n  listen: \"off\"\n", `c.yaml:2: server.listen: "off" is not host:port`},
		{"server:\n  notify_listen: \"off\"\n", `c.yaml:2: server.notify_listen: "off" is not an address: leave it empty`},
		{"server:\n  listen: \"127.0.0.1:9000\"\n  admin_listen: \"127.0.0.1:9000\"\n", `c.yaml:3: server.admin_listen: "127.0.0.1:9000" and server.listen "127.0.0.1:9000" are one address`},
		{"server:\n  listen: \"0.0.0.0:9000\"\n  notify_listen: \"127.0.0.1:9000\"\n", `c.yaml:3: server.notify_listen: "127.0.0.1:9000" and server.listen "0.0.0.0:9000" are one address`},
		{"server:\n  listen: \"localhost:9000\"\n  admin_listen: \"127.0.0.1:9000\"\n", `c.yaml:3: server.admin_listen:`},
		// The default admin address is written nowhere: the error is at the
		// key that is.
		{"server:\n  listen: \"127.0.0.1:8081\"\n", `c.yaml:2: server.listen: "127.0.0.1:8081" and server.admin_listen "127.0.0.1:8081" are one address`},
	}
	for _, tc := range tests {
		t.Run(tc.src, func(t *testing.T) {
			_, err := Parse([]byte(tc.src+"\n"), "c.yaml", envMap(nil))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("got %v; want it to load", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("got %v; want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestAdminHosts: server.admin_hosts lists host names, each without port
// or scheme (the admin listener answers a listed name on any port), so a
// written "https://…" or "name:8081", which would never match a Host, is
// refused at its line rather than leaving the operator's console refused
// with 421.
func TestAdminHosts(t *testing.T) {
	tests := []struct {
		name    string
		hosts   string
		wantErr string // "" when it loads
	}{
		{"a name", `["paygate-admin.example.com"]`, ""},
		{"several, one ending in a dot", `["paygate-admin.example.com", "admin.internal.", "Console_1.Example.COM"]`, ""},
		{"a single label", `["paygate"]`, ""},
		{"none", `[]`, ""},
		{"with a port", `["paygate-admin.example.com:8081"]`, `c.yaml:2: server.admin_hosts[0]: "paygate-admin.example.com:8081": a host name without port or scheme`},
		{"with a scheme", `["ok.example.com", "https://paygate-admin.example.com"]`, `c.yaml:2: server.admin_hosts[1]: "https://paygate-admin.example.com": a host name`},
		{"a wildcard", `["*.example.com"]`, `server.admin_hosts[0]: "*.example.com": a host name`},
		{"empty", `[""]`, `server.admin_hosts[0]: "": a host name`},
		{"a space", `["paygate admin"]`, `server.admin_hosts[0]: "paygate admin": a host name`},
		{"an empty label", `["admin..example.com"]`, `server.admin_hosts[0]: "admin..example.com": a host name`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte("server:\n  admin_hosts: "+tc.hosts+"\n"), "c.yaml", envMap(nil))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("got %v; want it to load", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("got %v; want an error containing %q", err, tc.wantErr)
			}
		})
	}
}
