package server

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
)

// jsClient is the browser client for the live endpoints, served at GET
// /v1/client.js: an ES module with no dependencies and no build step.
//
//go:embed static/client.js
var jsClient []byte

// jsClientETag names this build's client.js, so browsers revalidate
// cheaply.
var jsClientETag = func() string {
	sum := sha256.Sum256(jsClient)
	return `"` + hex.EncodeToString(sum[:8]) + `"`
}()

// clientJS serves GET /v1/client.js. It is public, and readable from any
// origin: module scripts are fetched with CORS, and the file holds no
// secret.
func (s *Server) clientJS(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", jsClientETag)
	if r.Header.Get("If-None-Match") == jsClientETag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	_, _ = w.Write(jsClient)
}
