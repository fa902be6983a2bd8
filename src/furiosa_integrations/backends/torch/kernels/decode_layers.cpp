// furiosa::decode_layers on the CPU: every layer of a decode step, for a Llama-shaped decoder
// on our kernels' path (RMSNorm before attention and MLP, GGUF groups for every linear, RoPE,
// a gated SiLU MLP, no biases). The same kernels run in the same order as the per-op layers
// (`LayerStack`'s loop), called directly instead of from TorchScript through the dispatcher:
// the same bits, ~4% less time a step (in one process, alternating: 0.93-1.00 of the per-op
// step at one row, 0.96-0.99 at 16, on a Zen 4). The RMSNorms are applied as the qkv and
// gate/up linears read their rows, and the skip connections added as the out and down
// linears store theirs (`grouped_linear_fused`: the same float operations as the per-op
// layers, without an op, an allocation and a pass each; layers at one row 0.97-0.98 of the
// time with the skip connections alone).
#include <ATen/ATen.h>
#include <torch/library.h>
#include "layer_kernels.h"
#include <cstdint>

namespace {

namespace fk = furiosa_kernels;

// Linears come four a layer (q/k/v, out, gate/up, down), norms two (attention, MLP).
constexpr int64_t QKV = 0, OUT = 1, UP = 2, DOWN = 3;

at::Tensor decode_layers(const at::Tensor& hidden, at::TensorList cos, at::TensorList sin,
                         at::Tensor& keys, at::Tensor& values, const at::Tensor& slots,
                         const at::Tensor& positions, at::TensorList codes, at::TensorList scales,
                         at::TensorList mins, at::IntArrayRef activation_bits, at::TensorList norms,
                         at::IntArrayRef rope_index, at::IntArrayRef windows,
                         at::ArrayRef<double> attention_scales, double softcap, double eps,
                         int64_t heads, int64_t kv_heads) {
  const int64_t layers = static_cast<int64_t>(norms.size()) / 2;
  TORCH_CHECK(hidden.dim() == 2 && hidden.scalar_type() == at::kFloat, "hidden: [B, hidden] fp32");
  TORCH_CHECK(static_cast<int64_t>(norms.size()) == 2 * layers &&
                  static_cast<int64_t>(codes.size()) == 4 * layers && scales.size() == codes.size() &&
                  mins.size() == codes.size() && activation_bits.size() == codes.size(),
              "four linears and two norms a layer");
  TORCH_CHECK(static_cast<int64_t>(rope_index.size()) == layers &&
                  static_cast<int64_t>(windows.size()) == layers &&
                  static_cast<int64_t>(attention_scales.size()) == layers,
              "one RoPE table, window and attention scale a layer");
  TORCH_CHECK(keys.dim() == 5 && keys.size(0) == layers && values.sizes() == keys.sizes(),
              "keys, values: [layers, slots, KV, S, D]");
  TORCH_CHECK(cos.size() == sin.size(), "cos and sin: one a RoPE table");
  for (int64_t t : rope_index)
    TORCH_CHECK(t >= 0 && t < static_cast<int64_t>(cos.size()), "a layer's RoPE table is missing");
  const int64_t batch = hidden.size(0);
  at::Tensor h = hidden.contiguous();
  // linear i of rms_norm(x, *norm) (of x where norm is null), plus *residual where given:
  // the norms and the skip connections done as the linears read and store their rows
  auto linear = [&](const at::Tensor& x, int64_t i, const at::Tensor* norm, const at::Tensor* residual) {
    return fk::grouped_linear_fused(x, codes[i], scales[i], mins[i], activation_bits[i], norm, eps, residual);
  };
  for (int64_t i = 0; i < layers; ++i) {
    at::Tensor layer_keys = keys.select(0, i), layer_values = values.select(0, i);
    const at::Tensor qkv = linear(h, 4 * i + QKV, &norms[2 * i], nullptr);
    const int64_t t = rope_index[i];
    const at::Tensor q = fk::rotary_store(qkv, cos[t], sin[t], layer_keys, layer_values, slots,
                                          positions, heads, kv_heads);
    const at::Tensor attended = fk::cache_attention(q, layer_keys, layer_values, slots, positions,
                                                    windows[i], attention_scales[i], softcap);
    h = linear(attended.reshape({batch, -1}), 4 * i + OUT, nullptr, &h);
    const at::Tensor gate_up = linear(h, 4 * i + UP, &norms[2 * i + 1], nullptr);
    h = linear(fk::silu_mul(gate_up), 4 * i + DOWN, nullptr, &h);
  }
  return h;
}

}  // namespace

TORCH_LIBRARY_IMPL(furiosa, CPU, m) { m.impl("decode_layers", decode_layers); }
