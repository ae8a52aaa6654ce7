// Package hub finds models named by their Hugging Face id ("org/name") in
// the local Hugging Face cache, the layout huggingface_hub writes:
// CACHE/models--org--name/refs/REVISION holds a commit hash, and
// CACHE/models--org--name/snapshots/HASH/ the files. Nothing is ever
// downloaded.
package hub

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// ErrNotFound: the model is not in any cache looked at.
var ErrNotFound = errors.New("not in the local Hugging Face cache")

// CacheDirs lists the hub caches to look in, in order, as huggingface_hub
// chooses its cache: HF_HUB_CACHE (or the older HUGGINGFACE_HUB_CACHE),
// else HF_HOME/hub, else XDG_CACHE_HOME/huggingface/hub, else
// ~/.cache/huggingface/hub. getenv and home are the environment (os.Getenv,
// os.UserHomeDir).
func CacheDirs(getenv func(string) string, home string) []string {
	var dirs []string
	add := func(d string) {
		if d != "" && !contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	add(getenv("HF_HUB_CACHE"))
	add(getenv("HUGGINGFACE_HUB_CACHE"))
	if h := getenv("HF_HOME"); h != "" {
		add(filepath.Join(h, "hub"))
	} else if x := getenv("XDG_CACHE_HOME"); x != "" {
		add(filepath.Join(x, "huggingface", "hub"))
	}
	if home != "" {
		add(filepath.Join(home, ".cache", "huggingface", "hub"))
	}
	return dirs
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*(@[A-Za-z0-9._/-]+)?$`)

// IsID reports whether s has the form of a hub id, "org/name" or
// "org/name@revision".
func IsID(s string) bool { return idPattern.MatchString(s) && !strings.Contains(s, "..") }

// Resolve returns the snapshot directory of id ("org/name", optionally
// "@revision": a branch or tag under refs/, or a commit hash; default main)
// in the first of dirs that holds it. When refs/main is missing and the
// model has exactly one snapshot, that one is used. The error lists every
// place looked at and why it did not do.
func Resolve(id string, dirs []string) (string, error) {
	if !IsID(id) {
		return "", fmt.Errorf("model %q: not a Hugging Face id (org/name[@revision])", id)
	}
	repo, rev, hasRev := strings.Cut(id, "@")
	if !hasRev {
		rev = "main"
	}
	folder := "models--" + strings.ReplaceAll(repo, "/", "--")
	var looked []string
	for _, cache := range dirs {
		dir := filepath.Join(cache, folder)
		snap, why := snapshot(dir, rev, !hasRev)
		if why == "" {
			return snap, nil
		}
		looked = append(looked, dir+": "+why)
	}
	if len(looked) == 0 {
		return "", fmt.Errorf("model %q: %w (no cache directory: set HF_HUB_CACHE or HF_HOME)", id, ErrNotFound)
	}
	return "", fmt.Errorf("model %q: %w; looked in:\n  %s\n(namm never downloads; fetch it with `huggingface-cli download %s`, or pass a model directory)",
		id, ErrNotFound, strings.Join(looked, "\n  "), repo)
}

// snapshot finds revision rev's snapshot in a model's cache folder, or says
// why not.
func snapshot(dir, rev string, defaultRev bool) (string, string) {
	if _, err := os.Stat(dir); err != nil {
		return "", "no such directory"
	}
	snaps := filepath.Join(dir, "snapshots")
	commit := rev
	if data, err := os.ReadFile(filepath.Join(dir, "refs", filepath.FromSlash(rev))); err == nil {
		commit = strings.TrimSpace(string(data))
	} else if defaultRev {
		// No refs/main: a single snapshot is unambiguous.
		entries, _ := os.ReadDir(snaps)
		var names []string
		for _, e := range entries {
			if e.IsDir() {
				names = append(names, e.Name())
			}
		}
		if len(names) != 1 {
			return "", fmt.Sprintf("no refs/%s and %d snapshots", rev, len(names))
		}
		commit = names[0]
	}
	if strings.ContainsAny(commit, `/\`) || commit == "." || commit == ".." || commit == "" {
		return "", fmt.Sprintf("refs/%s holds %q, not a commit hash", rev, commit)
	}
	snap := filepath.Join(snaps, commit)
	if _, err := os.Stat(snap); err != nil {
		return "", fmt.Sprintf("revision %s (commit %s) has no snapshot", rev, commit)
	}
	if _, err := os.Stat(filepath.Join(snap, "config.json")); err != nil {
		return "", fmt.Sprintf("snapshot %s has no config.json (incomplete download?)", commit)
	}
	return snap, ""
}
