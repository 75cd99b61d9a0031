package webhook

import (
	"bytes"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// BenchmarkHandler is one accepted github delivery through the handler
// (no network), against sha256 of the same body in the same run: the
// check's cost over the hashing any reading of the body needs.
func BenchmarkHandler(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		body := bytes.Repeat([]byte("x"), size)
		b.Run("sha256/"+strconv.Itoa(size), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				sha256.Sum256(body)
			}
		})
		b.Run("handler/"+strconv.Itoa(size), func(b *testing.B) {
			h := New(map[string]Hook{"r": {Provider: "github", Secret: []byte(secret)}}, Options{Trigger: func(string) {}})
			hdr := http.Header{}
			sign("github", secret, string(body), hdr)
			b.SetBytes(int64(size))
			i := 0
			for b.Loop() {
				i++
				req := httptest.NewRequest("POST", "/webhooks/r", bytes.NewReader(body))
				req.SetPathValue("repository", "r")
				req.Header = hdr.Clone()
				req.Header.Set("X-GitHub-Delivery", strconv.Itoa(i))
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != 202 {
					b.Fatal(w.Code)
				}
			}
		})
	}
}
