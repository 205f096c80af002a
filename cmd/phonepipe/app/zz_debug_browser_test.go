package app_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	"github.com/phonepipe/phonepipe/cmd/phonepipe/app"
	"github.com/phonepipe/phonepipe/transport/web"
)

func TestDebugBrowserViaProxy(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	tab, log := browser(t, ctx)
	a := startApp(t, app.Config{})
	u, _ := url.Parse(a.URL())
	mux := http.NewServeMux()
	mux.Handle(web.PagePattern, web.Handler())
	mux.Handle(web.AssetsPattern, web.Handler())
	mux.Handle("/", httputil.NewSingleHostReverseProxy(u))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	browserFlow(t, tab, log, srv.URL)
}
