package redact

import "testing"

func TestURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://git.example.com/r.git", "https://git.example.com/r.git"},
		{"https://alice:pw@git.example.com/r.git", "https://***@git.example.com/r.git"},
		{"https://token@git.example.com/r.git", "https://***@git.example.com/r.git"},
		{"https://alice:p/w@git.example.com/r.git", "https://***@git.example.com/r.git"},
		{"https://alice:p@w@git.example.com/r.git", "https://***@git.example.com/r.git"},
		{"https://alice:p#w@git.example.com/r.git", "https://***@git.example.com/r.git"},
		{"ssh://git@git.example.com/r.git", "ssh://***@git.example.com/r.git"},
		{"postgres://u:pw@db/gitmon?sslmode=require", "postgres://***@db/gitmon?sslmode=require"},
		{"git@git.example.com:org/r.git", "git@git.example.com:org/r.git"},
		{"user:pw@git.example.com:org/r.git", "***@git.example.com:org/r.git"},
		{"/srv/git/r.git", "/srv/git/r.git"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := URL(tt.in); got != tt.want {
			t.Errorf("URL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
