// The small per-layer steps of a decoder on our kernels' path, each one op instead of many
// (at one row a decode step is mostly op overhead): furiosa::rotary_store (RoPE on q and k,
// k and v written into their cache slots) and furiosa::silu_mul (a gated MLP's activation).
// Compiled with the other kernels by build.py (AVX2 + FMA). Each row is computed on its own.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <immintrin.h>
#include "vector_math.h"
#include "layer_kernels.h"
#include <cstdint>
#include <cstring>

namespace {

using furiosa_kernels::exp8;

// One head: out[d] = x[d] * cos[d] + x[(d + R/2) % R] * sin[d] for d < R (the sin's first
// half carries rotate_half's sign, see rope.cos_sin), x[d] past the rotary dims R.
inline void rotate(const float* x, const float* cos, const float* sin, int64_t R, int64_t D,
                   float* out) {
  const int64_t half = R / 2;
  int64_t d = 0;
  if (half % 8 == 0) {
    for (; d < R; d += 8) {
      const int64_t partner = d < half ? d + half : d - half;
      const __m256 rotated = _mm256_mul_ps(_mm256_loadu_ps(x + partner), _mm256_loadu_ps(sin + d));
      _mm256_storeu_ps(out + d, _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(x + d), _mm256_loadu_ps(cos + d)), rotated));
    }
  }
  for (; d < R; ++d) {
    const float rotated = x[d < half ? d + half : d - half] * sin[d];
    out[d] = x[d] * cos[d] + rotated;
  }
  std::memcpy(out + R, x + R, (D - R) * sizeof(float));
}

// qkv [T, (H + 2 KV) * D]: row t's heads q | k | v. Returns q [T, H, D] rotated; writes the
// rotated k and the v of row t at position positions[t] of cache slot slots[t]
// (keys, values: [slots, KV, S, D]).
}  // namespace

namespace furiosa_kernels {

at::Tensor rotary_store(const at::Tensor& qkv, const at::Tensor& cos, const at::Tensor& sin,
                        at::Tensor& keys, at::Tensor& values, const at::Tensor& slots,
                        const at::Tensor& positions, int64_t H, int64_t KV) {
  TORCH_CHECK(qkv.dim() == 2 && qkv.scalar_type() == at::kFloat, "qkv: [T, (H + 2 KV) D] fp32");
  TORCH_CHECK(keys.dim() == 4 && keys.is_contiguous() && values.is_contiguous() &&
                  keys.scalar_type() == at::kFloat && keys.sizes() == values.sizes(),
              "keys, values: contiguous [slots, KV, S, D] fp32");
  const at::Tensor x = qkv.contiguous(), c = cos.contiguous(), s = sin.contiguous();
  const at::Tensor sl = slots.to(at::kLong).contiguous(), ps = positions.to(at::kLong).contiguous();
  const int64_t T = x.size(0), D = keys.size(3), S = keys.size(2), R = c.size(-1);
  TORCH_CHECK(x.size(1) == (H + 2 * KV) * D && keys.size(1) == KV, "head sizes do not match");
  TORCH_CHECK(c.numel() == T * R && s.numel() == T * R && R <= D && R % 2 == 0,
              "cos, sin: [T, 1, R] with R <= head_dim");
  TORCH_CHECK(sl.numel() == T && ps.numel() == T, "one slot and position per row");
  const int64_t* slp = sl.data_ptr<int64_t>();
  const int64_t* pp = ps.data_ptr<int64_t>();
  for (int64_t t = 0; t < T; ++t)
    TORCH_CHECK(pp[t] >= 0 && pp[t] < S && slp[t] >= 0 && slp[t] < keys.size(0),
                "a row's slot or position is outside the cache");
  at::Tensor q = at::empty({T, H, D}, x.options());
  const float* xp = x.data_ptr<float>();
  const float* cp = c.data_ptr<float>();
  const float* sp = s.data_ptr<float>();
  float* qp = q.data_ptr<float>();
  float* kp = keys.data_ptr<float>();
  float* vp = values.data_ptr<float>();
  at::parallel_for(0, T, 64, [&](int64_t begin, int64_t end) {  // a decode step: inline
    for (int64_t t = begin; t < end; ++t) {
      const float* row = xp + t * (H + 2 * KV) * D;
      const float* ct = cp + t * R;
      const float* st = sp + t * R;
      for (int64_t h = 0; h < H; ++h) rotate(row + h * D, ct, st, R, D, qp + (t * H + h) * D);
      for (int64_t j = 0; j < KV; ++j) {
        const int64_t at = ((slp[t] * KV + j) * S + pp[t]) * D;
        rotate(row + (H + j) * D, ct, st, R, D, kp + at);
        std::memcpy(vp + at, row + (H + KV + j) * D, D * sizeof(float));
      }
    }
  });
  return q;
}

// gate_up [T, 2 I] -> silu(gate) * up [T, I], silu(g) = g / (1 + e^-g); e^-g capped at e^88
// (exp8 has no overflow guard; silu(g) is ~0 there anyway)
at::Tensor silu_mul(const at::Tensor& gate_up) {
  TORCH_CHECK(gate_up.dim() == 2 && gate_up.scalar_type() == at::kFloat, "gate_up: [T, 2 I] fp32");
  const at::Tensor x = gate_up.contiguous();
  const int64_t T = x.size(0), I = x.size(1) / 2;
  TORCH_CHECK(I % 8 == 0, "the MLP's width is not a multiple of 8");
  at::Tensor out = at::empty({T, I}, x.options());
  const float* xp = x.data_ptr<float>();
  float* op = out.data_ptr<float>();
  const __m256 one = _mm256_set1_ps(1.f), zero = _mm256_setzero_ps(), cap = _mm256_set1_ps(88.f);
  at::parallel_for(0, T, 4, [&](int64_t begin, int64_t end) {  // 16 rows: both threads
    for (int64_t t = begin; t < end; ++t) {
      const float* g = xp + t * 2 * I;
      const float* u = g + I;
      float* o = op + t * I;
      for (int64_t i = 0; i < I; i += 8) {
        const __m256 gi = _mm256_loadu_ps(g + i);
        const __m256 silu = _mm256_div_ps(gi, _mm256_add_ps(one, exp8(_mm256_min_ps(_mm256_sub_ps(zero, gi), cap))));
        _mm256_storeu_ps(o + i, _mm256_mul_ps(silu, _mm256_loadu_ps(u + i)));
      }
    }
  });
  return out;
}

}  // namespace furiosa_kernels

TORCH_LIBRARY_IMPL(furiosa, CPU, m) {
  m.impl("rotary_store", furiosa_kernels::rotary_store);
  m.impl("silu_mul", furiosa_kernels::silu_mul);
}
