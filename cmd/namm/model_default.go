package main

import "github.com/namm-dev/namm/defaultmodel"

// resolveModel returns the model directory to load: the flag's value, or the
// embedded default model (model A, extracted to the cache directory).
func resolveModel(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	return defaultmodel.Dir()
}
