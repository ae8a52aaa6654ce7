// Package evolve trains a NAMM with CMA-ES (namm-reference.md §5): a
// curriculum of stages, each a set of generated tasks; per generation every
// member of the population is scored on prompts drawn from the stage's
// training pools, its fitness normalised by the full-cache score on the same
// prompts; the mean is validated every few generations on held-out prompts
// and the best one is kept as a NAMM file.
//
// Evaluation goes through a Pool: LocalPool runs jobs on goroutines in this
// process, NATSPool sends them to Workers over a NATS JetStream work queue.
// A job is one (member, sample) pair; workers regenerate the sample from its
// task spec, which is deterministic, so a job carries only the spec, the
// sample index, the candidate vector and the normalisation.
//
// A Run checkpoints after every generation (atomic, checksummed, last two
// kept) and resumes from the newest valid checkpoint bit for bit: sample
// draws depend only on (seed, iteration, task), the optimiser state is
// restored exactly, and evaluation is deterministic (greedy decoding).
//
// Files in the output directory: checkpoint-NNNNNNNN.ckpt (the last two),
// evolve.jsonl (one LogEntry per generation), fitness.png, sigma.png and
// cache.png, refs.json (full-cache references), norm.json (the frozen
// normalisation), best.namm and best-stageK.namm.
//
// Known limits: in full CMA-ES mode a checkpoint holds two 70 MB optimiser
// states (current and best) and a generation costs one 4172 x 4172
// eigendecomposition (about 5 minutes on the 2-core development machine;
// sep mode: about 4 ms). A stage that restarts from the previous stage's best
// state also restores its sampler, so its first population repeats the
// population drawn at that best generation (evaluated on the new tasks). The
// model fingerprint covers the model's files, not the backend or dtype a
// worker runs them with.
package evolve
