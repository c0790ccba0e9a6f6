package wszero

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
)

//go:generate go run ./js/build

// clientFiles is the browser client, built from js/src by js/build.
//
//go:embed js/dist/wszero.js js/dist/wszero.js.map js/dist/wszero.mjs js/dist/wszero.mjs.map js/dist/wszero.d.ts
var clientFiles embed.FS

// servedFile is one embedded file ready to serve: its bytes, gzipped bytes
// and validator.
type servedFile struct {
	contentType string
	data        []byte
	gzipped     []byte
	etag        string
}

var (
	clientOnce   sync.Once
	clientByName map[string]*servedFile
)

// clientContentTypes maps the client's file names to their content types.
var clientContentTypes = map[string]string{
	"wszero.js":      "text/javascript; charset=utf-8",
	"wszero.mjs":     "text/javascript; charset=utf-8",
	"wszero.js.map":  "application/json; charset=utf-8",
	"wszero.mjs.map": "application/json; charset=utf-8",
	"wszero.d.ts":    "application/typescript; charset=utf-8",
}

// loadClientFiles reads and compresses the embedded client once.
func loadClientFiles() {
	clientByName = make(map[string]*servedFile, len(clientContentTypes))
	for name, ctype := range clientContentTypes {
		data, err := clientFiles.ReadFile("js/dist/" + name)
		if err != nil {
			panic("wszero: the embedded client lacks " + name + ": run go generate")
		}
		sum := sha256.Sum256(data)
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		_, _ = zw.Write(data)
		_ = zw.Close()
		clientByName[name] = &servedFile{
			contentType: ctype,
			data:        data,
			gzipped:     gz.Bytes(),
			etag:        `"` + hex.EncodeToString(sum[:8]) + `"`,
		}
	}
}

// clientFile returns the embedded client file a request asks for (any path
// ending in /wszero.js and so on, so that it works under a prefix), or nil.
func clientFile(urlPath string) *servedFile {
	name := path.Base(urlPath)
	if _, ok := clientContentTypes[name]; !ok {
		return nil
	}
	clientOnce.Do(loadClientFiles)
	return clientByName[name]
}

// serve writes f with caching (ETag, If-None-Match) and gzip when accepted.
func (f *servedFile) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", f.contentType)
	h.Set("ETag", f.etag)
	h.Set("Cache-Control", "no-cache") // revalidate: cheap with the ETag, fresh after an upgrade
	h.Add("Vary", "Accept-Encoding")
	if etagMatches(r.Header.Get("If-None-Match"), f.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := f.data
	if acceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		body = f.gzipped
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}

// etagMatches reports whether an If-None-Match header names etag.
func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

// acceptsGzip reports whether the request accepts a gzip body.
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(name), "gzip") && strings.ReplaceAll(params, " ", "") != "q=0" {
			return true
		}
	}
	return false
}
