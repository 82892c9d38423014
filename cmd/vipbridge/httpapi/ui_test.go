package httpapi

import (
	"io/fs"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

func TestUIServesEmbeddedPage(t *testing.T) {
	srv, _ := newTestServer(t, Config{})
	tests := []struct {
		path, contentType, contains string
	}{
		{"/ui/", "text/html; charset=utf-8", `<script src="app.js"></script>`},
		{"/ui/app.js", "text/javascript; charset=utf-8", "new EventSource('../v1/watch')"},
		{"/ui/style.css", "text/css; charset=utf-8", "@media (max-width: 760px)"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, body := do(t, srv, "GET", tt.path)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != tt.contentType {
				t.Fatalf("GET %s = %s %q, want 200 %q", tt.path, resp.Status, resp.Header.Get("Content-Type"), tt.contentType)
			}
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
				t.Errorf("GET %s: Content-Security-Policy %q, want default-src 'none'", tt.path, csp)
			}
			if !strings.Contains(string(body), tt.contains) {
				t.Errorf("GET %s does not contain %q", tt.path, tt.contains)
			}
		})
	}
	client := srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Get(srv.URL + "/ui")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/ui/" {
		t.Errorf("GET /ui = %s to %q, want 301 to /ui/", resp.Status, resp.Header.Get("Location"))
	}
	if resp, _ := do(t, srv, "GET", "/ui/nosuch.js"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /ui/nosuch.js = %s, want 404", resp.Status)
	}
}

// TestUINeedsNoNetwork checks that no asset names another origin: the page
// works on a node without internet access.
func TestUINeedsNoNetwork(t *testing.T) {
	remote := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}|@import|url\(`)
	err := fs.WalkDir(uiFiles, "ui", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(uiFiles, path)
		if err != nil {
			return err
		}
		for _, m := range remote.FindAllString(string(data), -1) {
			t.Errorf("%s refers to %q", path, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
