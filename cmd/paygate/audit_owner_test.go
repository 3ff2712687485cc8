package main

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paygate/paygate/store"
	redisstore "github.com/paygate/paygate/store/redis"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestAuditClaimsNoRedisPrefix: paygate audit reads the chain; it is no
// deployment. It opened the Redis store as serve does, as the deployment
// its config's payments name, so under a prefix no paygate had reached yet
// (a new deployment's, checked before its first start) it recorded that
// deployment as the prefix's owner: an auditor's config left with the
// default simulator claimed it, and the real paygate, on WeChat Pay, was
// then refused its own store as another deployment's. And under a prefix a
// deployment owns, a config of other payments could not read the chain.
func TestAuditClaimsNoRedisPrefix(t *testing.T) {
	if !contains(testdrivers.Names(t), "redis") {
		t.Skip("needs redis")
	}
	const production = "wechatpay:1900000001"
	auditConfig := func(t *testing.T, prefix string) string {
		cfg := filepath.Join(t.TempDir(), "audit.yaml")
		writeFile(t, cfg, `
clients: [{name: bot, key: k-audit}]
store: {driver: redis, redis: {addrs: ["`+testdrivers.RedisAddr()+`"], key_prefix: "`+prefix+`"}}
providers: [{name: fake, base_url: "http://127.0.0.1:1/v1", api_key: x}]
models: [{name: m, targets: [{provider: fake, model: u}]}]
`)
		return cfg
	}
	openAs := func(t *testing.T, prefix, owner string) error {
		st, err := redisstore.Open(redisstore.Options{Addrs: []string{testdrivers.RedisAddr()}, KeyPrefix: prefix, Owner: owner, RepairInterval: -1})
		if err != nil {
			return err
		}
		defer st.Close()
		return st.Ping(context.Background())
	}
	t.Run("a prefix no paygate reached", func(t *testing.T) {
		place := testdrivers.NewPlace(t, "redis", nil)
		// Refused, as no deployment's (TestAuditOfAnEmptyPlace), and
		// claimed no more for that.
		code, out, errOut := runAuditLocked("verify", "-config", auditConfig(t, place.Prefix))
		if code != 1 || !strings.Contains(errOut, place.Prefix) {
			t.Fatalf("verify: exit %d, stdout %q, stderr %q; want 1 naming the prefix", code, out, errOut)
		}
		if err := openAs(t, place.Prefix, production); err != nil {
			t.Errorf("the deployment's own store after an audit: %v; want it opened (the audit claimed the prefix: %v)", err, errors.Is(err, store.ErrOtherDeployment))
		}
	})
	t.Run("a prefix a deployment of other payments owns", func(t *testing.T) {
		f := newAuditFixture(t, "redis")
		if err := openAs(t, f.prefix, production); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := runAuditLocked("verify", "-config", auditConfig(t, f.prefix))
		if code != 0 || !strings.Contains(out, "audit chain ok: 4 records") {
			t.Errorf("verify: exit %d, stdout %q, stderr %q; want the 4 records verified", code, out, errOut)
		}
	})
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// runAuditLocked is runAudit with writers the Redis store's goroutines may
// log to while the command runs.
func runAuditLocked(args ...string) (int, string, string) {
	var out, errb lockedWriter
	code := run(append([]string{"audit"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}
