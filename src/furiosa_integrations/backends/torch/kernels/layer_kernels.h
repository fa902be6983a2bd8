// The kernels' entry points, for composing them in C++ (decode_layers.cpp) without a trip
// through the dispatcher. Each is also registered as its own furiosa:: op (see its .cpp).
#pragma once
#include <ATen/ATen.h>
#include <cstdint>

namespace furiosa_kernels {

at::Tensor grouped_linear(const at::Tensor& input, const at::Tensor& codes, const at::Tensor& scales,
                          const at::Tensor& mins, int64_t activation_bits);
// What grouped_linear_fused does around the product, the same float operations as the
// separate ops (so the same bits) without their outputs or passes over the rows.
struct Fusion {
  const float* norm_weight = nullptr;  // RMSNorm's weight [K]: the input rows normalized first
  float norm_eps = 0.f;
  const float* residual = nullptr;     // [M, N]: added to the outputs as they are stored
};
// grouped_linear(rms_norm(input, *norm_weight, eps)) + *residual; either may be null
at::Tensor grouped_linear_fused(const at::Tensor& input, const at::Tensor& codes, const at::Tensor& scales,
                                const at::Tensor& mins, int64_t activation_bits, const at::Tensor* norm_weight,
                                double eps, const at::Tensor* residual);
at::Tensor cache_attention(const at::Tensor& q, const at::Tensor& keys, const at::Tensor& values,
                           const at::Tensor& slots, const at::Tensor& positions, int64_t window,
                           double scale, double softcap);
at::Tensor rms_norm(const at::Tensor& input, const at::Tensor& weight, double eps);
at::Tensor rotary_store(const at::Tensor& qkv, const at::Tensor& cos, const at::Tensor& sin,
                        at::Tensor& keys, at::Tensor& values, const at::Tensor& slots,
                        const at::Tensor& positions, int64_t H, int64_t KV);
at::Tensor silu_mul(const at::Tensor& gate_up);
at::Tensor row_argmax(const at::Tensor& logits);

}  // namespace furiosa_kernels
