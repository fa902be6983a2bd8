// furiosa::rms_norm on the CPU (AVX2 + FMA), compiled with the other kernels by build.py:
// y = x * rsqrt(mean(x^2) + eps) * weight over the last dimension, one pass per row. At one
// row, torch's fp32 rms_norm is ~8 ops (~45 us here); this is one. Each row's sum of squares
// runs in one fixed order (8 lanes, then a tree), whatever the batch.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <immintrin.h>
#include <cmath>
#include "layer_kernels.h"
#include "vector_math.h"
#include <cstdint>

namespace furiosa_kernels {

at::Tensor rms_norm(const at::Tensor& input, const at::Tensor& weight, double eps) {
  TORCH_CHECK(input.scalar_type() == at::kFloat && weight.scalar_type() == at::kFloat, "fp32 only");
  const at::Tensor x = input.contiguous(), w = weight.contiguous();
  const int64_t H = x.size(-1), rows = x.numel() / H;
  TORCH_CHECK(H % 8 == 0 && w.numel() == H, "the weight does not match the last dimension");
  at::Tensor out = at::empty_like(x);
  const float* xp = x.data_ptr<float>();
  const float* wp = w.data_ptr<float>();
  float* op = out.data_ptr<float>();
  const float feps = static_cast<float>(eps);
  at::parallel_for(0, rows, 64, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* xr = xp + r * H;
      const __m256 scale = rms_scale(xr, H, feps);
      float* o = op + r * H;
      for (int64_t i = 0; i < H; i += 8)
        _mm256_storeu_ps(o + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(xr + i), scale), _mm256_loadu_ps(wp + i)));
    }
  });
  return out;
}

}  // namespace furiosa_kernels

TORCH_LIBRARY_IMPL(furiosa, CPU, m) { m.impl("rms_norm", furiosa_kernels::rms_norm); }
