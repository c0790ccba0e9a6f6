package wszero

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"html"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/evanw/esbuild/pkg/api"
)

// useStatic serves the files in dir, bundling TypeScript and JSX on
// request and logging build errors. Call it before serving.
func (s *Server) useStatic(dir string) {
	s.useStaticReporting(dir, func(msg string) { s.logger().Error(msg) })
}

// useStaticReporting is useStatic with build errors sent to report.
func (s *Server) useStaticReporting(dir string, report func(string)) {
	sf, err := newStaticFiles(dir, report)
	if err != nil {
		s.opts.static = http.FileServer(http.Dir(dir))
		return
	}
	s.opts.static = sf
}

// staticFiles serves a folder, bundling .ts, .tsx and .jsx files with
// esbuild when they are requested, so that TypeScript and JSX work without
// a Node toolchain.
type staticFiles struct {
	dir    string // absolute
	files  http.Handler
	errOut func(msg string) // where build errors are reported besides the page

	mu      sync.Mutex
	bundles map[string]*bundle // by absolute entry path
}

// bundle is one entry file's build, kept until one of its inputs changes.
type bundle struct {
	js     []byte
	etag   string
	inputs map[string]time.Time // absolute path → modification time
}

// newStaticFiles serves dir; errOut receives build errors.
func newStaticFiles(dir string, errOut func(string)) (*staticFiles, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	return &staticFiles{dir: abs, files: http.FileServer(http.Dir(abs)), errOut: errOut, bundles: map[string]*bundle{}}, nil
}

// bundledExt reports whether files with this extension are bundled on request.
func bundledExt(name string) bool {
	switch path.Ext(name) {
	case ".ts", ".tsx", ".jsx":
		return !strings.HasSuffix(name, ".d.ts")
	}
	return false
}

// ServeHTTP serves a file, bundling it first when it is TypeScript or JSX.
func (sf *staticFiles) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !bundledExt(r.URL.Path) {
		if etag := sf.fileETag(r.URL.Path); etag != "" {
			w.Header().Set("ETag", etag) // http.FileServer answers If-None-Match with it
		}
		sf.files.ServeHTTP(w, r)
		return
	}
	entry := filepath.Join(sf.dir, filepath.FromSlash(path.Clean("/"+r.URL.Path)))
	if info, err := os.Stat(entry); err != nil || info.IsDir() {
		http.NotFound(w, r)
		return
	}
	b := sf.bundleFor(entry)
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("ETag", b.etag)
	if etagMatches(r.Header.Get("If-None-Match"), b.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	_, _ = w.Write(b.js)
}

// fileETag is a validator for the file a plain request serves (index.html
// for a folder), from its size and modification time to the nanosecond.
// Last-Modified alone counts whole seconds, so a page changed twice within a
// second would be answered "304 Not Modified" when it reloads, and the
// browser would show the older version.
func (sf *staticFiles) fileETag(urlPath string) string {
	name := filepath.Join(sf.dir, filepath.FromSlash(path.Clean("/"+urlPath)))
	info, err := os.Stat(name)
	if err == nil && info.IsDir() {
		info, err = os.Stat(filepath.Join(name, "index.html"))
	}
	if err != nil || info.IsDir() {
		return ""
	}
	return fmt.Sprintf(`"%x-%x"`, info.ModTime().UnixNano(), info.Size())
}

// bundleFor returns entry's bundle, building it when it is missing or stale.
func (sf *staticFiles) bundleFor(entry string) *bundle {
	sf.mu.Lock()
	defer sf.mu.Unlock()
	if b := sf.bundles[entry]; b != nil && b.fresh() {
		return b
	}
	b := sf.build(entry)
	sf.bundles[entry] = b
	return b
}

// fresh reports whether none of the bundle's inputs changed since it was built.
func (b *bundle) fresh() bool {
	if b.inputs == nil {
		return false // a failed build is retried on every request
	}
	for p, mod := range b.inputs {
		info, err := os.Stat(p)
		if err != nil || !info.ModTime().Equal(mod) {
			return false
		}
	}
	return true
}

// build bundles entry as an ES module with an inline source map. A build
// error becomes a script that shows the error over the page.
func (sf *staticFiles) build(entry string) *bundle {
	jsx := api.JSXTransform
	if sf.resolves(entry, "react/jsx-runtime") {
		jsx = api.JSXAutomatic
	}
	result := api.Build(api.BuildOptions{
		AbsWorkingDir: sf.dir,
		EntryPoints:   []string{entry},
		Bundle:        true,
		Write:         false,
		Metafile:      true,
		Format:        api.FormatESModule,
		Platform:      api.PlatformBrowser,
		Target:        api.ES2020,
		JSX:           jsx,
		Sourcemap:     api.SourceMapInline,
		Define:        map[string]string{"process.env.NODE_ENV": `"development"`},
		LogLevel:      api.LogLevelSilent,
	})
	if len(result.Errors) > 0 || len(result.OutputFiles) == 0 {
		text := strings.Join(api.FormatMessages(result.Errors, api.FormatMessagesOptions{Kind: api.ErrorMessage}), "")
		rel, _ := filepath.Rel(sf.dir, entry)
		msg := fmt.Sprintf("wszero: %s does not build:\n%s", filepath.ToSlash(rel), text)
		sf.errOut(msg)
		js := errorOverlayScript(msg)
		return &bundle{js: js, etag: etagOf(js)}
	}
	js := result.OutputFiles[0].Contents
	return &bundle{js: js, etag: etagOf(js), inputs: sf.inputsOf(result.Metafile)}
}

// inputsOf lists a build's input files with their modification times.
func (sf *staticFiles) inputsOf(metafile string) map[string]time.Time {
	var meta struct {
		Inputs map[string]json.RawMessage `json:"inputs"`
	}
	inputs := map[string]time.Time{}
	if err := json.Unmarshal([]byte(metafile), &meta); err != nil {
		return inputs
	}
	for p := range meta.Inputs {
		abs := p
		if !filepath.IsAbs(abs) {
			abs = filepath.Join(sf.dir, filepath.FromSlash(p))
		}
		if info, err := os.Stat(abs); err == nil {
			inputs[abs] = info.ModTime()
		}
	}
	return inputs
}

// resolves reports whether an import of pkg from entry would find a package.
func (sf *staticFiles) resolves(entry, pkg string) bool {
	for dir := filepath.Dir(entry); ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", filepath.FromSlash(pkg)+".js")); err == nil {
			return true
		}
		if parent := filepath.Dir(dir); parent == dir {
			return false
		}
	}
}

// errorOverlayScript is a module that shows msg over the page and in the console.
func errorOverlayScript(msg string) []byte {
	quoted, _ := json.Marshal(msg)
	return []byte(`const msg = ` + string(quoted) + `;
console.error(msg);
const show = () => {
  const box = document.createElement("pre");
  box.id = "wszero-build-error";
  box.textContent = msg;
  box.style.cssText = "position:fixed;inset:0;margin:0;padding:1.5rem;overflow:auto;z-index:2147483647;" +
    "background:rgba(30,0,0,.92);color:#fff;font:15px/1.5 ui-monospace,monospace;white-space:pre-wrap";
  document.body.append(box);
};
if (document.body) show(); else addEventListener("DOMContentLoaded", show);
`)
}

func etagOf(data []byte) string {
	sum := sha256.Sum256(data)
	return `"` + hex.EncodeToString(sum[:8]) + `"`
}

// folderFingerprint summarises the names, sizes and times of the files
// under dir (leaving out node_modules and hidden folders), so that a change
// can be noticed by comparing two fingerprints.
func folderFingerprint(dir string) uint64 {
	h := fnv.New64a()
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() && p != dir && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		fmt.Fprintf(h, "%s\x00%d\x00%d\n", p, info.Size(), info.ModTime().UnixNano())
		return nil
	})
	return h.Sum64()
}

// serveWelcome shows what to create when there is no static folder.
func serveWelcome(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprint(w, welcomePage)
}

var welcomePage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>wszero is running</title>
<style>body{font:18px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}
pre{background:#f3f3f3;padding:1rem;border-radius:.5rem;overflow:auto}code{font-size:16px}</style></head>
<body>
<h1>wszero is running 🎉</h1>
<p>Your server works. Now give it a page: make a folder called <code>static</code> next to your
<code>main.go</code>, and put a file called <code>index.html</code> in it, like this one:</p>
<pre><code>` + html.EscapeString(`<!doctype html>
<script src="/wszero.js"></script>
<input id="text"> <button onclick="send()">Send</button>
<ul id="list"></ul>
<script>
  function send() { send_message({op: "announce", text: text.value}) }
  HANDLERS.announce = function (msg) {
    const li = document.createElement("li")
    li.textContent = msg.text
    list.append(li)
  }
</script>`) + `</code></pre>
<p>Your <code>main.go</code> needs a handler for <code>announce</code>:</p>
<pre><code>` + html.EscapeString(`wszero.On("announce", func(c *wszero.Client, p struct{ Text string }) {
	wszero.Broadcast("announce", wszero.Params{"text": p.Text})
})
wszero.RunServer(8000)`) + `</code></pre>
<p>Then stop the server with Ctrl-C, start it again, and reload this page.</p>
</body></html>
`
