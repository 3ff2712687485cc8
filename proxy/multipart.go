package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/interceptors"
)

// A multipart/form-data body (OpenAI's images/edits, images/variations,
// audio transcriptions) carries "model", "user" and the other identifiers
// as form fields, which the provider reads like JSON members: the OpenID
// must not reach it there either (SPEC 2.2), and "model" routes and is
// rewritten as in a JSON body.
//
// paygate and the provider must see the same parts, or a "user" paygate
// did not see would reach the provider. Parsers differ on everything a
// well-formed form never has (Werkzeug splits on a bare LF before the
// boundary, some parsers fold header lines, RFC 2231 names are stitched
// differently), so paygate splits the body strictly and refuses a body
// that has any of it, rather than guess which reading the provider makes.

// passthroughForm applies to a multipart/form-data body the rules of a
// JSON passthrough body: a "model" field routes (model is "" without one)
// and is rewritten to the upstream name; the end user's identifiers are
// rewritten as privacy.forward_user says (interceptors/identity.go): a
// "user" field becomes the end user's hash, "safety_identifier" and
// "prompt_cache_key" fields the hash of their values, and a metadata field
// ("metadata[key]", as SDKs write an object into a form) whose value holds
// the end user the user's hash in its place; under drop they are removed. model, user,
// safety_identifier or prompt_cache_key given twice is refused, since
// paygate would act on the first and the provider may read the last, and so
// is any of those fields with a Content-Transfer-Encoding that changes its
// bytes (base64, quoted-printable; not 7bit, 8bit or binary:
// identityCoding), which paygate does not decode; either refusal names the
// field in its param, as a JSON body's does. A text field, and a part's
// headers (an upload's filename), holding the end user get the user's hash
// in its place (u_anonymous under drop). Every other byte, the boundary
// and the files' content included, stays as the bot sent it. user is the
// end user the request speaks for (the OpenID header, else the "user"
// field, else a metadata field naming an OpenID: formMetadataOpenID, else
// the query's: queryMetadataOpenID): the rest of the request (its query, its Accept and Content-Type)
// is kept from it as a JSON body's request is.
func (s *Server) passthroughForm(r *http.Request, body []byte, boundary string) ([]byte, string, string, *apiError) {
	parts, err := splitForm(body, boundary)
	if err != nil {
		return nil, "", "", badRequest("paygate: " + err.Error() + "; send the form as HTTP client libraries write one")
	}
	modelAt, userAt, idsAt := -1, -1, [...]int{-1, -1}
	var metadata []int // the metadata fields, which may be many
	var text []int     // the other text fields (a transcription's prompt), encoded or not
	for i, p := range parts {
		var at *int
		switch p.name {
		case "model":
			at = &modelAt
		case "user":
			at = &userAt
		case "safety_identifier":
			at = &idsAt[0]
		case "prompt_cache_key":
			at = &idsAt[1]
		default:
			if name := formCaseVariant(p.name); name != "" {
				// A parser that ignores case (ASP.NET's binding) reads it
				// as the field paygate reads, as a JSON body's member
				// so spelled is refused: sent, another model ran, or
				// an OpenID in it reached the provider.
				return nil, "", "", paramError(name, fmt.Sprintf("paygate: the form field %q is %q to some providers (their form parsers ignore case); spell it %q", p.name, name, name))
			}
			if metadataField(p.name) {
				if p.encoded {
					return nil, "", "", paramError(p.name, fmt.Sprintf("paygate: the form field %q has a Content-Transfer-Encoding that changes its bytes; send it as plain text", p.name))
				}
				metadata = append(metadata, i)
			} else if !p.file {
				text = append(text, i)
			}
			continue
		}
		if *at >= 0 {
			return nil, "", "", paramError(p.name, fmt.Sprintf("paygate: the form field %q appears more than once; send it once", p.name))
		}
		if p.encoded {
			return nil, "", "", paramError(p.name, fmt.Sprintf("paygate: the form field %q has a Content-Transfer-Encoding that changes its bytes; send it as plain text", p.name))
		}
		*at = i
	}
	// repl holds each part's new content; drop marks the parts removed.
	repl := make([][]byte, len(parts))
	drop := make([]bool, len(parts))
	changed := false
	model := ""
	if modelAt >= 0 {
		p := parts[modelAt]
		model = string(body[p.content:p.end])
		if model != "" && !s.up.HasModel(model) {
			return nil, "", "", modelNotFound(model)
		}
		// An empty model names none: routed to the first model's
		// targets, it reaches them as sent, as a JSON body's does
		// (failover's patch).
		if up, ok := s.upstreamModel(model); ok {
			repl[modelAt], changed = []byte(up), true
		}
	}
	client := reqInfo(r).client.Name
	bodyUser := ""
	if userAt >= 0 {
		p := parts[userAt]
		bodyUser = string(body[p.content:p.end])
	}
	user := endUser(r.Header, bodyUser)
	if user == "" {
		// A metadata OpenID of a bot that names its user nowhere else,
		// as a JSON body's (metadataOpenID): without it the form had no
		// end user, and a text field or the query naming it took the
		// OpenID to the provider.
		user = formMetadataOpenID(body, parts, metadata)
	}
	if user == "" {
		// Named by the query alone, as a JSON body's may be.
		user = queryMetadataOpenID("?" + r.URL.RawQuery)
	}
	if user == "" {
		// Named in a header of another name alone (X-OpenID), as a JSON
		// body's may be (otherOpenIDHeader).
		user = otherOpenIDHeader(r.Header)
	}
	privacy := s.forwardPrivacy(user)
	if userAt >= 0 {
		changed = true
		if v, ok := privacy.Forward(client, user); ok && user != "" {
			repl[userAt] = []byte(v)
		} else {
			drop[userAt] = true
		}
	}
	// identifier rewrites part i, whose value is value, as Identifier says.
	identifier := func(i int, value string) {
		v, ok := privacy.Identifier(client, value)
		switch {
		case !ok:
			drop[i], changed = true, true
		case v != value:
			repl[i], changed = []byte(v), true
		}
	}
	for _, i := range idsAt {
		if i >= 0 {
			identifier(i, string(body[parts[i].content:parts[i].end]))
		}
	}
	for _, i := range metadata {
		// A value holding the end user inside ("wx:<openid>") gives the
		// OpenID away as surely as one that is it: the user's hash takes
		// its place there, or the field goes under drop.
		if user != "" && interceptors.HoldsUser(parts[i].name, user) {
			// A field keyed by the OpenID (metadata[wx:<openid>]) names
			// the user in its name, which is not rewritten: not sent,
			// unless forward_user keeps the user.
			if h, ok := privacy.Identifier(client, user); !ok || h != user {
				drop[i], changed = true, true
			}
			continue
		}
		v := string(body[parts[i].content:parts[i].end])
		if parts[i].name == "metadata" && metadataOfJSON(v, user) {
			// A field of JSON ({"wx_openid": …}, or one that may spell
			// the end user through an escape): rewritten as a JSON
			// body's metadata is.
			if mv, ok := interceptors.RewriteMetadata(v, interceptors.Upstream{Client: client, EndUser: user, Privacy: privacy}); !ok {
				drop[i], changed = true, true
			} else if mv != v {
				repl[i], changed = []byte(mv), true
			}
		} else if v != "" && v != user && metadataUserIDParam(parts[i].name) {
			// Another's id (metadata[wx_openid], the sharer's; a list
			// holding the end user's beside another's), or the only one
			// of a form naming no user elsewhere: the hash of its own
			// value, as a JSON body's member gets.
			identifier(i, v)
		} else if user != "" && interceptors.HoldsUser(v, user) {
			h, ok := privacy.Identifier(client, user)
			switch hv := interceptors.ReplaceUser(v, user, h); {
			case !ok:
				drop[i], changed = true, true
			case hv != v:
				repl[i], changed = []byte(hv), true
			}
		}
	}
	// A text field holding the end user ("Speaker: <openid>") gives the
	// OpenID away as a JSON body's text would: the user's hash, or
	// interceptors.DroppedUser, takes its place (interceptors'
	// usertext.go, whose limits hold here too: an id under 16 bytes is
	// left in text). So does a part's headers: an upload named after the
	// user (a voice message saved as "<openid>_<msgid>.amr") or a field
	// so named. A file's content is the bot's upload, sent as it is. The
	// UnionID a header names (unionIDHeader) is taken out the same way, by
	// the hash of its own value, as a JSON body's text has it
	// (withoutUnionID).
	var headers [][]byte // each part's new headers, nil where unchanged
	for n, id := range [...]string{user, unionIDHeader(r.Header)} {
		if !interceptors.UserTakenAnywhere(id) || privacy.Mode == "keep" || n > 0 && id == user {
			continue
		}
		h := interceptors.DroppedUser
		if privacy.Mode == "hash" {
			h, _ = privacy.Identifier(client, id)
		}
		for _, i := range text {
			v := string(body[parts[i].content:parts[i].end])
			if repl[i] != nil {
				v = string(repl[i])
			}
			if interceptors.HoldsUser(v, id) {
				if parts[i].encoded {
					// Quoted-printable keeps an OpenID's bytes as they
					// are; paygate does not decode it to rewrite it.
					return nil, "", "", paramError(parts[i].name, fmt.Sprintf("paygate: the form field %q holds the end user's id in a Content-Transfer-Encoding that changes its bytes; send it as plain text", parts[i].name))
				}
				repl[i], changed = []byte(interceptors.ReplaceUser(v, id, h)), true
			}
		}
		for i, p := range parts {
			v := string(body[p.delim:p.content])
			if headers != nil && headers[i] != nil {
				v = string(headers[i])
			}
			if !drop[i] && interceptors.HoldsUser(v, id) {
				if headers == nil {
					headers = make([][]byte, len(parts))
				}
				headers[i], changed = []byte(interceptors.ReplaceUser(v, id, h)), true
			}
		}
	}
	if !changed {
		return body, model, user, nil
	}
	out := make([]byte, 0, len(body)+64)
	first := true
	for i, p := range parts {
		if drop[i] {
			continue
		}
		if !first {
			out = append(out, "\r\n"...)
		}
		first = false
		if headers != nil && headers[i] != nil {
			out = append(out, headers[i]...)
		} else {
			out = append(out, body[p.delim:p.content]...)
		}
		if repl[i] != nil {
			out = append(out, repl[i]...)
		} else {
			out = append(out, body[p.content:p.end]...)
		}
	}
	tail := body[parts[len(parts)-1].end:] // "\r\n--boundary--" and a CRLF
	if first {
		tail = tail[2:] // no part is left: the close delimiter opens the body
	}
	return append(out, tail...), model, user, nil
}

// formMetadataOpenID is the value of the first of a form's metadata fields
// (at) that names a key saying OpenID (interceptors.OpenIDLike) at the top
// of the metadata, as metadataOpenID reads a JSON body's: metadata[<key>],
// or a key of a "metadata" field of JSON; "" for none.
func formMetadataOpenID(body []byte, parts []formPart, at []int) string {
	for _, i := range at {
		p := parts[i]
		v := string(body[p.content:p.end])
		if p.name == "metadata" {
			if gjson.Valid(v) {
				if id := metadataOpenID(v); id != "" {
					return id
				}
			}
			continue
		}
		key := strings.TrimSuffix(strings.TrimPrefix(p.name, "metadata["), "]")
		if v != "" && !strings.ContainsAny(key, "[]") && interceptors.OpenIDLike(key) {
			return v
		}
	}
	return ""
}

// metadataOfJSON reports whether v, a form's "metadata" field, is JSON
// that interceptors.RewriteMetadata must read as a JSON body's metadata
// is: one naming a user's id (interceptors.NestsUserID), or, with an end
// user, an object or array holding an escape, behind which the user may
// be spelled ("wx:\u006fWx…"). Read as raw text the escape hid the
// OpenID, and a provider decoding the field read it.
func metadataOfJSON(v, user string) bool {
	if interceptors.NestsUserID(v) {
		return true
	}
	t := strings.TrimSpace(v)
	return user != "" && t != "" && (t[0] == '{' || t[0] == '[') && strings.IndexByte(t, '\\') >= 0 && gjson.Valid(t)
}

// formCaseVariant is the field paygate reads (model, user,
// safety_identifier, prompt_cache_key, metadata or a metadata[key]) that
// name spells in another case, or "" when it spells none so.
func formCaseVariant(name string) string {
	head, _, _ := strings.Cut(name, "[")
	for _, f := range [...]string{"model", "user", "safety_identifier", "prompt_cache_key", "metadata"} {
		if strings.EqualFold(head, f) && head != f {
			return f
		}
	}
	return ""
}

// metadataField reports a form field that carries a member of "metadata":
// "metadata" itself or "metadata[key]", as the OpenAI SDKs write an object
// into a form.
func metadataField(name string) bool {
	return name == "metadata" || strings.HasPrefix(name, "metadata[")
}

// upstreamModel is the name the targets of a public model know it by. A
// passthrough request fails over only between targets that serve the
// first target's upstream model (failover.Request.SameUpstreamModel), so
// one name is right for every target; failover rewrites "model" in JSON
// bodies only.
func (s *Server) upstreamModel(name string) (string, bool) {
	for _, m := range s.cfg.Models {
		if m.Name == name && len(m.Targets) > 0 {
			return m.Targets[0].Model, true
		}
	}
	return "", false
}

// formPart is one part of a multipart body, as offsets into the body.
type formPart struct {
	delim   int    // its delimiter line, "--boundary\r\n"
	content int    // its content, after the headers' blank line
	end     int    // the end of its content, where "\r\n--boundary" starts
	name    string // the form field name of its Content-Disposition
	encoded bool   // it has a Content-Transfer-Encoding that is not identityCoding
	file    bool   // its Content-Disposition has a filename: an upload, not a text field
}

// errForm is a multipart body paygate does not forward.
var errForm = errors.New("multipart body")

// formBoundary is the boundary of a multipart/form-data Content-Type; ok
// is false for any other type. A Content-Type that names multipart/form-data
// but does not parse is an error: the provider may still read the body as
// a form.
func formBoundary(contentType string) (string, bool, error) {
	if !mediaTypeIs(contentType, "multipart/form-data") {
		return "", false, nil
	}
	_, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return "", true, fmt.Errorf("%w: its Content-Type does not parse: %v", errForm, err)
	}
	b := params["boundary"]
	if b == "" || len(b) > 70 {
		return "", true, fmt.Errorf("%w: its Content-Type needs a boundary of 1 to 70 characters", errForm)
	}
	return b, true, nil
}

// urlEncodedForm reports whether contentType is
// application/x-www-form-urlencoded.
func urlEncodedForm(contentType string) bool {
	return mediaTypeIs(contentType, "application/x-www-form-urlencoded")
}

// mediaTypeIs reports whether contentType names the media type mt, in any
// case and whatever its parameters.
func mediaTypeIs(contentType, mt string) bool {
	head, _, _ := strings.Cut(contentType, ";")
	return strings.EqualFold(strings.TrimSpace(head), mt)
}

// splitForm splits a multipart body into its parts. The body must be
// written as every client library writes one: no preamble, CRLF line
// ends, a delimiter line that is exactly "--boundary", the boundary found
// nowhere but in delimiter lines, headers one to a line, and nothing after
// the close delimiter but CRLFs (blankLines).
func splitForm(body []byte, boundary string) ([]formPart, error) {
	dash := []byte("--" + boundary)
	if !bytes.HasPrefix(body, dash) {
		return nil, fmt.Errorf("%w: it must start with its boundary", errForm)
	}
	var parts []formPart
	at := 0 // the current delimiter line
	for {
		rest := body[at+len(dash):]
		if bytes.HasPrefix(rest, []byte("--")) {
			if len(parts) == 0 {
				return nil, fmt.Errorf("%w: it has no part", errForm)
			}
			if !blankLines(rest[2:]) {
				return nil, fmt.Errorf("%w: it has bytes after its close delimiter", errForm)
			}
			break
		}
		if !bytes.HasPrefix(rest, []byte("\r\n")) {
			return nil, fmt.Errorf("%w: a delimiter line is not the boundary alone", errForm)
		}
		p := formPart{delim: at}
		hdrAt := at + len(dash) + 2
		hdrLen := 0 // the header block, with each line's CRLF
		if !bytes.HasPrefix(body[hdrAt:], []byte("\r\n")) {
			i := bytes.Index(body[hdrAt:], []byte("\r\n\r\n"))
			if i < 0 {
				return nil, fmt.Errorf("%w: a part's headers do not end", errForm)
			}
			hdrLen = i + 2
		}
		if err := p.readHeaders(body[hdrAt : hdrAt+hdrLen]); err != nil {
			return nil, err
		}
		p.content = hdrAt + hdrLen + 2
		i := bytes.Index(body[p.content:], append([]byte("\r\n"), dash...))
		if i < 0 {
			return nil, fmt.Errorf("%w: it has no close delimiter", errForm)
		}
		p.end = p.content + i
		parts = append(parts, p)
		at = p.end + 2
	}
	// Any other "--boundary" (after a bare LF or CR, in a header, with
	// padding) is a delimiter to some parser and content to paygate.
	if bytes.Count(body, dash) != len(parts)+1 {
		return nil, fmt.Errorf("%w: its boundary appears outside its delimiter lines", errForm)
	}
	return parts, nil
}

// blankLines reports whether what follows a form's close delimiter is
// nothing or CRLFs alone: the Node openai SDK v4 (form-data-encoder) and
// axios end a form with "--boundary--\r\n\r\n", and refused, every
// upload those bots made was a 400. Such an epilogue holds nothing any
// parser could take for a part; any other byte there is still refused.
func blankLines(tail []byte) bool {
	for ; len(tail) > 0; tail = tail[2:] {
		if !bytes.HasPrefix(tail, []byte("\r\n")) {
			return false
		}
	}
	return true
}

// identityCoding reports a Content-Transfer-Encoding that leaves the
// part's bytes as they are (7bit, 8bit, binary; RFC 2045), so that every
// parser reads the value paygate reads. Apache HttpClient 4's
// MultipartEntityBuilder writes "8bit" on each text field by default:
// refused, every upload of such a bot was a 400. base64 and
// quoted-printable, which a provider's parser may decode, are not.
func identityCoding(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "7bit", "8bit", "binary":
		return true
	}
	return false
}

// readHeaders reads a part's header block (each line with its CRLF) for
// its form name and Content-Transfer-Encoding.
func (p *formPart) readHeaders(block []byte) error {
	disposition := 0
	for line := range strings.SplitSeq(strings.TrimSuffix(string(block), "\r\n"), "\r\n") {
		if line == "" {
			continue // block is empty: the part has no headers
		}
		key, value, ok := strings.Cut(line, ":")
		if !ok || !isToken(key) || strings.ContainsFunc(value, func(c rune) bool { return c < ' ' && c != '\t' || c == 0x7f }) {
			return fmt.Errorf("%w: a part has a header line that is not \"Name: value\" (folded, a bare CR or LF, a control character)", errForm)
		}
		switch {
		case strings.EqualFold(key, "Content-Disposition"):
			disposition++
			_, params, err := mime.ParseMediaType(value)
			if err != nil {
				return fmt.Errorf("%w: a part's Content-Disposition does not parse: %v", errForm, err)
			}
			if hasParamPrefix(value, "name*") {
				return fmt.Errorf("%w: a part's name is in RFC 2231 form (name*), which parsers read differently", errForm)
			}
			p.name = params["name"]
			_, p.file = params["filename"]
		case strings.EqualFold(key, "Content-Transfer-Encoding"):
			p.encoded = p.encoded || !identityCoding(value)
		}
	}
	if disposition > 1 {
		return fmt.Errorf("%w: a part has more than one Content-Disposition", errForm)
	}
	return nil
}

// hasParamPrefix reports whether a header value that mime.ParseMediaType
// accepted has a parameter whose key starts with prefix, in any case. It
// is read from the raw value: ParseMediaType folds name* and name*0 into
// "name".
func hasParamPrefix(value, prefix string) bool {
	quoted, escaped := false, false
	for i := 0; i < len(value); i++ {
		c := value[i]
		switch {
		case escaped:
			escaped = false
		case quoted && c == '\\':
			escaped = true
		case c == '"':
			quoted = !quoted
		case !quoted && c == ';':
			key := strings.TrimLeft(value[i+1:], " \t")
			if len(key) >= len(prefix) && strings.EqualFold(key[:len(prefix)], prefix) {
				return true
			}
		}
	}
	return false
}

// isToken reports whether s is an HTTP token (RFC 9110 section 5.6.2), the
// only header names every parser reads alike.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}
