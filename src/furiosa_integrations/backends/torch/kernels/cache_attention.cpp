// furiosa::cache_attention on the CPU (AVX2 + FMA), compiled with grouped_linear.cpp by
// kernels/build.py. Each query row (a token of the sequence in `slots[t]`, at `positions[t]`)
// attends to its own slot's cached keys and values at columns [low, positions[t]], low the
// sliding window's start (0 without one). A row's result depends on nothing but its query
// and those columns, computed in one fixed order: the same bits whatever else is in the batch
// (decode) or the prefill (packed with other sequences, over a cached prefix or not).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <immintrin.h>
#include "vector_math.h"
#include "layer_kernels.h"
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace {

using furiosa_kernels::exp8;
using furiosa_kernels::tree_sum;
using furiosa_kernels::tree_sums;

// One query row's head over its columns: `scores` [count + 8] and `spill` [D / 8] as scratch,
// the result in `oh`. `stream_values`: the values come from memory (a decode step's row, the
// first head of its group), so ask for them while the keys are dotted: two streams from
// memory at once, not one after the other (30 layers of 16 rows' attention ~0.85x the time,
// Zen 4). Where the values are in the caches already (prefill's rows, the group's other
// heads) the extra loads only cost (1,000 prefill rows 1.13x).
// NV: D / 8 where it is known at compile time (the accumulators then stay in registers),
// 0 for any other D. Keys are dotted eight at a time (independent chains, lane trees four
// at a time), each in the same order as one at a time: the same bits.
template <int NV>
inline void attend(const float* qh, const float* kh, const float* vh, int64_t count, int64_t D,
                   float scale, float cap, bool stream_values, float* scores, __m256* spill,
                   float* oh) {
  const int64_t nv = NV > 0 ? NV : D / 8;
  auto dot = [&](const float* kc) {
    __m256 acc = _mm256_mul_ps(_mm256_loadu_ps(qh), _mm256_loadu_ps(kc));
    for (int64_t d = 1; d < nv; ++d)
      acc = _mm256_fmadd_ps(_mm256_loadu_ps(qh + 8 * d), _mm256_loadu_ps(kc + 8 * d), acc);
    return acc;
  };
  auto finish_score = [&](float s) { s *= scale; return cap > 0.f ? cap * std::tanh(s / cap) : s; };
  float top = -INFINITY;
  int64_t c = 0;
  for (; c + 8 <= count; c += 8) {  // eight chains in flight: FMA latency, not one chain's
    if (stream_values)  // into L2, for the weighted sum below
      for (int64_t line = 0; line < 8 * D; line += 16)
        _mm_prefetch(reinterpret_cast<const char*>(vh + c * D + line), _MM_HINT_T1);
    __m256 dots[8];
    for (int i = 0; i < 8; ++i) dots[i] = dot(kh + (c + i) * D);
    float sums[8];
    tree_sums(dots, sums);
    tree_sums(dots + 4, sums + 4);
    for (int i = 0; i < 8; ++i) {
      scores[c + i] = finish_score(sums[i]);
      top = std::max(top, scores[c + i]);
    }
  }
  for (; c < count; ++c) {
    scores[c] = finish_score(tree_sum(dot(kh + c * D)));
    top = std::max(top, scores[c]);
  }
  // softmax numerators, 8 at a time; their sum in lanes, then the tree
  const __m256 shift = _mm256_set1_ps(top);
  __m256 total = _mm256_setzero_ps();
  c = 0;
  for (; c + 8 <= count; c += 8) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(scores + c), shift));
    _mm256_storeu_ps(scores + c, e);
    total = _mm256_add_ps(total, e);
  }
  if (c < count) {  // the tail, padded with -inf (e = 0)
    alignas(32) float tail[8];
    for (int i = 0; i < 8; ++i) tail[i] = c + i < count ? scores[c + i] : -INFINITY;
    const __m256 e = _mm256_and_ps(exp8(_mm256_sub_ps(_mm256_load_ps(tail), shift)),
                                   _mm256_cmp_ps(_mm256_load_ps(tail), _mm256_set1_ps(-INFINITY), _CMP_NEQ_OQ));
    _mm256_storeu_ps(scores + c, e);
    total = _mm256_add_ps(total, e);
  }
  const __m256 inv = _mm256_set1_ps(1.f / tree_sum(total));
  // the weighted values: in registers for a fixed D, else in the caller's `spill`
  __m256 local[NV > 0 ? NV : 1];
  __m256* acc = NV > 0 ? local : spill;
  for (int64_t d = 0; d < nv; ++d) acc[d] = _mm256_setzero_ps();
  for (int64_t j = 0; j < count; ++j) {
    const __m256 e = _mm256_set1_ps(scores[j]);
    const float* vc = vh + j * D;
    for (int64_t d = 0; d < nv; ++d) acc[d] = _mm256_fmadd_ps(e, _mm256_loadu_ps(vc + 8 * d), acc[d]);
  }
  for (int64_t d = 0; d < nv; ++d) _mm256_storeu_ps(oh + 8 * d, _mm256_mul_ps(acc[d], inv));
}

}  // namespace

namespace furiosa_kernels {

at::Tensor cache_attention(const at::Tensor& q, const at::Tensor& keys, const at::Tensor& values,
                           const at::Tensor& slots, const at::Tensor& positions, int64_t window,
                           double scale, double softcap) {
  TORCH_CHECK(q.dim() == 3 && q.scalar_type() == at::kFloat, "q: [T, H, D] fp32");
  TORCH_CHECK(keys.dim() == 4 && keys.is_contiguous() && values.is_contiguous() &&
                  keys.scalar_type() == at::kFloat && keys.sizes() == values.sizes(),
              "keys, values: contiguous [slots, KV, S, D] fp32");
  const at::Tensor qc = q.contiguous();
  const at::Tensor sl = slots.to(at::kLong).contiguous(), ps = positions.to(at::kLong).contiguous();
  const int64_t T = qc.size(0), H = qc.size(1), D = qc.size(2), KV = keys.size(1), S = keys.size(2);
  TORCH_CHECK(D % 8 == 0 && keys.size(3) == D && H % KV == 0, "head sizes do not match");
  TORCH_CHECK(sl.numel() == T && ps.numel() == T, "one slot and position per query row");
  at::Tensor out = at::empty({T, H, D}, qc.options());
  const float* qp = qc.data_ptr<float>();
  const float* kp = keys.data_ptr<float>();
  const float* vp = values.data_ptr<float>();
  const int64_t* slp = sl.data_ptr<int64_t>();
  const int64_t* pp = ps.data_ptr<int64_t>();
  float* op = out.data_ptr<float>();
  for (int64_t t = 0; t < T; ++t)
    TORCH_CHECK(pp[t] >= 0 && pp[t] < S && slp[t] >= 0 && slp[t] < keys.size(0),
                "a query row's slot or position is outside the cache");
  const int64_t group = H / KV;
  const float fscale = static_cast<float>(scale), cap = static_cast<float>(softcap);
  at::parallel_for(0, T * H, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scores;
    std::vector<__m256> spill(D / 8);
    for (int64_t job = begin; job < end; ++job) {
      const int64_t t = job / H, h = job % H, pos = pp[t];
      // a row alone in its slot (a decode step), on its group's first head
      const bool stream_values = h % group == 0 && (t == 0 || slp[t - 1] != slp[t]) &&
                                 (t + 1 == T || slp[t + 1] != slp[t]);
      const int64_t low = window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0;
      const int64_t count = pos - low + 1;
      const float* qh = qp + (t * H + h) * D;
      const int64_t base = ((slp[t] * KV + h / group) * S + low) * D;
      scores.resize(count + 8);
      float* oh = op + (t * H + h) * D;
      switch (D) {
        case 64: attend<8>(qh, kp + base, vp + base, count, D, fscale, cap, stream_values, scores.data(), spill.data(), oh); break;
        case 128: attend<16>(qh, kp + base, vp + base, count, D, fscale, cap, stream_values, scores.data(), spill.data(), oh); break;
        default: attend<0>(qh, kp + base, vp + base, count, D, fscale, cap, stream_values, scores.data(), spill.data(), oh);
      }
    }
  });
  return out;
}

}  // namespace furiosa_kernels

TORCH_LIBRARY_IMPL(furiosa, CPU, m) { m.impl("cache_attention", furiosa_kernels::cache_attention); }
