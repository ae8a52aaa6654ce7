package serve

import (
	"embed"
	"io/fs"
	"net/http"
)

// web holds the memory inspector page: plain HTML, CSS and JavaScript,
// embedded in the binary (no build step, nothing fetched from elsewhere).
//
//go:embed web
var web embed.FS

// routePage serves the page at / and its files under /inspector/. They
// need no API key (the page asks for one when the API does).
func (s *Server) routePage() {
	files, _ := fs.Sub(web, "web")
	static := http.StripPrefix("/inspector/", http.FileServerFS(files))
	s.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, files, "index.html")
	})
	s.mux.Handle("GET /inspector/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		static.ServeHTTP(w, r)
	}))
}
