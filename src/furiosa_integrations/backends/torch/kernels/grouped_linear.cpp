// furiosa::grouped_linear on the CPU (AVX2 + FMA + F16C), compiled on the user's machine at
// first use by kernels/build.py. The weights come in groups of 32 along the input: 4-bit codes
// with an fp16 scale and minimum per group (GGUF's Q4_1), or 8-bit codes with an fp16 scale
// (Q8_0), multiplied as llama.cpp's CPU backend does (see below): a quarter (Q4_1) to a half
// (Q8_0) of fp16's bytes per decode step, and integer dot products.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <immintrin.h>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <vector>
#include <cstring>

namespace {

constexpr int64_t GROUP = 32;

// The arithmetic is llama.cpp's for these formats on the CPU: each input row is quantized
// per group of 32 to 8-bit codes qx with a scale dx = amax / 127 (its Q8_0), and
//   out = sum over g of (dw_g * dx_g) * (integer dot of the group's codes)
//         + sum over g of mw_g * xsum_g            (Q4_1's minima; xsum_g: the inputs' sum)
// Every output is computed the same way whatever the batch: one chain of 8-lane FMAs over
// its groups in order, the lanes summed in one fixed tree, then the minima's dot likewise.
// Four outputs run side by side (their sums share the tree's instructions); a row's result
// is the same bits alone or in any batch, and however the outputs are split between threads.
// A row's groups go in pairs (an even number of groups; gguf_groups.py sees to it).

constexpr int NB = 4;  // outputs computed side by side

// out[i] = the tree sum of acc[i]'s lanes: ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7))
inline void tree_sums(const __m256 acc[NB], float out[NB]) {
  const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(acc[0], acc[1]), _mm256_hadd_ps(acc[2], acc[3]));
  _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
}

inline float hmax(__m256 v) {
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, v);
  float s = lanes[0];
  for (int i = 1; i < 8; ++i) s = std::max(s, lanes[i]);
  return s;
}

// Q4_1: 16 bytes a group, element j in the low nibble of byte j, j + 16 in the high one. A
// pair of groups is one 32-byte load: its low nibbles are [g0 0..15 | g1 0..15], its high
// ones [g0 16..31 | g1 16..31], so the input codes of a pair are stored in that order too.
struct Q4 {
  static constexpr int64_t bytes_per_group = 16;
  static constexpr bool has_mins = true;
  static constexpr bool paired = true;
  static inline void codes(const uint8_t* pair, __m256i& lo, __m256i& hi) {
    const __m256i bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pair));
    const __m256i nibble = _mm256_set1_epi8(0x0F);
    lo = _mm256_and_si256(bytes, nibble);
    hi = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), nibble);
  }
  // 8 int32 lanes: lanes 0-3 partial dots of the pair's first group, 4-7 of its second
  static inline __m256 dot(__m256i lo, __m256i hi, const int8_t* qx) {
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qx));
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qx + 32));
    const __m256i pairs = _mm256_add_epi16(_mm256_maddubs_epi16(lo, a), _mm256_maddubs_epi16(hi, b));
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
  }
};

// Q8_0: 32 signed codes a group, in order; maddubs wants an unsigned operand: |w| and the
// input codes times sign(w).
struct Q8 {
  static constexpr int64_t bytes_per_group = 32;
  static constexpr bool has_mins = false;
  static constexpr bool paired = false;
  static inline __m256 dot(const uint8_t* group, const int8_t* qx) {
    const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(group));
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qx));
    const __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
  }
};

// The input rows, quantized once per call: codes [M, K] (pairs of groups interleaved for
// Q4_1, see above), and per group the scale and the inputs' sum ([M, padded], zeros after).
struct QuantizedRows {
  int64_t K, groups, padded;
  std::vector<int8_t> q;
  std::vector<float> d, sum;

  QuantizedRows(const float* x, int64_t M, int64_t K_, bool paired)
      : K(K_), groups(K_ / GROUP), padded((K_ / GROUP + 7) / 8 * 8),
        q(M * K_), d(M * padded, 0.f), sum(M * padded, 0.f) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int64_t r = 0; r < M; ++r)
      for (int64_t g = 0; g < groups; ++g) {
        const float* xg = x + r * K + g * GROUP;
        __m256 v[4];
        for (int k = 0; k < 4; ++k) v[k] = _mm256_loadu_ps(xg + 8 * k);
        const __m256 amax = _mm256_max_ps(
            _mm256_max_ps(_mm256_andnot_ps(sign, v[0]), _mm256_andnot_ps(sign, v[1])),
            _mm256_max_ps(_mm256_andnot_ps(sign, v[2]), _mm256_andnot_ps(sign, v[3])));
        const float scale = hmax(amax) / 127.f;
        const __m256 inverse = _mm256_set1_ps(scale != 0.f ? 1.f / scale : 0.f);
        __m256i i[4];
        for (int k = 0; k < 4; ++k)
          i[k] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[k], inverse),
                                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        const __m256i codes = _mm256_permutevar8x32_epi32(
            _mm256_packs_epi16(_mm256_packs_epi32(i[0], i[1]), _mm256_packs_epi32(i[2], i[3])),
            order);  // the group's 32 codes in order
        int8_t* out = q.data() + r * K + g * GROUP;
        if (paired) {  // [g0 0..15 | g1 0..15] [g0 16..31 | g1 16..31] per pair
          int8_t* pair = q.data() + r * K + (g & ~int64_t(1)) * GROUP;
          const int64_t half = (g & 1) * 16;
          _mm_storeu_si128(reinterpret_cast<__m128i*>(pair + half), _mm256_castsi256_si128(codes));
          _mm_storeu_si128(reinterpret_cast<__m128i*>(pair + 32 + half), _mm256_extracti128_si256(codes, 1));
        } else {
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), codes);
        }
        d[r * padded + g] = scale;
        const __m256 s4 = _mm256_add_ps(_mm256_add_ps(v[0], v[1]), _mm256_add_ps(v[2], v[3]));
        alignas(32) float lanes[8];
        _mm256_store_ps(lanes, s4);
        float total = 0.f;
        for (int k = 0; k < 8; ++k) total += lanes[k];
        sum[r * padded + g] = total;
      }
  }
};

// out[i] = the tree sum of acc[i] + (Q4_1) the tree sum of sum over g of mw_g * xsum_g, for
// input row `row` and outputs n0 .. n0 + count - 1: the last steps of every output.
template <class Format>
inline void finish(const __m256 acc[NB], const QuantizedRows& x, int64_t row, const uint16_t* mins,
                   int64_t n0, int64_t count, float* out) {
  float dots[NB];
  tree_sums(acc, dots);
  float minima[NB] = {0.f, 0.f, 0.f, 0.f};
  if (Format::has_mins) {
    const int64_t padded = x.padded;
    __m256 m[NB] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    const float* xsum = x.sum.data() + row * padded;
    for (int i = 0; i < count; ++i)
      for (int64_t g = 0; g < padded; g += 8)
        m[i] = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(
                                   reinterpret_cast<const __m128i*>(mins + (n0 + i) * padded + g))),
                               _mm256_loadu_ps(xsum + g), m[i]);
    tree_sums(m, minima);
  }
  for (int i = 0; i < count; ++i) out[i] = dots[i] + minima[i];
}

// Outputs n0 .. n0 + NB - 1 (those < N) for input row r. Scales and minima rows are padded
// with zeros to a multiple of 8 groups (gguf_groups.py), so they load 8 at a time.
template <class Format>
inline void outputs(const QuantizedRows& x, int64_t r, const uint8_t* codes, const uint16_t* scales,
                    const uint16_t* mins, int64_t n0, int64_t N, float* out) {
  const int64_t groups = x.groups, padded = x.padded;
  const int64_t row_bytes = groups * Format::bytes_per_group;
  const int64_t count = std::min<int64_t>(NB, N - n0);
  const float* dx = x.d.data() + r * padded;
  const int8_t* qx = x.q.data() + r * x.K;
  __m256 acc[NB] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  for (int64_t g0 = 0; g0 < groups; g0 += 8) {  // 8 groups' scales at a time: dw * dx
    __m256 s[NB];
    const __m256 dx8 = _mm256_loadu_ps(dx + g0);
    for (int i = 0; i < count; ++i)
      s[i] = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(
                               reinterpret_cast<const __m128i*>(scales + (n0 + i) * padded + g0))),
                           dx8);
    const int64_t block = std::min<int64_t>(8, groups - g0);
    // The weights stream from memory in short rows: ask for the block after next early.
    const uint8_t* ahead = codes + (n0 + 2 * NB) * row_bytes + g0 * Format::bytes_per_group;
    if (n0 + 3 * NB <= N)
      for (int i = 0; i < NB; ++i)
        for (int64_t line = 0; line < 8 * Format::bytes_per_group; line += 64)
          _mm_prefetch(reinterpret_cast<const char*>(ahead + i * row_bytes + line), _MM_HINT_T0);
    if constexpr (Format::paired) {
      for (int64_t k = 0; k < block / 2; ++k) {  // pair g0 / 2 + k: lanes [s_2k x4 | s_2k+1 x4]
        const __m256i spread = _mm256_setr_epi32(2 * k, 2 * k, 2 * k, 2 * k, 2 * k + 1, 2 * k + 1,
                                                 2 * k + 1, 2 * k + 1);
        const int64_t p = g0 / 2 + k;
        for (int i = 0; i < count; ++i) {
          __m256i lo, hi;
          Format::codes(codes + (n0 + i) * row_bytes + p * 32, lo, hi);
          acc[i] = _mm256_fmadd_ps(Format::dot(lo, hi, qx + p * 64),
                                   _mm256_permutevar8x32_ps(s[i], spread), acc[i]);
        }
      }
    } else {
      for (int64_t k = 0; k < block; ++k) {
        const __m256i spread = _mm256_set1_epi32(k);
        const int64_t g = g0 + k;
        for (int i = 0; i < count; ++i)
          acc[i] = _mm256_fmadd_ps(Format::dot(codes + (n0 + i) * row_bytes + g * 32, qx + g * GROUP),
                                   _mm256_permutevar8x32_ps(s[i], spread), acc[i]);
      }
    }
  }
  finish<Format>(acc, x, r, mins, n0, count, out);
}

// The same outputs for up to ROWS input rows at once: each group's codes are decoded once
// for all of them and each input load serves all NB outputs. Per output and row, the very
// operations of `outputs` in the same order (tested: a row's bits do not change with M).
constexpr int ROWS = 8;

template <class Format>
inline void outputs_rows(const QuantizedRows& x, int64_t r0, int64_t rows, const uint8_t* codes,
                         const uint16_t* scales, const uint16_t* mins, int64_t n0, int64_t N,
                         float* out, int64_t out_stride) {
  const int64_t groups = x.groups, padded = x.padded;
  const int64_t row_bytes = groups * Format::bytes_per_group;
  const int64_t count = std::min<int64_t>(NB, N - n0);
  __m256 acc[ROWS][NB], s[ROWS][NB];
  for (int64_t r = 0; r < rows; ++r)
    for (int i = 0; i < NB; ++i) acc[r][i] = _mm256_setzero_ps();
  for (int64_t g0 = 0; g0 < groups; g0 += 8) {
    for (int i = 0; i < count; ++i) {
      const __m256 dw = _mm256_cvtph_ps(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(scales + (n0 + i) * padded + g0)));
      for (int64_t r = 0; r < rows; ++r)
        s[r][i] = _mm256_mul_ps(dw, _mm256_loadu_ps(x.d.data() + (r0 + r) * padded + g0));
    }
    const int64_t block = std::min<int64_t>(8, groups - g0);
    if constexpr (Format::paired) {
      for (int64_t k = 0; k < block / 2; ++k) {
        const __m256i spread = _mm256_setr_epi32(2 * k, 2 * k, 2 * k, 2 * k, 2 * k + 1, 2 * k + 1,
                                                 2 * k + 1, 2 * k + 1);
        const int64_t p = g0 / 2 + k;
        __m256i lo[NB], hi[NB];
        for (int i = 0; i < count; ++i) Format::codes(codes + (n0 + i) * row_bytes + p * 32, lo[i], hi[i]);
        for (int64_t r = 0; r < rows; ++r) {
          const int8_t* qx = x.q.data() + (r0 + r) * x.K + p * 64;
          for (int i = 0; i < count; ++i)
            acc[r][i] = _mm256_fmadd_ps(Format::dot(lo[i], hi[i], qx),
                                        _mm256_permutevar8x32_ps(s[r][i], spread), acc[r][i]);
        }
      }
    } else {
      for (int64_t k = 0; k < block; ++k) {
        const __m256i spread = _mm256_set1_epi32(k);
        const int64_t g = g0 + k;
        for (int64_t r = 0; r < rows; ++r) {
          const int8_t* qx = x.q.data() + (r0 + r) * x.K + g * GROUP;
          for (int i = 0; i < count; ++i)
            acc[r][i] = _mm256_fmadd_ps(Format::dot(codes + (n0 + i) * row_bytes + g * 32, qx),
                                        _mm256_permutevar8x32_ps(s[r][i], spread), acc[r][i]);
        }
      }
    }
  }
  for (int64_t r = 0; r < rows; ++r) finish<Format>(acc[r], x, r0 + r, mins, n0, count, out + r * out_stride);
}

template <class Format>
at::Tensor grouped_linear_impl(const at::Tensor& input, const at::Tensor& codes,
                               const at::Tensor& scales, const at::Tensor& mins) {
  TORCH_CHECK(input.dim() == 2 && input.scalar_type() == at::kFloat, "input: 2-D fp32");
  const at::Tensor x = input.contiguous();
  const int64_t M = x.size(0), K = x.size(1), N = codes.size(0);
  TORCH_CHECK(K % (2 * GROUP) == 0 && scales.size(1) == (K / GROUP + 7) / 8 * 8,
              "weight groups do not match input");
  TORCH_CHECK(codes.is_contiguous() && scales.is_contiguous() && mins.is_contiguous(),
              "codes, scales and mins: contiguous");
  at::Tensor out = at::empty({M, N}, x.options());
  float* op = out.data_ptr<float>();
  const uint8_t* cp = static_cast<const uint8_t*>(codes.data_ptr());
  const uint16_t* sp = static_cast<const uint16_t*>(scales.data_ptr());
  const uint16_t* mp = Format::has_mins ? static_cast<const uint16_t*>(mins.data_ptr()) : nullptr;
  const QuantizedRows rows(x.data_ptr<float>(), M, K, Format::paired);
  const int64_t blocks = (N + NB - 1) / NB;
  constexpr int64_t CHUNK = 64;  // input rows kept in cache while the weights stream past
  at::parallel_for(0, blocks, 4, [&](int64_t b0, int64_t b1) {
    float results[NB];
    for (int64_t m0 = 0; m0 < M; m0 += CHUNK)
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t n0 = b * NB;
        if (M == 1) {  // a decode step of one sequence: the accumulators stay in registers
          outputs<Format>(rows, 0, cp, sp, mp, n0, N, results);
          for (int64_t i = 0; i < std::min<int64_t>(NB, N - n0); ++i) op[n0 + i] = results[i];
          continue;
        }
        for (int64_t r = m0; r < std::min(M, m0 + CHUNK); r += ROWS)
          outputs_rows<Format>(rows, r, std::min<int64_t>(ROWS, std::min(M, m0 + CHUNK) - r), cp, sp,
                               mp, n0, N, op + r * N + n0, N);
      }
  });
  return out;
}

at::Tensor grouped_linear(const at::Tensor& input, const at::Tensor& codes,
                          const at::Tensor& scales, const at::Tensor& mins) {
  if (codes.scalar_type() == at::kByte) return grouped_linear_impl<Q4>(input, codes, scales, mins);
  TORCH_CHECK(codes.scalar_type() == at::kChar, "codes: uint8 (4-bit pairs) or int8");
  return grouped_linear_impl<Q8>(input, codes, scales, mins);
}

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
  m.impl("grouped_linear", grouped_linear);
  m.impl("find_groups", find_groups);
}
