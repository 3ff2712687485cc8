package proxy

import (
	"strings"
	"testing"
)

// TestQueryMetadataOpenIDTakenOutOfTheBody: a forwarded request that names
// its end user only by the query's metadata OpenID (?metadata[openid]=…,
// no header, no "user" or metadata in its body) has the user taken out of
// its body's text too, as one named by the body is: the query's value got
// the user's hash, and the body's text went with the OpenID, to the same
// provider (SPEC 2.2). JSON and form bodies alike; u_anonymous under drop.
func TestQueryMetadataOpenIDTakenOutOfTheBody(t *testing.T) {
	const openID = "oQMB8-openid_7a8b9c0d1e2f3g4"
	h := expectedUserHash("shop-bot", openID)
	query := "?metadata%5Bopenid%5D=" + openID
	audio := field{"file", "a.txt", "audio"}
	for _, tc := range []struct {
		name, forward, path, ct, body, want string
	}{
		{"json hash", "hash", "/v1/embeddings" + query, "application/json",
			`{"model":"embed-test","input":"profile of ` + openID + `"}`,
			`{"model":"vendor/embed","input":"profile of ` + h + `"}`},
		{"json drop", "drop", "/v1/embeddings" + query, "application/json",
			`{"model":"embed-test","input":"profile of ` + openID + `"}`,
			`{"model":"vendor/embed","input":"profile of u_anonymous"}`},
		{"form hash", "hash", "/v1/audio/transcriptions" + query, "multipart/form-data; boundary=" + formBoundaryTest,
			form(t, field{"prompt", "", "Speaker: " + openID}, audio),
			form(t, field{"prompt", "", "Speaker: " + h}, audio)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen := forwardedOnce(t, tc.forward, tc.path, tc.body, map[string]string{"Content-Type": tc.ct})
			if got := string(seen.Body); got != tc.want {
				t.Errorf("provider got\n%q\nwant\n%q", got, tc.want)
			}
			if strings.Contains(seen.Path, openID) {
				t.Errorf("provider's URL %s holds the OpenID", seen.Path)
			}
		})
	}
}
