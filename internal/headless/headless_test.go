package headless

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

func TestBrowserRendersALoopbackPage(t *testing.T) {
	ctx := Browser(t)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<title>hello</title><p id="p">from loopback</p>`)
	}))
	defer ts.Close()
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(ts.URL)))
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("p").textContent`))
	require.NoError(t, err)
	require.Equal(t, "from loopback", text)
}
