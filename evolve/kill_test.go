package evolve

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

const childEnv = "NAMM_EVOLVE_KILL_CHILD"

// slowFakePool is fakePool with a pause per batch, so that a kill lands at
// varied points of a generation.
type slowFakePool struct{ fakePool }

func (p *slowFakePool) Run(ctx context.Context, jobs []Job, onResult func(Result)) ([]Result, error) {
	time.Sleep(30 * time.Millisecond)
	return p.fakePool.Run(ctx, jobs, onResult)
}

// TestKillChild is the child process of TestKill9Resume: it runs the
// training in the directory named by the environment until killed.
func TestKillChild(t *testing.T) {
	dir := os.Getenv(childEnv)
	if dir == "" {
		t.Skip("child process of TestKill9Resume")
	}
	tr := &Trainer{Cfg: smallConfig(t, dir), Eval: tinyEvaluator(t), Pool: &slowFakePool{}}
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestKill9Resume kills a training process with SIGKILL at several moments
// and resumes it each time; the finished log and result must equal an
// uninterrupted run's bit for bit.
func TestKill9Resume(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dirA, dirB := t.TempDir(), t.TempDir()
	if err := runTrainer(t, smallConfig(t, dirA), &slowFakePool{}, 0); err != nil {
		t.Fatal(err)
	}
	// Kill once checkpoint k exists, plus a varying delay, so the kills
	// land in different phases (validation, references, members, writes).
	kills := 0
	for leg, k := range []int{1, 3, 5, 8} {
		cmd := exec.Command(exe, "-test.run=^TestKillChild$")
		cmd.Env = append(os.Environ(), childEnv+"="+dirB)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		deadline := time.After(30 * time.Second)
	wait:
		for {
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("child failed: %v", err)
				}
				break wait
			case <-deadline:
				t.Fatalf("leg %d: no checkpoint %d after 30 s", leg, k)
			case <-time.After(10 * time.Millisecond):
				if seqs, _ := listCheckpoints(dirB); len(seqs) > 0 && seqs[0] >= k {
					time.Sleep(time.Duration(leg*37) * time.Millisecond)
					cmd.Process.Signal(syscall.SIGKILL)
					<-done
					kills++
					break wait
				}
			}
		}
		seqs, _ := listCheckpoints(dirB)
		t.Logf("leg %d: killed at checkpoints %v", leg, seqs)
	}
	if kills == 0 {
		t.Log("the child finished before every kill; the test only checked a clean run")
	}
	if err := runTrainer(t, smallConfig(t, dirB), &slowFakePool{}, 0); err != nil {
		t.Fatal(err)
	}
	want, got := logWithoutTimes(t, dirA), logWithoutTimes(t, dirB)
	if len(got) != len(want) {
		t.Fatalf("resumed log has %d lines, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("log line %d differs:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
	for _, name := range []string{BestFile, RefsFile, NormFile} {
		if string(readFile(t, filepath.Join(dirA, name))) != string(readFile(t, filepath.Join(dirB, name))) {
			t.Errorf("%s differs", name)
		}
	}
}
