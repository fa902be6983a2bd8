"""Every native family's layer math, in one module TorchScript compiles.

A CPU decode step of a small model is mostly small ops: ~30 per layer, each paying
Python's dispatch (~3 us), and each fbgemm fp16 linear paying ~12 us more to convert its
packed-weight argument from Python. Compiled by ``torch.jit.script``, the decode step
runs every layer in TorchScript's interpreter, the same kernels in the same order
(bit-identical results: TorchScript fuses no CPU ops), 1.5x faster for SmolLM2-135M at
one row. torch.compile cannot take this step: it breaks its graph on the packed weights
(opaque objects). The code is plain Python as well, and runs as such where it is not
scripted (CUDA, or a torch whose TorchScript refuses it) and for prefill, whose many-row
linears leave little to save.

On our kernels' path a Llama-shaped decoder's step goes further: all its layers are one
native op (``decode_layers``: the same kernels in the same order, called from C++, so the
same bits), which takes the interpreter and the dispatcher out of the step.

Per layer, weights sit in flat lists (TorchScript needs one type per list): linear
``4 * layer + QKV|OUT|UP|DOWN`` (the LM head last), norm ``6 * layer + ATTN|MLP|...``.
"""

# No ``from __future__ import annotations``: TorchScript reads the class annotations below
# as live types, not strings.
import logging
import warnings
from typing import Final, Optional

import torch

from ..kernels import decode_layers as _decode_layers  # noqa: F401 (defines the op)
from ..kernels.cache_attention import cache_attention
from ..kernels.layer_ops import rotary_store, silu_mul
from ..kernels.rms_norm import native_rms_norm
from ..layers import apply_activation, rms_norm, rms_norm_fp32, soft_cap
from ..packed_linear import (
    GroupedWeight,
    grouped_linear,
    linear_dense,
    linear_fp16,
)
from .attention import attention
from .model import DecoderModel, Norm
from .rope import apply_rotary

logger = logging.getLogger(__name__)

Packed = torch.classes.quantized.LinearPackedParamsBase  # fbgemm's packed fp16 weight


class LayerStack(torch.nn.Module):
    """A decoder's layers: ``attention_inputs`` and ``layer_output`` are one layer's two
    halves around attention, ``decode`` is every layer of a batched decode step, ``logits``
    the final norm and LM head. Weights are shared with the ``DecoderModel``, not copied."""

    # Offsets in a layer's run of linears and of norms (TorchScript constants).
    QKV: Final[int] = 0
    OUT: Final[int] = 1
    UP: Final[int] = 2
    DOWN: Final[int] = 3
    ATTN: Final[int] = 0
    MLP: Final[int] = 1
    ATTN_OUT: Final[int] = 2
    MLP_OUT: Final[int] = 3
    Q: Final[int] = 4
    K: Final[int] = 5

    # per linear: fbgemm-packed, or None (see dense); Optional[]: a torch class has no ``|``
    fp16: list[Optional[Packed]]  # type: ignore[valid-type]  # noqa: UP045
    grouped: list[Optional[GroupedWeight]]  # per linear: GGUF's groups, or None  # noqa: UP045
    dense: list[torch.Tensor | None]  # per linear: plain or oneDNN-packed, or None
    biases: list[torch.Tensor | None]
    norm_weights: list[torch.Tensor | None]  # per norm slot; None: no norm there
    norm_biases: list[torch.Tensor | None]
    window_index: list[int]  # per layer: which of the step's masks it attends with
    rope_index: list[int]  # per layer: which RoPE table
    scales: list[float | None]  # per layer: attention scale (None: head_dim ** -0.5)
    residual_scale: float | None
    logits_divisor: float | None
    attn_softcap: float | None
    final_softcap: float | None
    qk_norm: str  # "", "head" or "full"
    own_kernels: bool  # our kernels' path: ``cache_attention``, ``native_rms_norm``, ...
    fused_rotary: bool  # ... and ``rotary_store`` (RoPE, no q/k norms: see query_into_cache)
    fused_silu: bool  # ... and ``silu_mul`` (a gated SiLU MLP)
    window_sizes: list[int]  # per layer: its sliding window, 0 for none
    # ``fused_layers``: a decode step's layers are one op (``decode_layers``), given these
    fused_layers: bool
    fused_codes: list[torch.Tensor]  # per linear (four a layer): GroupedWeight's fields
    fused_scales: list[torch.Tensor]
    fused_mins: list[torch.Tensor]
    fused_bits: list[int]
    fused_norms: list[torch.Tensor]  # per layer: attention's norm, the MLP's
    attention_scales: list[float]  # per layer, resolved (``scales``' None: head_dim ** -0.5)

    def __init__(
        self,
        model: DecoderModel,
        windows: list[int | None],
        own_kernels: bool = False,
        fuse: bool = True,
    ) -> None:
        """``fuse=False`` keeps a decode step's layers as separate ops (to test the fused op
        against)."""
        super().__init__()
        self.own_kernels = own_kernels
        self.window_sizes = [layer.window or 0 for layer in model.layers]
        self.num_layers = len(model.layers)
        self.num_heads = model.num_heads
        self.num_kv_heads = model.num_kv_heads
        self.head_dim = model.head_dim
        self.norm_kind: str = model.norm_kind
        self.eps = float(model.eps)
        self.act: str = model.act
        self.gated_mlp = model.gated_mlp
        self.parallel_residual = model.parallel_residual
        self.qk_norm = model.qk_norm or ""
        self.residual_scale = model.residual_scale
        self.logits_divisor = model.logits_divisor
        self.attn_softcap = model.attn_softcap
        self.final_softcap = model.final_softcap
        self.fused_rotary = own_kernels and self.qk_norm == "" and len(model.rope) > 0
        self.fused_silu = own_kernels and model.gated_mlp and model.act in ("silu", "swish")
        self.fp16, self.grouped, self.dense, self.biases = [], [], [], []
        self.norm_weights, self.norm_biases = [], []
        for w in model.layers:  # in the order of the offsets above
            linears = [
                (w.qkv, w.qkv_bias),
                (w.o, w.o_bias),
                (w.up, w.up_bias),
                (w.down, w.down_bias),
            ]
            for weight, bias in linears:
                self._add_linear(weight, bias)
            for norm in (
                w.attn_norm,
                w.mlp_norm,
                w.attn_out_norm,
                w.mlp_out_norm,
                w.q_norm,
                w.k_norm,
            ):
                self._add_norm(norm)
        self._add_linear(model.lm_head, model.lm_head_bias)
        self._add_norm(model.final_norm)
        self.window_index = [windows.index(w.window) for w in model.layers]
        self.rope_index = [w.rope for w in model.layers]
        self.scales = [w.scale for w in model.layers]
        self.attention_scales = [
            model.head_dim**-0.5 if scale is None else scale for scale in self.scales
        ]
        self.fused_layers = fuse and self._fusable(model)
        grouped = [g for g in self.grouped[:-1] if g is not None] if self.fused_layers else []
        self.fused_codes = [g.codes for g in grouped]
        self.fused_scales = [g.scales for g in grouped]
        self.fused_mins = [g.mins for g in grouped]
        self.fused_bits = [g.activation_bits for g in grouped]
        self.fused_norms = [
            layer_norm.weight
            for w in (model.layers if self.fused_layers else [])
            for layer_norm in (w.attn_norm, w.mlp_norm)
            if layer_norm is not None  # always, where fused (``_fusable``)
        ]

    def _fusable(self, model: DecoderModel) -> bool:
        """Whether every layer is ``decode_layers``' shape: pre-norm RMS before attention and
        the MLP, GGUF groups without biases for every linear, RoPE, a gated SiLU MLP."""
        layers = model.layers
        return (
            self.fused_rotary
            and self.fused_silu
            and self.norm_kind != "layer"
            and model.embed.shape[-1] % 8 == 0
            and not self.parallel_residual
            and self.residual_scale is None
            and all(g is not None for g in self.grouped[:-1])
            and all(b is None for b in self.biases[:-1])
            and all(w.attn_norm is not None and w.mlp_norm is not None for w in layers)
            and all(
                w.attn_out_norm is None and w.mlp_out_norm is None and w.q_norm is None
                and w.k_norm is None
                for w in layers
            )
        )  # fmt: skip

    def _add_linear(self, weight: object, bias: torch.Tensor | None) -> None:
        grouped = isinstance(weight, GroupedWeight)
        dense = isinstance(weight, torch.Tensor)
        self.grouped.append(weight if grouped else None)  # type: ignore[arg-type]
        self.fp16.append(None if dense or grouped else weight)
        self.dense.append(weight if dense else None)  # type: ignore[arg-type]
        self.biases.append(bias)

    def _add_norm(self, norm: Norm | None) -> None:
        self.norm_weights.append(None if norm is None else norm.weight)
        self.norm_biases.append(None if norm is None else norm.bias)

    # ---- building blocks ----

    def _linear(self, x: torch.Tensor, index: int) -> torch.Tensor:
        groups = self.grouped[index]
        if groups is not None:
            return grouped_linear(x, groups, self.biases[index])
        packed = self.fp16[index]
        if packed is not None:
            return linear_fp16(x, packed, self.biases[index])
        weight = self.dense[index]
        assert weight is not None
        return linear_dense(x, weight, self.biases[index])

    def _norm(self, x: torch.Tensor, slot: int) -> torch.Tensor:
        weight = self.norm_weights[slot]
        if weight is None:
            return x
        if self.norm_kind == "layer":
            return torch.nn.functional.layer_norm(
                x, [x.shape[-1]], weight, self.norm_biases[slot], self.eps
            )
        if self.own_kernels and x.dtype == torch.float32 and x.shape[-1] % 8 == 0:
            # our kernels' path: one pass a row (both RMS kinds are this one op in fp32)
            return native_rms_norm(x, weight, self.eps)
        if self.norm_kind == "rms_fp32":
            return rms_norm_fp32(x, weight, self.eps)
        return rms_norm(x, weight, self.eps)

    def _mlp(self, i: int, x: torch.Tensor) -> torch.Tensor:
        up = self._linear(x, 4 * i + self.UP)
        if self.fused_silu and up.dim() == 2 and up.dtype == torch.float32:
            up = silu_mul(up)
        elif self.gated_mlp:
            gate_up = up.chunk(2, dim=-1)
            up = apply_activation(self.act, gate_up[0]) * gate_up[1]
        else:
            up = apply_activation(self.act, up)
        return self._norm(self._linear(up, 4 * i + self.DOWN), 6 * i + self.MLP_OUT)

    # ---- one layer, in two halves around attention (prefill runs attention in Python) ----

    @torch.jit.export
    def attention_inputs(
        self, i: int, hidden: torch.Tensor, cos: list[torch.Tensor], sin: list[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Layer ``i``'s q ``[T, H, D]``, k and v ``[T, KV, D]`` for ``hidden`` ``[T, hidden]``."""
        heads, kv_heads, dim = self.num_heads, self.num_kv_heads, self.head_dim
        qkv = self._linear(self._norm(hidden, 6 * i + self.ATTN), 4 * i + self.QKV)
        tokens = qkv.shape[0]
        q_size, kv_size = heads * dim, kv_heads * dim
        v = qkv[:, q_size + kv_size :].reshape(tokens, kv_heads, dim)
        if self.qk_norm == "" and len(cos) > 0:
            # q and k side by side: one rotation for both
            t = self.rope_index[i]
            qk = qkv[:, : q_size + kv_size].reshape(tokens, heads + kv_heads, dim)
            qk = apply_rotary(qk, cos[t], sin[t])
            return qk[:, :heads], qk[:, heads:], v
        q, k = qkv[:, :q_size], qkv[:, q_size : q_size + kv_size]
        if self.qk_norm == "full":  # OLMo 2 normalises the whole projection
            q, k = self._norm(q, 6 * i + self.Q), self._norm(k, 6 * i + self.K)
        q = q.reshape(tokens, heads, dim)
        k = k.reshape(tokens, kv_heads, dim)
        if self.qk_norm == "head":  # Qwen3 and Gemma 3 normalise each head
            q, k = self._norm(q, 6 * i + self.Q), self._norm(k, 6 * i + self.K)
        if len(cos) > 0:
            t = self.rope_index[i]
            q, k = apply_rotary(q, cos[t], sin[t]), apply_rotary(k, cos[t], sin[t])
        return q, k, v

    @torch.jit.export
    def query_into_cache(
        self,
        i: int,
        hidden: torch.Tensor,
        cos: list[torch.Tensor],
        sin: list[torch.Tensor],
        keys: torch.Tensor,
        values: torch.Tensor,
        slots: torch.Tensor,
        positions: torch.Tensor,
    ) -> torch.Tensor:
        """Layer ``i``'s q ``[T, H, D]`` for ``hidden`` ``[T, hidden]``; its k and v go
        straight into ``keys``/``values`` ``[slots, KV, S, D]`` at each row's slot and
        position. With ``fused_rotary`` RoPE and the cache writes are one op; else the
        pieces of ``attention_inputs``."""
        if self.fused_rotary:
            qkv = self._linear(self._norm(hidden, 6 * i + self.ATTN), 4 * i + self.QKV)
            t = self.rope_index[i]
            return rotary_store(
                qkv,
                cos[t],
                sin[t],
                keys,
                values,
                slots,
                positions,
                self.num_heads,
                self.num_kv_heads,
            )
        q, k, v = self.attention_inputs(i, hidden, cos, sin)
        keys[slots, :, positions] = k
        values[slots, :, positions] = v
        return q

    @torch.jit.export
    def layer_output(self, i: int, hidden: torch.Tensor, attn: torch.Tensor) -> torch.Tensor:
        """Layer ``i``'s output from its input ``hidden`` and attention output ``attn``."""
        attn = self._norm(self._linear(attn, 4 * i + self.OUT), 6 * i + self.ATTN_OUT)
        if self.parallel_residual:  # GPT-NeoX: both branches read the layer's input
            return self._mlp(i, self._norm(hidden, 6 * i + self.MLP)) + attn + hidden
        scale = self.residual_scale
        if scale is not None:
            attn = attn * scale
        hidden = hidden + attn
        mlp = self._mlp(i, self._norm(hidden, 6 * i + self.MLP))
        if scale is not None:
            mlp = mlp * scale
        return hidden + mlp

    # ---- whole steps ----

    @torch.jit.export
    def decode(
        self,
        hidden: torch.Tensor,
        cos: list[torch.Tensor],
        sin: list[torch.Tensor],
        keys: torch.Tensor,
        values: torch.Tensor,
        where: torch.Tensor,
        lows: list[int],
        masks: list[torch.Tensor],
        span: int,
    ) -> torch.Tensor:
        """Every layer for one new token per slot ``0..B-1`` (see ``DecodeAttention``)."""
        batch = hidden.shape[0]
        positions = where[:, 0, 0, 0]
        slots = torch.arange(batch, device=hidden.device)
        if self.fused_layers and hidden.dtype == torch.float32:
            cap = self.attn_softcap
            return torch.ops.furiosa.decode_layers(  # type: ignore[no-any-return]
                hidden,
                cos,
                sin,
                keys,
                values,
                slots,
                positions,
                self.fused_codes,
                self.fused_scales,
                self.fused_mins,
                self.fused_bits,
                self.fused_norms,
                self.rope_index,
                self.window_sizes,
                self.attention_scales,
                0.0 if cap is None else cap,
                self.eps,
                self.num_heads,
                self.num_kv_heads,
            )
        for i in range(self.num_layers):
            if self.own_kernels:
                q = self.query_into_cache(i, hidden, cos, sin, keys[i], values[i], slots, positions)
                cap = self.attn_softcap
                out = cache_attention(
                    q,
                    keys[i],
                    values[i],
                    slots,
                    positions,
                    self.window_sizes[i],
                    self.attention_scales[i],
                    0.0 if cap is None else cap,
                )
                hidden = self.layer_output(i, hidden, out.reshape(batch, -1))
                continue
            q, k, v = self.attention_inputs(i, hidden, cos, sin)
            layer_keys, layer_values = keys[i, :batch], values[i, :batch]
            layer_keys.scatter_(2, where, k.unsqueeze(2))
            layer_values.scatter_(2, where, v.unsqueeze(2))
            w = self.window_index[i]
            low = lows[w]
            out = attention(
                q.unsqueeze(2),
                layer_keys[:, :, low:span],
                layer_values[:, :, low:span],
                masks[w],
                self.scales[i],
                self.attn_softcap,
            )
            hidden = self.layer_output(i, hidden, out.reshape(batch, -1))
        return hidden

    @torch.jit.export
    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        out = self._linear(self._norm(hidden, 6 * self.num_layers), 4 * self.num_layers)
        divisor = self.logits_divisor
        if divisor is not None:
            out = out / divisor
        cap = self.final_softcap
        if cap is not None:
            out = soft_cap(out, cap)
        return out.float()


def compile_stack(stack: LayerStack, device: torch.device) -> LayerStack:
    """``stack`` scripted on CPU; as it is elsewhere, or if TorchScript refuses it (logged).

    On CUDA TorchScript's fuser would change the kernels, and the per-op cost it saves is
    the launch cost CUDA graphs address instead. A fused stack's decode step is one op
    (``decode_layers``): scripting saved nothing there (one row 6.06 ms scripted, 6.16
    eager; 16 rows 35.0 and 35.7, same process) and cost ~0.1 s of every load."""
    if device.type != "cpu" or stack.fused_layers:
        return stack
    try:
        with warnings.catch_warnings():
            # torch 2.10+ flags torch.jit as deprecated; it is the tool that fits here.
            warnings.filterwarnings("ignore", message=r".*torch\.jit.*deprecated")
            return torch.jit.script(stack)  # type: ignore[return-value] # same methods
    except Exception as error:  # any refusal: the same code runs eagerly
        logger.warning("TorchScript could not compile the decoder (%s); running it eagerly", error)
        return stack
