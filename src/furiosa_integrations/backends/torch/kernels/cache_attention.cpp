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
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace {

using furiosa_kernels::exp8;

inline float tree_sum(__m256 v) {  // ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7))
  const __m256 h = _mm256_hadd_ps(v, v);
  const __m256 h2 = _mm256_hadd_ps(h, h);
  return _mm_cvtss_f32(_mm_add_ps(_mm256_castps256_ps128(h2), _mm256_extractf128_ps(h2, 1)));
}

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
    std::vector<__m256> acc(D / 8);
    for (int64_t job = begin; job < end; ++job) {
      const int64_t t = job / H, h = job % H, pos = pp[t];
      const int64_t low = window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0;
      const int64_t count = pos - low + 1;
      const float* qh = qp + (t * H + h) * D;
      const int64_t base = (slp[t] * KV + h / group) * S;
      const float* kh = kp + base * D;
      const float* vh = vp + base * D;
      scores.resize(count + 8);
      float top = -INFINITY;
      for (int64_t c = 0; c < count; ++c) {
        const float* kc = kh + (low + c) * D;
        __m256 dot = _mm256_mul_ps(_mm256_loadu_ps(qh), _mm256_loadu_ps(kc));
        for (int64_t d = 8; d < D; d += 8)
          dot = _mm256_fmadd_ps(_mm256_loadu_ps(qh + d), _mm256_loadu_ps(kc + d), dot);
        float s = tree_sum(dot) * fscale;
        if (cap > 0.f) s = cap * std::tanh(s / cap);
        scores[c] = s;
        top = std::max(top, s);
      }
      // softmax numerators, 8 at a time; their sum in lanes, then the tree
      const __m256 shift = _mm256_set1_ps(top);
      __m256 total = _mm256_setzero_ps();
      int64_t c = 0;
      for (; c + 8 <= count; c += 8) {
        const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(scores.data() + c), shift));
        _mm256_storeu_ps(scores.data() + c, e);
        total = _mm256_add_ps(total, e);
      }
      if (c < count) {  // the tail, padded with -inf (e = 0)
        alignas(32) float tail[8];
        for (int i = 0; i < 8; ++i) tail[i] = c + i < count ? scores[c + i] : -INFINITY;
        const __m256 e = _mm256_and_ps(exp8(_mm256_sub_ps(_mm256_load_ps(tail), shift)),
                                       _mm256_cmp_ps(_mm256_load_ps(tail), _mm256_set1_ps(-INFINITY), _CMP_NEQ_OQ));
        _mm256_storeu_ps(scores.data() + c, e);
        total = _mm256_add_ps(total, e);
      }
      const float inverse = 1.f / tree_sum(total);
      for (int64_t d = 0; d < D / 8; ++d) acc[d] = _mm256_setzero_ps();
      for (int64_t j = 0; j < count; ++j) {
        const __m256 e = _mm256_set1_ps(scores[j]);
        const float* vc = vh + (low + j) * D;
        for (int64_t d = 0; d < D / 8; ++d) acc[d] = _mm256_fmadd_ps(e, _mm256_loadu_ps(vc + 8 * d), acc[d]);
      }
      float* oh = op + (t * H + h) * D;
      const __m256 inv = _mm256_set1_ps(inverse);
      for (int64_t d = 0; d < D / 8; ++d) _mm256_storeu_ps(oh + 8 * d, _mm256_mul_ps(acc[d], inv));
    }
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(furiosa, CPU, m) { m.impl("cache_attention", cache_attention); }
