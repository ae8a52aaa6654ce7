package corpus

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"

	"golang.org/x/net/html"
)

// readMaybeGzip returns the file's bytes, decompressed when they start with gzip's magic
// (Debian compresses documentation files; dictzip files are gzip-compatible).
func readMaybeGzip(data []byte) ([]byte, error) {
	if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		return data, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

// extract turns one file into documents' texts (several for dictd).
func extract(format string, data []byte, dictEntries int) ([]string, error) {
	data, err := readMaybeGzip(data)
	if err != nil {
		return nil, fmt.Errorf("decompressing: %w", err)
	}
	switch format {
	case "text":
		return []string{string(data)}, nil
	case "html":
		return []string{htmlText(data)}, nil
	case "pod":
		return []string{podText(string(data))}, nil
	case "dictd":
		return dictDocs(string(data), dictEntries), nil
	case "json-text", "email":
		var rec struct {
			Text *string `json:"text"`
		}
		if err := json.Unmarshal(data, &rec); err != nil {
			return nil, fmt.Errorf("json: %w", err)
		}
		if rec.Text == nil {
			return nil, fmt.Errorf("json: no \"text\" field")
		}
		if format == "email" {
			return []string{emailBody(*rec.Text)}, nil
		}
		return []string{*rec.Text}, nil
	}
	return nil, fmt.Errorf("unknown format %q", format)
}

// skippedElements hold no running text: navigation, scripts, forms, figures.
var skippedElements = map[string]bool{
	"head": true, "script": true, "style": true, "nav": true, "noscript": true, "svg": true,
	"button": true, "form": true, "select": true, "iframe": true, "header": true, "footer": true,
}

// skippedClasses mark navigation blocks of Sphinx, DocBook, mdBook and rustdoc pages.
var skippedClasses = []string{"sphinxsidebar", "related", "footer", "navheader", "navfooter",
	"nav-chapters", "headerlink", "menu-bar", "toc", "breadcrumb"}

var blockElements = map[string]bool{
	"p": true, "div": true, "br": true, "li": true, "ul": true, "ol": true, "dl": true, "dt": true,
	"dd": true, "h1": true, "h2": true, "h3": true, "h4": true, "h5": true, "h6": true, "pre": true,
	"table": true, "tr": true, "blockquote": true, "section": true, "article": true, "td": true,
	"th": true, "hr": true, "title": true, "body": true, "main": true, "figcaption": true,
}

// htmlText returns the running text of an HTML page: paragraphs separated by blank lines,
// whitespace collapsed inside them (kept inside <pre>), navigation and scripts left out.
func htmlText(data []byte) string {
	doc, err := html.Parse(bytes.NewReader(data))
	if err != nil { // html.Parse accepts almost anything; fall back to nothing
		return ""
	}
	var b strings.Builder
	var walk func(n *html.Node, pre bool)
	walk = func(n *html.Node, pre bool) {
		if n.Type == html.ElementNode {
			if skippedElements[n.Data] {
				return
			}
			for _, a := range n.Attr {
				if a.Key == "class" || a.Key == "role" {
					for _, c := range strings.Fields(a.Val) {
						for _, s := range skippedClasses {
							if c == s || c == "navigation" {
								return
							}
						}
					}
				}
			}
		}
		if n.Type == html.TextNode {
			if pre {
				b.WriteString(n.Data)
			} else {
				b.WriteString(collapseSpace(n.Data))
			}
		}
		isPre := pre || (n.Type == html.ElementNode && n.Data == "pre")
		block := n.Type == html.ElementNode && blockElements[n.Data]
		if block {
			b.WriteString("\n\n")
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, isPre)
		}
		if block {
			b.WriteString("\n\n")
		}
	}
	walk(doc, false)
	return b.String()
}

// collapseSpace turns every run of white space into one space, keeping a leading and trailing
// one if there was any (inline elements sit between words).
func collapseSpace(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		if s != "" {
			return " "
		}
		return ""
	}
	out := strings.Join(f, " ")
	if isSpace(s[0]) {
		out = " " + out
	}
	if isSpace(s[len(s)-1]) {
		out += " "
	}
	return out
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' }

var (
	podFormatting       = regexp.MustCompile(`[BICFLSXEZ]<([^<>]*)>`)
	podSpacedFormatting = regexp.MustCompile(`[BICFLSXEZ]<<+\s+(.*?)\s+>>+`) // C<< $a <=> $b >>
)

// podText returns a Perl POD document's text: command paragraphs lose their "=cmd", "=head"
// titles stay as lines, formatting codes (B<...>, C<...>, L<...>) keep their inner text.
func podText(s string) string {
	var out []string
	for _, para := range strings.Split(s, "\n\n") {
		p := strings.TrimSpace(para)
		if strings.HasPrefix(p, "=") {
			cmd, rest, _ := strings.Cut(p[1:], " ")
			if !strings.HasPrefix(cmd, "head") && !strings.HasPrefix(cmd, "item") {
				continue // =pod, =cut, =over, =back, =begin, =for ...
			}
			p = rest
		}
		p = podSpacedFormatting.ReplaceAllString(p, "$1")
		for i := 0; i < 3; i++ { // nested codes: B<C<x>>, innermost first
			p = podFormatting.ReplaceAllString(p, "$1")
		}
		if strings.TrimSpace(p) != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "\n\n")
}

// dictDocs cuts a dictd database into documents of n entries each. An entry starts at a line
// that is not indented (dictd's plain-text format: a headword line, then the indented
// definition).
func dictDocs(s string, n int) []string {
	var docs []string
	var cur strings.Builder
	entries := 0
	for _, line := range strings.Split(s, "\n") {
		if line != "" && !strings.HasPrefix(line, " ") && !strings.HasPrefix(line, "\t") {
			if entries == n {
				docs = append(docs, cur.String())
				cur.Reset()
				entries = 0
			}
			entries++
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	if cur.Len() > 0 {
		docs = append(docs, cur.String())
	}
	return docs
}

// emailBody drops an RFC 822 message's headers; a body that is HTML is read as HTML.
func emailBody(msg string) string {
	msg = strings.ReplaceAll(msg, "\r\n", "\n")
	_, body, ok := strings.Cut(msg, "\n\n")
	if !ok {
		return ""
	}
	if i := strings.Index(strings.ToLower(body), "<html"); i >= 0 && i < 400 {
		return htmlText([]byte(body))
	}
	return body
}
