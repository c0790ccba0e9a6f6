package browsertest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wszero/wszero"
)

// clientFiles are the files of the browser client, with their content types.
var clientFiles = map[string]string{
	"/wszero.js":      "text/javascript; charset=utf-8",
	"/wszero.mjs":     "text/javascript; charset=utf-8",
	"/wszero.js.map":  "application/json; charset=utf-8",
	"/wszero.mjs.map": "application/json; charset=utf-8",
	"/wszero.d.ts":    "application/typescript; charset=utf-8",
}

// testClientFilesInTheBrowser loads the client's files in the browser: each
// comes with its content type, the bundles point at their source maps, the
// maps name the TypeScript sources, and the module exports exactly what
// wszero.d.ts declares.
func testClientFilesInTheBrowser(t *testing.T, browser context.Context) {
	ts := serve(t, wszero.New(quiet()), map[string]string{"/": `<!doctype html><title>files</title>`})
	p := openPage(t, browser, ts.URL+"/")

	type fetched struct {
		Status int    `json:"status"`
		Type   string `json:"type"`
		Body   string `json:"body"`
	}
	got := eval[map[string]fetched](p, `(async () => {
		const out = {};
		for (const path of ["/wszero.js", "/wszero.mjs", "/wszero.js.map", "/wszero.mjs.map", "/wszero.d.ts"]) {
			const r = await fetch(path);
			out[path] = {status: r.status, type: r.headers.get("content-type"), body: await r.text()};
		}
		return out;
	})()`)
	for path, ctype := range clientFiles {
		f := got[path]
		if f.Status != http.StatusOK || f.Type != ctype || f.Body == "" {
			t.Errorf("%s: status %d, content type %q, %d bytes; want 200, %q", path, f.Status, f.Type, len(f.Body), ctype)
		}
	}
	for _, bundle := range []string{"/wszero.js", "/wszero.mjs"} {
		if want := "//# sourceMappingURL=" + strings.TrimPrefix(bundle, "/") + ".map"; !strings.Contains(got[bundle].Body, want) {
			t.Errorf("%s does not end with %q", bundle, want)
		}
		var m struct {
			Version int      `json:"version"`
			Sources []string `json:"sources"`
		}
		if err := json.Unmarshal([]byte(got[bundle+".map"].Body), &m); err != nil {
			t.Errorf("%s.map is not JSON: %v", bundle, err)
		}
		if m.Version != 3 || !slices.Contains(m.Sources, "../src/client.ts") {
			t.Errorf("%s.map: version %d, sources %v; want 3 and ../src/client.ts", bundle, m.Version, m.Sources)
		}
	}

	// The types declare what the module exports, no more and no less.
	exports := eval[[]string](p, `import("/wszero.mjs").then((m) => Object.keys(m).sort())`)
	declared := regexp.MustCompile(`(?m)^export declare (?:function|const|class) (\w+)`).FindAllStringSubmatch(got["/wszero.d.ts"].Body, -1)
	var names []string
	for _, d := range declared {
		names = append(names, d[1])
	}
	slices.Sort(names)
	if !slices.Equal(exports, names) {
		t.Errorf("/wszero.mjs exports %v, but wszero.d.ts declares %v", exports, names)
	}
	p.noExceptions()
}

// TestClientFilesOverHTTP checks what server_test.go's TestClientFiles
// does not: exact content types, the source maps, gzip, HEAD and Vary.
func TestClientFilesOverHTTP(t *testing.T) {
	ts := serve(t, wszero.New(quiet()), nil)
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: wait}
	t.Cleanup(client.CloseIdleConnections)
	get := func(t *testing.T, method, path string, header ...string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, ts.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}
	for path, ctype := range clientFiles {
		t.Run(path, func(t *testing.T) {
			plain, body := get(t, http.MethodGet, path)
			if plain.StatusCode != http.StatusOK || plain.Header.Get("Content-Type") != ctype {
				t.Fatalf("status %d, content type %q; want 200, %q", plain.StatusCode, plain.Header.Get("Content-Type"), ctype)
			}
			if plain.Header.Get("Content-Encoding") != "" || plain.Header.Get("Vary") != "Accept-Encoding" || plain.Header.Get("ETag") == "" {
				t.Errorf("without gzip: Content-Encoding %q, Vary %q, ETag %q",
					plain.Header.Get("Content-Encoding"), plain.Header.Get("Vary"), plain.Header.Get("ETag"))
			}

			zipped, zbody := get(t, http.MethodGet, path, "Accept-Encoding", "gzip")
			if zipped.Header.Get("Content-Encoding") != "gzip" || zipped.Header.Get("ETag") != plain.Header.Get("ETag") {
				t.Fatalf("with gzip: Content-Encoding %q, ETag %q", zipped.Header.Get("Content-Encoding"), zipped.Header.Get("ETag"))
			}
			zr, err := gzip.NewReader(bytes.NewReader(zbody))
			if err != nil {
				t.Fatal(err)
			}
			unzipped, err := io.ReadAll(zr)
			if err != nil || !bytes.Equal(unzipped, body) {
				t.Errorf("the gzipped body does not unzip to the plain one (%v)", err)
			}
			if len(zbody) >= len(body) && len(body) > 1000 {
				t.Errorf("gzip made %d bytes of %d", len(zbody), len(body))
			}

			notModified, nbody := get(t, http.MethodGet, path, "If-None-Match", plain.Header.Get("ETag"), "Accept-Encoding", "gzip")
			if notModified.StatusCode != http.StatusNotModified || len(nbody) != 0 {
				t.Errorf("If-None-Match: status %d with %d bytes, want 304 and none", notModified.StatusCode, len(nbody))
			}

			head, hbody := get(t, http.MethodHead, path)
			if head.StatusCode != http.StatusOK || len(hbody) != 0 || head.ContentLength != int64(len(body)) {
				t.Errorf("HEAD: status %d, %d bytes, Content-Length %d; want 200, none, %d", head.StatusCode, len(hbody), head.ContentLength, len(body))
			}
		})
	}
}

// testJSXBundledOnRequest serves a static folder with a .jsx page that
// imports another local module and renders with a tiny JSX factory (no
// React), and a .tsx file that does not build: its error shows over the
// page, naming the file and line.
func testJSXBundledOnRequest(t *testing.T, browser context.Context) {
	dir := t.TempDir()
	files := map[string]string{
		"index.html": `<!doctype html><title>jsx</title><div id="root"></div><script type="module" src="/app.jsx"></script>`,
		"app.jsx": `/** @jsx h */
import { h } from "./h.js";
import { greeting } from "./greeting.ts";

document.getElementById("root").append(
  <p id="hello" className="greeting">{greeting("JSX")} <b>{1 + 1}</b></p>,
);
`,
		"h.js": `// h is a JSX factory in five lines: tag, properties, children.
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  Object.assign(el, props);
  el.append(...children.flat());
  return el;
}
`,
		"greeting.ts": `export function greeting(who: string): string {
  return "Hello from " + who;
}
`,
		"broken.html": `<!doctype html><title>broken</title><p>the page under the error</p><script type="module" src="/broken.tsx"></script>`,
		"broken.tsx": `const ok: number = 1;
console.log(ok);
const oops = <div>unclosed;
`,
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var log logSink
	ts := serve(t, wszero.New(log.option(), wszero.WithStatic(dir)), nil)

	p := openPage(t, browser, ts.URL+"/")
	t.Run("the JSX page renders", func(t *testing.T) {
		p := p.in(t)
		p.waitEqual(`document.getElementById("hello")?.outerHTML`, `<p id="hello" class="greeting">Hello from JSX <b>2</b></p>`)
		p.noExceptions()
	})
	t.Run("a build error shows over the page", func(t *testing.T) {
		p := p.in(t)
		p.navigate(ts.URL + "/broken.html")
		p.waitFor(`document.getElementById("wszero-build-error")`)
		text := eval[string](p, `document.getElementById("wszero-build-error").textContent`)
		for _, want := range []string{"wszero: broken.tsx does not build", "broken.tsx:3:"} {
			if !strings.Contains(text, want) {
				t.Errorf("the overlay does not say %q; it says:\n%s", want, text)
			}
		}
		if !strings.Contains(log.String(), "broken.tsx does not build") {
			t.Errorf("the server did not log the build error; it logged:\n%s", log.String())
		}
	})
}

// TestStaticFileChangedWithinASecond changes a static file twice within one
// second: a browser revalidating its copy (as a reload does) must get the
// new version, though Last-Modified, in whole seconds, is the same.
func TestStaticFileChangedWithinASecond(t *testing.T) {
	dir := t.TempDir()
	index := filepath.Join(dir, "index.html")
	second := time.Now().Truncate(time.Second)
	write := func(text string, at time.Duration) {
		t.Helper()
		if err := os.WriteFile(index, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(index, second, second.Add(at)); err != nil {
			t.Fatal(err)
		}
	}
	write("first", 100*time.Millisecond)
	ts := serve(t, wszero.New(quiet(), wszero.WithStatic(dir)), nil)
	client := &http.Client{Timeout: wait}
	t.Cleanup(client.CloseIdleConnections)
	get := func(header http.Header) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, ts.URL+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header = header
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}

	first, body := get(http.Header{})
	if body != "first" || first.Header.Get("ETag") == "" {
		t.Fatalf("the first answer: %q with ETag %q", body, first.Header.Get("ETag"))
	}
	revalidate := http.Header{"If-None-Match": {first.Header.Get("ETag")}, "If-Modified-Since": {first.Header.Get("Last-Modified")}}
	if again, _ := get(revalidate); again.StatusCode != http.StatusNotModified {
		t.Errorf("an unchanged file: status %d, want 304", again.StatusCode)
	}
	write("second", 200*time.Millisecond)
	if changed, body := get(revalidate); changed.StatusCode != http.StatusOK || body != "second" {
		t.Errorf("the changed file: status %d, %q; want 200, \"second\"", changed.StatusCode, body)
	}
}
