package proxy

import (
	"bytes"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/interceptors"
)

const formBoundaryTest = "paygate-test-boundary-1234"

// field is one part of a test form: a file when filename is set.
type field struct{ name, filename, value string }

// form writes a multipart/form-data body as Go's client writes one.
func form(t *testing.T, fields ...field) string {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	if err := mw.SetBoundary(formBoundaryTest); err != nil {
		t.Fatal(err)
	}
	for _, f := range fields {
		var w interface{ Write([]byte) (int, error) }
		var err error
		if f.filename != "" {
			w, err = mw.CreateFormFile(f.name, f.filename)
		} else {
			w, err = mw.CreateFormField(f.name)
		}
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write([]byte(f.value))
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestPassthroughFormFieldsRewritten: a multipart/form-data body (images
// edits, audio) gets the rules of a JSON passthrough body: "model" routes
// and becomes the upstream name, "user", "safety_identifier",
// "prompt_cache_key" and a metadata field never reach the provider as the
// OpenID (SPEC 2.2), and the boundary and every other part, files
// included, reach it byte for byte.
func TestPassthroughFormFieldsRewritten(t *testing.T) {
	const openID = "oWx-openid-form"
	png := field{"image", "a.png", "\x89PNG\r\n\x1a\n\x00\xff--not-the-boundary\r\n"}
	prompt := field{"prompt", "", "a cat"}
	for _, tc := range []struct {
		name    string
		forward string // privacy.forward_user
		header  string // X-WeChat-OpenID
		sent    []field
		want    []field // what the provider gets
	}{
		{"user hashed, model rewritten", "", openID,
			[]field{{"model", "", "embed-test"}, prompt, {"user", "", openID}, png},
			[]field{{"model", "", "vendor/embed"}, prompt, {"user", "", expectedUserHash("shop-bot", openID)}, png}},
		{"the header names the user", "", openID,
			[]field{png, {"user", "", "bot-chosen"}, {"model", "", "embed-test"}},
			[]field{png, {"user", "", expectedUserHash("shop-bot", openID)}, {"model", "", "vendor/embed"}}},
		{"the field names the user", "", "",
			[]field{{"user", "", openID}, png},
			[]field{{"user", "", expectedUserHash("shop-bot", openID)}, png}},
		{"forward_user drop", "drop", openID,
			[]field{{"model", "", "embed-test"}, {"user", "", openID}, png},
			[]field{{"model", "", "vendor/embed"}, png}},
		{"forward_user drop, user first", "drop", openID,
			[]field{{"user", "", openID}, prompt},
			[]field{prompt}},
		{"forward_user drop, user alone", "drop", openID,
			[]field{{"user", "", openID}},
			nil},
		{"forward_user keep", "keep", openID,
			[]field{{"user", "", openID}, png},
			[]field{{"user", "", openID}, png}},
		// An empty model (a bot's unset environment variable) routes to
		// the first model's targets as a missing one does, and reaches
		// them as sent: a chat model's name put in its place was refused
		// by an audio or image endpoint, or obeyed by a lenient one.
		{"an empty model is sent as it came", "", "",
			[]field{{"model", "", ""}, png},
			[]field{{"model", "", ""}, png}},
		{"no model nor user: untouched", "", openID,
			[]field{prompt, png},
			[]field{prompt, png}},
		// The identifiers current SDKs send in place of the deprecated
		// "user", and a metadata field naming the end user: the same
		// treatment as in a JSON body.
		{"identifiers hashed, the OpenID as user gets it", "", openID,
			[]field{{"safety_identifier", "", openID}, prompt, {"prompt_cache_key", "", "edits-v1"}, {"metadata[openid]", "", openID}, {"metadata[shop]", "", "s1"}, png},
			[]field{{"safety_identifier", "", expectedUserHash("shop-bot", openID)}, prompt, {"prompt_cache_key", "", expectedUserHash("shop-bot", "edits-v1")},
				{"metadata[openid]", "", expectedUserHash("shop-bot", openID)}, {"metadata[shop]", "", "s1"}, png}},
		{"identifiers dropped", "drop", openID,
			[]field{{"safety_identifier", "", openID}, prompt, {"prompt_cache_key", "", "edits-v1"}, {"metadata[openid]", "", openID}, png},
			[]field{prompt, png}},
		// A tag holding the OpenID inside gives it away as surely.
		{"the OpenID inside a metadata field: hashed in place", "", openID,
			[]field{{"metadata[conv]", "", "wx:" + openID + ":1"}, png},
			[]field{{"metadata[conv]", "", "wx:" + expectedUserHash("shop-bot", openID) + ":1"}, png}},
		{"the OpenID inside a metadata field: dropped", "drop", openID,
			[]field{{"metadata[conv]", "", "wx:" + openID}, prompt},
			[]field{prompt}},
		// A metadata field keyed by the OpenID names the user in its
		// name, which paygate does not rewrite: the field is not sent.
		{"the OpenID inside a metadata field's name: not sent", "", openID,
			[]field{{"metadata[wx:" + openID + "]", "", "1"}, {"metadata[shop]", "", "s1"}, png},
			[]field{{"metadata[shop]", "", "s1"}, png}},
		{"the OpenID inside a metadata field's name: dropped", "drop", openID,
			[]field{{"metadata[wx:" + openID + "]", "", "1"}, prompt},
			[]field{prompt}},
		{"identifiers kept", "keep", openID,
			[]field{{"safety_identifier", "", openID}, {"metadata[openid]", "", openID}, png},
			[]field{{"safety_identifier", "", openID}, {"metadata[openid]", "", openID}, png}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, jsonHandler(200, `{"data":[]}`))
			proxyURL, _ := newTestProxy(t, testConfig(t, fp.URL, func(c *config.Config) {
				if tc.forward != "" {
					c.Privacy.ForwardUser = tc.forward
				}
			}))
			ct := "multipart/form-data; boundary=" + formBoundaryTest
			hdr := map[string]string{"Content-Type": ct}
			if tc.header != "" {
				hdr["X-WeChat-OpenID"] = tc.header
			}
			resp := post(t, proxyURL, "/v1/images/edits", form(t, tc.sent...), hdr)
			if body := readAll(t, resp.Body); resp.StatusCode != 200 {
				t.Fatalf("status %d %s", resp.StatusCode, body)
			}
			got := fp.requests()[0]
			want := form(t, tc.want...)
			if tc.want == nil {
				want = "--" + formBoundaryTest + "--\r\n"
			}
			if string(got.Body) != want {
				t.Errorf("provider got\n%q\nwant\n%q", got.Body, want)
			}
			if got.Header.Get("Content-Type") != ct {
				t.Errorf("provider got Content-Type %q", got.Header.Get("Content-Type"))
			}
		})
	}
}

// TestPassthroughFormRefused: a form paygate cannot read the way every
// provider would is a 400 (a repeated model or user, framing that parsers
// split differently), an unknown model a 404; none reaches the provider,
// since a "user" paygate did not see would carry the OpenID.
func TestPassthroughFormRefused(t *testing.T) {
	const b = formBoundaryTest
	part := func(name, value string) string {
		return "--" + b + "\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" + value + "\r\n"
	}
	end := "--" + b + "--\r\n"
	ct := "multipart/form-data; boundary=" + b
	for _, tc := range []struct {
		name, ct, body string
		status         int
		param          string // the error's param: the field it names, "" for null
	}{
		{"model twice", ct, part("model", "embed-test") + part("model", "openai/o1-pro") + end, 400, "model"},
		{"user twice", ct, part("user", "u1") + part("user", "oSECRET") + end, 400, "user"},
		{"safety_identifier twice", ct, part("safety_identifier", "u1") + part("safety_identifier", "oSECRET") + end, 400, "safety_identifier"},
		{"prompt_cache_key twice", ct, part("prompt_cache_key", "u1") + part("prompt_cache_key", "oSECRET") + end, 400, "prompt_cache_key"},
		{"encoded safety_identifier", ct, "--" + b + "\r\nContent-Disposition: form-data; name=\"safety_identifier\"\r\nContent-Transfer-Encoding: base64\r\n\r\nb1NFQ1JFVA==\r\n" + end, 400, "safety_identifier"},
		{"encoded metadata field", ct, "--" + b + "\r\nContent-Disposition: form-data; name=\"metadata[u]\"\r\nContent-Transfer-Encoding: base64\r\n\r\nb1NFQ1JFVA==\r\n" + end, 400, "metadata[u]"},
		{"unknown model", ct, part("model", "openai/o1-pro") + end, 404, "model"},
		// Another case of a field paygate reads is that field to a
		// parser that ignores case (ASP.NET's binding), as a JSON
		// body's member is: refused as the body's is.
		{"User", ct, part("User", "oSECRET") + end, 400, "user"},
		{"uſer, a long s", ct, part("uſer", "oSECRET") + end, 400, "user"},
		{"SAFETY_IDENTIFIER", ct, part("SAFETY_IDENTIFIER", "oSECRET") + end, 400, "safety_identifier"},
		{"Prompt_Cache_Key", ct, part("Prompt_Cache_Key", "oSECRET") + end, 400, "prompt_cache_key"},
		{"Model", ct, part("model", "embed-test") + part("Model", "openai/o1-pro") + end, 400, "model"},
		{"Metadata[openid]", ct, part("Metadata[openid]", "oSECRET") + end, 400, "metadata"},
		{"METADATA", ct, part("METADATA", `{"openid":"oSECRET"}`) + end, 400, "metadata"},
		{"preamble", ct, "hello\r\n" + part("user", "oSECRET") + end, 400, ""},
		{"bytes after the close delimiter", ct, part("a", "1") + end + part("user", "oSECRET") + end, 400, ""},
		{"no close delimiter", ct, part("user", "oSECRET"), 400, ""},
		{"boundary after a bare LF", ct, part("a", "x\n--"+b+"\r\nContent-Disposition: form-data; name=\"user\"\r\n\r\noSECRET") + end, 400, ""},
		{"transport padding", ct, "--" + b + " \r\nContent-Disposition: form-data; name=\"user\"\r\n\r\noSECRET\r\n" + end, 400, ""},
		{"folded header", ct, "--" + b + "\r\nX-A: 1\r\n Content-Disposition: form-data; name=\"user\"\r\n\r\noSECRET\r\n" + end, 400, ""},
		{"bare LF between headers", ct, "--" + b + "\r\nX-A: 1\nContent-Disposition: form-data; name=\"user\"\r\n\r\noSECRET\r\n" + end, 400, ""},
		{"two Content-Dispositions", ct, "--" + b + "\r\nContent-Disposition: form-data; name=\"a\"\r\nContent-Disposition: form-data; name=\"user\"\r\n\r\noSECRET\r\n" + end, 400, ""},
		{"RFC 2231 name", ct, "--" + b + "\r\nContent-Disposition: form-data; name*=utf-8''user\r\n\r\noSECRET\r\n" + end, 400, ""},
		{"unparsable disposition", ct, "--" + b + "\r\nContent-Disposition: form-data; name=\"a\"; name=\"user\"\r\n\r\noSECRET\r\n" + end, 400, ""},
		{"encoded user", ct, "--" + b + "\r\nContent-Disposition: form-data; name=\"user\"\r\nContent-Transfer-Encoding: base64\r\n\r\nb1NFQ1JFVA==\r\n" + end, 400, "user"},
		{"no boundary", "multipart/form-data", part("user", "oSECRET") + end, 400, ""},
		{"two boundaries", ct + "; boundary=other", part("user", "oSECRET") + end, 400, ""},
		{"url-encoded form", "application/x-www-form-urlencoded", "prompt=a+cat&user=oSECRET", 400, ""},
		{"url-encoded form, other spelling", "Application/X-WWW-Form-Urlencoded; charset=utf-8", "user=oSECRET", 400, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, jsonHandler(200, `{"data":[]}`))
			proxyURL, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
			resp := post(t, proxyURL, "/v1/images/edits", tc.body, map[string]string{"Content-Type": tc.ct})
			body := readAll(t, resp.Body)
			if typ, _, ok := openAIError(body); resp.StatusCode != tc.status || !ok || typ != "invalid_request_error" {
				t.Errorf("status %d %s; want %d with an OpenAI error", resp.StatusCode, body, tc.status)
			}
			if p := gjson.Get(body, "error.param"); p.Str != tc.param || tc.param == "" && p.Type != gjson.Null {
				t.Errorf("error %s; want param %q", body, tc.param)
			}
			if seen := fp.requests(); len(seen) != 0 {
				t.Errorf("the provider got %q", seen[0].Body)
			}
		})
	}
	// A form whose Content-Type names no boundary but which has no body is
	// nothing to read: it goes through.
	fp := newFakeProvider(t, jsonHandler(200, `{"data":[]}`))
	proxyURL, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
	if resp := post(t, proxyURL, "/v1/images/edits", "", map[string]string{"Content-Type": "multipart/form-data"}); resp.StatusCode != http.StatusOK {
		t.Errorf("empty form: status %d %s", resp.StatusCode, readAll(t, resp.Body))
	}
	if !strings.Contains(fp.requests()[0].Path, "/v1/images/edits") {
		t.Errorf("provider path %q", fp.requests()[0].Path)
	}
	// stream, in any spelling, is the provider's to read: it goes through
	// (TestForwardedStreamArrivesAsSent).
	for _, v := range []string{"false", "False", "0", "", "true", " True ", "1", "yes"} {
		body := part("stream", v) + end
		resp := post(t, proxyURL, "/v1/audio/transcriptions", body, map[string]string{"Content-Type": ct})
		if got := readAll(t, resp.Body); resp.StatusCode != http.StatusOK {
			t.Errorf("stream %q: status %d %s; want it forwarded", v, resp.StatusCode, got)
		}
	}
}

// TestPassthroughFormOfNodeLibraries: the Node openai SDK v4 (its
// form-data-encoder) and axios end a form with a blank line after the
// close delimiter ("--boundary--\r\n\r\n"), an epilogue every parser
// skips. paygate refused such a form as having bytes after its close
// delimiter, so every transcription, image edit and file upload those
// bots sent was a 400. The form is read as any other (model rewritten,
// user hashed), and reaches the provider byte for byte otherwise, its
// epilogue included; anything but line ends there is still refused.
func TestPassthroughFormOfNodeLibraries(t *testing.T) {
	const (
		b      = "form-data-boundary-4n6xwz0k2vpjq8f1"
		openID = "oWx-openid-node-form"
	)
	audio := "\x00\x00\x00\x20ftypM4A \r\n\r\n--form-data\xff"
	part := func(name, value string) string {
		return "--" + b + "\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" + value + "\r\n"
	}
	file := "--" + b + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"voice.m4a\"\r\nContent-Type: audio/mp4\r\n\r\n" + audio + "\r\n"
	ct := "multipart/form-data; boundary=" + b
	for _, tc := range []struct {
		name, epilogue string
		status         int
	}{
		{"form-data-encoder and axios: a blank line", "\r\n\r\n", 200},
		{"more blank lines", "\r\n\r\n\r\n", 200},
		{"text after the blank line", "\r\n\r\nuser=oSECRET", 400},
		{"a bare LF", "\r\n\n", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, jsonHandler(200, `{"text":"hi"}`))
			proxyURL, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
			body := part("model", "embed-test") + file + part("user", openID) + "--" + b + "--" + tc.epilogue
			resp := post(t, proxyURL, "/v1/audio/transcriptions", body, map[string]string{"Content-Type": ct})
			got := readAll(t, resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d %s; want %d", resp.StatusCode, got, tc.status)
			}
			seen := fp.requests()
			if tc.status != 200 {
				if len(seen) != 0 {
					t.Errorf("the provider got %q", seen[0].Body)
				}
				return
			}
			want := part("model", "vendor/embed") + file + part("user", expectedUserHash("shop-bot", openID)) + "--" + b + "--" + tc.epilogue
			if len(seen) != 1 || string(seen[0].Body) != want {
				t.Errorf("provider got %q\nwant %q", seen, want)
			}
		})
	}
}

// TestPassthroughFormIdentityTransferEncoding: Apache HttpClient 4's
// MultipartEntityBuilder (its default, strict mode) writes
// "Content-Transfer-Encoding: 8bit" on every text field, "binary" on
// files. Those say the bytes are as sent: every parser reads the value as
// paygate does, so the field is read and rewritten as any other. paygate
// refused any Content-Transfer-Encoding on model and user, so every
// transcription such a bot sent was a 400; base64 and quoted-printable,
// which a provider's parser may decode, are still refused.
func TestPassthroughFormIdentityTransferEncoding(t *testing.T) {
	const (
		b      = formBoundaryTest
		openID = "oWx-openid-httpclient"
	)
	part := func(name, cte, value string) string {
		return "--" + b + "\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\nContent-Type: text/plain; charset=UTF-8\r\n" +
			"Content-Transfer-Encoding: " + cte + "\r\n\r\n" + value + "\r\n"
	}
	file := "--" + b + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"voice.m4a\"\r\nContent-Type: application/octet-stream\r\n" +
		"Content-Transfer-Encoding: binary\r\n\r\n\x00\x00\x00\x20ftypM4A \xff\r\n"
	end := "--" + b + "--\r\n"
	ct := "multipart/form-data; boundary=" + b
	for _, tc := range []struct {
		name, cte string
		status    int
	}{
		{"8bit", "8bit", 200},
		{"7bit", "7bit", 200},
		{"binary", "binary", 200},
		{"another case", "8BIT", 200},
		{"base64", "base64", 400},
		{"quoted-printable", "quoted-printable", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, jsonHandler(200, `{"text":"hi"}`))
			proxyURL, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
			body := part("model", tc.cte, "embed-test") + file + part("user", tc.cte, openID) + end
			resp := post(t, proxyURL, "/v1/audio/transcriptions", body, map[string]string{"Content-Type": ct})
			got := readAll(t, resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d %s; want %d", resp.StatusCode, got, tc.status)
			}
			seen := fp.requests()
			if tc.status != 200 {
				if p := gjson.Get(got, "error.param").Str; p != "model" || len(seen) != 0 {
					t.Errorf("error %s, %d requests to the provider; want a 400 naming model, none sent", got, len(seen))
				}
				return
			}
			want := part("model", tc.cte, "vendor/embed") + file + part("user", tc.cte, expectedUserHash("shop-bot", openID)) + end
			if len(seen) != 1 || string(seen[0].Body) != want {
				t.Errorf("provider got %q\nwant %q", seen, want)
			}
		})
	}
}

// FuzzSplitForm: a body splitForm accepts reads the same with Go's
// mime/multipart, part for part (names and contents): the strict split
// is a reading other parsers share, not paygate's own.
func FuzzSplitForm(f *testing.F) {
	b := formBoundaryTest
	f.Add("--" + b + "\r\nContent-Disposition: form-data; name=\"user\"\r\n\r\noSECRET\r\n--" + b + "--\r\n")
	f.Add("--" + b + "\r\n\r\nno headers\r\n--" + b + "\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a;b.png\"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n\r\n--" + b + "--")
	f.Add("--" + b + "\r\nContent-Disposition: form-data; name=model\r\n\r\n\r\n--" + b + "--\r\n")
	f.Add("--" + b + "\r\nContent-Disposition: form-data; name=\"user\"\r\n\r\noSECRET\r\n--" + b + "--\r\n\r\n")
	f.Fuzz(func(t *testing.T, body string) {
		parts, err := splitForm([]byte(body), b)
		if err != nil {
			return
		}
		mr := multipart.NewReader(strings.NewReader(body), b)
		for i, p := range parts {
			mp, err := mr.NextRawPart()
			if err != nil {
				t.Fatalf("part %d: mime/multipart: %v", i, err)
			}
			var content bytes.Buffer
			if _, err := content.ReadFrom(mp); err != nil {
				t.Fatalf("part %d: mime/multipart: %v", i, err)
			}
			// paygate reads a name whatever the disposition type, as
			// Python's parsers do; FormName only under form-data.
			if d, _, _ := mime.ParseMediaType(mp.Header.Get("Content-Disposition")); d == "form-data" && mp.FormName() != p.name {
				t.Errorf("part %d: name %q; mime/multipart reads %q", i, p.name, mp.FormName())
			}
			if got := body[p.content:p.end]; content.String() != got {
				t.Errorf("part %d: content %q; mime/multipart reads %q", i, got, content.String())
			}
		}
		if _, err := mr.NextRawPart(); err == nil {
			t.Errorf("mime/multipart reads more than %d parts", len(parts))
		}
	})
}

// TestPassthroughFormTextWithoutUser: a form's text field other than the
// identifiers (a transcription's "prompt": "Speaker: o…") holding the end
// user's OpenID reaches the provider with the user's hash in its place,
// the hash "user" gets (SPEC 2.2); "u_anonymous" under drop; as sent under
// keep. A file's content is the bot's upload and stays byte for byte.
func TestPassthroughFormTextWithoutUser(t *testing.T) {
	const openID = "oFORM-openid_7a8b9c0d1e2f3g4"
	h := expectedUserHash("shop-bot", openID)
	audio := field{"file", "a.txt", "notes of " + openID}
	for _, tc := range []struct {
		forward    string
		sent, want []field
	}{
		{"hash",
			[]field{{"model", "", "embed-test"}, {"prompt", "", "Speaker: " + openID + ", then " + openID}, {"user", "", openID}, audio},
			[]field{{"model", "", "vendor/embed"}, {"prompt", "", "Speaker: " + h + ", then " + h}, {"user", "", h}, audio}},
		{"drop",
			[]field{{"prompt", "", "Speaker: " + openID}, audio},
			[]field{{"prompt", "", "Speaker: u_anonymous"}, audio}},
		{"keep",
			[]field{{"prompt", "", "Speaker: " + openID}, audio},
			[]field{{"prompt", "", "Speaker: " + openID}, audio}},
	} {
		t.Run(tc.forward, func(t *testing.T) {
			fp := newFakeProvider(t, jsonHandler(200, `{"text":"hi"}`))
			proxyURL, _ := newTestProxy(t, testConfig(t, fp.URL, func(c *config.Config) { c.Privacy.ForwardUser = tc.forward }))
			hdr := map[string]string{"Content-Type": "multipart/form-data; boundary=" + formBoundaryTest, "X-WeChat-OpenID": openID}
			resp := post(t, proxyURL, "/v1/audio/transcriptions", form(t, tc.sent...), hdr)
			if body := readAll(t, resp.Body); resp.StatusCode != 200 {
				t.Fatalf("status %d %s", resp.StatusCode, body)
			}
			if got, want := string(fp.requests()[0].Body), form(t, tc.want...); got != want {
				t.Errorf("provider got\n%q\nwant\n%q", got, want)
			}
		})
	}
}

// TestPassthroughFormFilenameWithoutUser: an upload named after the end
// user (a bot that saves a WeChat voice message as "<openid>_<msgid>.amr"
// and sends it for transcription) reaches the provider with the user's
// hash in its filename (u_anonymous under drop, as sent under keep), as a
// text field would; the file's content stays byte for byte.
func TestPassthroughFormFilenameWithoutUser(t *testing.T) {
	const openID = "oFILE-openid_7a8b9c0d1e2f3g4"
	h := expectedUserHash("shop-bot", openID)
	content := "voice of " + openID
	for _, tc := range []struct {
		forward, name string
	}{
		{"hash", h + "_1001.amr"},
		{"drop", interceptors.DroppedUser + "_1001.amr"},
		{"keep", openID + "_1001.amr"},
	} {
		t.Run(tc.forward, func(t *testing.T) {
			fp := newFakeProvider(t, jsonHandler(200, `{"text":"hi"}`))
			proxyURL, _ := newTestProxy(t, testConfig(t, fp.URL, func(c *config.Config) { c.Privacy.ForwardUser = tc.forward }))
			hdr := map[string]string{"Content-Type": "multipart/form-data; boundary=" + formBoundaryTest, "X-WeChat-OpenID": openID}
			sent := form(t, field{"model", "", "embed-test"}, field{"file", openID + "_1001.amr", content})
			resp := post(t, proxyURL, "/v1/audio/transcriptions", sent, hdr)
			if body := readAll(t, resp.Body); resp.StatusCode != 200 {
				t.Fatalf("status %d %s", resp.StatusCode, body)
			}
			want := form(t, field{"model", "", "vendor/embed"}, field{"file", tc.name, content})
			if got := string(fp.requests()[0].Body); got != want {
				t.Errorf("provider got\n%q\nwant\n%q", got, want)
			}
		})
	}
}

// TestPassthroughFormEncodedTextWithUser: a text field sent
// quoted-printable keeps an OpenID's letters, digits, "_" and "-" as they
// are, so one holding the end user is refused (400 naming the field) under
// hash and drop, as an encoded identifier field is, and reaches no
// provider; under keep, and without the user, it is sent as written.
func TestPassthroughFormEncodedTextWithUser(t *testing.T) {
	const openID = "oQP-openid_7a8b9c0d1e2f3g4h5i"
	b := formBoundaryTest
	body := func(text string) string {
		return "--" + b + "\r\nContent-Disposition: form-data; name=\"prompt\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
			text + "\r\n--" + b + "--\r\n"
	}
	for _, tc := range []struct {
		forward, text string
		status        int
	}{
		{"hash", "Speaker: " + openID, 400},
		{"drop", "Speaker: " + openID, 400},
		{"keep", "Speaker: " + openID, 200},
		{"hash", "Speaker: someone=20else", 200},
	} {
		t.Run(tc.forward+"/"+tc.text, func(t *testing.T) {
			fp := newFakeProvider(t, jsonHandler(200, `{"text":"hi"}`))
			proxyURL, _ := newTestProxy(t, testConfig(t, fp.URL, func(c *config.Config) { c.Privacy.ForwardUser = tc.forward }))
			hdr := map[string]string{"Content-Type": "multipart/form-data; boundary=" + b, "X-WeChat-OpenID": openID}
			resp := post(t, proxyURL, "/v1/audio/transcriptions", body(tc.text), hdr)
			got := readAll(t, resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d %s, want %d", resp.StatusCode, got, tc.status)
			}
			if tc.status == 400 {
				if p := gjson.Get(got, "error.param").String(); p != "prompt" {
					t.Errorf("param %q, want prompt: %s", p, got)
				}
				if n := len(fp.requests()); n != 0 {
					t.Errorf("the provider got %d requests", n)
				}
				return
			}
			if sent := string(fp.requests()[0].Body); sent != body(tc.text) {
				t.Errorf("provider got %q", sent)
			}
		})
	}
}
