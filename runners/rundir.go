package runners

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The names of what runners keep in a RunDir.
const (
	descriptorPattern   = "descriptor-*.json" // the exec runner's descriptor files
	pluginSocketPattern = "plugin-*"          // the plugin runner's socket folders
)

// RunDir is a private folder (0700) for the files stages need while they
// run: the exec runner's descriptor files (0600), each removed when its
// stage ends, and the plugin runner's socket folders, removed when it
// closes. A gitmon that dies mid-stage cannot remove its files;
// OpenRunDir removes them at the next start. Nothing goes to the system's
// temporary folder, where such files would pile up and be readable by
// name.
//
// One process uses a RunDir at a time: the daemon's is <state>/run,
// under the state folder's lock.
type RunDir struct{ path string }

// OpenRunDir creates the folder at path if need be, makes it 0700, and
// removes the descriptor files and socket folders a previous process left
// in it, returning how many it removed. A path that is a symbolic link or not a folder is
// refused.
func OpenRunDir(path string) (*RunDir, int, error) {
	if path == "" {
		return nil, 0, errors.New("runners: the run folder has no path")
	}
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, 0, fmt.Errorf("runners: run folder: %w", err)
	}
	fi, err := os.Lstat(path)
	switch {
	case err != nil:
		return nil, 0, fmt.Errorf("runners: run folder: %w", err)
	case !fi.IsDir():
		return nil, 0, fmt.Errorf("runners: run folder %s is not a folder (a symbolic link is refused)", path)
	case fi.Mode().Perm() != 0o700:
		// MkdirAll leaves an existing folder as it is.
		if err := os.Chmod(path, 0o700); err != nil {
			return nil, 0, fmt.Errorf("runners: run folder: %w", err)
		}
	}
	d := &RunDir{path: path}
	n, err := d.sweep()
	return d, n, err
}

// Path returns the folder's path.
func (d *RunDir) Path() string { return d.path }

// sweep removes the descriptor files and socket folders in the folder.
// Only this process uses the folder, and no stage has started yet: every
// one is left over.
func (d *RunDir) sweep() (int, error) {
	ents, err := os.ReadDir(d.path)
	if err != nil {
		return 0, fmt.Errorf("runners: run folder: %w", err)
	}
	n := 0
	var errs []error
	for _, e := range ents {
		var err error
		switch desc, _ := filepath.Match(descriptorPattern, e.Name()); {
		case desc && e.Type().IsRegular():
			err = os.Remove(filepath.Join(d.path, e.Name()))
		case e.IsDir() && strings.HasPrefix(e.Name(), strings.TrimSuffix(pluginSocketPattern, "*")):
			err = os.RemoveAll(filepath.Join(d.path, e.Name()))
		default:
			continue
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		n++
	}
	if len(errs) > 0 {
		return n, fmt.Errorf("runners: removing what a previous gitmon left in the run folder: %w", errors.Join(errs...))
	}
	return n, nil
}

// writeDescriptor writes desc to a new 0600 file in the folder and
// returns its path; the caller removes it when the stage ends.
func (d *RunDir) writeDescriptor(desc json.RawMessage) (string, error) {
	f, err := os.CreateTemp(d.path, descriptorPattern) // mode 0600
	if err != nil {
		return "", fmt.Errorf("descriptor file: %w", err)
	}
	_, err = f.Write(desc)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("descriptor file: %w", err)
	}
	return f.Name(), nil
}
