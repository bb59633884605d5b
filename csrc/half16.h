// The 16-bit storage types of the kernels and their conversions to and from fp32, in one place.
//
//   bf16_to_float, fp16_to_float     exact (every bf16 / fp16 is an fp32 value)
//   float_to_bf16, float_to_fp16     any float: round to nearest even, NaN stays NaN, overflow
//                                    becomes inf, fp16 subnormals are rounded as such
//   store_finite(bf16*, float)       the same bits as float_to_bf16 for finite values only
//   store_normal(fp16*, float)       the same bits as float_to_fp16 for |v| = 0 or in
//                                    [2^-14, 65504] only (zero or normal, no overflow)
//
// The general conversions branch on the special cases; the fast stores are branch-free integer
// arithmetic, so a CPU loop of them vectorises and the same code runs in CUDA kernels (the
// fovea/context kernels use them: their values always satisfy the precondition). Outside its
// range a fast store gives a wrong encoding (a NaN may come out as inf or zero, an fp16
// subnormal misrounded), never undefined behaviour. csrc/tests/test_half16.cpp checks the
// general conversions on every bit pattern and rounding midpoint, and the fast stores against
// them over their ranges.
//
// Torch-free and CUDA-free; everything is SPORTSFUSION_HD (host and device), except that the
// CUDA lrn_pool kernel uses cuda_fp16.h / cuda_bf16.h's own types and intrinsics.
#pragma once

#include <cstdint>
#include <cstring>

#ifndef SPORTSFUSION_HD
#if defined(__CUDACC__)
#define SPORTSFUSION_HD __host__ __device__ __forceinline__
#else
#define SPORTSFUSION_HD inline
#endif
#endif

namespace sportsfusion {

// bfloat16 (8 exponent bits, 7 mantissa bits) and IEEE half (5, 10), as raw bits:
// bit-compatible with at::BFloat16 / at::Half, so the torch wrappers reinterpret their pointers.
struct bf16 {
  uint16_t bits;
};
struct fp16 {
  uint16_t bits;
};

SPORTSFUSION_HD uint32_t float_bits(float v) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(v);
#else
  uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  return u;
#endif
}

SPORTSFUSION_HD float bits_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float v;
  std::memcpy(&v, &u, sizeof v);
  return v;
#endif
}

// ---- General conversions: any input ---------------------------------------------------------

SPORTSFUSION_HD float bf16_to_float(bf16 b) { return bits_float(uint32_t(b.bits) << 16); }

SPORTSFUSION_HD float fp16_to_float(fp16 h) {
  const uint32_t sign = uint32_t(h.bits & 0x8000) << 16;
  const uint32_t exponent = (h.bits >> 10) & 0x1f;
  const uint32_t mantissa = h.bits & 0x3ffu;
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24, exact in fp32
    const float magnitude = float(mantissa) * 0x1p-24f;
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 0x1f) return bits_float(sign | 0x7f800000u | (mantissa << 13));  // inf, NaN
  return bits_float(sign | ((exponent + 112) << 23) | (mantissa << 13));  // rebias 15 -> 127
}

SPORTSFUSION_HD bf16 float_to_bf16(float f) {
  uint32_t u = float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16{uint16_t((u >> 16) | 0x0040)};  // NaN: quiet
  u += 0x7fffu + ((u >> 16) & 1u);  // ties go to the even upper half; overflow carries into inf
  return bf16{uint16_t(u >> 16)};
}

SPORTSFUSION_HD fp16 float_to_fp16(float f) {
  const uint32_t u = float_bits(f);
  const uint16_t sign = uint16_t((u >> 16) & 0x8000);
  uint32_t magnitude = u & 0x7fffffffu;
  if (magnitude > 0x7f800000u) return fp16{uint16_t(sign | 0x7e00)};   // NaN
  if (magnitude >= 0x477ff000u) return fp16{uint16_t(sign | 0x7c00)};  // >= 65520 rounds to inf
  if (magnitude < 0x38800000u) {
    // Below 2^-14, the half is subnormal: mantissa = round(|f| * 2^24). Adding 0.5f (whose ulp
    // is 2^-24) makes the FPU round to that multiple, to nearest even; 2^-14 itself comes out as
    // mantissa 0x400, which is the encoding of the smallest normal half. (Flushing fp32
    // subnormals to zero changes nothing: they all round to a zero half.)
    const float rounded = bits_float(magnitude) + 0.5f;
    return fp16{uint16_t(sign | (float_bits(rounded) - float_bits(0.5f)))};
  }
  magnitude += 0xfffu + ((magnitude >> 13) & 1u);  // round the 23-bit mantissa to 10 bits, even
  return fp16{uint16_t(sign | ((magnitude - (112u << 23)) >> 13))};  // rebias 127 -> 15
}

// ---- Fast stores: branch-free, for a known range -----------------------------------------------

// Precondition: v is finite (an inf comes out right too, a NaN does not). Then the bits of
// float_to_bf16(v).
SPORTSFUSION_HD void store_finite(bf16* out, float v) {
  const uint32_t u = float_bits(v);
  out->bits = uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

// Precondition: |v| = 0 or 2^-14 <= |v| <= 65504 (a zero or a normal half, no overflow). Then
// the bits of float_to_fp16(v).
SPORTSFUSION_HD void store_normal(fp16* out, float v) {
  const uint32_t u = float_bits(v), sign = (u >> 16) & 0x8000u, mag = u & 0x7fffffffu;
  // Rebias the exponent (127 -> 15) and round 23 mantissa bits to 10; a carry bumps the exponent.
  const uint32_t h = (mag - ((127u - 15u) << 23) + 0xfffu + ((mag >> 13) & 1u)) >> 13;
  out->bits = uint16_t(mag == 0 ? sign : (sign | h));
}

}  // namespace sportsfusion
