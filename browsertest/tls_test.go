// Package browsertest tests wszero's browser client in headless Chromium.
package browsertest

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
	"github.com/wszero/wszero"
	"github.com/wszero/wszero/internal/headless"
)

// TestSecurePageConnectsOverWSS opens a page served over HTTPS: the
// classic script connects with wss:// by itself, and calls work.
func TestSecurePageConnectsOverWSS(t *testing.T) {
	dir := t.TempDir()
	page := `<!doctype html><script src="/wszero.js"></script>`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "index.html"), []byte(page), 0o644))
	s := wszero.New(wszero.WithLogger(nil), wszero.WithStatic(dir), wszero.WithAuthenticate(func(r *http.Request) (any, error) {
		if r.TLS == nil {
			return nil, errors.New("this test wants wss")
		}
		return "wss", nil
	}))
	s.On("how", func(c *wszero.Client) any { return c.Identity() })
	ts := httptest.NewUnstartedServer(s)
	ts.StartTLS()
	t.Cleanup(func() {
		require.NoError(t, s.Shutdown(context.Background()))
		ts.Close()
	})

	// Trust exactly the test server's certificate, as a person who checked
	// its fingerprint and proceeded does.
	spki := sha256.Sum256(ts.Certificate().RawSubjectPublicKeyInfo)
	ctx := headless.Browser(t, chromedp.Flag("ignore-certificate-errors-spki-list", base64.StdEncoding.EncodeToString(spki[:])))
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/")))
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`call("how").then(r => location.protocol + " " + r)`, chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	require.Equal(t, "https: wss", got)
}
