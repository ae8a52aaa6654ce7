package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/namm-dev/namm/evolve"
)

func workerCmd() *cobra.Command {
	var mf modelFlags
	var natsURL string
	var workers, batch int
	var exitIdle time.Duration
	cmd := &cobra.Command{
		Use:   "worker --nats URL [--model DIR]",
		Short: "Evaluate NAMM candidates for 'namm evolve --nats' coordinators",
		Long: `Pull evaluation jobs from the NATS JetStream work queue of 'namm evolve --nats',
run them on the model and send the results back. Run any number of workers on
any number of machines; a job whose worker dies is delivered to another. The
model must be the coordinator's (the same files, checked by a hash of their
content; default: the embedded model); a worker with another model refuses
the jobs, says why, and leaves them to the other workers. A worker outlives
its coordinator's run and waits for the next one (saying so after a minute
without jobs); --exit-idle makes it stop by itself. On a host of several GPUs,
run one worker per GPU with --gpu N (scripts/gpu/evolve_multi.sh).`,
		Example: `  namm worker --nats nats://10.0.0.5:4222 --model /models/llama-3-8b --backend xla:/path/pjrt_c_api_gpu_plugin.so
  namm worker --nats nats://127.0.0.1:4222 --model DIR --backend xla:/path/xla_cuda_plugin.so --gpu 1`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if natsURL == "" {
				return errors.New("give --nats URL (the coordinator prints it)")
			}
			mf.gpuGiven = cmd.Flags().Changed("gpu")
			if err := mf.validate(); err != nil {
				return err
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
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			stderr := cmd.ErrOrStderr()
			nc, err := nats.Connect(natsURL, nats.Name("namm-worker "+ev.Name), nats.MaxReconnects(-1),
				nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
					fmt.Fprintf(stderr, "worker %s: lost the NATS server at %s (%v): reconnecting; a coordinator's embedded server stops when its run ends (--exit-idle stops a worker without jobs)\n", ev.Name, natsURL, err)
				}),
				nats.ReconnectHandler(func(*nats.Conn) { fmt.Fprintf(stderr, "worker %s: reconnected to %s\n", ev.Name, natsURL) }))
			if err != nil {
				return fmt.Errorf("nats: connect %s: %w", natsURL, err)
			}
			defer nc.Close()
			on := mf.backend
			if mf.gpuGiven {
				on = fmt.Sprintf("GPU %d (CUDA_VISIBLE_DEVICES=%d)", mf.gpu, mf.gpu)
			}
			fmt.Fprintf(stderr, "worker %s: model %s on %s, %d concurrent jobs, waiting for jobs at %s\n", ev.Name, id, on, workers, natsURL)
			w := &evolve.Worker{Eval: ev, Concurrency: workers, IdleExit: exitIdle,
				Messages: func(s string) { fmt.Fprintf(stderr, "worker %s: %s\n", ev.Name, s) }}
			err = w.Run(ctx, nc)
			fmt.Fprintf(stderr, "worker %s: %d jobs done\n", ev.Name, w.Done())
			if errors.Is(err, evolve.ErrIdle) {
				fmt.Fprintf(stderr, "worker %s: no jobs for %v: stopping\n", ev.Name, exitIdle)
				return nil
			}
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		},
	}
	mf.manyPrompts = true
	mf.register(cmd)
	mf.registerGPU(cmd)
	cmd.Flags().StringVar(&natsURL, "nats", "", "NATS server URL of the coordinator")
	cmd.Flags().IntVar(&workers, "workers", 1, "jobs run at once (at least --batch)")
	cmd.Flags().IntVar(&batch, "batch", 1, "jobs that share each forward pass, each with its own cache and NAMM parameters")
	cmd.Flags().DurationVar(&exitIdle, "exit-idle", 0, "stop after this long without a job, e.g. 10m (0: wait for the next run until Ctrl-C)")
	return cmd
}
