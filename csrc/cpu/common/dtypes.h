// Framework-free scalar types and conversions shared by every CPU kernel (no torch include).
// bf16 and fp16 are stored as raw 16-bit patterns; all arithmetic happens in fp32.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace vllm_cpu {

struct bf16 {
  uint16_t bits;
};
struct fp16 {
  uint16_t bits;
};

enum class DType : int { f32 = 0, bf16 = 1, f16 = 2 };

// Functions below have internal linkage: every ISA translation unit compiles its own copy with
// its own flags, so the linker can never hand an AVX-512 copy to the scalar path.
namespace {

inline float bits_to_f32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint32_t f32_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

inline float to_f32(float x) { return x; }
inline float to_f32(bf16 x) { return bits_to_f32(uint32_t(x.bits) << 16); }

inline float to_f32(fp16 x) {
  uint32_t h = x.bits, sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ffu;
  if (exp == 0x1f) return bits_to_f32(sign | 0x7f800000u | (man << 13));  // inf / nan
  if (exp == 0) {
    if (man == 0) return bits_to_f32(sign);
    float v = std::ldexp(float(man), -24);  // subnormal
    return sign ? -v : v;
  }
  return bits_to_f32(sign | ((exp + 112) << 23) | (man << 13));
}

// Round-to-nearest-even narrowing, matching torch's conversions.
template <class T>
inline T from_f32(float x);

template <>
inline float from_f32<float>(float x) { return x; }

template <>
inline bf16 from_f32<bf16>(float x) {
  uint32_t u = f32_to_bits(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16{uint16_t((u >> 16) | 0x40)};  // quiet nan
  u += 0x7fffu + ((u >> 16) & 1u);
  return bf16{uint16_t(u >> 16)};
}

template <>
inline fp16 from_f32<fp16>(float x) {
  uint32_t u = f32_to_bits(x), sign = (u >> 16) & 0x8000u;
  uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return fp16{uint16_t(sign | 0x7e00u)};   // nan
  if (a >= 0x477ff000u) return fp16{uint16_t(sign | 0x7c00u)};  // overflow -> inf
  if (a < 0x38800000u) {                                        // subnormal or zero
    float v = bits_to_f32(a) * 16777216.0f;                     // scale by 2^24
    return fp16{uint16_t(sign | uint32_t(std::nearbyint(v)))};
  }
  uint32_t r = a + 0xfffu + ((a >> 13) & 1u) - (112u << 23);
  return fp16{uint16_t(sign | (r >> 13))};
}

// Scalar math used by tails and the scalar ISA.
inline float silu_f(float x) { return x / (1.0f + std::exp(-x)); }
inline float gelu_f(float x) { return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f)); }
inline float gelu_tanh_f(float x) {
  const float k = 0.79788456080286536f;  // sqrt(2 / pi)
  return 0.5f * x * (1.0f + std::tanh(k * (x + 0.044715f * x * x * x)));
}

}  // namespace
}  // namespace vllm_cpu
