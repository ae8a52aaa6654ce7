package tokenizer

import "golang.org/x/text/unicode/norm"

// unicodeForm is one of the NFC/NFD/NFKC/NFKD normalizers (Qwen2 uses NFC).
type unicodeForm struct{ form norm.Form }

func (u unicodeForm) normalize(s string) string { return u.form.String(s) }

func unicodeNormalizer(typ string) (normalizer, bool) {
	forms := map[string]norm.Form{"NFC": norm.NFC, "NFD": norm.NFD, "NFKC": norm.NFKC, "NFKD": norm.NFKD}
	f, ok := forms[typ]
	return unicodeForm{f}, ok
}
