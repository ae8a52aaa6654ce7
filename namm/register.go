package namm

import (
	"errors"
	"fmt"

	"github.com/namm-dev/namm/policy"
)

// DefaultFile holds the shipped default NAMM file (safetensors bytes), used
// by the spec "namm" without a path. Empty until one is shipped.
var DefaultFile []byte

const help = "evolved NAMM (BAM over attention spectrograms); namm:PATH[,mode=reference|perhead][,cap=N][,features=auto|graph|host] or namm:stats=1"

func init() { policy.Register("namm", help, factory) }

func factory(opts policy.Options, b policy.Budget) (policy.Policy, error) {
	const name = "namm"
	if err := opts.Check(name, "path", "mode", "cap", "stats", "features"); err != nil {
		return nil, err
	}
	if !b.IsZero() {
		return nil, fmt.Errorf("%w: policy namm takes no budget (it evicts by its own scores; use cap=N)", policy.ErrBadOption)
	}
	stats, err := opts.Int(name, "stats", 0)
	if err != nil {
		return nil, err
	}
	if stats != 0 {
		if stats != 1 || len(opts) > 2 || (len(opts) == 2 && opts["features"] == "") {
			return nil, fmt.Errorf("%w: policy namm: stats=1 takes no other option than features", policy.ErrBadOption)
		}
		p, _ := NewStats()
		if p.cfg.Features, err = parseFeatures(opts["features"]); err != nil {
			return nil, err
		}
		return p, nil
	}
	var cfg Config
	if cfg.Features, err = parseFeatures(opts["features"]); err != nil {
		return nil, err
	}
	switch opts["mode"] {
	case "", "reference":
		cfg.Mode = Reference
	case "perhead":
		cfg.Mode = PerHead
	default:
		return nil, fmt.Errorf("%w: policy namm option mode=%q (valid: reference, perhead)", policy.ErrBadOption, opts["mode"])
	}
	if cfg.Cap, err = opts.Int(name, "cap", 0); err != nil {
		return nil, err
	}
	if cfg.Cap < 0 {
		return nil, fmt.Errorf("%w: policy namm option cap=%d must be >= 0", policy.ErrBadOption, cfg.Cap)
	}
	var f *File
	if path := opts["path"]; path != "" {
		f, err = Load(path)
	} else if len(DefaultFile) > 0 {
		f, err = LoadBytes("default NAMM", DefaultFile)
	} else {
		err = errors.New("namm: no default NAMM shipped yet; give namm:PATH")
	}
	if err != nil {
		return nil, err
	}
	p, err := New(f, cfg)
	if err != nil {
		return nil, err
	}
	named := *f
	if opts["path"] == "" {
		named.Path = "" // the shipped default is plain "namm"
	}
	p.name = specName(&named, cfg)
	return p, nil
}

func parseFeatures(v string) (Features, error) {
	switch v {
	case "", "auto":
		return FeaturesAuto, nil
	case "graph":
		return FeaturesGraph, nil
	case "host":
		return FeaturesHost, nil
	}
	return 0, fmt.Errorf("%w: policy namm option features=%q (valid: auto, graph, host)", policy.ErrBadOption, v)
}

func specName(f *File, cfg Config) string {
	s := "namm"
	if f.Path != "" {
		s += ":" + f.Path
	}
	if cfg.Mode != Reference {
		s += ",mode=" + cfg.Mode.String()
	}
	if cfg.Cap > 0 {
		s += fmt.Sprintf(",cap=%d", cfg.Cap)
	}
	if cfg.Features != FeaturesAuto {
		s += ",features=" + cfg.Features.String()
	}
	return s
}
