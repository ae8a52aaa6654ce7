// ktrace: a CUDA injection library that logs every kernel's name, start and duration (CUPTI
// activity records), for machines without Nsight Systems. Build it on the device:
//   gcc -O2 -shared -fPIC -o /tmp/ktrace.so scripts/gpu/ktrace.c -I$CUPTI/include -DKREC=CUpti_ActivityKernelN \
//       -L$CUPTI/lib64 -lcupti -lpthread
// and run a program with CUDA_INJECTION64_PATH=/tmp/ktrace.so KTRACE_OUT=/tmp/k.tsv.
// Lines: "start_ns<TAB>duration_ns<TAB>stream<TAB>name". Records are flushed every 100 ms by a
// thread, since a Go program exits without running C atexit handlers (the last ~100 ms may be
// lost).
#include <cupti.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define BUF_SIZE (4 << 20)

static FILE *out;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void CUPTIAPI requested(uint8_t **buf, size_t *size, size_t *max_records) {
  *buf = aligned_alloc(8, BUF_SIZE);
  *size = BUF_SIZE;
  *max_records = 0;
}

static void CUPTIAPI completed(CUcontext ctx, uint32_t stream, uint8_t *buf, size_t size, size_t valid) {
  CUpti_Activity *rec = NULL;
  pthread_mutex_lock(&mu);
  while (cuptiActivityGetNextRecord(buf, valid, &rec) == CUPTI_SUCCESS) {
    if (rec->kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL || rec->kind == CUPTI_ACTIVITY_KIND_KERNEL) {
      KREC *k = (KREC *)rec;
      fprintf(out, "%llu\t%llu\t%u\t%s\n", (unsigned long long)k->start,
              (unsigned long long)(k->end - k->start), k->streamId, k->name);
    }
  }
  fflush(out);
  pthread_mutex_unlock(&mu);
  free(buf);
}

static void *flusher(void *arg) {
  for (;;) {
    usleep(100000);
    cuptiActivityFlushAll(0);
  }
  return NULL;
}

int InitializeInjection(void) {
  const char *path = getenv("KTRACE_OUT");
  out = fopen(path ? path : "/tmp/ktrace.tsv", "w");
  if (!out) return 0;
  cuptiActivityRegisterCallbacks(requested, completed);
  cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
  pthread_t t;
  pthread_create(&t, NULL, flusher, NULL);
  return 1;
}
