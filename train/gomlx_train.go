package train

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gomlx/gomlx/backends"
	_ "github.com/gomlx/gomlx/backends/simplego" // the pure-Go backend
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/namm-dev/namm/internal/progress"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/namm-dev/namm/model"
	"github.com/namm-dev/namm/safetensors"
)

// BaseOptions configure TrainBase.
type BaseOptions struct {
	Config  *RunConfig
	Data    *TokenFile // training sequences; their length must be a multiple of train.seq_len
	OutDir  string     // the Hugging Face directory; checkpoints and logs go to OutDir/train/
	Backend string     // "go" (default) or "go:CONFIG"
	// Steps overrides train.max_steps as the schedule length (0: max_steps).
	Steps int
	// StopAfter ends the run after this global step without writing the
	// model directory (0: run to the end); a later run resumes from the
	// checkpoint written there.
	StopAfter int
	Resume    bool      // continue from OutDir/train/checkpoint.safetensors when present
	Progress  io.Writer // progress bar (drawn only on a terminal); nil for none
}

// StepLog is one optimizer step's record in OutDir/train/log.jsonl.
type StepLog struct {
	Step     int     `json:"step"` // 1-based count of steps done
	Tokens   int64   `json:"tokens"`
	Loss     float64 `json:"loss"`
	LR       float64 `json:"lr"`
	GradNorm float64 `json:"grad_norm"`
	Seconds  float64 `json:"seconds"` // wall time of the step
}

// BaseResult summarises a run.
type BaseResult struct {
	Log        []StepLog // every step, earlier runs' included when resumed
	Steps      int       // global steps done
	Parameters int
	ResumedAt  int // step the run resumed from (0: fresh)
	Elapsed    time.Duration
	Params     [][]float32 // final weights in ModelParams order
}

// Checkpoint and log file names inside OutDir/train/.
const (
	CheckpointFile = "checkpoint.safetensors"
	LogFile        = "log.jsonl"
	LossPlotFile   = "loss.png"
)

// trainer holds a run's compiled step and state.
type trainer struct {
	cfg       *model.Config
	tp        TrainParams
	params    []Param
	backend   backends.Backend
	step      *Exec
	state     []*tensors.Tensor // params, then Adam's m, then v
	cos, sin  *tensors.Tensor
	data      *TokenFile
	rows      int // training rows of seq_len tokens
	perRow    int // rows per file sequence
	batch     int
	permEpoch int
	perm      []int
}

// TrainBase trains the configured model on the CPU with AdamW (decoupled
// weight decay on matrices only, as scripts/gpu/train_base.py), linear
// warm-up and cosine decay, gradient clipping, and checkpoints that resume
// exactly; then it writes the Hugging Face directory.
func TrainBase(opt BaseOptions) (*BaseResult, error) {
	start := time.Now()
	c := opt.Config
	tp := c.Train
	if opt.Data == nil {
		return nil, fmt.Errorf("train-base: no training data")
	}
	if opt.Data.VocabSize > c.Model.VocabSize {
		return nil, fmt.Errorf("train-base: data vocabulary %d exceeds model.vocab_size %d", opt.Data.VocabSize, c.Model.VocabSize)
	}
	if opt.Data.SeqLen%tp.SeqLen != 0 {
		return nil, fmt.Errorf("train-base: train.seq_len %d must divide the data's sequence length %d", tp.SeqLen, opt.Data.SeqLen)
	}
	planned := tp.MaxSteps
	if opt.Steps > 0 {
		planned = opt.Steps
	}
	spec := opt.Backend
	if spec == "" || spec == "go" {
		spec = "go:ops_sequential"
	}
	b, err := backends.NewWithConfig(spec)
	if err != nil {
		return nil, fmt.Errorf("train-base: backend %q: %w", spec, err)
	}
	t := &trainer{cfg: c.Model, tp: tp, params: ModelParams(c.Model), backend: b, data: opt.Data,
		perRow: opt.Data.SeqLen / tp.SeqLen, batch: tp.BatchSize(), permEpoch: -1}
	t.rows = opt.Data.Count * t.perRow
	if t.rows == 0 {
		return nil, fmt.Errorf("train-base: the data has no sequences")
	}
	cosD, sinD := RopeTables(c.Model, tp.SeqLen)
	t.cos = tensors.FromFlatDataAndDimensions(cosD, tp.SeqLen, c.Model.HeadDim)
	t.sin = tensors.FromFlatDataAndDimensions(sinD, tp.SeqLen, c.Model.HeadDim)
	if t.step, err = NewExecAny(b, t.stepGraph); err != nil {
		return nil, fmt.Errorf("train-base: build the step graph: %w", err)
	}

	trainDir := filepath.Join(opt.OutDir, "train")
	if err := os.MkdirAll(trainDir, 0o755); err != nil {
		return nil, fmt.Errorf("train-base: %w", err)
	}
	ckpt := filepath.Join(trainDir, CheckpointFile)
	res := &BaseResult{Parameters: 0}
	for _, p := range t.params {
		res.Parameters += p.Size()
	}
	done := 0
	if _, statErr := os.Stat(ckpt); opt.Resume && statErr == nil {
		if done, err = t.loadCheckpoint(ckpt); err != nil {
			return nil, err
		}
		if res.Log, err = readLog(filepath.Join(trainDir, LogFile), done); err != nil {
			return nil, err
		}
		res.ResumedAt = done
	} else {
		init := InitParams(t.params, initStd(c), tp.Seed)
		for i, p := range t.params {
			t.state = append(t.state, tensors.FromFlatDataAndDimensions(init[i], p.Shape...))
		}
		for range 2 {
			for _, p := range t.params {
				t.state = append(t.state, tensors.FromFlatDataAndDimensions(make([]float32, p.Size()), p.Shape...))
			}
		}
	}
	end := planned
	if opt.StopAfter > 0 {
		end = min(end, opt.StopAfter)
	}

	bar := progress.New(opt.Progress, end-done, "train-base")
	defer bar.Break() // an error ends the bar's line first
	lastCkpt := time.Now()
	tokensPerStep := int64(t.batch * tp.SeqLen)
	for s := done; s < end; s++ {
		t0 := time.Now()
		lr := LRAt(s, tp.LR, tp.WarmupSteps, planned, tp.MinLRFrac)
		loss, gnorm, err := t.runStep(s, lr)
		if err != nil {
			return nil, fmt.Errorf("train-base: step %d: %w", s+1, err)
		}
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return nil, fmt.Errorf("train-base: step %d: loss is %v", s+1, loss)
		}
		rec := StepLog{Step: s + 1, Tokens: int64(s+1) * tokensPerStep, Loss: loss, LR: lr, GradNorm: gnorm, Seconds: time.Since(t0).Seconds()}
		res.Log = append(res.Log, rec)
		bar.Describe(fmt.Sprintf("train-base loss %.3f", loss))
		bar.Add(1)
		periodic := (tp.CheckpointEvery > 0 && (s+1)%tp.CheckpointEvery == 0) ||
			(tp.CheckpointMins > 0 && time.Since(lastCkpt).Minutes() >= tp.CheckpointMins)
		if periodic || s+1 == end {
			if err := t.saveCheckpoint(ckpt, s+1, planned); err != nil {
				return nil, err
			}
			if err := writeLog(filepath.Join(trainDir, LogFile), res.Log); err != nil {
				return nil, err
			}
			lastCkpt = time.Now()
		}
	}
	res.Steps = max(done, end)
	if err := writeLog(filepath.Join(trainDir, LogFile), res.Log); err != nil {
		return nil, err
	}
	if err := plotLoss(filepath.Join(trainDir, LossPlotFile), res.Log); err != nil {
		return nil, err
	}
	res.Params = make([][]float32, len(t.params))
	for i := range t.params {
		res.Params[i] = tensors.MustCopyFlatData[float32](t.state[i])
	}
	if opt.StopAfter == 0 || res.Steps >= planned {
		if err := WriteHFDir(opt.OutDir, c, t.params, res.Params); err != nil {
			return nil, err
		}
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// initStd is the config's initializer_range (default 0.02).
func initStd(c *RunConfig) float64 {
	var raw struct {
		Std *float64 `json:"initializer_range"`
	}
	if json.Unmarshal(c.ModelJSON, &raw) == nil && raw.Std != nil && *raw.Std > 0 {
		return *raw.Std
	}
	return 0.02
}

// stepGraph is one AdamW step. Inputs: ids, targets [B, T] int32, weights
// [B, T], cos, sin [T, H], lr, 1-beta1^t, 1-beta2^t (scalars), then the
// parameters, m and v. Outputs: loss, gradient norm (before clipping), then
// the new parameters, m and v.
func (t *trainer) stepGraph(in []*Node) []*Node {
	n := len(t.params)
	ids, targets, weights, cos, sin := in[0], in[1], in[2], in[3], in[4]
	lr, bc1, bc2 := in[5], in[6], in[7]
	ps, ms, vs := in[8:8+n], in[8+n:8+2*n], in[8+2*n:8+3*n]
	// The LM head's backward pass is written out (see CrossEntropyGrad); the
	// rest of the model is differentiated through a surrogate sum(h * dL/dh).
	h := Hidden(t.cfg, ps, ids, cos, sin)
	hi := headIndex(t.cfg, n)
	head, hs := StopGradient(ps[hi]), StopGradient(h)
	loss, gLogits := CrossEntropyGrad(Einsum("btd,vd->btv", hs, head), targets, weights)
	gH := Einsum("btv,vd->btd", gLogits, head)
	gHead := Einsum("btv,btd->vd", gLogits, hs)
	grads := Gradient(ReduceAllSum(Mul(h, gH)), ps...)
	grads[hi] = Add(grads[hi], gHead)
	var sq *Node
	for _, g := range grads {
		s := ReduceAllSum(Square(g))
		if sq == nil {
			sq = s
		} else {
			sq = Add(sq, s)
		}
	}
	norm := Sqrt(sq)
	scale := OnePlus(ZerosLike(norm))
	if t.tp.GradClip > 0 {
		// torch's clip_grad_norm_: scale by max_norm/(norm+1e-6) when below 1.
		scale = Min(scale, Div(Scalar(norm.Graph(), dtypes.Float32, t.tp.GradClip), AddScalar(norm, 1e-6)))
	}
	b1, b2, wd := t.tp.Betas[0], t.tp.Betas[1], t.tp.WeightDecay
	out := []*Node{loss, norm}
	newP, newM, newV := make([]*Node, n), make([]*Node, n), make([]*Node, n)
	for i, g := range grads {
		g = Mul(g, scale)
		p := ps[i]
		if t.params[i].Decay && wd > 0 {
			p = Mul(p, OneMinus(MulScalar(lr, wd)))
		}
		newM[i] = Add(MulScalar(ms[i], b1), MulScalar(g, 1-b1))
		newV[i] = Add(MulScalar(vs[i], b2), MulScalar(Square(g), 1-b2))
		denom := AddScalar(Div(Sqrt(newV[i]), Sqrt(bc2)), 1e-8)
		newP[i] = Sub(p, Mul(Div(lr, bc1), Div(newM[i], denom)))
	}
	out = append(out, newP...)
	out = append(out, newM...)
	return append(out, newV...)
}

// batchRows returns the training rows of step s: row k of the run is
// perm(epoch k/rows)[k%rows], each epoch's permutation seeded by (seed,
// epoch), so the data position is a function of the step alone.
func (t *trainer) batchRows(s int) []int {
	out := make([]int, t.batch)
	for i := range out {
		k := s*t.batch + i
		epoch := k / t.rows
		if epoch != t.permEpoch {
			r := rand.New(rand.NewPCG(t.tp.Seed, uint64(epoch)))
			t.perm = r.Perm(t.rows)
			t.permEpoch = epoch
		}
		out[i] = t.perm[k%t.rows]
	}
	return out
}

func (t *trainer) runStep(s int, lr float64) (loss, gnorm float64, err error) {
	seq := t.tp.SeqLen
	ids := make([]int32, t.batch*seq)
	targets := make([]int32, t.batch*seq)
	weights := make([]float32, t.batch*seq)
	for bi, row := range t.batchRows(s) {
		full := t.data.Seq(row / t.perRow)
		part := full[(row%t.perRow)*seq : (row%t.perRow+1)*seq]
		for j, id := range part {
			ids[bi*seq+j] = int32(id)
			if j+1 < seq {
				targets[bi*seq+j] = int32(part[j+1])
				weights[bi*seq+j] = 1
			}
		}
	}
	st := float64(s + 1)
	args := []any{
		tensors.FromFlatDataAndDimensions(ids, t.batch, seq),
		tensors.FromFlatDataAndDimensions(targets, t.batch, seq),
		tensors.FromFlatDataAndDimensions(weights, t.batch, seq),
		t.cos, t.sin,
		float32(lr), float32(1 - math.Pow(t.tp.Betas[0], st)), float32(1 - math.Pow(t.tp.Betas[1], st)),
	}
	for _, x := range t.state {
		args = append(args, x)
	}
	out, err := t.step.Exec(args...)
	if err != nil {
		return 0, 0, err
	}
	for _, x := range t.state {
		x.FinalizeAll()
	}
	t.state = out[2:]
	loss = float64(tensors.ToScalar[float32](out[0]))
	gnorm = float64(tensors.ToScalar[float32](out[1]))
	return loss, gnorm, nil
}

// saveCheckpoint writes the parameters and Adam's moments as F32 tensors
// ("param/NAME", "adam_m/NAME", "adam_v/NAME") with the step in the metadata.
func (t *trainer) saveCheckpoint(path string, step, planned int) error {
	var ts []safetensors.Tensor
	prefixes := []string{"param/", "adam_m/", "adam_v/"}
	for i, x := range t.state {
		p := t.params[i%len(t.params)]
		ts = append(ts, safetensors.F32(prefixes[i/len(t.params)]+p.Name, p.Shape, tensors.MustCopyFlatData[float32](x)))
	}
	meta := map[string]string{"step": strconv.Itoa(step), "planned_steps": strconv.Itoa(planned)}
	if err := safetensors.Write(path, ts, meta); err != nil {
		return fmt.Errorf("train-base: checkpoint: %w", err)
	}
	return nil
}

// loadCheckpoint restores the state and returns the step it was saved at.
func (t *trainer) loadCheckpoint(path string) (int, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return 0, fmt.Errorf("train-base: resume: %w", err)
	}
	defer f.Close()
	step, err := strconv.Atoi(f.Metadata["step"])
	if err != nil || step < 0 {
		return 0, fmt.Errorf("train-base: resume: %s: metadata step %q is not a step count", path, f.Metadata["step"])
	}
	t.state = t.state[:0]
	for _, prefix := range []string{"param/", "adam_m/", "adam_v/"} {
		for _, p := range t.params {
			data, shape, err := f.Float32(prefix + p.Name)
			if err != nil {
				return 0, fmt.Errorf("train-base: resume: %s: %w", path, err)
			}
			if fmt.Sprint(shape) != fmt.Sprint(p.Shape) {
				return 0, fmt.Errorf("train-base: resume: %s: %s has shape %v, the config gives %v", path, prefix+p.Name, shape, p.Shape)
			}
			t.state = append(t.state, tensors.FromFlatDataAndDimensions(data, p.Shape...))
		}
	}
	return step, nil
}

func writeLog(path string, log []StepLog) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, r := range log {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	if err := writeFileAtomic(path, b.Bytes()); err != nil {
		return fmt.Errorf("train-base: log: %w", err)
	}
	return nil
}

// readLog reads the records of steps 1..upTo (later ones belong to steps the
// checkpoint does not have).
func readLog(path string, upTo int) ([]StepLog, error) {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("train-base: %w", err)
	}
	var out []StepLog
	dec := json.NewDecoder(bytes.NewReader(data))
	for line := 1; dec.More(); line++ {
		var r StepLog
		if err := dec.Decode(&r); err != nil {
			return nil, fmt.Errorf("train-base: %s: record %d: %w", path, line, err)
		}
		if r.Step <= upTo {
			out = append(out, r)
		}
	}
	return out, nil
}

// plotLoss draws the training loss against tokens seen as a PNG.
func plotLoss(path string, log []StepLog) error {
	if len(log) == 0 {
		return nil
	}
	p := plot.New()
	p.Title.Text = "training loss"
	p.X.Label.Text = "tokens"
	p.Y.Label.Text = "cross-entropy (nats/token)"
	p.Add(plotter.NewGrid())
	xys := make(plotter.XYs, len(log))
	for i, r := range log {
		xys[i] = plotter.XY{X: float64(r.Tokens), Y: r.Loss}
	}
	l, err := plotter.NewLine(xys)
	if err != nil {
		return fmt.Errorf("train-base: plot: %w", err)
	}
	l.Width = vg.Points(1)
	p.Add(l)
	w, err := p.WriterTo(7*vg.Inch, 4.5*vg.Inch, "png")
	if err != nil {
		return fmt.Errorf("train-base: plot: %w", err)
	}
	var b bytes.Buffer
	if _, err := w.WriteTo(&b); err != nil {
		return fmt.Errorf("train-base: plot: %w", err)
	}
	return writeFileAtomic(path, b.Bytes())
}
