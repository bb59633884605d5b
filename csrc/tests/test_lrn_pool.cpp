// The CPU LRN + max-pool kernel against a naive double-precision loop, without PyTorch.
// Exit code 0 when every check passes; each failure prints one line.
//
// Covers: odd H and W (the ceil-mode overhang), C smaller than the window, even and odd window
// sizes, beta != 0.5 (the pow path), contiguous / channels-last / strided layouts, row ranges
// split at arbitrary points (as at::parallel_for does), outputs poisoned with NaN (every element
// must be written). The 16-bit conversions (csrc/half16.h) are test_half16.cpp's.
// The backward kernel against the analytic gradient with a naive argmax (PyTorch's tie rule),
// over the same kinds of shapes, layouts and parameters, ReLU'd inputs giving many exact ties.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "lrn_pool/lrn_pool.h"

using namespace sportsfusion;

static int failures = 0;

static void fail(const std::string& what) {
  if (++failures <= 20) std::printf("FAIL %s\n", what.c_str());
}

// ---- element types: conversion from double and back, and the tolerance of one result --------

static double to_double(float v) { return v; }
static double to_double(double v) { return v; }
static double to_double(fp16 v) { return fp16_to_float(v); }
static double to_double(bf16 v) { return bf16_to_float(v); }

template <typename T>
T from_double(double v);
template <>
float from_double<float>(double v) { return float(v); }
template <>
double from_double<double>(double v) { return v; }
template <>
fp16 from_double<fp16>(double v) { return float_to_fp16(float(v)); }
template <>
bf16 from_double<bf16>(double v) { return float_to_bf16(float(v)); }

// Relative tolerance against the exact (double) result. fp32: the kernel rounds ~10 times
// (5-term sum, divide, multiply, add, sqrt/pow, divide), each within 2^-24, so 1e-6 leaves room;
// fp64: the same in double; 16-bit: one rounding of the stored result (half an ulp, 2^-9 and
// 2^-12 relative) plus the fp32 error, bounded by one full step.
template <typename T>
double rel_tolerance();
template <>
double rel_tolerance<float>() { return 1e-6; }
template <>
double rel_tolerance<double>() { return 1e-13; }
template <>
double rel_tolerance<fp16>() { return std::ldexp(1.0, -11); }
template <>
double rel_tolerance<bf16>() { return std::ldexp(1.0, -8); }

// Absolute floor: fp16 results below 2^-14 are subnormal, with a fixed step of 2^-24.
template <typename T>
double abs_tolerance() { return 1e-300; }
template <>
double abs_tolerance<fp16>() { return std::ldexp(1.0, -24); }

template <typename T>
const char* type_name();
template <>
const char* type_name<float>() { return "float"; }
template <>
const char* type_name<double>() { return "double"; }
template <>
const char* type_name<fp16>() { return "half"; }
template <>
const char* type_name<bf16>() { return "bfloat16"; }

// ---- layouts ---------------------------------------------------------------------------------

enum class Layout { contiguous, channels_last, strided };

// Element strides (n, c, t, h, w) for sizes s, and the number of elements to allocate.
static int64_t make_strides(const int64_t s[5], Layout layout, int64_t stride[5]) {
  const int64_t n = s[0], c = s[1], t = s[2], h = s[3], w = s[4];
  if (layout == Layout::channels_last) {
    stride[1] = 1, stride[4] = c, stride[3] = w * c, stride[2] = h * w * c;
    stride[0] = t * h * w * c;
    return n * stride[0];
  }
  const int64_t gap = layout == Layout::strided ? 3 : 1;  // every third element along w
  stride[4] = gap, stride[3] = w * gap + 1, stride[2] = h * stride[3], stride[1] = t * stride[2];
  stride[0] = c * stride[1];
  return n * stride[0];
}

// ---- the naive reference ---------------------------------------------------------------------

template <typename T>
static double lrn_at(const std::vector<T>& x, const LrnPoolGeometry& g, const LrnParams& p,
                     int64_t n, int64_t c, int64_t t, int64_t h, int64_t w) {
  auto at = [&](int64_t cc) {
    return to_double(x[n * g.x_stride[0] + cc * g.x_stride[1] + t * g.x_stride[2] +
                       h * g.x_stride[3] + w * g.x_stride[4]]);
  };
  double sum = 0;
  for (int64_t cc = c - p.size / 2; cc <= c + (p.size - 1) / 2; ++cc)
    if (cc >= 0 && cc < g.c) sum += at(cc) * at(cc);
  return at(c) / std::pow(p.k + p.alpha / double(p.size) * sum, p.beta);
}

template <typename T>
static void check_case(const int64_t sizes[5], const LrnParams& p, Layout in_layout,
                       Layout out_layout, double scale, bool relu, std::mt19937& rng) {
  LrnPoolGeometry g{sizes[0], sizes[1], sizes[2], sizes[3], sizes[4], {}, {}};
  const int64_t x_elems = make_strides(sizes, in_layout, g.x_stride);
  const int64_t out_sizes[5] = {g.n, g.c, g.t, g.ho(), g.wo()};
  const int64_t out_elems = make_strides(out_sizes, out_layout, g.out_stride);

  std::normal_distribution<double> normal(0.0, scale);
  std::vector<T> x(x_elems);
  for (auto& v : x) v = from_double<T>(relu ? std::fmax(0.0, normal(rng)) : normal(rng));
  std::vector<T> out(out_elems, from_double<T>(std::numeric_limits<double>::quiet_NaN()));

  // Three uneven row ranges, like a parallel_for with an odd grain.
  const int64_t rows = g.rows(), cut1 = rows / 3, cut2 = rows - 1 > cut1 ? rows - 1 : rows;
  lrn_pool_cpu(x.data(), out.data(), g, p, 0, cut1);
  lrn_pool_cpu(x.data(), out.data(), g, p, cut1, cut2);
  lrn_pool_cpu(x.data(), out.data(), g, p, cut2, rows);

  char label[256];
  std::snprintf(label, sizeof label,
                "%s x(%lld,%lld,%lld,%lld,%lld) size %lld beta %g layout %d->%d",
                type_name<T>(), (long long)g.n, (long long)g.c, (long long)g.t, (long long)g.h,
                (long long)g.w, (long long)p.size, p.beta, int(in_layout), int(out_layout));
  const double tol = rel_tolerance<T>();
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t c = 0; c < g.c; ++c)
      for (int64_t t = 0; t < g.t; ++t)
        for (int64_t ho = 0; ho < g.ho(); ++ho)
          for (int64_t wo = 0; wo < g.wo(); ++wo) {
            double want = -std::numeric_limits<double>::infinity();
            for (int64_t h = 2 * ho; h < std::min(2 * ho + 2, g.h); ++h)
              for (int64_t w = 2 * wo; w < std::min(2 * wo + 2, g.w); ++w)
                want = std::fmax(want, lrn_at(x, g, p, n, c, t, h, w));
            const double got = to_double(out[n * g.out_stride[0] + c * g.out_stride[1] +
                                              t * g.out_stride[2] + ho * g.out_stride[3] +
                                              wo * g.out_stride[4]]);
            if (!(std::fabs(got - want) <= tol * std::fabs(want) + abs_tolerance<T>())) {
              char where[256];
              std::snprintf(where, sizeof where,
                            " at (%lld,%lld,%lld,%lld,%lld): got %.9g want %.9g",
                            (long long)n, (long long)c, (long long)t, (long long)ho,
                            (long long)wo, got, want);
              fail(std::string(label) + where);
              return;
            }
          }
}

template <typename T>
static void check_kernel(std::mt19937& rng) {
  const int64_t shapes[][5] = {
      {2, 7, 3, 5, 9},    // odd H and W: the last row and column of windows overhang
      {1, 3, 1, 4, 4},    // C < size
      {1, 1, 2, 7, 3},    // a single channel
      {2, 96, 1, 9, 11},  // conv1's channel count
      {1, 5, 1, 1, 1},    // one pixel
      {3, 17, 2, 2, 35},  // more than two tiles along w, a partial last tile
  };
  const LrnParams paper{5, 5e-4, 0.5, 2.0};
  const LrnParams others[] = {{4, 1e-3, 0.75, 1.0}, {1, 5e-4, 0.5, 2.0}, {7, 2e-2, 0.75, 1.5}};
  const Layout layouts[] = {Layout::contiguous, Layout::channels_last, Layout::strided};
  for (const auto& s : shapes)
    for (Layout in : layouts) {
      const Layout out = in == Layout::strided ? Layout::contiguous : in;
      check_case<T>(s, paper, in, out, 30.0, true, rng);   // ReLU'd, large enough that the
      check_case<T>(s, paper, in, out, 30.0, false, rng);  // normalisation matters (a^2 ~ k/alpha)
    }
  for (const auto& p : others)
    for (const auto& s : shapes)
      check_case<T>(s, p, Layout::channels_last, Layout::contiguous, 3.0, false, rng);
}

// ---- backward: the analytic formula with a naive argmax, in double ---------------------------

// The argmax key of one LRN value: PyTorch pools the tensor in x's dtype, so 16-bit values tie
// when they round alike (see lrn_pool.h).
template <typename T>
static double pool_key(double b) {
  return to_double(from_double<T>(b));
}

// Tolerance of a gradient against the exact one, relative to `magnitude` = |grad_b_j s_j| +
// coef |a_j| sum |t_c|: the subtraction may cancel, so the compute error (about ten roundings of
// each term, 2^-24 each in fp32, 2^-53 in fp64) is relative to the terms, not to the result. The
// 16-bit types add one rounding of the result (rel_tolerance).
template <typename T>
double grad_tolerance(double want, double magnitude) {
  const double compute = std::is_same<T, double>::value ? 1e-13 : 2e-6;
  const double store = std::is_same<T, float>::value || std::is_same<T, double>::value
                           ? 0.0
                           : rel_tolerance<T>();
  return compute * magnitude + store * std::fabs(want) + abs_tolerance<T>();
}

template <typename T>
static void check_backward_case(const int64_t sizes[5], const LrnParams& p, Layout in_layout,
                                Layout gx_layout, bool relu, std::mt19937& rng) {
  LrnPoolGeometry g{sizes[0], sizes[1], sizes[2], sizes[3], sizes[4], {}, {}};
  const int64_t x_elems = make_strides(sizes, in_layout, g.x_stride);
  const int64_t out_sizes[5] = {g.n, g.c, g.t, g.ho(), g.wo()};
  const int64_t go_elems = make_strides(out_sizes, in_layout, g.out_stride);  // grad_out
  int64_t gx_stride[5];
  const int64_t gx_elems = make_strides(sizes, gx_layout, gx_stride);

  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<T> x(x_elems), grad_out(go_elems);
  for (auto& v : x) v = from_double<T>(30 * (relu ? std::fmax(0.0, normal(rng)) : normal(rng)));
  for (auto& v : grad_out) v = from_double<T>(normal(rng));
  std::vector<T> grad_x(gx_elems, from_double<T>(std::numeric_limits<double>::quiet_NaN()));

  const int64_t rows = g.rows(), cut1 = rows / 3, cut2 = rows - 1 > cut1 ? rows - 1 : rows;
  lrn_pool_backward_cpu(grad_out.data(), x.data(), grad_x.data(), g, gx_stride, p, 0, cut1);
  lrn_pool_backward_cpu(grad_out.data(), x.data(), grad_x.data(), g, gx_stride, p, cut1, cut2);
  lrn_pool_backward_cpu(grad_out.data(), x.data(), grad_x.data(), g, gx_stride, p, cut2, rows);

  // Dense (n, c, t, h, w) arrays of a, d and the routed grad_b.
  const int64_t E = g.n * g.c * g.t * g.h * g.w;
  auto dense = [&](int64_t n, int64_t c, int64_t t, int64_t h, int64_t w) {
    return (((n * g.c + c) * g.t + t) * g.h + h) * g.w + w;
  };
  std::vector<double> a(E), d(E), grad_b(E, 0.0);
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t c = 0; c < g.c; ++c)
      for (int64_t t = 0; t < g.t; ++t)
        for (int64_t h = 0; h < g.h; ++h)
          for (int64_t w = 0; w < g.w; ++w)
            a[dense(n, c, t, h, w)] =
                to_double(x[n * g.x_stride[0] + c * g.x_stride[1] + t * g.x_stride[2] +
                            h * g.x_stride[3] + w * g.x_stride[4]]);
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t c = 0; c < g.c; ++c)
      for (int64_t t = 0; t < g.t; ++t)
        for (int64_t h = 0; h < g.h; ++h)
          for (int64_t w = 0; w < g.w; ++w) {
            double sum = 0;
            for (int64_t cc = c - p.size / 2; cc <= c + (p.size - 1) / 2; ++cc)
              if (cc >= 0 && cc < g.c) sum += a[dense(n, cc, t, h, w)] * a[dense(n, cc, t, h, w)];
            d[dense(n, c, t, h, w)] = p.k + p.alpha / double(p.size) * sum;
          }
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t c = 0; c < g.c; ++c)
      for (int64_t t = 0; t < g.t; ++t)
        for (int64_t ho = 0; ho < g.ho(); ++ho)
          for (int64_t wo = 0; wo < g.wo(); ++wo) {
            // PyTorch's rule: scan row-major, replace when strictly greater or NaN
            int64_t best = dense(n, c, t, 2 * ho, 2 * wo);
            double m = -std::numeric_limits<double>::infinity();
            for (int64_t h = 2 * ho; h < std::min(2 * ho + 2, g.h); ++h)
              for (int64_t w = 2 * wo; w < std::min(2 * wo + 2, g.w); ++w) {
                const int64_t i = dense(n, c, t, h, w);
                const double key = pool_key<T>(a[i] / std::pow(d[i], p.beta));
                if (key > m || std::isnan(key)) m = key, best = i;
              }
            grad_b[best] = to_double(grad_out[n * g.out_stride[0] + c * g.out_stride[1] +
                                              t * g.out_stride[2] + ho * g.out_stride[3] +
                                              wo * g.out_stride[4]]);
          }

  char label[256];
  std::snprintf(label, sizeof label,
                "backward %s x(%lld,%lld,%lld,%lld,%lld) size %lld beta %g layout %d->%d relu %d",
                type_name<T>(), (long long)g.n, (long long)g.c, (long long)g.t, (long long)g.h,
                (long long)g.w, (long long)p.size, p.beta, int(in_layout), int(gx_layout),
                int(relu));
  const double coef = 2 * p.alpha * p.beta / double(p.size);
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t j = 0; j < g.c; ++j)
      for (int64_t t = 0; t < g.t; ++t)
        for (int64_t h = 0; h < g.h; ++h)
          for (int64_t w = 0; w < g.w; ++w) {
            const int64_t ij = dense(n, j, t, h, w);
            double sum = 0, sum_abs = 0;  // over the channels c whose window holds j
            for (int64_t c = j - (p.size - 1) / 2; c <= j + p.size / 2; ++c) {
              if (c < 0 || c >= g.c) continue;
              const int64_t i = dense(n, c, t, h, w);
              const double term = grad_b[i] * a[i] * std::pow(d[i], -p.beta - 1);
              sum += term, sum_abs += std::fabs(term);
            }
            const double own = grad_b[ij] * std::pow(d[ij], -p.beta);
            const double want = own - coef * a[ij] * sum;
            const double magnitude = std::fabs(own) + coef * std::fabs(a[ij]) * sum_abs;
            const double got = to_double(grad_x[n * gx_stride[0] + j * gx_stride[1] +
                                                t * gx_stride[2] + h * gx_stride[3] +
                                                w * gx_stride[4]]);
            if (!(std::fabs(got - want) <= grad_tolerance<T>(want, magnitude))) {
              char where[256];
              std::snprintf(where, sizeof where,
                            " at (%lld,%lld,%lld,%lld,%lld): got %.9g want %.9g",
                            (long long)n, (long long)j, (long long)t, (long long)h,
                            (long long)w, got, want);
              fail(std::string(label) + where);
              return;
            }
          }
}

template <typename T>
static void check_backward(std::mt19937& rng) {
  const int64_t shapes[][5] = {
      {2, 7, 3, 5, 9},    // odd H and W: overhanging windows, whose clamped pixels must not win
      {1, 3, 1, 4, 4},    // C < size
      {1, 1, 2, 7, 3},    // a single channel
      {2, 40, 1, 9, 11},  // many channels
      {1, 5, 1, 1, 1},    // one pixel
      {2, 9, 2, 3, 35},   // more than two tiles along w, a partial last tile
  };
  const LrnParams paper{5, 5e-4, 0.5, 2.0};
  const LrnParams others[] = {{4, 1e-3, 0.75, 1.0}, {1, 5e-4, 0.5, 2.0}, {7, 2e-2, 0.75, 1.5}};
  const Layout layouts[] = {Layout::contiguous, Layout::channels_last, Layout::strided};
  for (const auto& s : shapes)
    for (Layout in : layouts) {
      const Layout gx = in == Layout::channels_last ? Layout::contiguous : Layout::channels_last;
      check_backward_case<T>(s, paper, in, in, true, rng);  // ReLU'd: many exact zero ties
      check_backward_case<T>(s, paper, in, gx, false, rng);
    }
  for (const auto& p : others)
    for (const auto& s : shapes)
      check_backward_case<T>(s, p, Layout::channels_last, Layout::strided, false, rng);
}

int main() {
  std::mt19937 rng(1234);
  check_kernel<float>(rng);
  check_kernel<double>(rng);
  check_kernel<fp16>(rng);
  check_kernel<bf16>(rng);
  check_backward<float>(rng);
  check_backward<double>(rng);
  check_backward<fp16>(rng);
  check_backward<bf16>(rng);

  if (failures) {
    std::printf("test_lrn_pool: %d failure(s)\n", failures);
    return 1;
  }
  std::printf("test_lrn_pool: all checks passed\n");
  return 0;
}
