package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/paygate/paygate/internal/redistest"
	"github.com/paygate/paygate/logging"
)

// TestAuditMasksTheRedisPasswordInAnOpenError: a Redis error may carry a
// configured secret, and the audit commands write the error of the store's
// open and deployment check to stderr. A Redis whose AUTH and HELLO are
// renamed away (rename-command) answers go-redis's AUTH with "unknown
// command 'auth', with args beginning with: '<password>'", which verify and
// export printed whole, store.redis.password with it, while the store's own
// log line beside it went through the redactor.
func TestAuditMasksTheRedisPasswordInAnOpenError(t *testing.T) {
	const password = "hunter2-AUDIT-CANARY-0123456789"
	srv := redistest.StartServer(t, "--rename-command", "AUTH", "", "--rename-command", "HELLO", "")
	cfgPath := filepath.Join(t.TempDir(), "paygate.yaml")
	writeFile(t, cfgPath, `
clients: [{name: bot, key: k-audit}]
store: {driver: redis, redis: {addrs: ["`+srv.Addr()+`"], password: "`+password+`", key_prefix: "pg-audit-secret:"}}
providers: [{name: fake, base_url: "http://127.0.0.1:1/v1", api_key: x}]
models: [{name: m, targets: [{provider: fake, model: u}]}]
`)
	for _, args := range [][]string{
		{"verify", "-config", cfgPath},
		{"export", "-config", cfgPath},
	} {
		code, _, errOut := runAudit(args...)
		if code != 1 {
			t.Errorf("audit %v: exit %d; want 1, the deployment check failing (stderr %q)", args, code, errOut)
		}
		if strings.Contains(errOut, password) {
			t.Errorf("audit %v: stderr holds the Redis password: %q", args, errOut)
		}
		const want = "paygate audit: redis deployment check: ERR unknown command 'auth', with args beginning with: '" + logging.Mask + "'"
		if !strings.Contains(errOut, want) {
			t.Errorf("audit %v: stderr %q; want %q", args, errOut, want)
		}
	}
}
