package haystack

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

// The sha256 of each decompressed text, as recorded in PROVENANCE.md by make_texts.sh.
var wantSHA = map[string]string{
	"austen-emma":         "71b0923d75fcf2f1faa897b22da8de8e2476d7478a2b22388eb58a3420e00215",
	"austen-persuasion":   "ecac27fe8f5e638574e985dbcbb6d79574ca932076fa86f312828f2c7aedf8e8",
	"carroll-alice":       "5ce9042c0d8536b072b61d4c7c4e6d70c72d9dbb5f3d816261326d9280749266",
	"chesterton-brown":    "20cd899f64eaf818d1aca069d34a1ea65cf7c46c23a30b490f941c146426cbda",
	"chesterton-thursday": "137bd71146c7dc9f49e4c7d5b1de884b5b3e901e5b0214c4524b141b460e2bc6",
	"melville-moby_dick":  "80963b20e4155de6a57ea058a0c29fe0097b3782e7fd7570615810711dca5e05",
	"sotu":                "aeda0deb17ae70d9d1006da70860a843dd0403fdc237174dd9deca9e5050022a",
}

func TestTextsMatchProvenance(t *testing.T) {
	all := Texts()
	if len(all) != len(wantSHA) {
		t.Fatalf("got %d texts %v, want %d", len(all), Names(), len(wantSHA))
	}
	for name, want := range wantSHA {
		sum := sha256.Sum256([]byte(all[name]))
		if got := hex.EncodeToString(sum[:]); got != want {
			t.Errorf("%s: sha256 %s, want %s", name, got, want)
		}
	}
}

func TestSplitPartitionsText(t *testing.T) {
	for _, name := range Names() {
		whole, _ := Get(name)
		train, err := Split(name, Train)
		if err != nil {
			t.Fatal(err)
		}
		eval, err := Split(name, Eval)
		if err != nil {
			t.Fatal(err)
		}
		if train+eval != whole {
			t.Errorf("%s: train+eval != whole text", name)
		}
		frac := float64(len(eval)) / float64(len(whole))
		if frac < 0.05 || frac > 0.11 {
			t.Errorf("%s: eval fraction %.3f, want about %.2f", name, frac, EvalFraction)
		}
		if !strings.HasSuffix(train, "\n") {
			t.Errorf("%s: train split does not end at a line break", name)
		}
	}
}

func TestErrors(t *testing.T) {
	if _, err := Get("no-such-book"); err == nil || !strings.Contains(err.Error(), "austen-emma") {
		t.Errorf("Get(unknown) error %v should list the available names", err)
	}
	if _, err := Split("carroll-alice", "test"); err == nil {
		t.Error("Split with a bad split name succeeded")
	}
}
