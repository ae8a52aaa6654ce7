package tokenizer

// TokenText is the text one token stands for on its own: byte-level and
// byte-fallback tokens as their bytes (possibly part of a UTF-8 character),
// "▁" as a space, without the decoder's rules for a whole sequence (such as
// dropping the first space). It is what an API reports as a token's text;
// "" for an unknown id.
func (t *Tokenizer) TokenText(id int) string {
	s, _ := t.tokenText(id)
	return s
}
