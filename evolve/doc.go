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
package evolve
