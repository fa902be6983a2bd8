// Vector math shared by this folder's kernels (AVX2 + FMA), header-only.
#pragma once
#include <immintrin.h>
#include <cmath>
#include <cstdint>

namespace furiosa_kernels {

// e^x for 8 lanes (Cody-Waite reduction, degree-6 polynomial: ~1 ulp; e^x = 0 below -87)
inline __m256 exp8(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-87.3f);
  const __m256 below = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
  x = _mm256_max_ps(x, lo);
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.f)));
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(below, _mm256_mul_ps(p, _mm256_castsi256_ps(bits)));
}

// RMSNorm's per-row factor 1 / sqrt(mean(x^2) + eps) over H values (H a multiple of 8):
// squares summed in 8 lanes, then a fixed tree. rms_norm and the linears that normalize their
// own input rows (grouped_linear's fusion) both use it, so they give the same bits.
inline __m256 rms_scale(const float* x, int64_t H, float eps) {
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < H; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    acc = _mm256_fmadd_ps(v, v, acc);
  }
  const __m256 h = _mm256_hadd_ps(acc, acc);
  const __m256 h2 = _mm256_hadd_ps(h, h);
  const float squares = _mm_cvtss_f32(_mm_add_ps(_mm256_castps256_ps128(h2), _mm256_extractf128_ps(h2, 1)));
  return _mm256_set1_ps(1.f / std::sqrt(squares / static_cast<float>(H) + eps));
}

// The lanes' sum in one fixed tree, ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)): every
// kernel sums lanes this way, so a result's bits never depend on which path summed it.
inline float tree_sum(__m256 v) {
  const __m256 h = _mm256_hadd_ps(v, v);
  const __m256 h2 = _mm256_hadd_ps(h, h);
  return _mm_cvtss_f32(_mm_add_ps(_mm256_castps256_ps128(h2), _mm256_extractf128_ps(h2, 1)));
}

// The same tree for four vectors at once: out[i] = tree_sum(v[i]).
inline void tree_sums(const __m256 v[4], float out[4]) {
  const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
  _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
}

// The same tree for eight vectors at once, kept in a register: lane i = tree_sum(v[i]).
inline __m256 tree_sums8(const __m256 v[8]) {
  const __m256 a = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
  const __m256 b = _mm256_hadd_ps(_mm256_hadd_ps(v[4], v[5]), _mm256_hadd_ps(v[6], v[7]));
  return _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31));
}

}  // namespace furiosa_kernels
