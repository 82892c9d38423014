package httpapi

// GET /ui/: the live status page, plain HTML, CSS and JavaScript embedded
// in the binary. It loads nothing from elsewhere (its Content Security
// Policy forbids it) and follows GET /v1/watch.

import (
	"embed"
	"io/fs"
	"net/http"
)

// uiFiles are the page's assets: index.html, app.js, style.css.
//
//go:embed ui
var uiFiles embed.FS

// uiPolicy allows the page its own origin only: no CDN, no inline script.
const uiPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// uiHandler serves the embedded assets under /ui/.
func uiHandler() http.Handler {
	sub, err := fs.Sub(uiFiles, "ui")
	if err != nil { // "ui" is a literal directory embedded above
		return http.NotFoundHandler()
	}
	files := http.StripPrefix("/ui/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", uiPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-cache")
		h.Set("Referrer-Policy", "no-referrer")
		files.ServeHTTP(w, r)
	})
}

// redirectToUI sends /ui to /ui/, where the page's relative links work.
func redirectToUI(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/ui/", http.StatusMovedPermanently)
}
