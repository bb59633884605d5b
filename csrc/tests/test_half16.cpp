// The 16-bit types of csrc/half16.h, without PyTorch: the general conversions on every bit
// pattern, every rounding midpoint and the special values (NaN, inf, overflow, fp16
// subnormals), and the fast branch-free stores against them over the whole of their ranges
// (every float for fp16's, every upper half with the low halves that decide the rounding for
// bf16's). Exit code 0 when every check passes; each failure prints one line.
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <string>

#include "half16.h"

using namespace sportsfusion;

static int failures = 0;

static void fail(const std::string& what) {
  if (++failures <= 20) std::printf("FAIL %s\n", what.c_str());
}

static std::string hex(uint32_t u) {
  char s[16];
  std::snprintf(s, sizeof s, "0x%08x", u);
  return s;
}

// ---- general conversions --------------------------------------------------------------------

template <typename T>
static void check_conversion(const char* name, float (*to_f)(T), T (*from_f)(float)) {
  // Every bit pattern survives the round trip; NaNs stay NaN.
  for (uint32_t b = 0; b < 0x10000; ++b) {
    const T v{uint16_t(b)};
    const float f = to_f(v);
    const T back = from_f(f);
    if (std::isnan(f) ? !std::isnan(to_f(back)) : back.bits != v.bits) {
      fail(std::string(name) + " round trip of bits " + std::to_string(b));
      return;
    }
  }
  // Between consecutive finite positive values: the midpoint goes to the even one, just above
  // it to the upper, just below to the lower (the same on the negative side).
  for (uint32_t b = 0; b < 0x7fff; ++b) {
    const T lo{uint16_t(b)}, hi{uint16_t(b + 1)};
    const float flo = to_f(lo), fhi = to_f(hi);
    if (std::isinf(fhi) || std::isnan(fhi)) break;
    const float mid = flo + (fhi - flo) / 2;  // exact: one more bit than the 16-bit format
    const uint16_t even = (b & 1) ? hi.bits : lo.bits;
    const float above = std::nextafter(mid, fhi), below = std::nextafter(mid, flo);
    if (from_f(mid).bits != even || from_f(above).bits != hi.bits ||
        from_f(below).bits != lo.bits ||
        from_f(-mid).bits != (even | 0x8000) || from_f(-above).bits != (hi.bits | 0x8000)) {
      fail(std::string(name) + " rounding between bits " + std::to_string(b) + " and " +
           std::to_string(b + 1));
      return;
    }
  }
  const float inf = std::numeric_limits<float>::infinity();
  const float largest = std::numeric_limits<float>::max();
  if (!std::isinf(to_f(from_f(inf))) || !std::isinf(to_f(from_f(largest))) ||
      !std::isnan(to_f(from_f(std::nanf("")))))
    fail(std::string(name) + " overflow / NaN");
}

// The special values by their bits: every NaN (whatever its payload, even one that lives in the
// low half only) stays a NaN of its sign, infinities and overflow keep their sign, fp32
// subnormals become a zero half, fp16 subnormals round as such.
static void check_special_values() {
  const float inf = std::numeric_limits<float>::infinity();
  for (uint32_t nan : {0x7f800001u, 0x7f80ffffu, 0x7fc00000u, 0x7fffffffu}) {
    for (uint32_t sign : {0u, 0x80000000u}) {
      const float f = bits_float(sign | nan);
      const uint16_t s16 = uint16_t(sign >> 16);
      if ((float_to_bf16(f).bits & 0x7fff) <= 0x7f80 || (float_to_bf16(f).bits & 0x8000) != s16)
        fail("bf16 of NaN " + hex(sign | nan));
      if (float_to_fp16(f).bits != (s16 | 0x7e00)) fail("fp16 of NaN " + hex(sign | nan));
    }
  }
  const struct {
    float f;
    uint16_t bf16_bits, fp16_bits;
  } cases[] = {
      {inf, 0x7f80, 0x7c00},
      {-inf, 0xff80, 0xfc00},
      {std::numeric_limits<float>::max(), 0x7f80, 0x7c00},
      {65520.0f, 0x4780, 0x7c00},                           // fp16: the first value to overflow
      {-65520.0f, 0xc780, 0xfc00},
      {65519.99f, 0x4780, 0x7bff},                          // fp16: still 65504
      {0.0f, 0x0000, 0x0000},
      {-0.0f, 0x8000, 0x8000},
      {std::numeric_limits<float>::denorm_min(), 0x0000, 0x0000},
      {-std::numeric_limits<float>::min(), 0x8080, 0x8000},  // fp32's smallest normal
      {std::ldexp(1.0f, -24), 0x3380, 0x0001},              // fp16's smallest subnormal
      {std::ldexp(1.0f, -25), 0x3300, 0x0000},              // its half: the tie goes to 0
      {std::ldexp(1.5f, -25), 0x3340, 0x0001},
      {std::ldexp(3.0f, -25), 0x33c0, 0x0002},              // tie between 1 and 2: even
      {-std::ldexp(1023.0f, -24), 0xb880, 0x83ff},          // fp16's largest subnormal
      {std::ldexp(2047.0f, -25), 0x3880, 0x0400},           // rounds up to the smallest normal
  };
  for (const auto& c : cases) {
    if (float_to_bf16(c.f).bits != c.bf16_bits)
      fail("bf16 of " + hex(float_bits(c.f)) + ": got " + hex(float_to_bf16(c.f).bits));
    if (float_to_fp16(c.f).bits != c.fp16_bits)
      fail("fp16 of " + hex(float_bits(c.f)) + ": got " + hex(float_to_fp16(c.f).bits));
  }
}

// ---- fast stores ----------------------------------------------------------------------------

// store_finite(bf16*) == float_to_bf16 on every finite float and on the infinities. The result
// depends on the upper half and on how the low half compares with 0x8000, so every upper half
// is tried with the low halves around that tie and at both ends, plus random ones.
static void check_store_finite(std::mt19937& rng) {
  for (uint32_t upper = 0; upper < 0x10000; ++upper) {
    if ((upper & 0x7fff) > 0x7f80) continue;  // NaN
    const uint32_t random = rng() & 0xffff;
    for (uint32_t low : {0x0000u, 0x0001u, 0x7fffu, 0x8000u, 0x8001u, 0xfffeu, 0xffffu, random}) {
      const uint32_t u = upper << 16 | low;
      if ((upper & 0x7fff) == 0x7f80 && low != 0) continue;  // NaN
      bf16 fast;
      store_finite(&fast, bits_float(u));
      if (fast.bits != float_to_bf16(bits_float(u)).bits) {
        fail("store_finite(bf16) of " + hex(u));
        return;
      }
    }
  }
}

// store_normal(fp16*) == float_to_fp16 on every float of magnitude 0 or in [2^-14, 65504].
static void check_store_normal() {
  const uint32_t first = float_bits(std::ldexp(1.0f, -14)), last = float_bits(65504.0f);
  for (uint32_t sign : {0u, 0x80000000u}) {
    fp16 fast;
    store_normal(&fast, bits_float(sign));
    if (fast.bits != float_to_fp16(bits_float(sign)).bits) fail("store_normal(fp16) of zero");
    for (uint32_t u = sign | first; u <= (sign | last); ++u) {
      store_normal(&fast, bits_float(u));
      if (fast.bits != float_to_fp16(bits_float(u)).bits) {
        fail("store_normal(fp16) of " + hex(u));
        return;
      }
    }
  }
}

int main() {
  check_conversion<fp16>("fp16", fp16_to_float, float_to_fp16);
  check_conversion<bf16>("bf16", bf16_to_float, float_to_bf16);
  check_special_values();
  std::mt19937 rng(1234);
  check_store_finite(rng);
  check_store_normal();

  if (failures) {
    std::printf("test_half16: %d failure(s)\n", failures);
    return 1;
  }
  std::printf("test_half16: all checks passed\n");
  return 0;
}
