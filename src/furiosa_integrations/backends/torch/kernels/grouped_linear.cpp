// furiosa::grouped_linear on the CPU (AVX2 + FMA + F16C; VNNI where the CPU has it), compiled
// on the user's machine at first use by kernels/build.py. The weights come in groups of 32
// along the input: 4-bit codes with an fp16 scale and minimum per group (GGUF's Q4_1), or
// 8-bit codes with an fp16 scale (Q8_0): a quarter (Q4_1) to a half (Q8_0) of fp16's bytes
// per decode step, and integer dots.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <immintrin.h>
#include "vector_math.h"
#include "layer_kernels.h"
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace {

using furiosa_kernels::rms_scale;
using furiosa_kernels::tree_sum;
using furiosa_kernels::tree_sums;
using furiosa_kernels::tree_sums8;

constexpr int64_t GROUP = 32;

// Each input row is quantized per group of 32 to integer codes qx with a scale dx: 16-bit
// codes (dx = amax / 32767: the products are within ~1e-5 of fp32's, the default) or 8-bit
// ones (dx = amax / 127: llama.cpp's CPU arithmetic for these formats, opt-in). Then
//   out = sum over g of (dw_g * dx_g) * (integer dot of the group's codes)
//         + sum over g of mw_g * xsum_g            (Q4_1's minima; xsum_g: the inputs' sum)
// Every output is computed the same way whatever the batch: one chain of 8-lane FMAs over
// its groups in order, the lanes summed in one fixed tree, then the minima's dot likewise.
// How rows and outputs are blocked together changes only which integer instructions are
// shared, never a float operation, so a row's result is the same bits alone or in any batch,
// and however the outputs are split between threads.
//
// The kernel walks a row in chunks: a pair of groups for Q4_1 (one 32-byte load; a row has
// an even number of groups, gguf_groups.py sees to it), one group for Q8_0. A chunk's dot is
// 8 int32 lanes, lanes 0-3 of the pair's first group and 4-7 of its second (Q4_1), all eight
// of the group (Q8_0); the input codes are stored in whatever order lines them up with the
// weight codes as they come out of the load (`Layout` below).

// Where the compiler targets a CPU with VNNI (AVX-VNNI, or AVX-512 VNNI with VL: Intel since
// Ice Lake / Alder Lake, AMD since Zen 4), a multiply of 16-bit (dpwssd) or 8-bit (dpbusd)
// pairs adds into its int32 lanes in one instruction. The sums are the same exact integers
// as madd's (no product or sum comes near 2^31, and maddubs' int16 pairs never saturate with
// these codes), so the outputs are the same bits on every CPU; only the instruction count
// differs.
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define FURIOSA_VNNI 1
inline __m256i add_dot16(__m256i acc, __m256i a, __m256i b) { return _mm256_dpwssd_epi32(acc, a, b); }
inline __m256i add_dot8(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_epi32(acc, u, s); }
#elif defined(__AVXVNNI__)
#define FURIOSA_VNNI 1
inline __m256i add_dot16(__m256i acc, __m256i a, __m256i b) { return _mm256_dpwssd_avx_epi32(acc, a, b); }
inline __m256i add_dot8(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_avx_epi32(acc, u, s); }
#else
#define FURIOSA_VNNI 0
#endif

// Q4_1: 16 bytes a group, element j in the low nibble of byte j, j + 16 in the high one.
// Q8_0: 32 signed bytes a group, in order.
template <int Bits, bool Q4>
struct Arithmetic;

// 8-bit activations: maddubs multiplies unsigned by signed bytes.
template <>
struct Arithmetic<8, true> {
  using Code = int8_t;
  static constexpr int regs = 2;
  // A chunk: the groups (chunk_groups) and weight bytes (chunk_bytes) one dot covers.
  static constexpr int64_t chunk_groups = 2, chunk_bytes = 32;  // a pair of groups
  // a pair's low nibbles [g0 0..15 | g1 0..15], then its high ones [g0 16..31 | g1 16..31]
  static int element(int t) { return (t & 15) + (t & 16 ? 32 : 0) + (t & 32 ? 16 : 0); }
  static inline void decode(const uint8_t* pair, __m256i v[regs]) {
    const __m256i bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pair));
    const __m256i nibble = _mm256_set1_epi8(0x0F);
    v[0] = _mm256_and_si256(bytes, nibble);
    v[1] = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), nibble);
  }
  static inline __m256i dot(const __m256i v[regs], const Code* qx) {
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qx));
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qx + 32));
#if FURIOSA_VNNI
    return add_dot8(add_dot8(_mm256_setzero_si256(), v[0], a), v[1], b);
#else
    const __m256i pairs = _mm256_add_epi16(_mm256_maddubs_epi16(v[0], a), _mm256_maddubs_epi16(v[1], b));
    return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
#endif
  }
};

template <>
struct Arithmetic<8, false> {
  using Code = int8_t;
  static constexpr int regs = 2;
  static constexpr int64_t chunk_groups = 1, chunk_bytes = 32;  // one group
  static int element(int t) { return t; }
  // maddubs wants an unsigned operand: |w|, and the input codes times sign(w)
  static inline void decode(const uint8_t* group, __m256i v[regs]) {
    v[1] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(group));
    v[0] = _mm256_sign_epi8(v[1], v[1]);
  }
  static inline __m256i dot(const __m256i v[regs], const Code* qx) {
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qx));
#if FURIOSA_VNNI
    return add_dot8(_mm256_setzero_si256(), v[0], _mm256_sign_epi8(x, v[1]));
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(v[0], _mm256_sign_epi8(x, v[1])), _mm256_set1_epi16(1));
#endif
  }
};

// 16-bit activations: madd multiplies 16-bit lanes. A 16-bit word of the weight bytes holds
// two bytes' nibbles: masked and shifted, four vectors of 16 codes come out of one load
// without a shuffle. Word i of a pair's 128-bit half L (group L of the pair) holds, in its
// four nibbles, elements 2i, 2i + 16, 2i + 1 and 2i + 17.
template <>
struct Arithmetic<16, true> {
  using Code = int16_t;
  static constexpr int regs = 4;
  static constexpr int64_t chunk_groups = 2, chunk_bytes = 32;  // a pair of groups
  static int element(int t) {  // t: position in the chunk's 64 codes (4 vectors of 16)
    const int vec = t / 16, lane = (t % 16) / 8, i = t % 8;
    const int offsets[4] = {0, 1, 16, 17};
    return lane * 32 + 2 * i + offsets[vec];
  }
  static inline void decode(const uint8_t* pair, __m256i v[regs]) {
    const __m256i words = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pair));
    const __m256i nibble = _mm256_set1_epi16(0x000F);
    v[0] = _mm256_and_si256(words, nibble);
    v[1] = _mm256_and_si256(_mm256_srli_epi16(words, 8), nibble);
    v[2] = _mm256_and_si256(_mm256_srli_epi16(words, 4), nibble);
    v[3] = _mm256_srli_epi16(words, 12);
  }
  static inline __m256i dot(const __m256i v[regs], const Code* qx) {
    const __m256i* x = reinterpret_cast<const __m256i*>(qx);
#if FURIOSA_VNNI
    const __m256i first = _mm256_madd_epi16(v[0], _mm256_loadu_si256(x));
    return add_dot16(add_dot16(add_dot16(first, v[1], _mm256_loadu_si256(x + 1)),
                               v[2], _mm256_loadu_si256(x + 2)),
                     v[3], _mm256_loadu_si256(x + 3));
#else
    return _mm256_add_epi32(
        _mm256_add_epi32(_mm256_madd_epi16(v[0], _mm256_loadu_si256(x)),
                         _mm256_madd_epi16(v[1], _mm256_loadu_si256(x + 1))),
        _mm256_add_epi32(_mm256_madd_epi16(v[2], _mm256_loadu_si256(x + 2)),
                         _mm256_madd_epi16(v[3], _mm256_loadu_si256(x + 3))));
#endif
  }
};

// Q8_0 taken two groups (A, B) at a time, like Q4_1's pairs: the 128-bit halves of one
// vector hold A's and B's bytes ([A0..15 | B0..15], then [A16..31 | B16..31]), so one dot's
// lanes 0-3 sum group A and 4-7 group B, and a pair takes one conversion and one scaled add
// instead of two. Word i of a half holds elements 2i (low byte) and 2i + 1 (high byte).
template <>
struct Arithmetic<16, false> {
  using Code = int16_t;
  static constexpr int regs = 4;
  static constexpr int64_t chunk_groups = 2, chunk_bytes = 64;
  // the same places as Q4_1's words give (see above)
  static int element(int t) { return Arithmetic<16, true>::element(t); }
  static inline __m256i halves(const uint8_t* a, const uint8_t* b) {
    return _mm256_inserti128_si256(
        _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a))),
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(b)), 1);
  }
  static inline void decode(const uint8_t* pair, __m256i v[regs]) {
    const __m256i first = halves(pair, pair + 32), second = halves(pair + 16, pair + 48);
    v[0] = _mm256_srai_epi16(_mm256_slli_epi16(first, 8), 8);
    v[1] = _mm256_srai_epi16(first, 8);
    v[2] = _mm256_srai_epi16(_mm256_slli_epi16(second, 8), 8);
    v[3] = _mm256_srai_epi16(second, 8);
  }
  static inline __m256i dot(const __m256i v[regs], const Code* qx) {
    return Arithmetic<16, true>::dot(v, qx);
  }
};

template <int Bits, bool Q4>
struct Format : Arithmetic<Bits, Q4> {
  static constexpr bool has_mins = Q4;
  static constexpr float levels = Bits == 8 ? 127.f : 32767.f;
};

inline float hmax(__m256 v) {
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, v);
  float s = lanes[0];
  for (int i = 1; i < 8; ++i) s = std::max(s, lanes[i]);
  return s;
}

// Many input rows are taken in blocks of RB, then 4, then 1 (`block_of`), each block of rows
// meeting each output's weights once (`rows_block`).
constexpr int64_t RB = 8;

struct Block {
  int64_t start, size;
};

inline Block block_of(int64_t r, int64_t M) {
  const int64_t eights = M / RB * RB, fours = eights + (M - eights) / 4 * 4;
  if (r < eights) return {r / RB * RB, RB};
  if (r < fours) return {eights + (r - eights) / 4 * 4, 4};
  return {r, 1};
}

// Where the lanes' scales dw * dx of a block of rows are made. With AVX-512's 32 vector
// registers each row's 8 groups' products are made at once and kept in registers, one
// multiply per row and 8 groups as `row_outputs` does (layers at 16 rows 0.88-0.94x, Zen 4).
// With AVX2's 16 the registers go to the accumulators, and each chunk's products are made from
// the output's dw and the row's `spread` dx (built for Zen 2 the registers' way was 1.02-1.04x
// slower). The same products either way, so the same bits.
#if defined(__AVX512VL__)
constexpr bool ROW_SCALES_IN_REGISTERS = true;
#else
constexpr bool ROW_SCALES_IN_REGISTERS = false;
#endif

// The input rows, quantized once per call: codes in the chunks' order (Arithmetic's
// `element`), and per group the scale and the inputs' sum ([M, padded], zeros after). For
// many rows, where `rows_block` needs them (AVX2), also each chunk's scales spread over its
// lanes (`spread`, 8 floats a chunk).
// Codes and spread are stored block by block and, within a block, chunk by chunk:
// [chunk][row in block][chunk's codes or 8 floats], so the block's rows for one chunk lie side
// by side and one pointer with constant offsets reaches them all (per-row pointers ran out of
// registers). A single row is plain [K].
template <class F>
struct QuantizedRows {
  using Code = typename F::Code;
  static constexpr int64_t chunk_codes = F::chunk_groups * GROUP;
  int64_t K, groups, padded;
  std::unique_ptr<Code[]> q;  // not zeroed first: every chunk of every row is written below
  std::vector<float> d, sum, spread;

  // chunk c of the block of R rows starting at row b: the R rows' codes, and their spread
  const Code* codes(int64_t b, int64_t R, int64_t c) const { return q.get() + b * K + c * R * chunk_codes; }
  const float* lanes(int64_t b, int64_t R, int64_t c) const {
    return spread.data() + (b * (groups / F::chunk_groups) + c * R) * 8;
  }

  // With fusion.norm_weight the rows are RMS-normalized first (x * rms_scale * weight, rms_norm's own float
  // operations, so the same bits), as they are read: no normalized copy is stored.
  QuantizedRows(const float* x, int64_t M, int64_t K_, const furiosa_kernels::Fusion& fusion)
      : K(K_), groups(K_ / GROUP), padded((K_ / GROUP + 7) / 8 * 8),
        q(new Code[M * K_]), d(M * padded, 0.f), sum(M * padded, 0.f),
        spread(M > 1 && !ROW_SCALES_IN_REGISTERS ? M * (K_ / GROUP / F::chunk_groups) * 8 : 0) {
    constexpr int chunk = F::chunk_groups * GROUP;
    int order[chunk];
    for (int t = 0; t < chunk; ++t) order[t] = F::element(t);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    at::parallel_for(0, M, 1, [&](int64_t r0, int64_t r1) {  // both cores, even for 2 rows
      alignas(32) int32_t codes[chunk];
      for (int64_t r = r0; r < r1; ++r) {
        const float* norm = fusion.norm_weight;
        const __m256 row_scale = norm != nullptr ? rms_scale(x + r * K, K, fusion.norm_eps) : __m256{};
        for (int64_t g = 0; g < groups; ++g) {
          const float* xg = x + r * K + g * GROUP;
          __m256 v[4];
          for (int k = 0; k < 4; ++k) v[k] = _mm256_loadu_ps(xg + 8 * k);
          if (norm != nullptr)
            for (int k = 0; k < 4; ++k)
              v[k] = _mm256_mul_ps(_mm256_mul_ps(v[k], row_scale), _mm256_loadu_ps(norm + g * GROUP + 8 * k));
          const __m256 amax = _mm256_max_ps(
              _mm256_max_ps(_mm256_andnot_ps(sign, v[0]), _mm256_andnot_ps(sign, v[1])),
              _mm256_max_ps(_mm256_andnot_ps(sign, v[2]), _mm256_andnot_ps(sign, v[3])));
          const float scale = hmax(amax) / F::levels;
          const __m256 inverse = _mm256_set1_ps(scale != 0.f ? 1.f / scale : 0.f);
          const __m256 limit = _mm256_set1_ps(F::levels);
          int32_t* own = codes + (g % F::chunk_groups) * GROUP;
          for (int k = 0; k < 4; ++k) {
            const __m256 scaled = _mm256_round_ps(_mm256_mul_ps(v[k], inverse),
                                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            _mm256_store_si256(reinterpret_cast<__m256i*>(own + 8 * k),
                               _mm256_cvtps_epi32(_mm256_max_ps(_mm256_min_ps(scaled, limit),
                                                                _mm256_sub_ps(_mm256_setzero_ps(), limit))));
          }
          const Block block = block_of(r, M);
          const int64_t c = g / F::chunk_groups, within = r - block.start;
          if (g % F::chunk_groups == F::chunk_groups - 1) {  // the chunk is complete
            Code* out = q.get() + block.start * K + (c * block.size + within) * chunk_codes;
            for (int t = 0; t < chunk; ++t) out[t] = static_cast<Code>(codes[order[t]]);
          }
          d[r * padded + g] = scale;
          if (!spread.empty()) {  // lanes 0-3 of a pair's chunk are its first group's, 4-7 its second's
            const int64_t first = F::chunk_groups == 2 ? (g % 2) * 4 : 0;
            float* spread_lanes = spread.data() + (block.start * (groups / F::chunk_groups) + c * block.size + within) * 8;
            for (int i = 0; i < 8 / F::chunk_groups; ++i) spread_lanes[first + i] = scale;
          }
          const __m256 s4 = _mm256_add_ps(_mm256_add_ps(v[0], v[1]), _mm256_add_ps(v[2], v[3]));
          alignas(32) float lanes[8];
          _mm256_store_ps(lanes, s4);
          float total = 0.f;
          for (int k = 0; k < 8; ++k) total += lanes[k];
          sum[r * padded + g] = total;
        }
      }
    });
  }
};

// The lanes' scales of chunk k from a block of 8 groups' scales s8 (lane g: group g's
// dw * dx), without a lane-crossing shuffle per chunk (those are slow on AMD's Zen 2): for
// Q4_1 the block is arranged once as [s0 s2 s4 s6 | s1 s3 s5 s7], and chunk k's lanes
// [s2k x4 | s2k+1 x4] are an in-lane broadcast of it; for Q8_0 chunk k's lanes are s_k,
// broadcast from a copy in memory. Only copies of the same products: no rounding.
template <class F>
struct Scales {
  __m256 arranged;
  alignas(32) float copy[8];
  inline void set(__m256 s8) {
    if constexpr (F::chunk_groups == 2)
      arranged = _mm256_permutevar8x32_ps(s8, _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));
    else
      _mm256_store_ps(copy, s8);
  }
  template <int k>
  inline __m256 chunk() const {
    if constexpr (F::chunk_groups == 2)
      return _mm256_permute_ps(arranged, k * 0x55);
    else
      return _mm256_broadcast_ss(copy + k);
  }
};

// f(std::integral_constant<int, k>) for k = 0 .. n - 1: the chunks of a block of 8 groups,
// unrolled (the Q4_1 broadcast takes k as an immediate)
template <class Fn, int... k>
inline void unrolled(Fn&& f, std::integer_sequence<int, k...>) {
  (f(std::integral_constant<int, k>{}), ...);
}

// Where results go: out[i], or out[i] = residual[i] + result where a residual is given (a
// layer's skip connection added as the result is stored: the same single float add as a
// separate `h + y`, so the same bits, without another op and pass over the rows).
struct Destination {
  float* out;
  const float* residual;  // [M, N] like out, or null
  void put(int64_t i, float value) const { out[i] = residual != nullptr ? residual[i] + value : value; }
};

// The last steps of R results, whatever the path: each accumulator's lanes summed in a tree,
// plus (Q4_1) the minima's dot, the sum over g of mw_g * xsum_g likewise. Result i pairs
// input row r0 + i * row_step with output n0 + i * out_step: a block of rows for one output
// (rows_block), or a row's block of outputs (row_outputs). The same float operations for
// each result however many finish together (so the same bits), with the lane trees taken
// four or eight at a time: one at a time this tail cost as much as a short row's dots.
template <class F, int R>
inline void finish(const __m256 acc[R], const QuantizedRows<F>& x, int64_t r0, int64_t row_step,
                   const uint16_t* mins, int64_t n0, int64_t out_step, const Destination& out,
                   int64_t at, int64_t out_stride) {
  __m256 m[R];  // (Q4_1) the minima's dots
  if constexpr (F::has_mins) {
    const int64_t padded = x.padded;
#pragma GCC unroll 8  // no call to memset (see rows_block)
    for (int i = 0; i < R; ++i) m[i] = _mm256_setzero_ps();
    for (int64_t g = 0; g < padded; g += 8)
      for (int i = 0; i < R; ++i) {  // loads shared by all R (a step of 0) happen once
        const uint16_t* mw = mins + (n0 + i * out_step) * padded + g;
        const float* xs = x.sum.data() + (r0 + i * row_step) * padded + g;
        m[i] = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(mw))),
                               _mm256_loadu_ps(xs), m[i]);
      }
  }
  alignas(32) float result[R];
  if constexpr (R % 8 == 0) {
    // eight sums at once, in a register until stored: four at a time into a float array, a
    // whole-vector reload of two half-vector stores stalled (store forwarding), ~4% of a
    // 16-row linear
    for (int i = 0; i < R; i += 8) {
      __m256 total = tree_sums8(acc + i);
      if constexpr (F::has_mins) total = _mm256_add_ps(total, tree_sums8(m + i));
      _mm256_store_ps(result + i, total);
    }
  } else {
    auto tree_sums_of = [](const __m256 v[R], float sums[R]) {
      if constexpr (R % 4 == 0) {
        for (int i = 0; i < R; i += 4) tree_sums(v + i, sums + i);
      } else {
        for (int i = 0; i < R; ++i) sums[i] = tree_sum(v[i]);
      }
    };
    tree_sums_of(acc, result);
    if constexpr (F::has_mins) {
      float msum[R];
      tree_sums_of(m, msum);
      for (int i = 0; i < R; ++i) result[i] += msum[i];
    }
  }
  for (int i = 0; i < R; ++i) out.put(at + i * out_stride, result[i]);
}

// Outputs n0 .. n0 + count - 1 (count <= C) for one input row r (a decode step of one
// sequence): each of the row's codes is loaded once for the C outputs, C accumulators.
template <class F, int C>
inline void row_outputs(const QuantizedRows<F>& x, int64_t r, const uint8_t* codes,
                        const uint16_t* scales, const uint16_t* mins, int64_t n0, int64_t count,
                        int64_t N, const Destination& out, int64_t at) {
  const int64_t groups = x.groups, padded = x.padded;
  const int64_t row_bytes = groups / F::chunk_groups * F::chunk_bytes;
  __m256 acc[C];
  for (int i = 0; i < C; ++i) acc[i] = _mm256_setzero_ps();
  for (int64_t g0 = 0; g0 < groups; g0 += 8) {  // 8 groups' scales at a time: dw * dx
    Scales<F> s[C];
    const __m256 dx = _mm256_loadu_ps(x.d.data() + r * padded + g0);
    for (int i = 0; i < C; ++i) {
      if (i >= count) break;
      const __m256 dw = _mm256_cvtph_ps(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(scales + (n0 + i) * padded + g0)));
      s[i].set(_mm256_mul_ps(dw, dx));
    }
    const int64_t chunks = std::min<int64_t>(8, groups - g0) / F::chunk_groups;
    // The weights stream from memory in short rows: ask for the same 8 groups of the block
    // after next early, into L2 (T1). Into L1 (T0) the LM head took 1.9x the time and the
    // layers 1.07x (a whole step's linears from memory, alternating in one process, Zen 4).
    const uint8_t* ahead = codes + (n0 + 2 * C) * row_bytes + g0 / F::chunk_groups * F::chunk_bytes;
    if (count == C && n0 + 3 * C <= N)
      for (int i = 0; i < C; ++i)
        for (int64_t line = 0; line < chunks * F::chunk_bytes; line += 64)
          _mm_prefetch(reinterpret_cast<const char*>(ahead + i * row_bytes + line), _MM_HINT_T1);
    const typename F::Code* qx = x.q.get() + r * x.K;
    unrolled([&](auto kc) {
      constexpr int k = decltype(kc)::value;
      if (k >= chunks) return;
      const int64_t c = g0 / F::chunk_groups + k;
      for (int i = 0; i < C; ++i) {
        if (i >= count) break;
        __m256i v[F::regs];
        F::decode(codes + (n0 + i) * row_bytes + c * F::chunk_bytes, v);
        acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(F::dot(v, qx + c * F::chunk_groups * GROUP)),
                                 s[i].template chunk<k>(), acc[i]);
      }
    }, std::make_integer_sequence<int, 8 / F::chunk_groups>{});
  }
  if (count == C) {
    finish<F, C>(acc, x, r, 0, mins, n0, 1, out, at, 1);
  } else {
    for (int i = 0; i < count; ++i) finish<F, 1>(acc + i, x, r, 0, mins, n0 + i, 0, out, at + i, 1);
  }
}

// One output n for input rows r0 .. r0 + R - 1 (R up to 8): each chunk's codes decoded once
// for all R rows, each row's lanes' scales dw * dx as `ROW_SCALES_IN_REGISTERS` says: the same
// products `row_outputs` makes, so the same bits. Into out at `at + r * out_stride`.
template <class F, int R>
inline void rows_block(const QuantizedRows<F>& x, int64_t r0, const uint8_t* codes,
                       const uint16_t* scales, const uint16_t* mins, int64_t n,
                       const Destination& out, int64_t at, int64_t out_stride) {
  const int64_t groups = x.groups, padded = x.padded, chunks_per_row = groups / F::chunk_groups;
  const uint8_t* wrow = codes + n * chunks_per_row * F::chunk_bytes;
  __m256 acc[R];
#pragma GCC unroll 8  // else GCC zeroes the array with a call to memset (~2% of a 16-row step)
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  // the scales of a block of 8 groups: the output's, and (in registers) each row's products
  struct BlockScales {
    Scales<F> dw, rows[ROW_SCALES_IN_REGISTERS ? R : 1];
  };
  auto block_scales = [&](int64_t g0, BlockScales& s) __attribute__((always_inline)) {
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(scales + n * padded + g0)));
    if constexpr (ROW_SCALES_IN_REGISTERS) {
      for (int r = 0; r < R; ++r) s.rows[r].set(_mm256_mul_ps(dw, _mm256_loadu_ps(x.d.data() + (r0 + r) * padded + g0)));
    } else {
      s.dw.set(dw);
    }
  };
  // chunk c's product for all R rows (k: its place in the block of 8 groups); always inlined:
  // GCC's inlining budget left it out of line for some formats (1.1-1.2x slower)
  auto chunk = [&](const BlockScales& s, auto kc, int64_t c) __attribute__((always_inline)) {
    constexpr int k = decltype(kc)::value;
    __m256i v[F::regs];
    F::decode(wrow + c * F::chunk_bytes, v);
    const typename F::Code* qx = x.codes(r0, R, c);
    for (int r = 0; r < R; ++r) {
      __m256 scale;
      if constexpr (ROW_SCALES_IN_REGISTERS)
        scale = s.rows[r].template chunk<k>();
      else
        scale = _mm256_mul_ps(s.dw.template chunk<k>(), _mm256_loadu_ps(x.lanes(r0, R, c) + r * 8));
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(F::dot(v, qx + r * QuantizedRows<F>::chunk_codes)), scale, acc[r]);
    }
  };
  constexpr int per_block = 8 / F::chunk_groups;
  const int64_t full = groups / 8 * 8;
  for (int64_t g0 = 0; g0 < full; g0 += 8) {
    BlockScales s;
    block_scales(g0, s);
    const int64_t c0 = g0 / F::chunk_groups;
    unrolled([&](auto kc) { chunk(s, kc, c0 + decltype(kc)::value); },
             std::make_integer_sequence<int, per_block>{});
  }
  if (full < groups) {  // a last block of fewer than 8 groups
    BlockScales s;
    block_scales(full, s);
    const int64_t c0 = full / F::chunk_groups, chunks = (groups - full) / F::chunk_groups;
    unrolled([&](auto kc) {
      if (decltype(kc)::value < chunks) chunk(s, kc, c0 + decltype(kc)::value);
    }, std::make_integer_sequence<int, per_block>{});
  }
  finish<F, R>(acc, x, r0, 1, mins, n, 0, out, at, out_stride);
}

template <class F>
at::Tensor grouped_linear_impl(const at::Tensor& input, const at::Tensor& codes,
                               const at::Tensor& scales, const at::Tensor& mins,
                               const furiosa_kernels::Fusion& fusion) {
  TORCH_CHECK(input.dim() == 2 && input.scalar_type() == at::kFloat, "input: 2-D fp32");
  const at::Tensor x = input.contiguous();
  const int64_t M = x.size(0), K = x.size(1), N = codes.size(0);
  TORCH_CHECK(K % (2 * GROUP) == 0 && scales.size(1) == (K / GROUP + 7) / 8 * 8,
              "weight groups do not match input");
  TORCH_CHECK(codes.is_contiguous() && scales.is_contiguous() && mins.is_contiguous(),
              "codes, scales and mins: contiguous");
  at::Tensor out = at::empty({M, N}, x.options());
  const Destination dst{out.data_ptr<float>(), fusion.residual};
  const uint8_t* cp = static_cast<const uint8_t*>(codes.data_ptr());
  const uint16_t* sp = static_cast<const uint16_t*>(scales.data_ptr());
  const uint16_t* mp = F::has_mins ? static_cast<const uint16_t*>(mins.data_ptr()) : nullptr;
  const QuantizedRows<F> rows(x.data_ptr<float>(), M, K, fusion);
  constexpr int64_t NB = 4, ROW_BUDGET = 16384;
  const int64_t blocks = (N + NB - 1) / NB;
  // Input rows taken together while the weights stream past: as many as stay in L1 with
  // their spread scales (every output reads them all again), at least one block of RB. A
  // multiple of RB, so these chunks of rows split into the blocks `block_of` laid out. The
  // spread's bytes are counted even where none is built (ROW_SCALES_IN_REGISTERS): the
  // chunks stay the ones measured (16-bit codes: 8 rows either way; 8-bit codes would go
  // from 8 to 24 rows at K = 576, untimed).
  const int64_t row_bytes_in = K * int64_t(sizeof(typename F::Code)) + (K / GROUP) * 32;
  const int64_t CHUNK = std::max<int64_t>(RB, ROW_BUDGET / row_bytes_in / RB * RB);
  const int64_t weight_row_bytes = K / GROUP / F::chunk_groups * F::chunk_bytes;
  at::parallel_for(0, blocks, 4, [&](int64_t b0, int64_t b1) {
    for (int64_t m0 = 0; m0 < M; m0 += CHUNK)
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t n0 = b * NB, count = std::min(NB, N - n0);
        if (M == 1) {  // a decode step of one sequence
          row_outputs<F, NB>(rows, 0, cp, sp, mp, n0, count, N, dst, n0);
          continue;
        }
        const int64_t m1 = std::min(M, m0 + CHUNK);
        for (int64_t i = 0; i < count; ++i) {
          const int64_t n = n0 + i;
          if (n + NB < N) {  // the output a block on: its weights into L2 (LM head 0.93-0.96x)
            const char* next = reinterpret_cast<const char*>(cp + (n + NB) * weight_row_bytes);
            for (int64_t line = 0; line < weight_row_bytes; line += 64) _mm_prefetch(next + line, _MM_HINT_T1);
          }
          int64_t r = m0;
          for (; r + RB <= m1; r += RB) rows_block<F, RB>(rows, r, cp, sp, mp, n, dst, r * N + n, N);
          for (; r + 4 <= m1; r += 4) rows_block<F, 4>(rows, r, cp, sp, mp, n, dst, r * N + n, N);
          for (; r < m1; ++r) rows_block<F, 1>(rows, r, cp, sp, mp, n, dst, r * N + n, N);
        }
      }
  });
  return out;
}

}  // namespace

namespace furiosa_kernels {

static at::Tensor grouped_linear_any(const at::Tensor& input, const at::Tensor& codes, const at::Tensor& scales,
                                     const at::Tensor& mins, int64_t activation_bits, const Fusion& fusion) {
  TORCH_CHECK(activation_bits == 8 || activation_bits == 16, "activation_bits: 8 or 16");
  TORCH_CHECK(codes.scalar_type() == at::kByte || codes.scalar_type() == at::kChar,
              "codes: uint8 (4-bit pairs) or int8");
  const bool q4 = codes.scalar_type() == at::kByte;
  if (activation_bits == 16)
    return q4 ? grouped_linear_impl<Format<16, true>>(input, codes, scales, mins, fusion)
              : grouped_linear_impl<Format<16, false>>(input, codes, scales, mins, fusion);
  return q4 ? grouped_linear_impl<Format<8, true>>(input, codes, scales, mins, fusion)
            : grouped_linear_impl<Format<8, false>>(input, codes, scales, mins, fusion);
}

at::Tensor grouped_linear(const at::Tensor& input, const at::Tensor& codes, const at::Tensor& scales,
                          const at::Tensor& mins, int64_t activation_bits) {
  return grouped_linear_any(input, codes, scales, mins, activation_bits, Fusion{});
}

at::Tensor grouped_linear_fused(const at::Tensor& input, const at::Tensor& codes, const at::Tensor& scales,
                                const at::Tensor& mins, int64_t activation_bits, const at::Tensor* norm_weight,
                                double eps, const at::Tensor* residual) {
  Fusion fusion;
  if (norm_weight != nullptr) {
    TORCH_CHECK(norm_weight->scalar_type() == at::kFloat && norm_weight->is_contiguous() &&
                    norm_weight->numel() == input.size(-1),
                "norm weight: contiguous fp32 [K]");
    fusion.norm_weight = norm_weight->data_ptr<float>();
    fusion.norm_eps = static_cast<float>(eps);
  }
  if (residual != nullptr) {
    TORCH_CHECK(residual->dim() == 2 && residual->size(0) == input.size(0) && residual->size(1) == codes.size(0) &&
                    residual->scalar_type() == at::kFloat && residual->is_contiguous(),
                "residual: contiguous fp32 [M, N]");
    fusion.residual = residual->data_ptr<float>();
  }
  return grouped_linear_any(input, codes, scales, mins, activation_bits, fusion);
}

}  // namespace furiosa_kernels

namespace {

// ---- finding the groups in dequantized weights (see gguf_groups.py) ----

inline uint16_t to_half(float v) { return _cvtss_sh(v, _MM_FROUND_TO_NEAREST_INT); }
inline float from_half(uint16_t h) { return _cvtsh_ss(h); }

// One group of 32 values on a grid scale * q + offset, q in [low, high], with an fp16 scale
// at or next to `estimate`: writes the codes and the scale's bits, or returns false.
inline bool fit_group(const float* v, float offset, float estimate, int low, int high,
                      int16_t* codes, uint16_t* scale) {
  const uint16_t around = to_half(estimate);
  const uint16_t candidates[3] = {around, static_cast<uint16_t>(around + 1),
                                  static_cast<uint16_t>(around - 1)};
  for (uint16_t bits : candidates) {
    const float d = from_half(bits);
    const float inverse = d != 0.f ? 1.f / d : 0.f;  // the check below catches any misrounding
    bool exact = true;
    for (int j = 0; j < 32 && exact; ++j) {
      const int q = std::min(high, std::max(low, static_cast<int>(std::nearbyint((v[j] - offset) * inverse))));
      codes[j] = static_cast<int16_t>(q);
      exact = std::fmaf(static_cast<float>(q), d, offset) == v[j];
    }
    if (exact) {
      *scale = bits;
      return true;
    }
  }
  return false;
}

// Q4_1 (bits 4) or Q8_0 (bits 8) groups of a 2-D fp32 weight, or empty tensors when some
// group is not exactly on such a grid.
std::vector<at::Tensor> find_groups(const at::Tensor& weight, int64_t bits) {
  TORCH_CHECK(weight.dim() == 2 && weight.scalar_type() == at::kFloat, "weight: 2-D fp32");
  const at::Tensor w = weight.contiguous();
  const int64_t N = w.size(0), K = w.size(1), groups = K / GROUP;
  TORCH_CHECK(K % GROUP == 0, "the input size is not a multiple of 32");
  const bool q4 = bits == 4;
  at::Tensor codes = at::empty({N, q4 ? K / 2 : K}, w.options().dtype(q4 ? at::kByte : at::kChar));
  const int64_t padded = (groups + 7) / 8 * 8;  // zeros after: the kernel loads 8 at a time
  at::Tensor scales = at::zeros({N, padded}, w.options().dtype(at::kShort));
  at::Tensor mins = q4 ? at::zeros({N, padded}, w.options().dtype(at::kShort))
                        : at::empty({0}, w.options().dtype(at::kShort));
  const float* wp = w.data_ptr<float>();
  uint8_t* cp = static_cast<uint8_t*>(codes.data_ptr());
  uint16_t* sp = static_cast<uint16_t*>(scales.data_ptr());
  uint16_t* mp = q4 ? static_cast<uint16_t*>(mins.data_ptr()) : nullptr;
  std::atomic<bool> exact{true};
  at::parallel_for(0, N * groups, 256, [&](int64_t begin, int64_t end) {
    int16_t q[32];
    for (int64_t i = begin; i < end && exact.load(std::memory_order_relaxed); ++i) {
      const float* v = wp + i * GROUP;
      float lo = v[0], hi = v[0], amax = 0.f;
      for (int j = 0; j < 32; ++j) {
        lo = std::min(lo, v[j]);
        hi = std::max(hi, v[j]);
        amax = std::max(amax, std::fabs(v[j]));
      }
      const int64_t at = (i / groups) * padded + i % groups;  // in the padded scale rows
      bool ok;
      if (q4) {
        // The smallest value has code 0: it is the stored minimum itself, an fp16.
        const uint16_t m = to_half(lo);
        ok = from_half(m) == lo && fit_group(v, lo, (hi - lo) / 15.f, 0, 15, q, sp + at);
        if (ok) {
          mp[at] = m;
          for (int j = 0; j < 16; ++j)
            cp[i * 16 + j] = static_cast<uint8_t>(q[j] | (q[j + 16] << 4));
        }
      } else {
        // The value of largest magnitude has code +-127 (llama.cpp's d = amax / 127).
        ok = fit_group(v, 0.f, amax / 127.f, -128, 127, q, sp + at);
        if (ok)
          for (int j = 0; j < 32; ++j) cp[i * 32 + j] = static_cast<uint8_t>(static_cast<int8_t>(q[j]));
      }
      if (!ok) exact.store(false, std::memory_order_relaxed);
    }
  });
  if (!exact.load()) return {};
  return {codes, scales, mins};
}

}  // namespace

// The schemas are defined in Python (kernels/grouped_linear.py), grouped_linear with a
// reference kernel for every device; these CPU kernels take precedence where they are loaded.
TORCH_LIBRARY_IMPL(furiosa, CPU, m) {
  m.impl("grouped_linear", furiosa_kernels::grouped_linear);
  m.impl("find_groups", find_groups);
}
