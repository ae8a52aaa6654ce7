package main

import "fmt"

// resolveModel returns the model directory to load: the flag's value, or the
// embedded default model.
func resolveModel(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	return "", fmt.Errorf("no --model given, and this build has no embedded default model yet (see issue: base models); try --model testdata/models/tiny-llama")
}
