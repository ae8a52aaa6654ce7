package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/namm-dev/namm/inspect"
	"github.com/namm-dev/namm/internal/atomicfile"
)

func tracePlotCmd() *cobra.Command {
	var traceFile, out string
	cmd := &cobra.Command{
		Use:   "trace-plot --trace FILE --out heat.png",
		Short: "Draw an eviction trace (generate --trace) as a layers x tokens heatmap",
		Example: `  namm generate --model DIR --prompt-file long.txt --memory h2o --budget 256 --trace trace.json
  namm trace-plot --trace trace.json --out heat.png`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if traceFile == "" || out == "" {
				return fmt.Errorf("give --trace FILE (from namm generate --trace) and --out FILE.png or .svg")
			}
			format := strings.TrimPrefix(strings.ToLower(filepath.Ext(out)), ".")
			if format != "png" && format != "svg" {
				return fmt.Errorf("--out %s: the name must end in .png or .svg", out)
			}
			data, err := os.ReadFile(traceFile)
			if err != nil {
				return err
			}
			var t inspect.Trace
			if err := json.Unmarshal(data, &t); err != nil {
				return fmt.Errorf("--trace %s: %w", traceFile, err)
			}
			if t.Format != inspect.Format {
				return fmt.Errorf("--trace %s: format %q, want %q (a file of namm generate --trace)", traceFile, t.Format, inspect.Format)
			}
			img, err := inspect.Heatmap(&t, format)
			if err != nil {
				return fmt.Errorf("--trace %s: %w", traceFile, err)
			}
			return atomicfile.WriteFile(out, img)
		},
	}
	cmd.Flags().StringVar(&traceFile, "trace", "", "an eviction trace written by namm generate --trace")
	cmd.Flags().StringVar(&out, "out", "", "the picture to write (.png or .svg)")
	return cmd
}
