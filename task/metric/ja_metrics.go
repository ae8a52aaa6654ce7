package metric

import "strings"

// QAF1Ja is ChouBun's F1: kagome words, normalised as in QAF1Zh, token F1.
func QAF1Ja(prediction, answer string, _ []string) float64 {
	return tokenF1(normalizedWords(jaWords(prediction)), normalizedWords(jaWords(answer)))
}

// RougeLJa is ChouBun's ROUGE-L: RougeL over the kagome words joined by
// spaces.
func RougeLJa(prediction, answer string, _ []string) float64 {
	f, err := rougeLF(strings.Join(jaWords(prediction), " "), strings.Join(jaWords(answer), " "), rougeFirstReconDepth+1)
	if err != nil {
		return 0
	}
	return f
}
