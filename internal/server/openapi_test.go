package server_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	switchyard "github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/server"
	"github.com/switchyard-dev/switchyard/internal/server/servertest"
	"github.com/switchyard-dev/switchyard/internal/testdb"
)

// openapiURL names the OpenAPI document inside the schema compiler; nothing is
// ever fetched from it.
const openapiURL = "https://switchyard.invalid/v1/openapi.json"

// openapiMethods are the operation keys of an OpenAPI path item.
var openapiMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// apiDoc is the parsed OpenAPI document with a JSON Schema 2020-12 compiler
// that holds the whole document as one resource, so that every $ref in a
// schema resolves against it.
type apiDoc struct {
	root map[string]any

	mu       sync.Mutex // the compiler is not safe for concurrent use
	compiler *jsonschema.Compiler
	schemas  map[string]*jsonschema.Schema
}

// loadDoc parses the served document. With strict, every object schema
// that lists properties and says nothing about others is closed
// (additionalProperties false) for the compiler: clients may ignore fields
// the document lacks, but the document must not lack fields the server
// sends, so the response tests fail when the two drift apart.
func loadDoc(t testing.TB, strict bool) *apiDoc {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(server.OpenAPIDocument()))
	if err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	root, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("openapi.json is a %T, not an object", v)
	}
	forCompiler := v
	if strict {
		// Parse again for an independent copy to close.
		forCompiler, _ = jsonschema.UnmarshalJSON(bytes.NewReader(server.OpenAPIDocument()))
		comps, _ := forCompiler.(map[string]any)["components"].(map[string]any)
		closeObjects(comps["schemas"])
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(openapiURL, forCompiler); err != nil {
		t.Fatalf("add openapi.json to the schema compiler: %v", err)
	}
	return &apiDoc{root: root, compiler: c, schemas: map[string]*jsonschema.Schema{}}
}

// closeObjects sets additionalProperties false on every schema under v
// that has properties and no additionalProperties.
func closeObjects(v any) {
	switch v := v.(type) {
	case map[string]any:
		if _, ok := v["properties"].(map[string]any); ok {
			if _, set := v["additionalProperties"]; !set {
				v["additionalProperties"] = false
			}
		}
		for _, e := range v {
			closeObjects(e)
		}
	case []any:
		for _, e := range v {
			closeObjects(e)
		}
	}
}

// pointer builds a JSON pointer fragment ("#/a/b") from unescaped tokens.
func pointer(tokens ...string) string {
	var b strings.Builder
	b.WriteString("#")
	for _, tok := range tokens {
		b.WriteString("/")
		b.WriteString(escapeToken(tok))
	}
	return b.String()
}

// escapeToken escapes one JSON pointer token (RFC 6901).
func escapeToken(tok string) string {
	return strings.ReplaceAll(strings.ReplaceAll(tok, "~", "~0"), "/", "~1")
}

// lookup resolves a JSON pointer fragment against the document.
func (d *apiDoc) lookup(ptr string) (any, error) {
	if ptr != "#" && !strings.HasPrefix(ptr, "#/") {
		return nil, fmt.Errorf("%q is not a local JSON pointer", ptr)
	}
	var v any = d.root
	if ptr == "#" {
		return v, nil
	}
	for _, tok := range strings.Split(ptr[2:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch cur := v.(type) {
		case map[string]any:
			next, ok := cur[tok]
			if !ok {
				return nil, fmt.Errorf("%s: no %q", ptr, tok)
			}
			v = next
		case []any:
			var i int
			if _, err := fmt.Sscanf(tok, "%d", &i); err != nil || i < 0 || i >= len(cur) {
				return nil, fmt.Errorf("%s: no index %q", ptr, tok)
			}
			v = cur[i]
		default:
			return nil, fmt.Errorf("%s: %q of a %T", ptr, tok, v)
		}
	}
	return v, nil
}

// deref follows Reference Objects from the value at ptr and returns the
// object they end at and its pointer.
func (d *apiDoc) deref(ptr string) (map[string]any, string, error) {
	for range 10 {
		v, err := d.lookup(ptr)
		if err != nil {
			return nil, "", err
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, "", fmt.Errorf("%s is a %T, not an object", ptr, v)
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return m, ptr, nil
		}
		ptr = ref
	}
	return nil, "", fmt.Errorf("%s: too many references", ptr)
}

// schema compiles the schema at ptr, once.
func (d *apiDoc) schema(ptr string) (*jsonschema.Schema, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s, ok := d.schemas[ptr]; ok {
		return s, nil
	}
	// The compiler percent-decodes the fragment.
	frag := strings.Split(strings.TrimPrefix(ptr, "#"), "/")
	for i := range frag {
		frag[i] = url.PathEscape(frag[i])
	}
	s, err := d.compiler.Compile(openapiURL + "#" + strings.Join(frag, "/"))
	if err != nil {
		return nil, err
	}
	d.schemas[ptr] = s
	return s, nil
}

// operation returns the pointer of the operation for method and path (an
// OpenAPI path template), or "" if the document has none.
func (d *apiDoc) operation(method, path string) string {
	paths, _ := d.root["paths"].(map[string]any)
	item, _ := paths[path].(map[string]any)
	if _, ok := item[strings.ToLower(method)].(map[string]any); !ok {
		return ""
	}
	return pointer("paths", path, strings.ToLower(method))
}

// operations lists every operation as "METHOD /path".
func (d *apiDoc) operations() []string {
	var ops []string
	paths, _ := d.root["paths"].(map[string]any)
	for p, item := range paths {
		item, _ := item.(map[string]any)
		for _, m := range openapiMethods {
			if _, ok := item[m]; ok {
				ops = append(ops, strings.ToUpper(m)+" "+p)
			}
		}
	}
	sort.Strings(ops)
	return ops
}

var (
	pathTemplateParam = regexp.MustCompile(`\{([^}]*)\}`)
	responseKey       = regexp.MustCompile(`^([1-5][0-9][0-9]|[1-5]XX|default)$`)
)

// TestOpenAPIDocument checks the document is OpenAPI 3.1 in shape: the
// fields every operation needs, path parameters that match the templates,
// references that resolve and schemas that compile as JSON Schema 2020-12.
func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	d := loadDoc(t, false)

	if v := d.root["openapi"]; v != "3.1.0" {
		t.Errorf("openapi = %v, want 3.1.0", v)
	}
	info, _ := d.root["info"].(map[string]any)
	if info["title"] != "Switchyard" || info["version"] != "1" || info["description"] == "" {
		t.Errorf("info = %v, want title Switchyard, version 1 and a description", info)
	}
	comps, _ := d.root["components"].(map[string]any)
	schemes, _ := comps["securitySchemes"].(map[string]any)
	checkSecurity := func(where string, v any) {
		reqs, ok := v.([]any)
		if !ok {
			t.Errorf("%s: security is a %T, not a list", where, v)
			return
		}
		for _, r := range reqs {
			r, _ := r.(map[string]any)
			for name := range r {
				if _, ok := schemes[name]; !ok {
					t.Errorf("%s: security scheme %q is not in components.securitySchemes", where, name)
				}
			}
		}
	}
	checkSecurity("document", d.root["security"])

	// Every reference resolves.
	var walk func(ptr string, v any)
	walk = func(ptr string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				if _, err := d.lookup(ref); err != nil {
					t.Errorf("%s: $ref %q does not resolve: %v", ptr, ref, err)
				}
			}
			for k, e := range v {
				walk(ptr+"/"+escapeToken(k), e)
			}
		case []any:
			for i, e := range v {
				walk(fmt.Sprintf("%s/%d", ptr, i), e)
			}
		}
	}
	walk("#", d.root)

	// Operations.
	ids := map[string]string{}
	paths, _ := d.root["paths"].(map[string]any)
	if len(paths) == 0 {
		t.Fatal("the document has no paths")
	}
	for path, item := range paths {
		item, _ := item.(map[string]any)
		inTemplate := map[string]bool{}
		for _, m := range pathTemplateParam.FindAllStringSubmatch(path, -1) {
			inTemplate[m[1]] = true
		}
		for _, method := range openapiMethods {
			if _, ok := item[method]; !ok {
				continue
			}
			opPtr := pointer("paths", path, method)
			op, _, err := d.deref(opPtr)
			where := strings.ToUpper(method) + " " + path
			if err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			id, _ := op["operationId"].(string)
			if id == "" {
				t.Errorf("%s: no operationId", where)
			} else if other, dup := ids[id]; dup {
				t.Errorf("%s: operationId %q is also %s's", where, id, other)
			} else {
				ids[id] = where
			}
			if s, _ := op["summary"].(string); s == "" {
				t.Errorf("%s: no summary", where)
			}
			if sec, ok := op["security"]; ok {
				checkSecurity(where, sec)
			}

			// Path parameters: path-level and operation-level, by name.
			declared := map[string]bool{}
			for _, level := range []string{pointer("paths", path, "parameters"), opPtr + "/parameters"} {
				v, err := d.lookup(level)
				if err != nil {
					continue // no parameters at this level
				}
				list, _ := v.([]any)
				for i := range list {
					p, _, err := d.deref(fmt.Sprintf("%s/%d", level, i))
					if err != nil {
						t.Errorf("%s: parameter %d: %v", where, i, err)
						continue
					}
					name, _ := p["name"].(string)
					in, _ := p["in"].(string)
					if name == "" || in == "" {
						t.Errorf("%s: parameter %d has no name or no in", where, i)
					}
					if _, ok := p["schema"]; !ok {
						t.Errorf("%s: parameter %q has no schema", where, name)
					}
					if in == "path" {
						declared[name] = true
						if p["required"] != true {
							t.Errorf("%s: path parameter %q is not required: true", where, name)
						}
						if !inTemplate[name] {
							t.Errorf("%s: path parameter %q is not in the path", where, name)
						}
					}
				}
			}
			for name := range inTemplate {
				if !declared[name] {
					t.Errorf("%s: {%s} has no path parameter", where, name)
				}
			}

			if _, ok := op["requestBody"]; ok {
				body, _, err := d.deref(opPtr + "/requestBody")
				if err != nil {
					t.Errorf("%s: requestBody: %v", where, err)
				} else if content, _ := body["content"].(map[string]any); len(content) == 0 {
					t.Errorf("%s: requestBody has no content", where)
				} else if _, json := content["application/json"]; !json && content["*/*"] != nil {
					// Raw bytes of any type (an inbound webhook, verified
					// by its signature): not decoded, so no fields to refuse.
				} else if sch, _, err := d.deref(opPtr + "/requestBody/content/application~1json/schema"); err != nil {
					t.Errorf("%s: requestBody: %v", where, err)
				} else if sch["additionalProperties"] != false {
					// The server refuses unknown fields; the schema says so.
					t.Errorf("%s: the request body schema lacks additionalProperties: false", where)
				}
			}

			responses, _ := op["responses"].(map[string]any)
			if len(responses) == 0 {
				t.Errorf("%s: no responses", where)
			}
			for code := range responses {
				if !responseKey.MatchString(code) {
					t.Errorf("%s: response key %q is not a status code", where, code)
				}
				r, _, err := d.deref(opPtr + "/responses/" + code)
				if err != nil {
					t.Errorf("%s %s: %v", where, code, err)
					continue
				}
				if s, _ := r["description"].(string); s == "" {
					t.Errorf("%s %s: no description", where, code)
				}
				// The server sets X-Request-Id on every answer.
				headers, _ := r["headers"].(map[string]any)
				if h, _ := headers["X-Request-Id"].(map[string]any); h["$ref"] != "#/components/headers/X-Request-Id" {
					t.Errorf("%s %s: X-Request-Id is not among its headers", where, code)
				}
				if code >= "400" && code != "default" {
					content, _ := r["content"].(map[string]any)
					mt, _ := content["application/json"].(map[string]any)
					if ref, _ := mt["schema"].(map[string]any)["$ref"].(string); ref != "#/components/schemas/Error" {
						t.Errorf("%s %s: the error response's schema is not the Error schema", where, code)
					}
				}
			}
		}
	}

	// Every schema compiles: the named ones and every schema a parameter,
	// header, request body or response holds.
	var schemaPtrs []string
	schemas, _ := comps["schemas"].(map[string]any)
	for name := range schemas {
		schemaPtrs = append(schemaPtrs, pointer("components", "schemas", name))
	}
	var collect func(ptr string, v any)
	collect = func(ptr string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				p := ptr + "/" + escapeToken(k)
				if k == "schema" {
					schemaPtrs = append(schemaPtrs, p)
					continue
				}
				collect(p, e)
			}
		case []any:
			for i, e := range v {
				collect(fmt.Sprintf("%s/%d", ptr, i), e)
			}
		}
	}
	collect("#/paths", d.root["paths"])
	for _, section := range []string{"parameters", "headers", "requestBodies", "responses"} {
		collect(pointer("components", section), comps[section])
	}
	sort.Strings(schemaPtrs)
	for _, ptr := range schemaPtrs {
		if _, err := d.schema(ptr); err != nil {
			t.Errorf("schema %s does not compile: %v", ptr, err)
		}
	}
	if len(schemas) == 0 {
		t.Error("the document has no components.schemas")
	}
}

// matchPath finds the document's path template that path (no query)
// matches for method. Like the server's mux, a literal segment beats a
// wildcard: /v1/jobs/batch is not /v1/jobs/{id}.
func (d *apiDoc) matchPath(method, path string) (template string, ok bool) {
	segs := strings.Split(path, "/")
	best := -1
	paths, _ := d.root["paths"].(map[string]any)
	for tmpl := range paths {
		if d.operation(method, tmpl) == "" {
			continue
		}
		tsegs := strings.Split(tmpl, "/")
		if len(tsegs) != len(segs) {
			continue
		}
		literal := 0
		for i, ts := range tsegs {
			if strings.HasPrefix(ts, "{") && strings.HasSuffix(ts, "}") {
				if segs[i] == "" {
					literal = -1
					break
				}
				continue
			}
			if ts != segs[i] {
				literal = -1
				break
			}
			literal++
		}
		if literal > best {
			best, template = literal, tmpl
		}
	}
	return template, best >= 0
}

// exchange is one request sent to the server and its answer.
type exchange struct {
	method, path string            // path may carry a query
	noKey        bool              // send no Authorization header
	key          string            // bearer key instead of the admin key
	contentType  string            // of body; "" with a body means application/json
	body         string            // "" sends none
	requestID    string            // sent as X-Request-Id; "" sends none
	tenant       string            // sent as Switchyard-Tenant; "" sends none
	headers      map[string]string // further request headers
	// docRejects says the document's request schema must reject body (the
	// server refuses it for a reason the schema can express).
	docRejects bool
	// unrouted: no operation serves the request (an unknown path or
	// method); the answer must still be the Error schema.
	unrouted bool

	status  int
	header  http.Header
	resp    []byte
	decoded any // the answer's JSON, or nil
}

// obj is the answer's JSON object, or an empty one.
func (x *exchange) obj() map[string]any {
	m, _ := x.decoded.(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	return m
}

// openapiRunner sends requests to a started server and holds each answer to
// the document.
type openapiRunner struct {
	t        *testing.T
	d        *apiDoc
	hc       *http.Client
	baseURL  string
	adminKey string
}

// do sends x and checks the answer against the document: the status must
// be documented for the operation, the body must validate against the
// schema documented for that status and content type, required headers
// must be present, and an error's request_id must be its X-Request-Id. A
// request body the server accepted must validate against the documented
// request schema too. want, if not 0, is the status the test expects.
func (o *openapiRunner) do(want int, x *exchange) *exchange {
	t, d := o.t, o.d
	t.Helper()
	var body io.Reader
	if x.body != "" {
		body = strings.NewReader(x.body)
	}
	req, err := http.NewRequestWithContext(t.Context(), x.method, o.baseURL+x.path, body)
	if err != nil {
		t.Fatalf("%s %s: %v", x.method, x.path, err)
	}
	if x.body != "" {
		ct := x.contentType
		if ct == "" {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	switch {
	case x.noKey:
	case x.key != "":
		req.Header.Set("Authorization", "Bearer "+x.key)
	default:
		req.Header.Set("Authorization", "Bearer "+o.adminKey)
	}
	if x.requestID != "" {
		req.Header.Set("X-Request-Id", x.requestID)
	}
	if x.tenant != "" {
		req.Header.Set("Switchyard-Tenant", x.tenant)
	}
	for name, v := range x.headers {
		req.Header.Set(name, v)
	}
	resp, err := o.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", x.method, x.path, err)
	}
	x.resp, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("%s %s: read answer: %v", x.method, x.path, err)
	}
	x.status, x.header = resp.StatusCode, resp.Header
	where := fmt.Sprintf("%s %s → %d", x.method, x.path, x.status)
	if want != 0 && x.status != want {
		t.Errorf("%s, want %d; body: %s", where, want, x.resp)
	}
	if v, err := jsonschema.UnmarshalJSON(bytes.NewReader(x.resp)); err == nil {
		x.decoded = v
	}
	if x.header.Get("X-Request-Id") == "" {
		t.Errorf("%s: no X-Request-Id header", where)
	}
	if x.requestID != "" && x.header.Get("X-Request-Id") != x.requestID {
		t.Errorf("%s: X-Request-Id %q, want the caller's %q", where, x.header.Get("X-Request-Id"), x.requestID)
	}

	if x.unrouted {
		d.validate(t, where+": answer", pointer("components", "schemas", "Error"), x.decoded, x.resp)
		o.checkRequestID(where, x)
		return x
	}
	path, _, _ := strings.Cut(x.path, "?")
	tmpl, ok := d.matchPath(x.method, path)
	if !ok {
		t.Fatalf("%s: the document has no operation for %s %s", where, x.method, path)
	}
	opPtr := d.operation(x.method, tmpl)
	contentType := x.contentType
	if x.headers["ce-specversion"] != "" {
		contentType = "*/*" // a binary CloudEvent: the body is its data
	}
	if x.docRejects {
		d.checkRequest(t, where, opPtr, contentType, x.body, false)
	}
	respPtr := opPtr + "/responses/" + strconv.Itoa(x.status)
	if _, err := d.lookup(respPtr); err != nil {
		t.Errorf("%s: status %d is not documented for %s %s; body: %s", where, x.status, x.method, tmpl, x.resp)
		return x
	}
	r, rPtr, err := d.deref(respPtr)
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}

	// Headers the document says are always there.
	headers, _ := r["headers"].(map[string]any)
	for name := range headers {
		h, _, err := d.deref(rPtr + "/headers/" + escapeToken(name))
		if err != nil {
			t.Fatalf("%s: header %s: %v", where, name, err)
		}
		if h["required"] == true && x.header.Get(name) == "" {
			t.Errorf("%s: no %s header, which the document requires", where, name)
		}
	}

	// The body.
	content, _ := r["content"].(map[string]any)
	if len(content) == 0 {
		if len(x.resp) != 0 {
			t.Errorf("%s: the document gives no content, but the answer has %d bytes: %s", where, len(x.resp), x.resp)
		}
	} else {
		mt, _, _ := mime.ParseMediaType(x.header.Get("Content-Type"))
		if _, ok := content[mt]; !ok {
			t.Errorf("%s: Content-Type %q is not documented (documented: %v)", where, x.header.Get("Content-Type"), sortedKeys(content))
		} else if mt == "application/json" {
			if x.decoded == nil {
				t.Errorf("%s: the answer is not JSON: %s", where, x.resp)
			} else {
				d.validate(t, where+": answer", rPtr+"/content/application~1json/schema", x.decoded, x.resp)
			}
		}
	}
	if x.status >= 400 {
		o.checkRequestID(where, x)
	}

	// A request body the server took must be one the document allows.
	if x.body != "" && x.status < 300 {
		d.checkRequest(t, where, opPtr, contentType, x.body, true)
	}
	return x
}

// checkRequestID checks an error answer names its request as the header
// does.
func (o *openapiRunner) checkRequestID(where string, x *exchange) {
	o.t.Helper()
	e, _ := x.obj()["error"].(map[string]any)
	if id := x.header.Get("X-Request-Id"); e["request_id"] != id {
		o.t.Errorf("%s: error.request_id %v differs from X-Request-Id %q", where, e["request_id"], id)
	}
}

// checkRequest validates a request body against the operation's documented
// request schema for its content type (application/json if none is given);
// valid says whether it must pass or fail. A body the document takes as
// any media type (*/*, as binary CloudEvents) is not checked.
func (d *apiDoc) checkRequest(t *testing.T, where, opPtr, contentType, body string, valid bool) {
	t.Helper()
	rb, rbPtr, err := d.deref(opPtr + "/requestBody")
	if err != nil {
		t.Errorf("%s: the document has no request body for it: %v", where, err)
		return
	}
	mt := "application/json"
	if contentType != "" {
		mt, _, _ = mime.ParseMediaType(contentType)
	}
	content, _ := rb["content"].(map[string]any)
	if _, ok := content[mt]; !ok || mt == "*/*" {
		if _, any := content["*/*"]; any {
			return
		}
		mt = "application/json"
	}
	sch, err := d.schema(rbPtr + "/content/" + escapeToken(mt) + "/schema")
	if err != nil {
		t.Fatalf("%s: request schema: %v", where, err)
	}
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(body))
	if err != nil {
		if valid {
			t.Errorf("%s: request body is not JSON: %v", where, err)
		}
		return
	}
	err = sch.Validate(v)
	switch {
	case valid && err != nil:
		t.Errorf("%s: the server took the request body %s, but the document's schema rejects it: %v", where, body, err)
	case !valid && err == nil:
		t.Errorf("%s: the server rejected the request body %s, but the document's schema allows it", where, body)
	}
}

// validate checks v against the schema at ptr.
func (d *apiDoc) validate(t *testing.T, where, ptr string, v any, raw []byte) {
	t.Helper()
	sch, err := d.schema(ptr)
	if err != nil {
		t.Fatalf("%s: schema %s: %v", where, ptr, err)
	}
	if err := sch.Validate(v); err != nil {
		t.Errorf("%s does not match the document (%s): %v\nbody: %s", where, ptr, err, raw)
	}
}

func sortedKeys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// TestOpenAPICoversEveryRoute holds the document and the router to each
// other: every route has its operation, and every operation its route.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	t.Parallel()
	d := loadDoc(t, false)
	routed := map[string]bool{}
	for _, r := range server.Routes() {
		op := r.Method + " " + r.Pattern
		if routed[op] {
			t.Errorf("the server registers %s twice", op)
		}
		routed[op] = true
		if d.operation(r.Method, r.Pattern) == "" {
			t.Errorf("the server serves %s, but openapi.json does not document it", op)
		}
	}
	for _, op := range d.operations() {
		if !routed[op] {
			t.Errorf("openapi.json documents %s, but the server has no such route", op)
		}
	}
	if len(routed) == 0 {
		t.Fatal("server.Routes() is empty")
	}
}

// TestOpenAPIResponsesMatch exercises a real server and validates every
// answer against the schema the document gives for its route and status.
// The workers are not started, so no job changes state behind the test's
// back; it takes jobs through running with the client's remote-worker API.
func TestOpenAPIResponsesMatch(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, "sqlite:"+testdb.SQLitePath(t), servertest.Options{NotStarted: true})
	transport := &http.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	o := &openapiRunner{t: t, d: loadDoc(t, true), hc: &http.Client{Transport: transport}, baseURL: srv.URL, adminKey: srv.AdminKey}
	ctx := t.Context()

	// Public endpoints.
	o.do(200, &exchange{method: "GET", path: "/healthz", noKey: true})
	o.do(200, &exchange{method: "GET", path: "/readyz", noKey: true})
	o.do(200, &exchange{method: "GET", path: "/metrics", noKey: true})
	doc := o.do(200, &exchange{method: "GET", path: "/v1/openapi.json", noKey: true})
	if !bytes.Equal(doc.resp, server.OpenAPIDocument()) {
		t.Error("GET /v1/openapi.json does not answer the embedded document")
	}
	o.do(200, &exchange{method: "GET", path: "/healthz", noKey: true, requestID: "caller-chosen.id-1"})

	// Authentication.
	o.do(401, &exchange{method: "GET", path: "/v1/jobs", noKey: true})
	o.do(401, &exchange{method: "GET", path: "/v1/jobs", key: "not-a-key"})
	o.do(401, &exchange{method: "POST", path: "/v1/jobs", noKey: true, body: `{"kind":"noop"}`})

	// Enqueue, and enqueue again with the same unique key.
	jobA := `{"kind":"noop","queue":"oa","args":{"n":1},"priority":1,"delay":3600,"unique_key":"oa-1","max_attempts":3,"timeout":1.5,"tags":["x","y"]}`
	a := o.do(201, &exchange{method: "POST", path: "/v1/jobs", body: jobA}).obj()
	idA, _ := a["id"].(string)
	if idA == "" || a["state"] != "scheduled" || a["unique_key"] != "oa-1" || a["queue"] != "oa" {
		t.Fatalf("created job = %v, want a scheduled job of queue oa with unique_key oa-1", a)
	}
	dup := o.do(200, &exchange{method: "POST", path: "/v1/jobs", body: jobA}).obj()
	if dup["id"] != idA {
		t.Errorf("enqueue with a live unique key answered job %v, want %s", dup["id"], idA)
	}
	o.do(201, &exchange{method: "POST", path: "/v1/jobs", body: `{"kind":"sleep","queue":"oa","args":{"duration":"1ms","fail":"on purpose"},"run_at":"2030-01-02T03:04:05Z"}`})

	// A batch, one of whose jobs matches a live one.
	batch := o.do(201, &exchange{method: "POST", path: "/v1/jobs/batch", body: `{"jobs":[
		{"kind":"noop","queue":"oa","delay":3600},
		{"kind":"noop","queue":"oa","delay":3600,"tags":["x"]},
		{"kind":"noop","queue":"oa","delay":3600,"unique_key":"oa-1"}]}`}).obj()
	if items, _ := batch["items"].([]any); len(items) != 3 {
		t.Errorf("batch answered %d items, want 3", len(items))
	} else if last, _ := items[2].(map[string]any); last["existing"] != true {
		t.Errorf("batch item 2 = %v, want existing true", last)
	}

	// Get and list, page by page.
	o.do(200, &exchange{method: "GET", path: "/v1/jobs/" + idA})
	seen, cursor := 0, ""
	for page := 0; ; page++ {
		if page > 5 {
			t.Fatal("listing queue oa by 2 does not end")
		}
		path := "/v1/jobs?queue=oa&limit=2"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		p := o.do(200, &exchange{method: "GET", path: path}).obj()
		items, _ := p["items"].([]any)
		seen += len(items)
		next, _ := p["next_cursor"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	if seen != 4 {
		t.Errorf("listing queue oa found %d jobs, want 4", seen)
	}
	o.do(200, &exchange{method: "GET", path: "/v1/jobs?state=scheduled&kind=noop&tag=x"})

	// Cancel, retry, delete.
	if j := o.do(200, &exchange{method: "POST", path: "/v1/jobs/" + idA + "/cancel"}).obj(); j["state"] != "cancelled" || j["finished_at"] == nil {
		t.Errorf("cancelled job = %v, want state cancelled with finished_at", j)
	}
	o.do(409, &exchange{method: "POST", path: "/v1/jobs/" + idA + "/cancel"})
	if j := o.do(200, &exchange{method: "POST", path: "/v1/jobs/" + idA + "/retry"}).obj(); j["state"] != "available" {
		t.Errorf("retried job = %v, want state available", j)
	}
	o.do(409, &exchange{method: "POST", path: "/v1/jobs/" + idA + "/retry"})
	o.do(204, &exchange{method: "DELETE", path: "/v1/jobs/" + idA})
	o.do(404, &exchange{method: "GET", path: "/v1/jobs/" + idA})
	o.do(404, &exchange{method: "DELETE", path: "/v1/jobs/" + idA})
	o.do(404, &exchange{method: "POST", path: "/v1/jobs/" + idA + "/cancel"})
	o.do(404, &exchange{method: "POST", path: "/v1/jobs/" + idA + "/retry"})
	o.do(404, &exchange{method: "GET", path: "/v1/jobs/999999999"})
	o.do(404, &exchange{method: "GET", path: "/v1/jobs/not-an-id"})

	// A job run by hand to success: started_at, finished_at and a result.
	ok := o.do(201, &exchange{method: "POST", path: "/v1/jobs", body: `{"kind":"noop","queue":"oa-work"}`}).obj()
	leased := leaseOne(t, srv.Client, "oa-work", ok["id"])
	o.do(200, &exchange{method: "GET", path: "/v1/jobs/" + leased.ID})
	o.do(409, &exchange{method: "DELETE", path: "/v1/jobs/" + leased.ID})
	if err := srv.Client.CompleteJob(ctx, leased.ID, leased.LeaseToken, map[string]any{"done": true}); err != nil {
		t.Fatalf("complete job %s: %v", leased.ID, err)
	}
	if j := o.do(200, &exchange{method: "GET", path: "/v1/jobs/" + leased.ID}).obj(); j["state"] != "succeeded" || j["result"] == nil || j["started_at"] == nil {
		t.Errorf("completed job = %v, want succeeded with started_at and a result", j)
	}
	o.do(409, &exchange{method: "POST", path: "/v1/jobs/" + leased.ID + "/retry"})

	// A job failed by hand out of attempts: dead, with its error; then retried.
	dead := o.do(201, &exchange{method: "POST", path: "/v1/jobs", body: `{"kind":"noop","queue":"oa-work","max_attempts":1}`}).obj()
	leased = leaseOne(t, srv.Client, "oa-work", dead["id"])
	if err := srv.Client.FailJob(ctx, leased.ID, leased.LeaseToken, "boom"); err != nil {
		t.Fatalf("fail job %s: %v", leased.ID, err)
	}
	if j := o.do(200, &exchange{method: "GET", path: "/v1/jobs/" + leased.ID}).obj(); j["state"] != "dead" || len(asList(j["errors"])) != 1 {
		t.Errorf("failed job = %v, want dead with one error", j)
	}
	o.do(200, &exchange{method: "POST", path: "/v1/jobs/" + leased.ID + "/retry"})

	// Bad requests: each is refused, and where the document's schema can
	// say why, it refuses the body too.
	for _, x := range []*exchange{
		{method: "POST", path: "/v1/jobs", body: `{"kind":`},
		{method: "POST", path: "/v1/jobs", body: `{"kind":"noop"} {}`},
		{method: "POST", path: "/v1/jobs", body: " "},
		{method: "POST", path: "/v1/jobs", body: `{"kind":"noop","bogus":1}`, docRejects: true},
		{method: "POST", path: "/v1/jobs", body: `{"queue":"oa"}`, docRejects: true},
		{method: "POST", path: "/v1/jobs", body: `{"kind":"noop","priority":7}`, docRejects: true},
		{method: "POST", path: "/v1/jobs", body: `{"kind":"noop","priority":"high"}`, docRejects: true},
		{method: "POST", path: "/v1/jobs", body: `{"kind":"noop","args":[1]}`, docRejects: true},
		{method: "POST", path: "/v1/jobs", body: `{"kind":"noop","queue":"no spaces"}`, docRejects: true},
		{method: "POST", path: "/v1/jobs", body: `{"kind":"noop","delay":-1}`, docRejects: true},
		{method: "POST", path: "/v1/jobs", body: `{"kind":"noop","delay":1,"run_at":"2030-01-01T00:00:00Z"}`, docRejects: true},
		{method: "POST", path: "/v1/jobs", body: `{"kind":"noop","max_attempts":0}`, docRejects: true},
		{method: "POST", path: "/v1/jobs", body: `{"kind":"no-such-kind"}`},
		{method: "POST", path: "/v1/jobs", body: `{"kind":"sleep","args":{"duration":"soon"}}`},
		{method: "POST", path: "/v1/jobs/batch", body: `{"jobs":[]}`, docRejects: true},
		{method: "POST", path: "/v1/jobs/batch", body: `{"jobs":[{"kind":"noop"}],"extra":true}`, docRejects: true},
		{method: "POST", path: "/v1/jobs/batch", body: `{"jobs":[{"kind":"noop"},{"kind":"noop","priority":0}]}`, docRejects: true},
		{method: "GET", path: "/v1/jobs?state=bogus"},
		{method: "GET", path: "/v1/jobs?limit=0"},
		{method: "GET", path: "/v1/jobs?limit=many"},
		{method: "GET", path: "/v1/jobs?cursor=nope"},
		{method: "GET", path: "/v1/jobs?colour=red"},
		{method: "PATCH", path: "/v1/queues/oa", body: `{}`, docRejects: true},
		{method: "PATCH", path: "/v1/queues/oa", body: `{"concurrency":0}`, docRejects: true},
		{method: "PATCH", path: "/v1/queues/oa", body: `{"paused":"yes"}`, docRejects: true},
		{method: "PATCH", path: "/v1/queues/oa", body: `{"weight":1}`, docRejects: true},
		{method: "POST", path: "/v1/queues/" + url.PathEscape("no spaces") + "/pause"},
	} {
		o.do(400, x)
	}
	o.do(415, &exchange{method: "POST", path: "/v1/jobs", contentType: "text/plain", body: `{"kind":"noop"}`})
	o.do(415, &exchange{method: "PATCH", path: "/v1/queues/oa", contentType: "application/x-www-form-urlencoded", body: `paused=true`})
	big := `{"kind":"noop","args":{"s":"` + strings.Repeat("x", 1<<20) + `"}}`
	o.do(413, &exchange{method: "POST", path: "/v1/jobs", body: big})

	// Queues.
	if q := o.do(200, &exchange{method: "POST", path: "/v1/queues/oa/pause"}).obj(); q["paused"] != true {
		t.Errorf("paused queue = %v, want paused true", q)
	}
	qs := o.do(200, &exchange{method: "GET", path: "/v1/queues"}).obj()
	if items := asList(qs["items"]); len(items) < 2 {
		t.Errorf("queues = %v, want oa and oa-work at least", qs)
	}
	if q := o.do(200, &exchange{method: "PATCH", path: "/v1/queues/oa", body: `{"concurrency":5}`}).obj(); fmt.Sprint(q["concurrency"]) != "5" {
		t.Errorf("updated queue = %v, want concurrency 5", q)
	}
	o.do(200, &exchange{method: "PATCH", path: "/v1/queues/oa", body: `{"concurrency":7,"paused":false}`})
	o.do(200, &exchange{method: "POST", path: "/v1/queues/oa/resume"})
	o.do(200, &exchange{method: "POST", path: "/v1/queues/brand-new/pause"})

	// Requests no operation serves still answer in the error shape.
	o.do(405, &exchange{method: "PUT", path: "/v1/jobs", body: `{}`, unrouted: true})
	o.do(404, &exchange{method: "GET", path: "/v1/no-such-thing", unrouted: true})
}

// TestOpenAPIWorkersMatch holds GET /v1/workers to the document with nodes
// registered: the server's own, which works every queue of every tenant,
// and one configured with named queues of another tenant.
func TestOpenAPIWorkersMatch(t *testing.T) {
	t.Parallel()
	db := "sqlite:" + testdb.SQLitePath(t)
	srv := servertest.Start(t, db, servertest.Options{Config: switchyard.Config{WorkerTimeout: time.Minute}})
	transport := &http.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	o := &openapiRunner{t: t, d: loadDoc(t, true), hc: &http.Client{Transport: transport}, baseURL: srv.URL, adminKey: srv.AdminKey}

	o.do(201, &exchange{method: "POST", path: "/v1/tenants", body: `{"id":"acme"}`})
	if p := o.do(200, &exchange{method: "GET", path: "/v1/workers", tenant: "acme"}).obj(); len(asList(p["items"])) != 0 {
		t.Errorf("acme's workers before it has any = %v", p)
	}
	startNode(t, db, "acme", "oa-node", "mail", "sms")
	if p := o.do(200, &exchange{method: "GET", path: "/v1/workers"}).obj(); len(asList(p["items"])) != 1 {
		t.Errorf("workers = %v, want the server's node", p)
	}
	if p := o.do(200, &exchange{method: "GET", path: "/v1/workers", tenant: "acme"}).obj(); len(asList(p["items"])) != 1 {
		t.Errorf("acme's workers = %v, want oa-node", p)
	}
	o.do(400, &exchange{method: "GET", path: "/v1/workers?state=online"})
	o.do(401, &exchange{method: "GET", path: "/v1/workers", noKey: true})
	o.do(404, &exchange{method: "GET", path: "/v1/workers", tenant: "nope"})
}

// leaseOne leases the single available job of queue with the client's
// remote-worker API and checks it is the job with id want.
func leaseOne(t *testing.T, c *switchyard.Client, queue string, want any) *switchyard.JobRow {
	t.Helper()
	id, _ := want.(string)
	jobs, err := c.LeaseJobs(t.Context(), queue, 10, time.Minute)
	if err != nil {
		t.Fatalf("lease from %s: %v", queue, err)
	}
	if len(jobs) != 1 || jobs[0].ID != id {
		t.Fatalf("leased %d jobs from %s, want exactly job %v", len(jobs), queue, want)
	}
	return jobs[0]
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// TestOpenAPIAccessResponsesMatch holds the answers of the tenant, user,
// session, key and audit routes to the document: each kind of object, and
// the refusals that come with credentials, roles and rate limits.
func TestOpenAPIAccessResponsesMatch(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, "sqlite:"+testdb.SQLitePath(t), servertest.Options{
		NotStarted: true,
		Server: server.Config{
			IPRateLimit: switchyard.RateLimit{RequestsPerSecond: -1},
			LoginLimit:  switchyard.RateLimit{RequestsPerSecond: 0.001, Burst: 5},
		},
	})
	transport := &http.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	o := &openapiRunner{t: t, d: loadDoc(t, true), hc: &http.Client{Transport: transport}, baseURL: srv.URL, adminKey: srv.AdminKey}
	str := func(v any) string { s, _ := v.(string); return s }

	// Tenants.
	x := o.do(201, &exchange{method: "POST", path: "/v1/tenants", body: `{"id":"acme","name":"Acme","rate_limit":{"requests_per_second":100,"burst":200}}`})
	if x.header.Get("Location") != "/v1/tenants/acme" || x.obj()["id"] != "acme" {
		t.Errorf("created tenant %v, Location %q", x.obj(), x.header.Get("Location"))
	}
	o.do(201, &exchange{method: "POST", path: "/v1/tenants", body: `{"id":"plain","rate_limit":null}`})
	o.do(201, &exchange{method: "POST", path: "/v1/tenants", body: `{"id":"slow","name":"Slow"}`})
	o.do(409, &exchange{method: "POST", path: "/v1/tenants", body: `{"id":"acme"}`})
	if p := o.do(200, &exchange{method: "GET", path: "/v1/tenants?limit=1"}).obj(); str(p["next_cursor"]) == "" {
		t.Errorf("tenants by one = %v, want a next_cursor", p)
	}
	o.do(200, &exchange{method: "GET", path: "/v1/tenants"})
	o.do(200, &exchange{method: "GET", path: "/v1/tenants/acme"})
	o.do(404, &exchange{method: "GET", path: "/v1/tenants/nope"})
	o.do(200, &exchange{method: "PATCH", path: "/v1/tenants/acme", body: `{"name":"Acme Corp"}`})
	if tn := o.do(200, &exchange{method: "PATCH", path: "/v1/tenants/plain", body: `{"rate_limit":null}`}).obj(); tn["rate_limit"] != nil {
		t.Errorf("tenant with its rate limit cleared = %v", tn)
	}
	o.do(404, &exchange{method: "PATCH", path: "/v1/tenants/nope", body: `{"name":"x"}`})

	// API keys, one of them a viewer's for acme.
	x = o.do(201, &exchange{method: "POST", path: "/v1/keys", tenant: "acme", body: `{"name":"viewer","role":"viewer","expires_at":"2030-01-01T00:00:00Z"}`})
	key, _ := x.obj()["key"].(map[string]any)
	viewer, keyID := str(x.obj()["secret"]), str(key["id"])
	if viewer == "" || x.header.Get("Location") != "/v1/keys/"+keyID || key["tenant_id"] != "acme" {
		t.Fatalf("created key %v, Location %q", x.obj(), x.header.Get("Location"))
	}
	o.do(201, &exchange{method: "POST", path: "/v1/keys", tenant: "acme", body: `{"name":"ops","role":"operator","expires_at":null}`})
	// The key is made before slow gets its low limit: the server keeps one
	// bucket per caller whatever the tenant, so a request the admin key
	// made in slow would put that bucket 1000 s in debt everywhere.
	slow := str(o.do(201, &exchange{method: "POST", path: "/v1/keys", tenant: "slow", body: `{"name":"slow","role":"viewer"}`}).obj()["secret"])
	o.do(200, &exchange{method: "PATCH", path: "/v1/tenants/slow", body: `{"rate_limit":{"requests_per_second":0.001,"burst":1}}`})
	o.do(200, &exchange{method: "GET", path: "/v1/keys", tenant: "acme"})
	o.do(200, &exchange{method: "GET", path: "/v1/keys/" + keyID, tenant: "acme"})
	o.do(404, &exchange{method: "GET", path: "/v1/keys/" + keyID}) // the default tenant's keys

	// Who am I; what the viewer key may not do; where it cannot go.
	if me := o.do(200, &exchange{method: "GET", path: "/v1/me", key: viewer}).obj(); me["type"] != "key" || me["tenant_id"] != "acme" || me["role"] != "viewer" {
		t.Errorf("the viewer key's me = %v", me)
	}
	o.do(200, &exchange{method: "GET", path: "/v1/me"})
	o.do(200, &exchange{method: "GET", path: "/v1/me", tenant: "acme"})
	o.do(404, &exchange{method: "GET", path: "/v1/me", key: viewer, tenant: "default"})
	x = o.do(200, &exchange{method: "GET", path: "/v1/jobs", key: viewer})
	if x.header.Get("RateLimit-Limit") != "200" || x.header.Get("RateLimit-Remaining") == "" || x.header.Get("RateLimit-Reset") == "" {
		t.Errorf("acme's answer has RateLimit headers %v", x.header)
	}
	o.do(403, &exchange{method: "POST", path: "/v1/jobs", key: viewer, body: `{"kind":"noop"}`})
	o.do(403, &exchange{method: "GET", path: "/v1/keys", key: viewer})
	o.do(403, &exchange{method: "POST", path: "/v1/users", key: viewer, body: `{"email":"eve@example.com","password":"eve's long password","role":"viewer"}`})
	o.do(404, &exchange{method: "GET", path: "/v1/jobs", key: viewer, tenant: "default"})
	o.do(404, &exchange{method: "GET", path: "/v1/queues", tenant: "nope"})

	// Members.
	const password = "correct horse battery"
	x = o.do(201, &exchange{method: "POST", path: "/v1/users", tenant: "acme", body: `{"email":"ana@example.com","password":"` + password + `","role":"admin"}`})
	ana := str(x.obj()["id"])
	if ana == "" || x.header.Get("Location") != "/v1/users/"+ana {
		t.Fatalf("created user %v, Location %q", x.obj(), x.header.Get("Location"))
	}
	o.do(409, &exchange{method: "POST", path: "/v1/users", tenant: "acme", body: `{"email":"ana@example.com","role":"viewer"}`})
	o.do(201, &exchange{method: "POST", path: "/v1/users", tenant: "plain", body: `{"email":"ana@example.com","role":"viewer","instance_admin":false}`})
	o.do(200, &exchange{method: "GET", path: "/v1/users?limit=10", tenant: "acme"})
	o.do(200, &exchange{method: "GET", path: "/v1/users/" + ana, tenant: "acme"})
	o.do(200, &exchange{method: "PATCH", path: "/v1/users/" + ana, tenant: "acme", body: `{"role":"operator"}`})
	o.do(404, &exchange{method: "GET", path: "/v1/users/" + ana}) // not a member of default

	// Sessions.
	login := `{"email":"ana@example.com","password":"` + password + `"}`
	sess := o.do(200, &exchange{method: "POST", path: "/v1/auth/login", noKey: true, body: login}).obj()
	access, refresh := str(sess["access_token"]), str(sess["refresh_token"])
	if user, _ := sess["user"].(map[string]any); access == "" || refresh == "" || user["id"] != ana {
		t.Fatalf("session = %v", sess)
	}
	o.do(401, &exchange{method: "POST", path: "/v1/auth/login", noKey: true, body: `{"email":"ana@example.com","password":"not the password"}`})
	if me := o.do(200, &exchange{method: "GET", path: "/v1/me", key: access}).obj(); me["type"] != "user" || me["tenant_id"] != nil {
		t.Errorf("me of a user of two tenants, none chosen = %v", me)
	}
	o.do(200, &exchange{method: "GET", path: "/v1/me", key: access, tenant: "plain"})
	o.do(400, &exchange{method: "GET", path: "/v1/jobs", key: access}) // which tenant?
	o.do(200, &exchange{method: "GET", path: "/v1/users/" + ana, key: access, tenant: "plain"})
	o.do(403, &exchange{method: "GET", path: "/v1/users", key: access, tenant: "plain"})
	o.do(200, &exchange{method: "PATCH", path: "/v1/users/" + ana, key: access, tenant: "plain", body: `{"password":"` + password + `"}`})
	o.do(401, &exchange{method: "GET", path: "/v1/me", key: access}) // a new password ends the sessions
	sess = o.do(200, &exchange{method: "POST", path: "/v1/auth/login", noKey: true, body: login}).obj()
	next := o.do(200, &exchange{method: "POST", path: "/v1/auth/refresh", noKey: true, body: `{"refresh_token":"` + str(sess["refresh_token"]) + `"}`}).obj()
	o.do(401, &exchange{method: "POST", path: "/v1/auth/refresh", noKey: true, body: `{"refresh_token":"` + str(sess["refresh_token"]) + `"}`})
	o.do(401, &exchange{method: "POST", path: "/v1/auth/logout", key: str(next["access_token"])}) // the reuse ended it
	sess = o.do(200, &exchange{method: "POST", path: "/v1/auth/login", noKey: true, body: login}).obj()
	o.do(204, &exchange{method: "POST", path: "/v1/auth/logout", key: str(sess["access_token"])})
	o.do(401, &exchange{method: "POST", path: "/v1/auth/logout", key: str(sess["access_token"])})
	o.do(400, &exchange{method: "POST", path: "/v1/auth/logout"}) // an API key
	o.do(401, &exchange{method: "POST", path: "/v1/auth/logout", noKey: true})

	// Rate limits: an account's login attempts, and a tenant's budget.
	for range 5 {
		o.do(401, &exchange{method: "POST", path: "/v1/auth/login", noKey: true, body: `{"email":"nobody@example.com","password":"guess guess guess"}`})
	}
	x = o.do(429, &exchange{method: "POST", path: "/v1/auth/login", noKey: true, body: `{"email":"nobody@example.com","password":"guess guess guess"}`})
	if n, err := strconv.Atoi(x.header.Get("Retry-After")); err != nil || n < 1 {
		t.Errorf("login over the limit: Retry-After %q", x.header.Get("Retry-After"))
	}
	o.do(200, &exchange{method: "GET", path: "/v1/queues", key: slow})
	x = o.do(429, &exchange{method: "GET", path: "/v1/queues", key: slow})
	if x.header.Get("RateLimit-Limit") != "1" || x.header.Get("RateLimit-Remaining") != "0" {
		t.Errorf("over the tenant's limit: RateLimit headers %v", x.header)
	}

	// The audit log.
	if p := o.do(200, &exchange{method: "GET", path: "/v1/audit", tenant: "acme"}).obj(); len(asList(p["items"])) == 0 {
		t.Errorf("acme's audit log is empty: %v", p)
	}
	if p := o.do(200, &exchange{method: "GET", path: "/v1/audit?action=users.&result=ok&since=2020-01-01T00:00:00Z&until=2100-01-01T00:00:00Z&limit=1", tenant: "acme"}).obj(); str(p["next_cursor"]) == "" {
		t.Errorf("users.* entries by one = %v, want a next_cursor", p)
	}
	o.do(200, &exchange{method: "GET", path: "/v1/audit?all_tenants=true&actor=nobody%40example.com&target=&result=denied"})
	o.do(403, &exchange{method: "GET", path: "/v1/audit?all_tenants=true", tenant: "acme", key: str(o.do(201, &exchange{method: "POST", path: "/v1/keys", tenant: "acme", body: `{"name":"acme admin","role":"admin"}`}).obj()["secret"])})
	o.do(404, &exchange{method: "GET", path: "/v1/audit", tenant: "nope"})

	// Revoking and removing.
	o.do(204, &exchange{method: "DELETE", path: "/v1/keys/" + keyID, tenant: "acme"})
	o.do(409, &exchange{method: "DELETE", path: "/v1/keys/" + keyID, tenant: "acme"})
	o.do(401, &exchange{method: "GET", path: "/v1/me", key: viewer})
	o.do(204, &exchange{method: "DELETE", path: "/v1/users/" + ana, tenant: "acme"})
	o.do(404, &exchange{method: "DELETE", path: "/v1/users/" + ana, tenant: "acme"})

	// Bad requests, refused by the schema too where it can say why.
	for _, x := range []*exchange{
		{method: "POST", path: "/v1/tenants", body: `{"id":"Not A Slug"}`, docRejects: true},
		{method: "POST", path: "/v1/tenants", body: `{"id":"ok","color":"red"}`, docRejects: true},
		{method: "POST", path: "/v1/tenants", body: `{"name":"no id"}`, docRejects: true},
		{method: "POST", path: "/v1/tenants", body: `{"id":"x","rate_limit":{"requests_per_second":1}}`, docRejects: true},
		{method: "PATCH", path: "/v1/tenants/acme", body: `{}`, docRejects: true},
		{method: "PATCH", path: "/v1/tenants/acme", body: `{"name":""}`, docRejects: true},
		{method: "PATCH", path: "/v1/tenants/acme", body: `{"rate_limit":{"requests_per_second":0,"burst":1}}`, docRejects: true},
		{method: "PATCH", path: "/v1/tenants/acme", body: `{"rate_limit":{"requests_per_second":1,"burst":0}}`, docRejects: true},
		{method: "GET", path: "/v1/tenants?limit=0"},
		{method: "POST", path: "/v1/users", tenant: "acme", body: `{"email":"x@example.com","password":"long enough password"}`, docRejects: true},
		{method: "POST", path: "/v1/users", tenant: "acme", body: `{"email":"x@example.com","password":"short","role":"viewer"}`, docRejects: true},
		{method: "POST", path: "/v1/users", tenant: "acme", body: `{"email":"new@example.com","role":"viewer"}`},
		{method: "PATCH", path: "/v1/users/" + ana, tenant: "plain", body: `{}`, docRejects: true},
		{method: "POST", path: "/v1/keys", tenant: "acme", body: `{"name":"x"}`, docRejects: true},
		{method: "POST", path: "/v1/keys", tenant: "acme", body: `{"name":"x","role":"god"}`, docRejects: true},
		{method: "POST", path: "/v1/keys", tenant: "acme", body: `{"name":"","role":"viewer"}`, docRejects: true},
		{method: "POST", path: "/v1/keys", tenant: "acme", body: `{"name":"x","role":"viewer","expires_at":"2001-01-01T00:00:00Z"}`},
		{method: "POST", path: "/v1/auth/refresh", noKey: true, body: `{"refresh_token":"x","also":1}`, docRejects: true},
		{method: "POST", path: "/v1/auth/login", noKey: true, body: `{"email":"ana@example.com","password":"x","otp":1}`, docRejects: true},
		{method: "GET", path: "/v1/audit?since=yesterday", tenant: "acme"},
		{method: "GET", path: "/v1/audit?all_tenants=maybe"},
		{method: "GET", path: "/v1/audit?colour=red"},
	} {
		o.do(400, x)
	}
	// A missing password or refresh token is a wrong one: 401.
	o.do(401, &exchange{method: "POST", path: "/v1/auth/login", noKey: true, body: `{"email":"ana@example.com"}`, docRejects: true})
	o.do(401, &exchange{method: "POST", path: "/v1/auth/refresh", noKey: true, body: `{}`, docRejects: true})
	o.do(415, &exchange{method: "POST", path: "/v1/tenants", contentType: "text/plain", body: `{"id":"t"}`})
	o.do(413, &exchange{method: "PATCH", path: "/v1/tenants/acme", body: `{"name":"` + strings.Repeat("x", 1<<20) + `"}`})
}

// TestOpenAPILiveResponsesMatch holds the live routes to the document:
// publishing, subscription tokens, the browser client, the event stream's
// content type, and every kind of object the WebSocket and the stream
// send, each against its Live schema.
func TestOpenAPILiveResponsesMatch(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, "sqlite:"+testdb.SQLitePath(t), servertest.Options{NotStarted: true})
	transport := &http.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	d := loadDoc(t, true)
	o := &openapiRunner{t: t, d: d, hc: &http.Client{Transport: transport}, baseURL: srv.URL, adminKey: srv.AdminKey}
	str := func(v any) string { s, _ := v.(string); return s }

	viewer := str(o.do(201, &exchange{method: "POST", path: "/v1/keys", body: `{"name":"v","role":"viewer"}`}).obj()["secret"])

	// Subscription tokens.
	tok := o.do(200, &exchange{method: "POST", path: "/v1/tokens", key: viewer, body: `{"topics":["workflow.7","chat.*"],"ttl_seconds":60,"subject":"user-1"}`}).obj()
	if tok["token_type"] != "subscription" || tok["subject"] != "user-1" || fmt.Sprint(tok["expires_in"]) != "60" || tok["tenant_id"] != "default" {
		t.Errorf("token = %v", tok)
	}
	o.do(200, &exchange{method: "POST", path: "/v1/tokens", body: `{"topics":["jobs"]}`})
	for _, x := range []*exchange{
		{method: "POST", path: "/v1/tokens", body: `{}`, docRejects: true},
		{method: "POST", path: "/v1/tokens", body: `{"topics":[]}`, docRejects: true},
		{method: "POST", path: "/v1/tokens", body: `{"topics":["a b"]}`, docRejects: true},
		{method: "POST", path: "/v1/tokens", body: `{"topics":["x"],"ttl_seconds":86401}`, docRejects: true},
		{method: "POST", path: "/v1/tokens", body: `{"topics":["x","x"]}`, docRejects: true},
		{method: "POST", path: "/v1/tokens", body: `{"topics":["x"],"for":"y"}`, docRejects: true},
	} {
		o.do(400, x)
	}
	o.do(401, &exchange{method: "POST", path: "/v1/tokens", noKey: true, body: `{"topics":["x"]}`})
	o.do(401, &exchange{method: "POST", path: "/v1/tokens", key: str(tok["token"]), body: `{"topics":["x"]}`})
	o.do(404, &exchange{method: "POST", path: "/v1/tokens", tenant: "nope", body: `{"topics":["x"]}`})
	o.do(415, &exchange{method: "POST", path: "/v1/tokens", contentType: "text/plain", body: `{"topics":["x"]}`})

	// Publishing.
	if p := o.do(202, &exchange{method: "POST", path: "/v1/topics/chat.room1/publish", body: `{"event":"message","data":{"text":"hi"}}`}).obj(); p["topic"] != "chat.room1" || p["event"] != "message" {
		t.Errorf("published = %v", p)
	}
	o.do(202, &exchange{method: "POST", path: "/v1/topics/chat.room1/publish", body: `{"event":"bare"}`})
	o.do(403, &exchange{method: "POST", path: "/v1/topics/chat.room1/publish", key: viewer, body: `{"event":"message"}`})
	o.do(403, &exchange{method: "POST", path: "/v1/topics/jobs/publish", body: `{"event":"message"}`})
	o.do(400, &exchange{method: "POST", path: "/v1/topics/chat.room1/publish", body: `{"data":1}`, docRejects: true})
	o.do(400, &exchange{method: "POST", path: "/v1/topics/chat.room1/publish", body: `{"event":"m","extra":1}`, docRejects: true})
	o.do(413, &exchange{method: "POST", path: "/v1/topics/chat.room1/publish", body: `{"event":"m","data":"` + strings.Repeat("x", 1<<20) + `"}`})
	o.do(401, &exchange{method: "POST", path: "/v1/topics/chat.room1/publish", noKey: true, body: `{"event":"m"}`})

	// The browser client.
	js := o.do(200, &exchange{method: "GET", path: "/v1/client.js", noKey: true})
	if !bytes.Contains(js.resp, []byte("export function connect")) || js.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("client.js: %d bytes, headers %v", len(js.resp), js.header)
	}

	// The live endpoints' refusals.
	o.do(400, &exchange{method: "GET", path: "/v1/ws"})
	o.do(401, &exchange{method: "GET", path: "/v1/ws", noKey: true})
	o.do(404, &exchange{method: "GET", path: "/v1/ws", tenant: "nope"})
	o.do(400, &exchange{method: "GET", path: "/v1/stream"})
	o.do(400, &exchange{method: "GET", path: "/v1/stream?topics=a&since=junk"})
	o.do(401, &exchange{method: "GET", path: "/v1/stream?topics=a", noKey: true})
	o.do(403, &exchange{method: "GET", path: "/v1/stream?topics=jobs&token=" + url.QueryEscape(str(tok["token"])), noKey: true})

	// The objects the live endpoints send, each against its schema.
	objSchema := map[string]string{"message": "LiveMessage", "subscribed": "LiveSubscribed", "gap": "LiveGap",
		"ack": "LiveReply", "pong": "LiveReply", "unsubscribed": "LiveReply", "error": "LiveError", "close": "LiveClose"}
	seen := map[string]bool{}
	check := func(where string, raw []byte) string {
		t.Helper()
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s: %s is not JSON: %v", where, raw, err)
		}
		typ, _ := v.(map[string]any)["type"].(string)
		name, ok := objSchema[typ]
		if !ok {
			t.Fatalf("%s: an object of unknown type: %s", where, raw)
		}
		d.validate(t, where+" "+typ, pointer("components", "schemas", name), v, raw)
		seen[typ] = true
		return typ
	}

	// The stream: its content type, and its events.
	req, err := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/v1/stream?topics=chat.room1,chat.room2&since="+
		url.QueryEscape(`{"chat.room1":{"offset":1,"epoch":"elsewhere"}}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+srv.AdminKey)
	resp, err := o.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	content, _, err := d.deref(d.operation("GET", "/v1/stream") + "/responses/200")
	if err != nil {
		t.Fatal(err)
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode != 200 || content["content"].(map[string]any)[mt] == nil || mt != "text/event-stream" || resp.Header.Get("X-Request-Id") == "" {
		t.Fatalf("stream: %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	br := bufio.NewReader(resp.Body)
	nextEvent := func() string {
		t.Helper()
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("stream: %v", err)
			}
			if data, ok := strings.CutPrefix(line, "data: "); ok {
				return check("stream", []byte(strings.TrimSpace(data)))
			}
		}
	}
	for _, want := range []string{"subscribed", "gap", "subscribed"} {
		if got := nextEvent(); got != want {
			t.Fatalf("stream: %s, want %s", got, want)
		}
	}
	o.do(202, &exchange{method: "POST", path: "/v1/topics/chat.room2/publish", body: `{"event":"message","data":[1,2]}`})
	if got := nextEvent(); got != "message" {
		t.Fatalf("stream: %s, want a message", got)
	}

	// The socket.
	ws := mustDialWS(t, srv.URL, srv.AdminKey)
	ws.send(map[string]any{"type": "subscribe", "id": "s", "topics": []string{"chat.room1"}, "since": map[string]any{"chat.room1": map[string]any{"offset": 5, "epoch": "x"}}})
	ws.send(map[string]any{"type": "publish", "id": "p", "topic": "chat.room1", "event": "m", "data": nil})
	ws.send(map[string]any{"type": "ping", "id": "q"})
	ws.send(map[string]any{"type": "unsubscribe", "id": "u", "topics": []string{"chat.room1"}})
	ws.send(map[string]any{"type": "publish", "id": "e", "topic": "jobs", "event": "m"})
	// Replies come from the reader and the writer: in any order.
	for !seen["error"] || !seen["unsubscribed"] || !seen["ack"] || !seen["pong"] {
		_, raw, err := ws.c.Read(ws.ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range bytes.Split(raw, []byte("\n")) {
			check("socket", line)
		}
	}
	for typ := range objSchema {
		if typ != "close" && !seen[typ] {
			t.Errorf("no %s object was checked", typ)
		}
	}
}

// TestOpenAPIEventsMatch holds the events and rules routes to the
// document: every mode of sending, repeats, batches, the dispatch of
// rules, and the refusals.
func TestOpenAPIEventsMatch(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, "sqlite:"+testdb.SQLitePath(t), servertest.Options{NotStarted: true})
	transport := &http.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	o := &openapiRunner{t: t, d: loadDoc(t, true), hc: &http.Client{Transport: transport}, baseURL: srv.URL, adminKey: srv.AdminKey}
	str := func(v any) string { s, _ := v.(string); return s }

	// Rules.
	rule := `{"name":"thumbs","types":["image.*"],"filter":"data.size > 1000","actions":[
		{"type":"enqueue","queue":"img","kind":"noop","args":"{\"url\": data.url}","priority":2,"max_attempts":3,"delay":"1h","unique_key":"data.url"},
		{"type":"publish","topic":"images"}]}`
	x := o.do(201, &exchange{method: "POST", path: "/v1/rules", body: rule})
	ruleID := str(x.obj()["id"])
	if x.header.Get("Location") != "/v1/rules/"+ruleID || x.obj()["enabled"] != true {
		t.Fatalf("created rule %v, Location %q", x.obj(), x.header.Get("Location"))
	}
	o.do(201, &exchange{method: "POST", path: "/v1/rules", body: `{"name":"broken","types":["broken.*"],"filter":"data.items[3] == 1","enabled":true,"actions":[{"type":"publish","topic":"b"}]}`})
	o.do(409, &exchange{method: "POST", path: "/v1/rules", body: rule})
	o.do(400, &exchange{method: "POST", path: "/v1/rules", body: `{"name":"x","actions":[{"type":"publish","topic":"b"}]}`, docRejects: true})
	o.do(400, &exchange{method: "POST", path: "/v1/rules", body: `{"name":"x","types":["a"],"actions":[{"type":"mail"}]}`, docRejects: true})
	o.do(400, &exchange{method: "POST", path: "/v1/rules", body: `{"name":"x","types":["a"],"filter":"data.size >","actions":[{"type":"publish","topic":"b"}]}`})
	o.do(415, &exchange{method: "POST", path: "/v1/rules", contentType: "text/plain", body: rule})
	o.do(200, &exchange{method: "GET", path: "/v1/rules"})
	o.do(200, &exchange{method: "GET", path: "/v1/rules?limit=1"})
	o.do(400, &exchange{method: "GET", path: "/v1/rules?name=x"})
	o.do(200, &exchange{method: "GET", path: "/v1/rules/" + ruleID})
	o.do(404, &exchange{method: "GET", path: "/v1/rules/rul_nosuch"})
	o.do(200, &exchange{method: "PUT", path: "/v1/rules/" + ruleID, body: strings.Replace(rule, `"thumbs"`, `"thumbnails"`, 1)})
	o.do(404, &exchange{method: "PUT", path: "/v1/rules/rul_nosuch", body: rule})
	o.do(409, &exchange{method: "PUT", path: "/v1/rules/" + ruleID, body: `{"name":"broken","types":["x"],"actions":[{"type":"publish","topic":"b"}]}`})

	// Events: structured, a repeat, application/json, binary, a batch.
	img := `{"specversion":"1.0","id":"e1","source":"/uploads","type":"image.uploaded","subject":"a/1","time":"2026-01-02T03:04:05Z","ext1":"x","ext2":7,
		"data":{"url":"https://cdn.test/a.png","size":2048}}`
	x = o.do(201, &exchange{method: "POST", path: "/v1/events", contentType: "application/cloudevents+json", body: img})
	evID := str(x.obj()["id"])
	if x.header.Get("Location") != "/v1/events/"+evID || len(asList(x.obj()["dispatch"])) != 1 {
		t.Fatalf("sent %s", x.resp)
	}
	o.do(200, &exchange{method: "POST", path: "/v1/events", contentType: "application/cloudevents+json", body: img})
	o.do(201, &exchange{method: "POST", path: "/v1/events", body: `{"specversion":"1.0","id":"x1","source":"/b","type":"broken.thing","data":{"items":[]}}`})
	o.do(201, &exchange{method: "POST", path: "/v1/events", contentType: "image/png", body: "\x89PNG",
		headers: map[string]string{"ce-specversion": "1.0", "ce-id": "b1", "ce-source": "/cam", "ce-type": "blob.stored", "ce-myext": "v"}})
	o.do(201, &exchange{method: "POST", path: "/v1/events", contentType: "application/json", body: `{"size":1}`,
		headers: map[string]string{"ce-specversion": "1.0", "ce-id": "b2", "ce-source": "/cam", "ce-type": "image.small"}})
	batch := `[{"specversion":"1.0","id":"k1","source":"/batch","type":"batch.item"},{"specversion":"1.0","id":"k2","source":"/batch","type":"batch.item","data_base64":"AAE="}]`
	if p := o.do(200, &exchange{method: "POST", path: "/v1/events", contentType: "application/cloudevents-batch+json", body: batch}).obj(); len(asList(p["items"])) != 2 {
		t.Errorf("batch answer %v", p)
	}

	// Refusals.
	o.do(400, &exchange{method: "POST", path: "/v1/events", body: `{"specversion":"0.3","id":"z","source":"/b","type":"t"}`, docRejects: true})
	o.do(400, &exchange{method: "POST", path: "/v1/events", body: `{"specversion":"1.0","source":"/b","type":"t"}`, docRejects: true})
	o.do(400, &exchange{method: "POST", path: "/v1/events", body: `{"specversion":"1.0","id":"z","source":"/b","type":"t","Bad-Name":1}`, docRejects: true})
	o.do(400, &exchange{method: "POST", path: "/v1/events", contentType: "application/cloudevents-batch+json", body: `[]`, docRejects: true})
	o.do(400, &exchange{method: "POST", path: "/v1/events", contentType: "application/cloudevents+json", body: `{"specversion":`})
	o.do(413, &exchange{method: "POST", path: "/v1/events", body: `{"specversion":"1.0","id":"z","source":"/b","type":"t","data":"` + strings.Repeat("x", switchyard.MaxEventBytes) + `"}`})
	o.do(415, &exchange{method: "POST", path: "/v1/events", contentType: "text/plain", body: "hello"})
	o.do(401, &exchange{method: "POST", path: "/v1/events", noKey: true, body: img})

	// Reading.
	if p := o.do(200, &exchange{method: "GET", path: "/v1/events?limit=2"}).obj(); str(p["next_cursor"]) == "" {
		t.Errorf("events by two = %v, want a next_cursor", p)
	}
	o.do(200, &exchange{method: "GET", path: "/v1/events?type=image.uploaded&source=/uploads&subject=a/1&since=2026-01-01T00:00:00Z&until=2027-01-01T00:00:00Z"})
	o.do(400, &exchange{method: "GET", path: "/v1/events?since=yesterday"})
	o.do(400, &exchange{method: "GET", path: "/v1/events?bogus=1"})
	o.do(200, &exchange{method: "GET", path: "/v1/events/" + evID})
	o.do(404, &exchange{method: "GET", path: "/v1/events/999999"})
	o.do(204, &exchange{method: "DELETE", path: "/v1/rules/" + ruleID})
	o.do(404, &exchange{method: "DELETE", path: "/v1/rules/" + ruleID})
}

// TestOpenAPIWebhooksMatch holds the sources, endpoints and /hooks routes'
// real answers to the document: a delivery to a loopback receiver makes an
// attempt to list, and /hooks answers 201, 200, 401 and 404.
func TestOpenAPIWebhooksMatch(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t)
	srv := servertest.Start(t, "sqlite:"+testdb.SQLitePath(t), servertest.Options{Config: deliveringConfig()})
	transport := &http.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	o := &openapiRunner{t: t, d: loadDoc(t, true), hc: &http.Client{Transport: transport}, baseURL: srv.URL, adminKey: srv.AdminKey}
	str := func(v any) string { s, _ := v.(string); return s }

	// Sources.
	x := o.do(201, &exchange{method: "POST", path: "/v1/sources", body: `{"name":"gh","scheme":"github","secrets":["s3cret"]}`})
	srcID := str(x.obj()["id"])
	if x.header.Get("Location") != "/v1/sources/"+srcID || str(x.obj()["path"]) != "/hooks/"+srcID {
		t.Fatalf("created source %s, Location %q", x.resp, x.header.Get("Location"))
	}
	o.do(201, &exchange{method: "POST", path: "/v1/sources", body: `{"name":"sw","scheme":"standard-webhooks"}`})
	x = o.do(201, &exchange{method: "POST", path: "/v1/sources", body: `{"name":"fb","scheme":"meta","tolerance_seconds":60}`})
	metaID, token := str(x.obj()["id"]), str(x.obj()["verify_token"])
	o.do(201, &exchange{method: "POST", path: "/v1/sources", body: `{"name":"custom","scheme":"hmac","header":"X-Sig","algorithm":"sha512","encoding":"base64","prefix":"v=","timestamp_header":"X-Ts","id_header":"X-Id","event_type":"acme.hook"}`})
	o.do(409, &exchange{method: "POST", path: "/v1/sources", body: `{"name":"gh","scheme":"github"}`})
	o.do(400, &exchange{method: "POST", path: "/v1/sources", body: `{"name":"x","scheme":"carrier-pigeon"}`, docRejects: true})
	o.do(400, &exchange{method: "POST", path: "/v1/sources", body: `{"name":"x","scheme":"github","path":"/elsewhere"}`, docRejects: true})
	o.do(400, &exchange{method: "POST", path: "/v1/sources", body: `{"name":"x","scheme":"hmac"}`}) // hmac needs its header
	o.do(200, &exchange{method: "GET", path: "/v1/sources"})
	o.do(200, &exchange{method: "GET", path: "/v1/sources?limit=1"})
	o.do(200, &exchange{method: "GET", path: "/v1/sources/" + srcID})
	o.do(404, &exchange{method: "GET", path: "/v1/sources/src_nosuch"})
	o.do(200, &exchange{method: "PUT", path: "/v1/sources/" + srcID, body: `{"name":"gh","scheme":"github","secrets":["s3cret","n3w"]}`})
	o.do(404, &exchange{method: "PUT", path: "/v1/sources/src_nosuch", body: `{"name":"gh","scheme":"github"}`})

	// Inbound: a delivery, its repeat, refusals, the handshake.
	push := `{"ref":"refs/heads/main"}`
	gh := map[string]string{"X-Hub-Signature-256": githubSignature("n3w", push), "X-GitHub-Event": "push", "X-GitHub-Delivery": "d-1"}
	x = o.do(201, &exchange{method: "POST", path: "/hooks/" + srcID, noKey: true, body: push, headers: gh})
	evID := str(x.obj()["event_id"])
	if str(x.obj()["type"]) != "github.push" || x.obj()["existing"] != false {
		t.Errorf("hook answer %s", x.resp)
	}
	if x = o.do(200, &exchange{method: "POST", path: "/hooks/" + srcID, noKey: true, body: push, headers: gh}); x.obj()["existing"] != true {
		t.Errorf("repeated hook answer %s", x.resp)
	}
	o.do(401, &exchange{method: "POST", path: "/hooks/" + srcID, noKey: true, body: push + " ", headers: gh})
	o.do(401, &exchange{method: "POST", path: "/hooks/" + srcID, noKey: true, body: push})
	o.do(404, &exchange{method: "POST", path: "/hooks/src_nosuch", noKey: true, body: push, headers: gh})
	o.do(413, &exchange{method: "POST", path: "/hooks/" + srcID, noKey: true, body: `"` + strings.Repeat("x", 2<<20) + `"`, headers: gh})
	x = o.do(200, &exchange{method: "GET", path: "/hooks/" + metaID + "?hub.mode=subscribe&hub.verify_token=" + url.QueryEscape(token) + "&hub.challenge=4711", noKey: true})
	if string(x.resp) != "4711" {
		t.Errorf("handshake answered %q", x.resp)
	}
	o.do(401, &exchange{method: "GET", path: "/hooks/" + metaID + "?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=4711", noKey: true})
	o.do(404, &exchange{method: "GET", path: "/hooks/" + srcID + "?hub.mode=subscribe&hub.verify_token=x&hub.challenge=1", noKey: true})

	// Endpoints.
	ep := `{"name":"billing","url":"` + rcv.url + `/in","types":["github.*"],"description":"d","max_concurrency":2,"headers":{"X-Team":"billing"}}`
	x = o.do(201, &exchange{method: "POST", path: "/v1/endpoints", body: ep})
	epID := str(x.obj()["id"])
	if x.header.Get("Location") != "/v1/endpoints/"+epID {
		t.Fatalf("created endpoint %s, Location %q", x.resp, x.header.Get("Location"))
	}
	o.do(201, &exchange{method: "POST", path: "/v1/endpoints", body: `{"name":"rules only","url":"https://hooks.example.com/x"}`})
	o.do(409, &exchange{method: "POST", path: "/v1/endpoints", body: ep})
	o.do(400, &exchange{method: "POST", path: "/v1/endpoints", body: `{"name":"x","url":"ftp://example.com/"}`})
	o.do(400, &exchange{method: "POST", path: "/v1/endpoints", body: `{"name":"x","url":"https://example.com/","max_concurrency":5000}`, docRejects: true})
	o.do(400, &exchange{method: "POST", path: "/v1/endpoints", body: `{"name":"x","url":"https://example.com/","secrets":[]}`, docRejects: true})
	o.do(200, &exchange{method: "GET", path: "/v1/endpoints"})
	o.do(200, &exchange{method: "GET", path: "/v1/endpoints/" + epID})
	o.do(404, &exchange{method: "GET", path: "/v1/endpoints/ep_nosuch"})

	// A delivery, its attempt, a redelivery.
	x = o.do(201, &exchange{method: "POST", path: "/hooks/" + srcID, noKey: true, body: push,
		headers: map[string]string{"X-Hub-Signature-256": githubSignature("s3cret", push), "X-GitHub-Event": "push", "X-GitHub-Delivery": "d-2"}})
	delivered := str(x.obj()["event_id"])
	rcv.next(t)
	var attempts map[string]any
	testdb.Poll(t, 10*time.Second, "a delivery attempt", func() bool {
		attempts = o.do(200, &exchange{method: "GET", path: "/v1/endpoints/" + epID + "/attempts?event_id=" + delivered}).obj()
		return len(asList(attempts["items"])) > 0
	})
	o.do(200, &exchange{method: "GET", path: "/v1/endpoints/" + epID + "/attempts?limit=1"})
	o.do(400, &exchange{method: "GET", path: "/v1/endpoints/" + epID + "/attempts?event_id=x"})
	o.do(400, &exchange{method: "GET", path: "/v1/endpoints/" + epID + "/attempts?bogus=1"})
	o.do(404, &exchange{method: "GET", path: "/v1/endpoints/ep_nosuch/attempts"})
	o.do(202, &exchange{method: "POST", path: "/v1/endpoints/" + epID + "/redeliver", body: `{"event_id":"` + evID + `"}`})
	rcv.next(t)
	o.do(404, &exchange{method: "POST", path: "/v1/endpoints/" + epID + "/redeliver", body: `{"event_id":"999999"}`})
	o.do(400, &exchange{method: "POST", path: "/v1/endpoints/" + epID + "/redeliver", body: `{"event":"1"}`, docRejects: true})
	if x = o.do(200, &exchange{method: "POST", path: "/v1/endpoints/" + epID + "/rotate-secret"}); len(asList(x.obj()["secrets"])) != 2 {
		t.Errorf("rotated endpoint %s", x.resp)
	}
	o.do(404, &exchange{method: "POST", path: "/v1/endpoints/ep_nosuch/rotate-secret"})
	o.do(200, &exchange{method: "PUT", path: "/v1/endpoints/" + epID, body: strings.Replace(ep, `"types"`, `"disabled":true,"types"`, 1)})
	o.do(409, &exchange{method: "POST", path: "/v1/endpoints/" + epID + "/redeliver", body: `{"event_id":"` + evID + `"}`})
	o.do(401, &exchange{method: "GET", path: "/v1/endpoints", noKey: true})
	o.do(204, &exchange{method: "DELETE", path: "/v1/endpoints/" + epID})
	o.do(404, &exchange{method: "DELETE", path: "/v1/endpoints/" + epID})
	o.do(204, &exchange{method: "DELETE", path: "/v1/sources/" + srcID})
	o.do(404, &exchange{method: "DELETE", path: "/v1/sources/" + srcID})
	o.do(404, &exchange{method: "POST", path: "/hooks/" + srcID, noKey: true, body: push, headers: gh})
}
