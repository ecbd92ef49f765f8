// Single-pass body of the paged attention kernel (included by attention.cuh, namespace vllm):
// each lane group streams K and V rows together with a running (online) softmax per head, so
// twice the bytes are in flight per warp and no logits go through shared memory. The lane
// groups' partial results are merged at the end with the usual max/rescale.
#pragma once

template <typename T, int D, int CG>
VLLM_D void attn_one_pass(const AttnParams& p, const int64_t* koff, const int64_t* voff, int n,
                          const float (*qs)[D], float (*oacc)[D], float* ms, float* ls,
                          float (*gm)[CG], float (*gl)[CG]) {
  using L = HeadLayout<T, D>;
  using V = Vec<T, L::ELEMS>;
  const int lane = threadIdx.x % VLLM_WARP_SIZE;
  const int warp = threadIdx.x / VLLM_WARP_SIZE;
  const int sub = lane / L::LT, l = lane % L::LT;
  const int group = warp * L::TPW + sub;
  const T* kc = static_cast<const T*>(p.k_cache);
  const T* vc = static_cast<const T*>(p.v_cache);
  float acc[CG][L::VPL][L::ELEMS];
  float m[CG], lsum[CG];
#pragma unroll
  for (int g = 0; g < CG; ++g) {
    m[g] = -FLT_MAX;
    lsum[g] = 0.f;
#pragma unroll
    for (int v = 0; v < L::VPL; ++v)
#pragma unroll
      for (int e = 0; e < L::ELEMS; ++e) acc[g][v][e] = 0.f;
  }
  constexpr int U = kAttnUnrollOnePass;
  constexpr int STEP = L::TPW * U;
  for (int base = warp * STEP; base < n; base += L::NWARPS * STEP) {  // warp-uniform loop
    V kv[U][L::VPL], vv[U][L::VPL];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int i = base + u * L::TPW + sub;
      if (i < n) {
        const V* krow = reinterpret_cast<const V*>(kc + koff[i]);
        const V* vrow = reinterpret_cast<const V*>(vc + voff[i]);
#pragma unroll
        for (int v = 0; v < L::VPL; ++v) {
          if (l + v * L::LT < L::VECS) {
            kv[u][v] = krow[l + v * L::LT];
            vv[u][v] = vrow[l + v * L::LT];
          }
        }
      }
    }
    float sc[U][CG];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      float dot[CG];
#pragma unroll
      for (int g = 0; g < CG; ++g) dot[g] = 0.f;
#pragma unroll
      for (int v = 0; v < L::VPL; ++v) {
        const int vi = l + v * L::LT;
        if (vi < L::VECS) {
#pragma unroll
          for (int e = 0; e < L::ELEMS; ++e) {
            const float kf = to_float(kv[u][v].v[e]);
#pragma unroll
            for (int g = 0; g < CG; ++g) dot[g] += kf * qs[g][vi * L::ELEMS + e];
          }
        }
      }
      int head;
      const float r = reduce_heads<CG, L::LT>(dot, l, head);
      // Lane g * (LT / CG) of the group holds head g's score: hand every head to every lane.
#pragma unroll
      for (int g = 0; g < CG; ++g) sc[u][g] = VLLM_SHFL(r, lane - l + g * (L::LT / CG));
    }
#pragma unroll
    for (int g = 0; g < CG; ++g) {
      float mx = m[g];
#pragma unroll
      for (int u = 0; u < U; ++u) {
        if (base + u * L::TPW + sub < n) mx = fmaxf(mx, sc[u][g]);
      }
      const float scale = __expf(m[g] - mx);
      m[g] = mx;
      lsum[g] *= scale;
#pragma unroll
      for (int v = 0; v < L::VPL; ++v)
#pragma unroll
        for (int e = 0; e < L::ELEMS; ++e) acc[g][v][e] *= scale;
#pragma unroll
      for (int u = 0; u < U; ++u) {
        if (base + u * L::TPW + sub >= n) continue;
        const float pr = __expf(sc[u][g] - mx);
        lsum[g] += pr;
#pragma unroll
        for (int v = 0; v < L::VPL; ++v) {
          if (l + v * L::LT >= L::VECS) continue;
#pragma unroll
          for (int e = 0; e < L::ELEMS; ++e) acc[g][v][e] += pr * to_float(vv[u][v].v[e]);
        }
      }
    }
  }
  // Merge the lane groups: global max per head, rescale, sum into oacc.
  constexpr int NG = kAttnThreads / L::LT;
  if (l == 0) {
#pragma unroll
    for (int g = 0; g < CG; ++g) {
      gm[group][g] = m[g];
      gl[group][g] = lsum[g];
    }
  }
  __syncthreads();
#pragma unroll
  for (int g = 0; g < CG; ++g) {
    float M = -FLT_MAX;
    for (int k = 0; k < NG; ++k) M = fmaxf(M, gm[k][g]);
    const float f = lsum[g] > 0.f ? __expf(m[g] - M) : 0.f;
#pragma unroll
    for (int v = 0; v < L::VPL; ++v)
#pragma unroll
      for (int e = 0; e < L::ELEMS; ++e) {
        float a = acc[g][v][e] * f;
#pragma unroll
        for (int mk = L::LT; mk < VLLM_WARP_SIZE; mk <<= 1) a += VLLM_SHFL_XOR(a, mk);
        const int vi = l + v * L::LT;
        if (sub == 0 && vi < L::VECS) atomicAdd(&oacc[g][vi * L::ELEMS + e], a);
      }
    if (threadIdx.x == 0) {
      float tot = 0.f;
      for (int k = 0; k < NG; ++k) tot += gl[k][g] > 0.f ? gl[k][g] * __expf(gm[k][g] - M) : 0.f;
      ms[g] = M;
      ls[g] = tot;
    }
  }
}
