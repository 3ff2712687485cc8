package proxy

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// TestDecisionReasonTakesWindowsLineBreaks: a reason pasted from a Windows
// file ("\r\n") was refused with a 400 saying line breaks are allowed; its
// line breaks are read as such now, and a lone "\r" is still refused.
func TestDecisionReasonTakesWindowsLineBreaks(t *testing.T) {
	for _, tc := range []struct {
		name, body, reason string
		refused            bool
	}{
		{"windows line breaks", `{"reason": "paid by bank transfer\r\nsee ticket 42"}`, "paid by bank transfer\nsee ticket 42", false},
		{"unix line breaks", `{"reason": "paid by bank transfer\nsee ticket 42"}`, "paid by bank transfer\nsee ticket 42", false},
		{"a lone carriage return", `{"reason": "paid\rsee ticket 42"}`, "", true},
		{"a carriage return in the operator", `{"operator": "Li\r\nWei"}`, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/admin/api/approvals/PG1/approve", strings.NewReader(tc.body))
			r.Header.Set("Content-Type", "application/json")
			d, err := readDecision(httptest.NewRecorder(), r)
			if tc.refused {
				if err == nil {
					t.Fatalf("%s: accepted as %+v; want refused", tc.body, d)
				}
				return
			}
			if err != nil || d.Reason != tc.reason {
				t.Fatalf("%s: %+v, %v; want reason %q", tc.body, d, err, tc.reason)
			}
		})
	}
}
