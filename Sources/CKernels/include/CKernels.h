// CKernels: the hot loops of inference in C. Q8_0 kernels have scalar, AVX2 and AVX-512 VNNI forms chosen
// at run time from the CPU's features (no -march flag, so the binary runs on any x86-64 and builds on
// arm64 with the scalar path). Every vector kernel is tested against its scalar form.
#ifndef TALLY_CKERNELS_H
#define TALLY_CKERNELS_H

#include <stddef.h>
#include <stdint.h>

// ---- Instruction-set level ------------------------------------------------------------------------

enum { TALLY_ISA_SCALAR = 0, TALLY_ISA_AVX2 = 1, TALLY_ISA_AVX512_VNNI = 2 };

/// The best level this CPU supports.
int tally_isa_detect(void);
/// The level the kernels use now (the detected one unless forced).
int tally_isa_current(void);
/// Forces a level on the calling thread only (tests compare levels); a level above the detected one is
/// clamped. Returns the level set.
int tally_isa_force(int level);
const char *tally_isa_name(int level);

// ---- Q8_0 ------------------------------------------------------------------------------------------
// A Q8_0 row of k values is k/32 blocks of { uint16 f16 scale; int8 q[32] } (34 bytes).
// Activations are quantized once per row to int8 per 32-block, as ggml's quantize_row_q8_0 does:
// scale d = f16(amax/127) kept as float in xd[b], q = round-half-even(x * 127/amax).

/// Quantizes `rows` rows of k floats (row stride k): xd [rows, k/32], xq [rows, k].
void tally_quantize_rows_q8(const float *x, int rows, int k, float *xd, int8_t *xq);
void tally_quantize_rows_q8_scalar(const float *x, int rows, int k, float *xd, int8_t *xq);

/// y[c * ldy + r] = dot(W row r, x column c) for rows [row_begin, row_end) and columns [0, cols).
/// W is Q8_0 with rows of k values; x is quantized (xd [cols, k/32], xq [cols, k]).
void tally_gemm_q8(const void *w, int k, int row_begin, int row_end,
                   const float *xd, const int8_t *xq, int cols, float *y, int ldy);
void tally_gemm_q8_scalar(const void *w, int k, int row_begin, int row_end,
                          const float *xd, const int8_t *xq, int cols, float *y, int ldy);
/// The AVX2 form for more than a few columns (q8_0_avx2_blocked.c); tally_gemm_q8 calls it on AVX2 CPUs.
void tally_gemm_q8_avx2_blocked(const void *w, int k, int row_begin, int row_end,
                                const float *xd, const int8_t *xq, int cols, float *y, int ldy);

// ---- Packed Q8_0 (q8_0_packed.c) -------------------------------------------------------------------
// Rows interleaved 16 at a time so one vpdpbusd computes 16 rows' partial sums (layout in q8_0_packed.c);
// same size as Q8_0. Needs rows % 16 == 0; row ranges passed to the product are multiples of 16.

/// Repacks a Q8_0 matrix [rows, k] into `out` (rows * k / 32 * 34 bytes).
void tally_q8p_pack(const void *w, int rows, int k, void *out);
/// Row r of a packed matrix as floats (k values).
void tally_q8p_row(const void *packed, int k, int r, float *out);
/// xs[r * k/4 + j] = -128 * (sum of quants 4j..4j+3 of row r): the packed product's correction for w + 128.
void tally_q8_block_sums(const int8_t *xq, int rows, int k, int32_t *xs);
/// y[c * ldy + r] = dot(W row r, x column c) for rows [row_begin, row_end) of a packed W; as tally_gemm_q8
/// plus the block sums. Bit-identical at every ISA level.
void tally_gemm_q8p(const void *w, int k, int row_begin, int row_end, const float *xd, const int8_t *xq,
                    const int32_t *xs, int cols, float *y, int ldy);
void tally_gemm_q8p_scalar(const void *w, int k, int row_begin, int row_end, const float *xd, const int8_t *xq,
                           const int32_t *xs, int cols, float *y, int ldy);

// ---- f32 / f16 weights -------------------------------------------------------------------------------

/// y[c * ldy + r] = dot(W row r, x[c * k ...]) with W f32 (or f16 when `w_is_f16`), x f32.
void tally_gemm_f32(const void *w, int w_is_f16, int k, int row_begin, int row_end,
                    const float *x, int cols, float *y, int ldy);
void tally_gemm_f32_scalar(const void *w, int w_is_f16, int k, int row_begin, int row_end,
                           const float *x, int cols, float *y, int ldy);

// ---- Element-wise ops ------------------------------------------------------------------------------

/// y = x / sqrt(mean(x^2) + eps) * weight, over n values; the sum of squares in double, as ggml.
void tally_rmsnorm(const float *x, const float *weight, float *y, int n, float eps);
/// RoPE, "normal" layout (adjacent pairs), in place on `heads` heads of head_dim values at `position`;
/// the first rope_dims values of each head rotate with theta_i = position * freq_base^(-2i/rope_dims).
void tally_rope(float *x, int heads, int head_dim, int rope_dims, int position, float freq_base);
/// RoPE in two steps: the cos/sin pairs at `position` (rope_dims floats, computed once per token and step),
/// then the rotation of values [begin, end) of one token's heads (begin even), so threads can each rotate
/// their own share of a projection's output. Same results as tally_rope.
/// `freq_factors` (rope_dims / 2 floats, or NULL) divides pair i's angle, as Llama 3's `rope_freqs` asks.
void tally_rope_table(int position, int rope_dims, float freq_base, const float *freq_factors, float *cs);
void tally_rope_apply(float *x, int begin, int end, int head_dim, int rope_dims, const float *cs);
/// The NEOX layout: value i of a head pairs with value i + rope_dims / 2 (Qwen's unpermuted Q/K rows),
/// rotated by pair i's angle; applied to whole heads [head_begin, head_end) of one token.
void tally_rope_apply_halves(float *x, int head_begin, int head_end, int head_dim, int rope_dims, const float *cs);
/// out[i] = silu(gate[i]) * up[i], silu(z) = z / (1 + exp(-z)).
void tally_swiglu(const float *gate, const float *up, float *out, int n);
/// y[i] = e^x[i]: vectorised where the CPU allows (within 2 ulp of expf), else expf.
void tally_vexp(const float *x, float *y, int n);
float tally_f16_to_f32(uint16_t h);
uint16_t tally_f32_to_f16(float f);

// ---- Attention over the paged KV store (attention.c) -------------------------------------------------
// Keys and values are f32, IEEE half (half the memory and bytes read per position) or Q8_0 (a row of a
// KV head is head_dim/32 blocks of { f16 scale; int8 q[32] }: 8.5 bits a value, 1.88x the positions of f16
// per byte). Queries, scores, probabilities and sums are f32 whatever the cache holds.

enum { TALLY_KV_F32 = 0, TALLY_KV_F16 = 1, TALLY_KV_Q8_0 = 2 };

typedef struct {
    const float *q;               // [tokens, head_count * head_dim]
    const void *k_cache;          // this layer's keys:   [blocks * block_size, kv_head_count * head_dim]
    const void *v_cache;          // this layer's values: same shape
    const int32_t *const *block_tables;  // per token: its sequence's block table
    const int32_t *context_lengths;      // per token: attend to positions [0, context_length)
    int tokens, head_count, kv_head_count, head_dim, block_size;
    int kv_type;                  // TALLY_KV_F32, TALLY_KV_F16 or TALLY_KV_Q8_0 (head_dim a multiple of 32)
    float scale;
    float *out;                   // [tokens, head_count * head_dim]
} tally_attention_args;

/// A unit of attention work: tokens [token_begin, token_begin + token_count) of one sequence (they share a
/// block table) and query heads [head_begin, head_begin + head_count) of one KV head's group. A tile reads
/// each K and V row once for all its queries, so prefill tokens that attend to a long cached prefix do not
/// each stream it again. Every query's result is the same bits whatever tile it is in.
typedef struct {
    int32_t token_begin, token_count, head_begin, head_count;
} tally_attention_tile;

/// Most tokens in one tile.
enum { TALLY_ATTENTION_TILE_TOKENS = 16 };

/// Floats of scratch one thread needs for tiles of up to `tile_tokens` tokens and `tile_heads` heads
/// whose tokens attend to at most `max_context` positions.
size_t tally_attention_scratch_floats(int tile_tokens, int tile_heads, int head_dim, int block_size, int max_context);

/// Runs tiles [begin, end): scores s_j = scale * q . k_j over j < context_length, p = softmax(s),
/// out = sum_j p_j v_j, for every token and head of each tile.
void tally_attention(const tally_attention_args *a, const tally_attention_tile *tiles, int begin, int end, float *scratch);
void tally_attention_scalar(const tally_attention_args *a, const tally_attention_tile *tiles, int begin, int end, float *scratch);

/// y[i] = f16(x[i]), rounding to nearest even (F16C where the CPU has it; the same bits either way).
void tally_f32_to_f16_row(const float *x, uint16_t *y, int n);
/// x[i] = f32(f16(x[i])) in place: the nearest f16 value, as a float.
void tally_f16_round_row(float *x, int n);
/// n values (a multiple of 32) to n/32 Q8_0 blocks at y, quantized as activations are
/// (tally_quantize_rows_q8: scale f16(amax/127), q rounded to nearest even): ggml's q8_0 KV store.
void tally_f32_to_q8_0_row(const float *x, void *y, int n);

// ---- The compute pool ------------------------------------------------------------------------------
// Persistent worker threads that spin briefly on a generation counter, then park on a condition
// variable, so back-to-back dispatches inside a step cost well under a microsecond and an idle server
// uses no CPU. The calling thread is participant 0.

typedef struct tally_pool tally_pool;
typedef void (*tally_pool_fn)(void *context, int thread_index, int thread_count);

tally_pool *tally_pool_create(int threads, int spin_microseconds);
void tally_pool_destroy(tally_pool *pool);
int tally_pool_threads(const tally_pool *pool);
/// Runs fn(context, i, n) on every participant i in [0, n) and returns when all are done.
void tally_pool_run(tally_pool *pool, tally_pool_fn fn, void *context);
/// Work lists a dispatch's participants share as they go: TALLY_POOL_LISTS of them, each a counter over
/// [0, total) that starts at 0 in every dispatch.
#define TALLY_POOL_LISTS 8
/// Claims the next rows of list `list` inside a dispatch: [begin, *end) with begin returned, about
/// remaining / (2 x threads) rows (guided self-scheduling: large pieces first, small ones at the end),
/// at least `minimum`, a multiple of `granule` unless it ends at `total`. Returns -1 when none are left.
int tally_pool_claim(tally_pool *pool, int list, int total, int granule, int minimum, int *end);

#endif
