// Package corpus builds the base models' training text: documents extracted from freely
// licensed packages (Debian documentation and dictionaries, npm datasets) listed in a
// manifest with their provenance and licence, cleaned, deduplicated by paragraph and split
// into train and eval documents.
package corpus

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
)

// Manifest lists the corpus sources, in the order they are read: where two documents share a
// paragraph, the earlier source keeps it.
type Manifest struct {
	Sources []Source `json:"sources"`
}

// Source is one package and the files of it that become documents.
type Source struct {
	Name    string `json:"name"`    // short name, used in document ids and statistics
	Package string `json:"package"` // "deb:NAME=VERSION" or "npm:NAME@VERSION"
	License string `json:"license"` // SPDX-style identifier or a short statement
	URL     string `json:"url"`     // where the text comes from (homepage, upstream)
	Note    string `json:"note,omitempty"`
	// Include are doublestar globs relative to the unpacked package (e.g. "usr/share/doc/**/*.html").
	Include []string `json:"include"`
	Exclude []string `json:"exclude,omitempty"`
	// Format says how a file becomes text: text, html, pod, dictd (a dictd .dict/.dict.dz file,
	// cut into documents of DictEntries entries), json-text (the "text" field of a JSON
	// object), email (a JSON object whose "text" is an RFC 822 message: headers dropped).
	Format      string `json:"format"`
	DictEntries int    `json:"dict_entries,omitempty"`
}

// Formats are the accepted Source.Format values.
var Formats = []string{"text", "html", "pod", "dictd", "json-text", "email"}

var packageRe = regexp.MustCompile(`^(deb:[a-z0-9][a-z0-9+.-]*=[^\s=]+|npm:(@[a-z0-9._-]+/)?[a-z0-9._-]+@[0-9][^\s@]*)$`)

// PackageKind returns "deb" or "npm", the package name and its version.
func (s Source) PackageKind() (kind, name, version string) {
	kind, rest, _ := strings.Cut(s.Package, ":")
	sep := "="
	if kind == "npm" {
		sep = "@"
		i := strings.LastIndex(rest, sep)
		return kind, rest[:i], rest[i+1:]
	}
	name, version, _ = strings.Cut(rest, sep)
	return kind, name, version
}

// Dir is the directory, under the root given to Build, where the package is unpacked:
// the package name with "/" replaced by "+" (npm scopes).
func (s Source) Dir() string {
	_, name, _ := s.PackageKind()
	return strings.ReplaceAll(name, "/", "+")
}

// LoadManifest reads and validates a manifest file.
func LoadManifest(path string) (*Manifest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("corpus manifest: %w", err)
	}
	var m Manifest
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("corpus manifest %s: %w", path, err)
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("corpus manifest %s: %w", path, err)
	}
	return &m, nil
}

// Validate checks every source; errors name the source and field.
func (m *Manifest) Validate() error {
	if len(m.Sources) == 0 {
		return errors.New("no sources")
	}
	seen := map[string]bool{}
	for i, s := range m.Sources {
		where := fmt.Sprintf("sources[%d] (%q)", i, s.Name)
		switch {
		case !regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`).MatchString(s.Name):
			return fmt.Errorf("%s: name must be lower-case letters, digits, '.', '_' or '-'", where)
		case seen[s.Name]:
			return fmt.Errorf("%s: name used twice", where)
		case !packageRe.MatchString(s.Package):
			return fmt.Errorf("%s: package %q is not deb:NAME=VERSION or npm:NAME@VERSION", where, s.Package)
		case strings.TrimSpace(s.License) == "":
			return fmt.Errorf("%s: license is empty", where)
		case strings.TrimSpace(s.URL) == "":
			return fmt.Errorf("%s: url is empty", where)
		case len(s.Include) == 0:
			return fmt.Errorf("%s: include is empty", where)
		case !slices.Contains(Formats, s.Format):
			return fmt.Errorf("%s: format %q is not one of %s", where, s.Format, strings.Join(Formats, ", "))
		case s.Format == "dictd" && s.DictEntries <= 0:
			return fmt.Errorf("%s: format dictd needs dict_entries > 0", where)
		}
		for _, g := range append(slices.Clone(s.Include), s.Exclude...) {
			if !doublestar.ValidatePattern(g) || strings.HasPrefix(g, "/") {
				return fmt.Errorf("%s: glob %q is not a valid relative pattern", where, g)
			}
		}
		seen[s.Name] = true
	}
	return nil
}
