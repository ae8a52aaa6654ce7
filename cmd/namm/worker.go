package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/namm-dev/namm/evolve"
)

func workerCmd() *cobra.Command {
	var mf modelFlags
	var natsURL string
	var workers, batch int
	cmd := &cobra.Command{
		Use:   "worker --nats URL [--model DIR]",
		Short: "Evaluate NAMM candidates for 'namm evolve --nats' coordinators",
		Long: `Pull evaluation jobs from the NATS JetStream work queue of 'namm evolve --nats',
run them on the model and send the results back. Run any number of workers on
any number of machines; a job whose worker dies is delivered to another. The
model must be the coordinator's (the same files, checked by a hash of their
content; default: the embedded model); a worker with another model refuses
the jobs, says why, and leaves them to the other workers.`,
		Example: `  namm worker --nats nats://10.0.0.5:4222 --model /models/llama-3-8b --backend xla:/path/pjrt_c_api_gpu_plugin.so`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if natsURL == "" {
				return errors.New("give --nats URL (the coordinator prints it)")
			}
			id, err := mf.modelID()
			if err != nil {
				return err
			}
			fp := id.Hash
			e, tok, err := mf.load()
			if err != nil {
				return err
			}
			host, _ := os.Hostname()
			ev := evolve.NewEvaluator(e, tok, fp)
			ev.Name = fmt.Sprintf("%s-%d", host, os.Getpid())
			if err := setBatch(ev, batch); err != nil {
				return err
			}
			workers = max(workers, batch)
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			nc, err := nats.Connect(natsURL, nats.Name("namm-worker "+ev.Name), nats.MaxReconnects(-1))
			if err != nil {
				return fmt.Errorf("nats: connect %s: %w", natsURL, err)
			}
			defer nc.Close()
			stderr := cmd.ErrOrStderr()
			fmt.Fprintf(stderr, "worker %s: model %s, %d concurrent jobs, waiting for jobs at %s\n", ev.Name, id, workers, natsURL)
			w := &evolve.Worker{Eval: ev, Concurrency: workers, Messages: func(s string) { fmt.Fprintln(stderr, s) }}
			err = w.Run(ctx, nc)
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		},
	}
	mf.manyPrompts = true
	mf.register(cmd)
	cmd.Flags().StringVar(&natsURL, "nats", "", "NATS server URL of the coordinator")
	cmd.Flags().IntVar(&workers, "workers", 1, "jobs run at once (at least --batch)")
	cmd.Flags().IntVar(&batch, "batch", 1, "jobs that share each forward pass, each with its own cache and NAMM parameters")
	return cmd
}
