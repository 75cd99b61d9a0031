package demo

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInstallBinaries(t *testing.T) {
	src := t.TempDir()
	exe := filepath.Join(src, "gitmon")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\necho gitmon\n"), 0o755); err != nil {
		t.Fatal(err)
	}

	// Without a plugin beside it, smoke is an exec stage of the copy.
	dir := t.TempDir()
	smoke, note, err := installBinaries(dir, exe)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(smoke, "runner: exec") || !strings.Contains(smoke, "./bin/gitmon, demo-stage, smoke") ||
		!strings.Contains(note, "no gitmon-smoke plugin") {
		t.Errorf("without a plugin: smoke %s, note %q", smoke, note)
	}
	// The copy outlives the binary it came from (go run deletes its own).
	if err := os.Remove(exe); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "bin", "gitmon")); err != nil || !bytes.Contains(got, []byte("echo gitmon")) {
		t.Errorf("bin/gitmon after the original went: %q, %v", got, err)
	}

	// With one, smoke is the plugin, checked by its sha256.
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	body := []byte("#!/bin/sh\nexit 0\n")
	if err := os.WriteFile(filepath.Join(src, "gitmon-smoke"), body, 0o755); err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	smoke, _, err = installBinaries(dir, exe)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	if want := "{runner: plugin, path: ./bin/gitmon-smoke, sha256: " + hex.EncodeToString(sum[:]); !strings.HasPrefix(smoke, want) {
		t.Errorf("smoke = %s, want %s…", smoke, want)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "bin", "gitmon-smoke")); err != nil || !bytes.Equal(got, body) {
		t.Errorf("bin/gitmon-smoke: %q, %v", got, err)
	}

	// A plugin that is not executable is not used.
	if err := os.Chmod(filepath.Join(src, "gitmon-smoke"), 0o644); err != nil {
		t.Fatal(err)
	}
	if smoke, _, err = installBinaries(t.TempDir(), exe); err != nil || !strings.Contains(smoke, "runner: exec") {
		t.Errorf("a plugin that is not executable: smoke %s, %v", smoke, err)
	}
}

func TestWorkDir(t *testing.T) {
	base := t.TempDir()
	for _, tc := range []struct {
		name, folder, setup string // setup: "" absent, "empty", "file", "full"
		refuse              bool
	}{
		{"absent", "demo", "", false},
		{"empty", "demo", "empty", false},
		{"a file", "demo", "file", true},
		{"not empty", "demo", "full", true},
		// The config's file:// URL could not name these.
		{"a space", "my demo", "", true},
		{"a fragment", "demo#1", "", true},
		{"a query", "demo?x", "", true},
		{"an escape", "demo%20", "", true},
		{"a newline", "demo\nx", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keep := filepath.Join(base, strings.ReplaceAll(tc.name, " ", "-"), tc.folder)
			if err := os.MkdirAll(filepath.Dir(keep), 0o755); err != nil {
				t.Fatal(err)
			}
			switch tc.setup {
			case "empty":
				os.Mkdir(keep, 0o755)
			case "file":
				os.WriteFile(keep, []byte("x"), 0o644)
			case "full":
				os.Mkdir(keep, 0o755)
				os.WriteFile(filepath.Join(keep, "notes.txt"), []byte("mine"), 0o644)
			}
			dir, done, err := workDir(keep)
			if tc.refuse {
				if !errors.Is(err, ErrKeep) {
					t.Fatalf("workDir(%s) = %v, want ErrKeep", tc.name, err)
				}
				if _, err := os.Lstat(keep); tc.setup == "" && !errors.Is(err, os.ErrNotExist) {
					t.Errorf("a refused %s was made: %v", keep, err)
				}
				if tc.setup == "full" {
					if b, err := os.ReadFile(filepath.Join(keep, "notes.txt")); err != nil || string(b) != "mine" {
						t.Errorf("what was there changed: %q, %v", b, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			done()
			if fi, err := os.Stat(dir); err != nil || !fi.IsDir() || dir != keep {
				t.Errorf("kept folder %s after done: %v", dir, err)
			}
		})
	}

	// Without --keep the folder is temporary.
	dir, done, err := workDir("")
	if err != nil {
		t.Fatal(err)
	}
	done()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary folder %s left after done: %v", dir, err)
	}
}
