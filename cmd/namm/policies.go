package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/namm-dev/namm/policy"
)

func policiesCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "policies",
		Short: "List the memory policies and their options",
		RunE: func(cmd *cobra.Command, args []string) error {
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "POLICY\tDESCRIPTION")
			for _, n := range policy.Names() {
				fmt.Fprintf(w, "%s\t%s\n", n, policy.Help(n))
			}
			return w.Flush()
		},
	}
}
