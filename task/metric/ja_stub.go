//go:build nojapanese

package metric

// jaWords is absent from builds with -tags nojapanese (used for the GPU
// binary, which must stay small): the kagome dictionary adds ~13 MB.
func jaWords(string) []string {
	panic("metric: this binary was built with -tags nojapanese; ja_f1 and ja_rouge are unavailable")
}
