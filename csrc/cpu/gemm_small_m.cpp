// gemm_bf16_packed: out[M, N] = x[M, K] @ W[N, K]^T for few rows (decode batches) in bf16, with
// W pre-packed as [ceil(N/16), K/2, 16, 2] (16 output columns x 2 k-values per 64-byte vector).
// One packed vector feeds every row's `vdpbf16ps` with that row's (k, k+1) pair broadcast, so the
// weights stream once per call with no horizontal sums. oneDNN's bf16 GEMM moves these weights
// at about 6 GB/s for 16 rows on a 2-core Zen 4; streaming them is what bounds a decode step.
// Built for every x86-64 target; the kernel body carries its own target attribute and runs only
// where the CPU reports avx512_bf16 (gemm_bf16_packed_supported()).
#include <torch/library.h>
#include <ATen/ATen.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#define VLLM_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#endif

namespace vllm_cpu {

bool gemm_bf16_packed_supported() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl");
#else
  return false;
#endif
}

#if defined(__x86_64__)
namespace {

// How far ahead (in 64-byte weight vectors) the kernel asks for weights. At 16 rows a vector
// takes ~16 cycles, so 32 vectors (2 KiB) cover a DRAM miss; 8 measured 15-25% slower.
constexpr int64_t kPrefetchVectors = 32;

// x [M, K] -> per block of MR rows, (k, k+1) pairs transposed to [K/2][MR]: the kernel then reads
// the MR pairs of one k2 from one cache line at fixed offsets instead of MR row pointers (which
// spilled out of the general registers at MR = 16).
void pack_rows(const uint16_t* x, int64_t m, int64_t k, int32_t* xt) {
  const int32_t* xp = reinterpret_cast<const int32_t*>(x);
  const int64_t k2n = k / 2;
  for (int64_t r0 = 0; r0 < m;) {
    const int64_t left = m - r0;
    const int64_t mr = left >= 16 ? 16 : left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
    int32_t* dst = xt + r0 * k2n;  // [K/2, mr]
    for (int64_t r = 0; r < mr; ++r) {
      const int32_t* src = xp + (r0 + r) * k2n;
      for (int64_t k2 = 0; k2 < k2n; ++k2) dst[k2 * mr + r] = src[k2];
    }
    r0 += mr;
  }
}

// MR rows of x against one 16-column block: acc[r] += W2 . (x[r, k], x[r, k+1]) over K/2 pairs.
// xt: this row block's packed pairs [K/2][MR].
template <int MR>
VLLM_BF16_TARGET inline void block_rows(const int32_t* xt, const uint16_t* wb, int64_t k2n,
                                        uint16_t* out, int64_t ldo, int cols) {
  __m512 acc[MR];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) acc[r] = _mm512_setzero_ps();
  for (int64_t k2 = 0; k2 < k2n; ++k2) {
    // The weights stream from memory once: ask for them well ahead of their use (running past
    // this block's end prefetches the next block, which is where this thread goes next).
    _mm_prefetch(reinterpret_cast<const char*>(wb + (k2 + kPrefetchVectors) * 32), _MM_HINT_T0);
    const __m512bh w = (__m512bh)_mm512_loadu_si512(wb + k2 * 32);
    const int32_t* xk = xt + k2 * MR;
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      acc[r] = _mm512_dpbf16_ps(acc[r], w, (__m512bh)_mm512_set1_epi32(xk[r]));
    }
  }
  const __mmask16 mask = cols >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << cols) - 1);
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    const __m256i v = (__m256i)_mm512_cvtneps_pbh(acc[r]);
    _mm256_mask_storeu_epi16(out + r * ldo, mask, v);
  }
}

// Rows [r0, r1) of x (packed) against column block nb: 16-row register tiles, then the rest.
VLLM_BF16_TARGET void block_column(const int32_t* xt, int64_t r0, int64_t r1, int64_t k2n,
                                   const uint16_t* wb, int cols, uint16_t* ob, int64_t n) {
  int64_t r = r0;  // row blocks in the order pack_rows laid them out
  for (; r + 16 <= r1; r += 16) block_rows<16>(xt + r * k2n, wb, k2n, ob + r * n, n, cols);
  if (r + 8 <= r1) { block_rows<8>(xt + r * k2n, wb, k2n, ob + r * n, n, cols); r += 8; }
  if (r + 4 <= r1) { block_rows<4>(xt + r * k2n, wb, k2n, ob + r * n, n, cols); r += 4; }
  if (r + 2 <= r1) { block_rows<2>(xt + r * k2n, wb, k2n, ob + r * n, n, cols); r += 2; }
  if (r < r1) block_rows<1>(xt + r * k2n, wb, k2n, ob + r * n, n, cols);
}

VLLM_BF16_TARGET void gemm_kernel(const int32_t* xt, int64_t m, int64_t k, const uint16_t* wp,
                                  int64_t n, uint16_t* out) {
  const int64_t nb_count = (n + 15) / 16, k2n = k / 2;
#pragma omp parallel for schedule(static) if (nb_count * m * k > (1 << 18))
  for (int64_t nb = 0; nb < nb_count; ++nb) {
    const int cols = static_cast<int>(std::min<int64_t>(16, n - nb * 16));
    block_column(xt, 0, m, k2n, wp + nb * k2n * 32, cols, out + nb * 16, n);
  }
}

}  // namespace
#endif

void gemm_bf16_packed(at::Tensor& out, const at::Tensor& x, const at::Tensor& w_packed, int64_t n) {
  TORCH_CHECK_VALUE(gemm_bf16_packed_supported(), "gemm_bf16_packed needs a CPU with avx512_bf16");
  TORCH_CHECK_VALUE(x.dim() == 2 && x.is_contiguous() && x.scalar_type() == at::kBFloat16,
                    "x must be a contiguous bf16 [M, K], got ", x.sizes(), " ", x.scalar_type());
  const int64_t m = x.size(0), k = x.size(1);
  TORCH_CHECK_VALUE(k % 2 == 0, "K=", k, " must be even");
  TORCH_CHECK_VALUE(w_packed.dim() == 4 && w_packed.is_contiguous() &&
                        w_packed.scalar_type() == at::kBFloat16 && w_packed.size(1) == k / 2 &&
                        w_packed.size(2) == 16 && w_packed.size(3) == 2 &&
                        w_packed.size(0) == (n + 15) / 16,
                    "w_packed must be bf16 [ceil(N/16), K/2, 16, 2] for N=", n, ", K=", k,
                    "; got ", w_packed.sizes());
  TORCH_CHECK_VALUE(out.dim() == 2 && out.is_contiguous() && out.size(0) == m && out.size(1) == n &&
                        out.scalar_type() == at::kBFloat16,
                    "out must be a contiguous bf16 [", m, ", ", n, "], got ", out.sizes());
#if defined(__x86_64__)
  if (m == 0 || n == 0) return;
  static thread_local std::vector<int32_t> xt;  // reused: no allocation per call
  if (static_cast<int64_t>(xt.size()) < m * (k / 2)) xt.resize(m * (k / 2));
  pack_rows(reinterpret_cast<const uint16_t*>(x.data_ptr()), m, k, xt.data());
  gemm_kernel(xt.data(), m, k, reinterpret_cast<const uint16_t*>(w_packed.data_ptr()), n,
              reinterpret_cast<uint16_t*>(out.data_ptr()));
#endif
}

namespace {

std::vector<int64_t> linear_out_shape(const at::Tensor& x, int64_t n) {
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape.back() = n;
  return shape;
}

}  // namespace

// The whole linear layer in one dispatcher call (a decode step makes ~120 of them): flatten the
// leading dims, allocate the output, run the kernel, add the bias.
at::Tensor linear_bf16_packed(const at::Tensor& x, const at::Tensor& w_packed, int64_t n,
                              const std::optional<at::Tensor>& bias) {
  TORCH_CHECK_VALUE(x.dim() >= 1 && x.scalar_type() == at::kBFloat16,
                    "linear_bf16_packed: x must be bf16 [..., K], got ", x.sizes(), " ",
                    x.scalar_type());
  const int64_t k = x.size(-1);
  const at::Tensor x2 = x.reshape({-1, k}).contiguous();  // [M, K]
  at::Tensor out = at::empty({x2.size(0), n}, x.options());  // [M, N]
  gemm_bf16_packed(out, x2, w_packed, n);
  if (bias.has_value()) {
    TORCH_CHECK_VALUE(bias->dim() == 1 && bias->size(0) == n, "linear_bf16_packed: bias must be [",
                      n, "], got ", bias->sizes());
    out.add_(*bias);
  }
  return out.view(linear_out_shape(x, n));
}

at::Tensor linear_bf16_packed_meta(const at::Tensor& x, const at::Tensor& w_packed, int64_t n,
                                   const std::optional<at::Tensor>& bias) {
  (void)w_packed;
  (void)bias;
  return at::empty(linear_out_shape(x, n), x.options());
}

}  // namespace vllm_cpu

TORCH_LIBRARY_FRAGMENT(_C_cpu, m) {
  m.def("gemm_bf16_packed(Tensor! out, Tensor x, Tensor w_packed, int n) -> ()");
  m.def("linear_bf16_packed(Tensor x, Tensor w_packed, int n, Tensor? bias) -> Tensor");
}

TORCH_LIBRARY_IMPL(_C_cpu, CPU, m) {
  m.impl("gemm_bf16_packed", &vllm_cpu::gemm_bf16_packed);
  m.impl("linear_bf16_packed", &vllm_cpu::linear_bf16_packed);
}

TORCH_LIBRARY_IMPL(_C_cpu, Meta, m) {
  m.impl("linear_bf16_packed", &vllm_cpu::linear_bf16_packed_meta);
}
