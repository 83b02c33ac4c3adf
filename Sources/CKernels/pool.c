// The compute pool: persistent threads that spin on a generation counter for a short while, then park
// on a condition variable. A decode step issues a few hundred dispatches of 10-40 us each; spinning
// keeps each dispatch well under a microsecond, parking keeps an idle server off the CPU.
// Spinning longer than YIELD_AFTER_NS also yields the core now and then: on a machine with more runnable
// threads than cores, the thread being waited for may be descheduled, and pure spinning would burn the
// rest of a time slice (milliseconds) per dispatch instead of letting it run.
// Within a dispatch, participants can take rows from shared work lists (tally_pool_claim) instead of
// fixed shares: on a VM whose cores run at different speeds from moment to moment, fixed halves left one
// thread waiting for the other.
#include "CKernels.h"
#include <pthread.h>
#include <stdatomic.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

struct tally_pool {
    int threads;
    int64_t spin_ns;
    pthread_t *workers;
    _Atomic uint64_t generation;  // bumped once per dispatch
    _Atomic int pending;          // workers that have not finished the current dispatch
    _Atomic int sleeping;         // workers parked (or about to park) on the condition variable
    _Atomic int stop;
    tally_pool_fn fn;
    void *context;
    _Atomic int claimed[TALLY_POOL_LISTS];  // rows handed out of each work list in this dispatch
    pthread_mutex_t mutex;
    pthread_cond_t wake;
};

typedef struct { tally_pool *pool; int index; } worker_start;

// 0: yield at every clock check (every 256 pauses). With a 2-thread llama-server busy on this 2-core
// machine, a 50 us grace cost 29 ms per emulated decode step (211 GEMVs) against 9 ms; idle, the two
// were within run-to-run noise (4.7-5.6 ms). sched_yield returns at once when nothing else is runnable.
#define YIELD_AFTER_NS 0

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *worker_main(void *arg) {
    worker_start start = *(worker_start *)arg;
    free(arg);
    tally_pool *pool = start.pool;
    uint64_t seen = 0;
    for (;;) {
        // Spin, checking the clock only every 256 pauses.
        int64_t spin_start = now_ns(), deadline = spin_start + pool->spin_ns;
        uint64_t gen;
        for (int i = 1;; i++) {
            gen = atomic_load_explicit(&pool->generation, memory_order_acquire);
            if (gen != seen || atomic_load_explicit(&pool->stop, memory_order_relaxed)) break;
            cpu_relax();
            if ((i & 255) != 0) continue;
            int64_t now = now_ns();
            if (now - spin_start >= YIELD_AFTER_NS) sched_yield();
            if (now > deadline) {
                pthread_mutex_lock(&pool->mutex);
                atomic_fetch_add(&pool->sleeping, 1);
                // seq_cst on both sides: either run() sees us sleeping, or we see its new generation.
                while ((gen = atomic_load(&pool->generation)) == seen && !atomic_load(&pool->stop))
                    pthread_cond_wait(&pool->wake, &pool->mutex);
                atomic_fetch_sub(&pool->sleeping, 1);
                pthread_mutex_unlock(&pool->mutex);
                break;
            }
        }
        if (atomic_load(&pool->stop)) return NULL;
        seen = gen;
        pool->fn(pool->context, start.index, pool->threads);
        atomic_fetch_sub_explicit(&pool->pending, 1, memory_order_release);
    }
}

tally_pool *tally_pool_create(int threads, int spin_microseconds) {
    if (threads < 1) threads = 1;
    tally_pool *pool = calloc(1, sizeof *pool);
    if (!pool) return NULL;
    pool->threads = threads;
    pool->spin_ns = (int64_t)spin_microseconds * 1000;
    pthread_mutex_init(&pool->mutex, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pool->workers = calloc((size_t)threads, sizeof(pthread_t));
    for (int i = 1; i < threads; i++) {
        worker_start *start = malloc(sizeof *start);
        start->pool = pool;
        start->index = i;
        pthread_create(&pool->workers[i], NULL, worker_main, start);
    }
    return pool;
}

void tally_pool_destroy(tally_pool *pool) {
    if (!pool) return;
    pthread_mutex_lock(&pool->mutex);
    atomic_store(&pool->stop, 1);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mutex);
    for (int i = 1; i < pool->threads; i++) pthread_join(pool->workers[i], NULL);
    pthread_mutex_destroy(&pool->mutex);
    pthread_cond_destroy(&pool->wake);
    free(pool->workers);
    free(pool);
}

int tally_pool_threads(const tally_pool *pool) { return pool->threads; }

void tally_pool_run(tally_pool *pool, tally_pool_fn fn, void *context) {
    for (int i = 0; i < TALLY_POOL_LISTS; i++) atomic_store_explicit(&pool->claimed[i], 0, memory_order_relaxed);
    if (pool->threads == 1) { fn(context, 0, 1); return; }
    pool->fn = fn;
    pool->context = context;
    atomic_store_explicit(&pool->pending, pool->threads - 1, memory_order_relaxed);
    atomic_fetch_add(&pool->generation, 1);  // seq_cst: publishes fn/context, pairs with `sleeping`
    if (atomic_load(&pool->sleeping) > 0) {
        pthread_mutex_lock(&pool->mutex);
        pthread_cond_broadcast(&pool->wake);
        pthread_mutex_unlock(&pool->mutex);
    }
    fn(context, 0, pool->threads);
    int64_t wait_start = 0;
    for (int i = 1; atomic_load_explicit(&pool->pending, memory_order_acquire) > 0; i++) {
        cpu_relax();
        if ((i & 255) != 0) continue;
        if (wait_start == 0) wait_start = now_ns();
        else if (now_ns() - wait_start >= YIELD_AFTER_NS) sched_yield();
    }
}

int tally_pool_claim(tally_pool *pool, int list, int total, int granule, int minimum, int *end) {
    _Atomic int *claimed = &pool->claimed[list];
    int begin = atomic_load_explicit(claimed, memory_order_relaxed);
    for (;;) {
        if (begin >= total) return -1;
        // One participant takes everything at once: pieces would only add calls.
        int rows = pool->threads == 1 ? total - begin : (total - begin) / (2 * pool->threads);
        if (rows < minimum) rows = minimum;
        rows = (rows + granule - 1) / granule * granule;
        const int stop = total - begin <= rows ? total : begin + rows;
        // On failure begin is reloaded: another participant took rows first.
        if (atomic_compare_exchange_weak_explicit(claimed, &begin, stop, memory_order_relaxed, memory_order_relaxed)) {
            *end = stop;
            return begin;
        }
    }
}
