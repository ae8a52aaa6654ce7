package serve

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the server's Prometheus series, on a registry of its own (so
// that several servers can live in one process, as in tests).
type metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec   // by endpoint and status code
	duration  *prometheus.HistogramVec // by endpoint
	prompt    prometheus.Counter
	generated prometheus.Counter
	speed     prometheus.Histogram // per request, generated tokens per second
	evicted   prometheus.Counter
}

func newMetrics(load func() Load) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "namm_requests_total", Help: "HTTP requests answered, by endpoint and status code.",
	}, []string{"endpoint", "code"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "namm_request_duration_seconds", Help: "Time from a request's arrival to its last byte, by endpoint.",
		Buckets: prometheus.ExponentialBuckets(0.01, 2, 16),
	}, []string{"endpoint"})
	m.prompt = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "namm_prompt_tokens_total", Help: "Prompt tokens processed (prefill).",
	})
	m.generated = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "namm_generated_tokens_total", Help: "Tokens generated; rate() of it is the server's tokens/s.",
	})
	m.speed = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "namm_request_tokens_per_second", Help: "Per finished request, generated tokens per second of its run (queueing excluded).",
		Buckets: prometheus.ExponentialBuckets(1, 2, 14),
	})
	m.evicted = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "namm_kv_tokens_evicted_total", Help: "KV tokens the memory policies evicted, summed over layers.",
	})
	gauge := func(name, help string, f func(Load) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(load()) })
	}
	m.reg.MustRegister(m.requests, m.duration, m.prompt, m.generated, m.speed, m.evicted,
		gauge("namm_slots", "Generation slots.", func(l Load) float64 { return float64(l.Slots) }),
		gauge("namm_slots_busy", "Slots running a generation.", func(l Load) float64 { return float64(l.Busy) }),
		gauge("namm_queue_length", "Requests waiting for a slot.", func(l Load) float64 { return float64(l.Queued) }),
		gauge("namm_kv_cache_bytes", "Bytes of KV cache held by running generations.", func(l Load) float64 { return float64(l.KVBytes) }),
		prometheus.NewGoCollector(),
	)
	return m
}
