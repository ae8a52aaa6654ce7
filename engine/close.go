package engine

// Close frees the session's cache buffers and hidden states now, instead of
// leaving them to Go's collector, which does not see device memory: a
// server that starts a session per request would otherwise hold finished
// requests' caches on the GPU until a collection. The session must not be
// used after Close.
func (s *Session) Close() {
	for i := range s.cache.Layers {
		l := &s.cache.Layers[i]
		release(l.K, l.V, l.Pos, l.Feat)
	}
	release(s.hidden)
	s.cache.Layers, s.hidden = nil, nil
}
