// The kernels' entry points, for composing them in C++ (decode_layers.cpp) without a trip
// through the dispatcher. Each is also registered as its own furiosa:: op (see its .cpp).
#pragma once
#include <ATen/ATen.h>
#include <cstdint>

namespace furiosa_kernels {

at::Tensor grouped_linear(const at::Tensor& input, const at::Tensor& codes, const at::Tensor& scales,
                          const at::Tensor& mins, int64_t activation_bits);
// grouped_linear's output plus `residual` ([M, N]), added as each result is stored
at::Tensor grouped_linear_add(const at::Tensor& input, const at::Tensor& codes, const at::Tensor& scales,
                              const at::Tensor& mins, int64_t activation_bits, const at::Tensor& residual);
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
