package server

import (
	_ "embed"
	"net/http"
)

// openapiDocument is the OpenAPI 3.1 description of the HTTP API, served at
// GET /v1/openapi.json. openapi_test.go holds it to the routes and to the
// server's real answers.
//
//go:embed openapi.json
var openapiDocument []byte

// OpenAPIDocument returns the OpenAPI 3.1 document of the HTTP API. The
// caller must not modify the returned bytes.
func OpenAPIDocument() []byte { return openapiDocument }

func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openapiDocument)
}
