package jieba

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
)

// TestCutMatchesPython compares Cut with jieba 0.42.1 run by make_data.py.
func TestCutMatchesPython(t *testing.T) {
	b, err := os.ReadFile("testdata/cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Text  string   `json:"text"`
		Words []string `json:"words"`
	}
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		got := Cut(c.Text)
		if !slices.Equal(got, c.Words) && !(len(got) == 0 && len(c.Words) == 0) {
			t.Errorf("Cut(%q)\n got %q\nwant %q", c.Text, got, c.Words)
		}
		if strings.Join(got, "") != c.Text {
			t.Errorf("Cut(%q) does not concatenate back", c.Text)
		}
	}
}
