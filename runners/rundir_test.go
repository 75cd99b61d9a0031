//go:build linux

package runners

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

func TestOpenRunDir(t *testing.T) {
	t.Run("creates a private folder", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state", "run")
		d, n, err := OpenRunDir(path)
		if err != nil || n != 0 || d.Path() != path {
			t.Fatalf("OpenRunDir = %v, %d, %v", d, n, err)
		}
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o700 {
			t.Fatalf("the folder: %v, %v; want 0700", fi.Mode(), err)
		}
	})
	t.Run("makes an existing folder private and sweeps only descriptor files", func(t *testing.T) {
		path := t.TempDir()
		os.Chmod(path, 0o755)
		for _, f := range []string{"descriptor-1.json", "descriptor-2.json", "notes.txt"} {
			os.WriteFile(filepath.Join(path, f), []byte("{}"), 0o600)
		}
		os.Mkdir(filepath.Join(path, "descriptor-dir.json"), 0o700)
		os.Mkdir(filepath.Join(path, "plugin-123"), 0o700) // a plugin's sockets
		os.WriteFile(filepath.Join(path, "plugin-123", "plugin456"), nil, 0o600)
		_, n, err := OpenRunDir(path)
		if err != nil || n != 3 {
			t.Fatalf("OpenRunDir = %d, %v; want 2 files and 1 socket folder removed", n, err)
		}
		var left []string
		ents, _ := os.ReadDir(path)
		for _, e := range ents {
			left = append(left, e.Name())
		}
		if !slices.Equal(left, []string{"descriptor-dir.json", "notes.txt"}) {
			t.Errorf("left %v", left)
		}
		if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o700 {
			t.Errorf("mode %v, want 0700", fi.Mode().Perm())
		}
	})
	t.Run("refuses a symbolic link", func(t *testing.T) {
		dir := t.TempDir()
		link := filepath.Join(dir, "run")
		os.Symlink(t.TempDir(), link)
		if _, _, err := OpenRunDir(link); err == nil {
			t.Fatal("OpenRunDir followed a symbolic link")
		}
	})
}

// Issue 7 point 8: a gitmon killed mid-stage left its descriptor file
// behind (in /tmp, for good). Now it is in the run folder, and the next
// start removes it.
func TestRunDirSweepsWhatACrashLeft(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	pidPath := filepath.Join(t.TempDir(), "stage.pid")
	// A real crash: a process running a stage is SIGKILLed.
	cmd := exec.Command(os.Args[0], "-test.run=^TestRunDirHelperProcess$")
	cmd.Env = append(os.Environ(), "GITMON_RUNDIR_HELPER="+dir, "GITMON_RUNDIR_HELPER_PID="+pidPath)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stage := pidFile(t, pidPath) // the stage's process group leader
	t.Cleanup(func() { syscall.Kill(-stage, syscall.SIGKILL) })
	cmd.Process.Kill()
	cmd.Wait()
	syscall.Kill(-stage, syscall.SIGKILL)

	left, _ := filepath.Glob(filepath.Join(dir, descriptorPattern))
	if len(left) != 1 {
		t.Fatalf("the crashed process left %v; want its descriptor file", left)
	}
	if fi, err := os.Stat(left[0]); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the descriptor file: %v, %v; want 0600", fi.Mode(), err)
	}
	d, n, err := OpenRunDir(dir)
	if err != nil || n != 1 {
		t.Fatalf("OpenRunDir after the crash = %d, %v; want 1 file removed", n, err)
	}
	if ents, _ := os.ReadDir(d.Path()); len(ents) != 0 {
		t.Fatalf("the run folder still holds %v", ents)
	}
}

// TestRunDirHelperProcess is the process TestRunDirSweepsWhatACrashLeft
// kills mid-stage; run on its own, it does nothing.
func TestRunDirHelperProcess(t *testing.T) {
	dir := os.Getenv("GITMON_RUNDIR_HELPER")
	if dir == "" {
		return
	}
	d, _, err := OpenRunDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	e := &Exec{RunDir: d, Command: []string{"/bin/sh", "-c", `echo $$ > "$1.tmp" && mv "$1.tmp" "$1" && exec sleep 600`, "sh", os.Getenv("GITMON_RUNDIR_HELPER_PID")}}
	e.Run(context.Background(), testRequest(), nil, nil)
	t.Fatal("the stage ended; the test should have killed this process first")
}
