package proxy

import (
	"fmt"
	"testing"

	"github.com/paygate/paygate/config"
)

// TestAdminAuditEraseDuringAKeyRotation: a client's previous_key (a key
// rotation in progress) is no second client. With the one client the
// erasure needs no ?client, and ?client=* erases under it once, the
// answer's per-client count the texts erased.
func TestAdminAuditEraseDuringAKeyRotation(t *testing.T) {
	base, _, _ := auditAdmin(t, func(c *config.Config) {
		c.Clients[0].PreviousKey = "sk-shop-bot-old-0123456789abcdef"
	})
	status, out := auditAdminDo(t, "DELETE", base+"/admin/api/audit/texts/oAlice", auditAdminToken)
	if status != 200 || out["erased"] != float64(2) {
		t.Errorf("erase with the one client during its key's rotation: %d %v; want 200, 2 erased", status, out)
	}
	status, out = auditAdminDo(t, "DELETE", base+"/admin/api/audit/texts/oBob?client=*", auditAdminToken)
	if status != 200 || out["erased"] != float64(1) || fmt.Sprint(out["clients"]) != "map[shop-bot:1]" {
		t.Errorf("erase oBob under every client: %d %v; want 1 erased, clients map[shop-bot:1]", status, out)
	}
}
