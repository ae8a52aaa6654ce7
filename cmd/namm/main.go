// Command namm runs transformers with an evolved memory: generation, evaluation
// of memory policies on long-context tasks, benchmarks and evolution.
package main

import (
	"fmt"
	"os"
	"runtime/pprof"
	"strings"

	"github.com/spf13/cobra"

	"github.com/namm-dev/namm/internal/provenance"
)

func main() {
	if err := rootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, errorLine(err))
		os.Exit(1)
	}
}

// errorLine is the message printed for a failed command: "namm: " and the
// error, whose own "namm: " (errors of package namm) is not repeated.
func errorLine(err error) string {
	return "namm: " + strings.TrimPrefix(err.Error(), "namm: ")
}

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "namm",
		Short: "Neural Attention Memory Models: transformers that learn what to forget",
		Long: `namm runs Hugging Face decoder models (Llama, Mistral, Qwen2) in pure Go or on an
NVIDIA GPU, with a KV cache managed by a memory policy: an evolved Neural
Attention Memory Model (NAMM, "An Evolved Universal Transformer Memory", ICLR
2025) or a baseline (StreamingLLM, H2O, L2, TOVA, SnapKV, FastGen, random).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       versionLine(provenance.ReadBuild()),
	}
	var cpuProfile string
	root.PersistentFlags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile to this file")
	_ = root.PersistentFlags().MarkHidden("cpuprofile")
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		if cpuProfile == "" {
			return nil
		}
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		return pprof.StartCPUProfile(f)
	}
	root.PersistentPostRun = func(cmd *cobra.Command, args []string) {
		if cpuProfile != "" {
			pprof.StopCPUProfile()
		}
	}
	root.AddCommand(generateCmd(), tracePlotCmd(), benchCmd(), policiesCmd())
	for _, c := range extraCommands {
		root.AddCommand(c())
	}
	return root
}

// extraCommands lets other files of this package add commands.
var extraCommands []func() *cobra.Command

// versionLine is what --version prints: the module version, the commit the
// binary was built from and the Go version.
func versionLine(b provenance.Build) string {
	v := b.Version
	if b.Commit != "" {
		v += " commit " + b.Commit
		if b.Modified {
			v += " (modified)"
		}
	}
	return v + " " + b.Go
}
