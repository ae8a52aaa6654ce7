package corpus

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHTMLText(t *testing.T) {
	page := `<html><head><title>T</title><script>var x = 1;</script><style>p{}</style></head><body>
<nav>Home | Next | Prev</nav><div class="sphinxsidebar">Quick search</div>
<h1>The   Title</h1><p>First <b>bold</b>
paragraph, with   spaces.</p><pre>code  line 1
  line 2</pre><ul><li>one</li><li>two</li></ul><div role="navigation">crumbs</div></body></html>`
	got := clean(htmlText([]byte(page)))
	want := "The Title\n\nFirst bold paragraph, with spaces.\n\ncode  line 1\n  line 2\n\none\n\ntwo"
	if got != want {
		t.Fatalf("htmlText:\n%q\nwant\n%q", got, want)
	}
}

func TestPodText(t *testing.T) {
	pod := "=head1 NAME\n\nperlfoo - B<bold> and C<code> and L<perlfunc/open>\n\n=over 4\n\n=item * one\n\nText with I<nested B<codes>> and C<< $a <=> $b >>.\n\n=back\n\n=cut\n"
	got := podText(pod)
	want := "NAME\n\nperlfoo - bold and code and perlfunc/open\n\n* one\n\nText with nested codes and $a <=> $b."
	if got != want {
		t.Fatalf("podText:\n%q\nwant\n%q", got, want)
	}
}

func TestDictDocs(t *testing.T) {
	// gcide style: entries separated by blank lines; WordNet style: no blank lines.
	gcide := "Abbey \\Ab\"bey\\, n.\n   A monastery.\n   [1913 Webster]\n\nAbbot \\Ab\"bot\\, n.\n   The head of an abbey.\n\nAbdomen n.\n   The belly.\n"
	docs := dictDocs(gcide, 2)
	if len(docs) != 2 || !strings.HasPrefix(docs[0], "Abbey") || !strings.Contains(docs[0], "Abbot") || !strings.HasPrefix(docs[1], "Abdomen") {
		t.Fatalf("gcide docs: %q", docs)
	}
	wn := "60\n    adj 1: being ten more than fifty\n60 minutes\n    n 1: an hour\n61\n    adj 1: one more than sixty\n"
	if docs := dictDocs(wn, 1); len(docs) != 3 || !strings.HasPrefix(docs[1], "60 minutes") {
		t.Fatalf("wordnet docs: %q", docs)
	}
}

func TestEmailBody(t *testing.T) {
	msg := "From: a@b\r\nSubject: hi\r\n\r\nHello there.\r\nSecond line."
	if got := emailBody(msg); got != "Hello there.\nSecond line." {
		t.Fatalf("emailBody: %q", got)
	}
	if got := clean(emailBody("Subject: x\n\n<html><body><p>Rich <i>text</i></p></body></html>")); got != "Rich text" {
		t.Fatalf("html email: %q", got)
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func gz(s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.Bytes()
}

// Build over two small sources: globs select the files, gzip is read, a paragraph repeated
// in a later document is dropped, short documents are dropped, and the split is a function
// of the id alone.
func TestBuild(t *testing.T) {
	root := t.TempDir()
	shared := "This paragraph is boilerplate that every page of the manual repeats verbatim."
	writeFile(t, filepath.Join(root, "doc-a", "usr/share/doc/a/one.txt"), []byte("Alpha one says something long enough to keep as a document of its own.\n\n"+shared+"\n\n"+strings.Repeat("More alpha text. ", 12)))
	writeFile(t, filepath.Join(root, "doc-a", "usr/share/doc/a/two.txt.gz"), gz(shared+"\n\n"+strings.Repeat("Beta text that is new. ", 12)))
	writeFile(t, filepath.Join(root, "doc-a", "usr/share/doc/a/skip.bin"), []byte("not selected"))
	writeFile(t, filepath.Join(root, "doc-a", "usr/share/doc/a/tiny.txt"), []byte("too short"))
	writeFile(t, filepath.Join(root, "@scope+pages", "package/p.html"), []byte("<p>"+shared+"</p><p>"+strings.Repeat("Gamma words here. ", 15)+"</p>"))
	m := &Manifest{Sources: []Source{
		{Name: "a", Package: "deb:doc-a=1.0-1", License: "MIT", URL: "https://example.org/a", Include: []string{"usr/share/doc/a/*.txt", "usr/share/doc/a/*.txt.gz"}, Format: "text"},
		{Name: "pages", Package: "npm:@scope/pages@2.0.0", License: "CC0-1.0", URL: "https://example.org/p", Include: []string{"package/*.html"}, Format: "html"},
	}}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	stats, err := Build(m, root, &out, Options{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	var docs []Doc
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var d Doc
		if err := json.Unmarshal([]byte(line), &d); err != nil {
			t.Fatal(err)
		}
		docs = append(docs, d)
	}
	if len(docs) != 3 {
		t.Fatalf("%d documents, want 3 (one.txt, two.txt.gz, p.html): %+v", len(docs), docs)
	}
	if strings.Count(out.String(), "boilerplate") != 1 || !strings.Contains(docs[0].Text, "boilerplate") {
		t.Fatalf("the shared paragraph should stay in the first document only:\n%s", out.String())
	}
	if docs[1].ID != "a/usr/share/doc/a/two.txt.gz" || !strings.HasPrefix(docs[1].Text, "Beta") {
		t.Fatalf("second document: %+v", docs[1])
	}
	if stats[0].Files != 3 || stats[0].Docs != 2 || stats[0].ShortDocs != 1 || stats[0].DupParagraphs != 1 || stats[1].DupParagraphs != 1 {
		t.Fatalf("stats: %+v", stats)
	}
	for _, d := range docs {
		if d.Split != splitOf(d.ID, 2) {
			t.Fatalf("%s: split %s", d.ID, d.Split)
		}
	}
	// --train-percent 50 keeps the train documents whose CRC-32 of the id mod 100 is below 50
	// (Python's zlib.crc32: one.txt 8, two.txt.gz 54, p.html 17), each line as in the whole
	// corpus: two.txt.gz's line goes, the others stay verbatim and in order.
	var half bytes.Buffer
	hstats, err := Build(m, root, &half, Options{Workers: 2, TrainPercent: 50})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(out.String(), "\n")
	if want := lines[0] + lines[2]; half.String() != want {
		t.Fatalf("50%% corpus:\n%s\nwant:\n%s", half.String(), want)
	}
	if hstats[0].SampledOut != 1 || hstats[0].Docs != 1 || hstats[1].SampledOut != 0 {
		t.Fatalf("50%% stats: %+v", hstats)
	}
	// At 1% every train document of these sources is sampled out: an empty subset of a source,
	// not a source that gave nothing.
	var none bytes.Buffer
	nstats, err := Build(m, root, &none, Options{Workers: 2, TrainPercent: 1})
	if err != nil || none.Len() != 0 || nstats[0].SampledOut != 2 || nstats[1].SampledOut != 1 {
		t.Fatalf("1%% corpus: %v, %d bytes, stats %+v", err, none.Len(), nstats)
	}
	// Every id lands in eval for some share of ids: 2% of 5,000 made-up ids, within noise.
	eval := 0
	for i := range 5000 {
		if splitOf(filepath.Join("src", strings.Repeat("x", i%7), string(rune('a'+i%26)), strings.Repeat("y", i)), 2) == Eval {
			eval++
		}
	}
	if eval < 60 || eval > 150 {
		t.Fatalf("%d of 5000 ids in eval, want about 100", eval)
	}
	path := filepath.Join(t.TempDir(), "c.jsonl")
	writeFile(t, path, out.Bytes())
	if got, err := ReadDocs(path, Train); err != nil || len(got)+countSplit(docs, Eval) != 3 {
		t.Fatalf("ReadDocs train: %d docs, %v", len(got), err)
	}
}

func countSplit(docs []Doc, split string) int {
	n := 0
	for _, d := range docs {
		if d.Split == split {
			n++
		}
	}
	return n
}

// Errors name the source, the field, the directory or the file and line.
func TestErrorsNameTheirPlace(t *testing.T) {
	good := Source{Name: "a", Package: "deb:doc-a=1.0-1", License: "MIT", URL: "u", Include: []string{"*.txt"}, Format: "text"}
	for field, mutate := range map[string]func(*Source){
		"name":         func(s *Source) { s.Name = "Bad Name" },
		"package":      func(s *Source) { s.Package = "pip:foo" },
		"license":      func(s *Source) { s.License = " " },
		"url":          func(s *Source) { s.URL = "" },
		"include":      func(s *Source) { s.Include = nil },
		"format":       func(s *Source) { s.Format = "pdf" },
		"dict_entries": func(s *Source) { s.Format = "dictd" },
		"glob":         func(s *Source) { s.Include = []string{"/abs/*.txt"} },
	} {
		s := good
		mutate(&s)
		err := (&Manifest{Sources: []Source{s}}).Validate()
		if err == nil || !strings.Contains(err.Error(), "sources[0]") || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: error %v does not name sources[0] and %s", field, err, field)
		}
	}
	if err := (&Manifest{Sources: []Source{good, good}}).Validate(); err == nil || !strings.Contains(err.Error(), "sources[1]") {
		t.Errorf("duplicate name: %v", err)
	}
	root := t.TempDir()
	_, err := Build(&Manifest{Sources: []Source{good}}, root, &bytes.Buffer{}, Options{})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(root, "doc-a")) || !strings.Contains(err.Error(), "deb:doc-a=1.0-1") {
		t.Errorf("missing package directory: %v", err)
	}
	writeFile(t, filepath.Join(root, "doc-a", "x.md"), []byte("x"))
	if _, err := Build(&Manifest{Sources: []Source{good}}, root, &bytes.Buffer{}, Options{}); err == nil || !strings.Contains(err.Error(), "no file") {
		t.Errorf("no matching file: %v", err)
	}
	bad := filepath.Join(root, "c.jsonl")
	writeFile(t, bad, []byte(`{"id":"a","source":"a","split":"train","text":"t"}`+"\n{oops\n"))
	if _, err := ReadDocs(bad, ""); err == nil || !strings.Contains(err.Error(), bad+":2") {
		t.Errorf("bad line: %v", err)
	}
	if _, err := ReadDocs(filepath.Join(root, "missing.jsonl"), ""); err == nil || !strings.Contains(err.Error(), "missing.jsonl") {
		t.Errorf("missing file: %v", err)
	}
	empty := filepath.Join(root, "empty.jsonl")
	writeFile(t, empty, nil)
	if _, err := ReadDocs(empty, ""); err == nil || !strings.Contains(err.Error(), "empty.jsonl") {
		t.Errorf("empty file: %v", err)
	}
	if _, err := LoadManifest(filepath.Join("..", "..", "configs", "corpus.json")); err != nil {
		t.Errorf("the shipped manifest: %v", err)
	}
}
